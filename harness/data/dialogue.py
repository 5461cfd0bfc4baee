"""Preprocessing of a dialogue corpus: the test-loader examples of every split, the vocabulary and stats.json.

Follows the dialogue code of TWR-VAE / DialogWAE / NeuralDialog-CVAE (details and the differences on purpose:
docs/data.md). Run through `python -m harness.data.preprocess --dataset swda|dailydialog ...`.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from harness.data.dialogue_corpora import (CONTEXT_WINDOW, MAX_UTT_LEN, START_TOKEN, Dialogue, Example, build_examples,
                                           read_dialogues)
from harness.data.files import manifest_path, sha256_file
from harness.data.registry import DataError, get_spec
from harness.data.sources import resolve_splits
from harness.data.vocab import UNK_ID, Vocab

# ---------------------------------------------------------------------------------------------
# preprocessing

def _split_stats(dialogues: list[Dialogue], examples: list[Example], vocab: Vocab, words: int) -> dict[str, Any]:
    utt_lengths = [len(u.tokens) for d in dialogues for u in d]
    n_tok = sum(utt_lengths)
    unk = sum(i == UNK_ID for d in dialogues for u in d for i in vocab.encode(u.tokens))
    resp_tok = sum(len(e.response) for e in examples)
    resp_unk = sum(i == UNK_ID for e in examples for i in vocab.encode(e.response))
    n_ex = max(len(examples), 1)
    return {
        "dialogues": len(dialogues),
        "utterances": len(utt_lengths),
        "examples": len(examples),
        "tokens": n_tok,  # words of all utterances, untruncated, without <d>
        "mean_utterances_per_dialogue": len(utt_lengths) / len(dialogues),
        "mean_utterance_length": n_tok / max(len(utt_lengths), 1),
        "max_utterance_length": max(utt_lengths, default=0),
        "empty_utterances": sum(n == 0 for n in utt_lengths),
        "truncated_utterances": sum(n > words for n in utt_lengths),
        "mean_context_utterances": sum(len(e.context) for e in examples) / n_ex,
        "mean_response_length": resp_tok / n_ex,  # words after truncation
        "unk_tokens": unk,
        "oov_rate": unk / max(n_tok, 1),  # share of the utterances' words encoded as <unk>
        "response_oov_rate": resp_unk / max(resp_tok, 1),
    }


def preprocess_dialogue(name: str, raw_dir: Path, out_dir: Path, max_vocab: int | None = None,
                        source_splits: dict[str, str] | None = None, context_window: int = CONTEXT_WINDOW,
                        max_utt_len: int = MAX_UTT_LEN, start_marker: bool = True,
                        include_last: bool = False) -> dict[str, Any]:
    """Write ``{train,valid,test}.jsonl``, ``vocab.txt`` and ``stats.json`` into `out_dir`; return the stats.

    raw_dir: the fetch destination (files at ``raw_dir/<relpath>``; ``raw_dir/<name>/manifest.json`` is
        cross-checked when present).
    max_vocab: vocabulary cap including the 4 specials; None = the registry's `DatasetSpec.max_vocab`
        (10,000); 0 = no cap.
    source_splits: output split -> source logical file, merged over the identity mapping (as `preprocess_lm`'s
        `splits`), e.g. ``{"train": "valid"}`` for a reduced Switchboard run while its train file is missing;
        recorded in stats.json (``reduced``, ``source_splits``).
    context_window, max_utt_len, start_marker, include_last: see `build_examples`.

    Nothing is written unless every input parses; the outputs are assembled in a temporary directory beside
    `out_dir` and renamed into place (stats.json last), so a failure leaves no partial output.
    """
    ds = get_spec(name)
    if ds.kind != "dialogue":
        raise DataError(f"dataset {name!r} is a {ds.kind} dataset, not a dialogue corpus")
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    mapping = resolve_splits(ds, source_splits)
    cap = ds.max_vocab if max_vocab is None else (None if max_vocab == 0 else max_vocab)
    mpath = manifest_path(name, raw_dir)
    manifest = json.loads(mpath.read_text()) if mpath.is_file() else None

    data: dict[str, list[Dialogue]] = {}
    sources: dict[str, Any] = {}
    for src in sorted(set(mapping.values())):
        path = raw_dir / ds.files[src].relpath
        data[src] = read_dialogues(name, path)
        digest = sha256_file(path)
        entry = (manifest or {}).get("files", {}).get(src)
        if entry is not None and entry.get("sha256") != digest:
            raise DataError(f"{path}: sha256 {digest} differs from the fetch manifest ({entry.get('sha256')}); "
                            f"re-run the fetch step")
        sources[src] = {"relpath": ds.files[src].relpath, "sha256": digest,
                        "verified": entry.get("verified") if entry else None}

    settings = dict(context_window=context_window, max_utt_len=max_utt_len, start_marker=start_marker,
                    include_last=include_last)
    examples = {src: build_examples(dlgs, **settings) for src, dlgs in data.items()}
    train = data[mapping["train"]]
    vocab_sentences = [u.tokens for d in train for u in d]
    if start_marker:
        vocab_sentences += [[START_TOKEN]] * len(train)
    vocab = Vocab.build(vocab_sentences, max_size=cap)
    train_types = {t for s in vocab_sentences for t in s}
    stats: dict[str, Any] = {
        "dataset": name,
        "format": "jsonl, one example per line: context (list of token lists, oldest first), speakers, response, "
                  "response_speaker, response_act, dialogue, turn; words without <s>/</s>, OOV kept as words",
        "tokenizer": "nltk WordPunctTokenizer on lower-cased text (TWR-VAE dialogue_*/data.py)",
        **settings,
        "max_context_utterances": context_window - 1,
        "max_words_per_utterance": max_utt_len - 2,
        "start_token": START_TOKEN if start_marker else None,
        "splits": {},
        "vocab_size": len(vocab),
        "max_vocab": cap,
        "train_types": len(train_types),
        "train_types_dropped_by_cap": len(train_types) - (len(vocab) - 4),
        "sources": sources,
        "manifest_found": manifest is not None,
        "source_splits": dict(mapping),
        "reduced": any(out != src for out, src in mapping.items()),
    }
    for out, src in mapping.items():
        stats["splits"][out] = {"source": src, **_split_stats(data[src], examples[src], vocab, max_utt_len - 2)}
    _write_outputs(out_dir, {out: examples[src] for out, src in mapping.items()}, vocab, stats)
    return stats


def _write_outputs(out_dir: Path, splits: dict[str, list[Example]], vocab: Vocab, stats: dict[str, Any]) -> None:
    """Write everything into a temp dir beside `out_dir`, then rename into place (stats.json last)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for split, examples in splits.items():
            with open(tmp / f"{split}.jsonl", "w", encoding="utf-8", newline="\n") as f:
                f.writelines(json.dumps(e.to_json(), ensure_ascii=False) + "\n" for e in examples)
        vocab.save(tmp / "vocab.txt")
        (tmp / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        out_dir.mkdir(exist_ok=True)
        (out_dir / "stats.json").unlink(missing_ok=True)  # no stats.json = incomplete output
        for fname in [f"{s}.jsonl" for s in splits] + ["vocab.txt", "stats.json"]:
            os.replace(tmp / fname, out_dir / fname)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
