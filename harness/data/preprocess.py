"""Turn fetched corpora into their task's canonical format: language modelling here, dialogue in
harness.data.dialogue; this module's CLI preprocesses either (the workflow's one `preprocess` rule).

Details: docs/data.md, "Language-model preprocessing (harness/data/preprocess.py)".
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness.data.dialogue import preprocess_dialogue
from harness.data.dialogue_corpora import CONTEXT_WINDOW, MAX_UTT_LEN
from harness.data.files import manifest_path, sha256_file
from harness.data.sources import add_source_arguments, resolve_splits
from harness.data.registry import DATASETS, DataError, get_spec
from harness.data.tokenization import TOKENIZATIONS, tokenize
from harness.data.vocab import UNK, UNK_ID, Vocab



def read_sentences(path: Path, oov_marker: str | None, label_column: bool,
                   lowercase: bool = True, tokenization: str = "released") -> tuple[list[list[str]], int]:
    """Read and normalise a source file; return ``(sentences, empty_lines_dropped)``.

    Raises `DataError` naming the file if it is missing, not UTF-8, or has no non-empty line.
    """
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise DataError(f"input file {path} does not exist (run the fetch step first)") from None
    except UnicodeDecodeError as e:
        raise DataError(f"input file {path} is not valid UTF-8: {e}") from e
    sentences: list[list[str]] = []
    empty = 0
    # the original TWR-VAE code lower-cases before anything else, so the OOV marker is matched lower-cased there
    marker = oov_marker.lower() if oov_marker and tokenization == "twr-vae-code" else oov_marker
    lines = text.split("\n")  # not splitlines(): it would also split on U+2028, \x1c, ... inside a line
    if lines[-1] == "":
        lines.pop()
    for line in lines:
        if label_column and "\t" in line:
            line = line.split("\t", 1)[1]
        toks = [UNK if t == marker else (t.lower() if lowercase else t) for t in tokenize(line, tokenization)]
        if toks:
            sentences.append(toks)
        else:
            empty += 1
    if not sentences:
        raise DataError(f"input file {path} is empty (no non-empty line)")
    return sentences, empty


def _split_stats(sents: list[list[str]], vocab: Vocab, empty: int) -> dict[str, Any]:
    lengths = [len(s) for s in sents]
    n_tok = sum(lengths)
    src_unk = sum(t == UNK for s in sents for t in s)
    unk = sum(i == UNK_ID for s in sents for i in vocab.encode(s))
    return {
        "sentences": len(sents),
        "tokens": n_tok,
        "mean_length": n_tok / len(sents),
        "max_length": max(lengths),
        "empty_lines_dropped": empty,
        "unk_tokens": unk,
        "oov_rate": unk / n_tok,  # share of tokens encoded as <unk> (source <unk> included)
        "source_unk_rate": src_unk / n_tok,  # share already written as the source's OOV marker
    }


def preprocess_lm(name: str, raw_dir: Path, out_dir: Path, max_vocab: int | None = None,
                  splits: dict[str, str] | None = None, tokenization: str = "released") -> dict[str, Any]:
    """Write the canonical ``{train,valid,test}.txt``, ``vocab.txt`` and ``stats.json``; return the stats.

    raw_dir: the fetch destination (files at ``raw_dir/<relpath>``; ``raw_dir/<name>/manifest.json``
        is cross-checked when present).
    max_vocab: cap on the vocabulary size including the 4 specials; None = the registry's
        `DatasetSpec.max_vocab`; 0 = no cap.
    splits: output split -> source logical file, merged over the identity mapping; e.g.
        ``{"train": "valid"}`` for a "reduced" Yahoo run that trains on the validation file.
    tokenization: "released" (whitespace) or "twr-vae-code" (as the original TWR-VAE code; harness.data.tokenization).
    """
    ds = get_spec(name)
    if ds.kind != "lm":
        raise DataError(f"dataset {name!r} is a {ds.kind} dataset, not a language-modelling corpus")
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    mapping = resolve_splits(ds, splits)
    cap = ds.max_vocab if max_vocab is None else (None if max_vocab == 0 else max_vocab)
    manifest = json.loads(manifest_path(name, raw_dir).read_text()) if manifest_path(name, raw_dir).is_file() else None

    data: dict[str, tuple[list[list[str]], int]] = {}
    sources: dict[str, Any] = {}
    for src in sorted(set(mapping.values())):
        path = raw_dir / ds.files[src].relpath
        data[src] = read_sentences(path, ds.oov_marker, ds.label_column, ds.lowercase, tokenization)
        digest = sha256_file(path)
        entry = (manifest or {}).get("files", {}).get(src)
        if entry is not None and entry.get("sha256") != digest:
            raise DataError(f"{path}: sha256 {digest} differs from the fetch manifest ({entry.get('sha256')}); "
                            f"re-run the fetch step")
        sources[src] = {"relpath": ds.files[src].relpath, "sha256": digest,
                        "verified": entry.get("verified") if entry else None}

    vocab = Vocab.build(data[mapping["train"]][0], max_size=cap)
    train_types = {t for s in data[mapping["train"]][0] for t in s} - {UNK}
    stats: dict[str, Any] = {
        "dataset": name,
        "format": "one sentence per line, space-separated, OOV=<unk>, no BOS/EOS",
        "lowercased": ds.lowercase or tokenization == "twr-vae-code",
        "tokenization": tokenization,
        "splits": {},
        "vocab_size": len(vocab),
        "max_vocab": cap,
        "train_types": len(train_types),
        "train_types_dropped_by_cap": len(train_types) - (len(vocab) - 4),
        "sources": sources,
        "manifest_found": manifest is not None,
        "reduced": any(out != src for out, src in mapping.items()),
    }
    for out, src in mapping.items():
        sents, empty = data[src]
        stats["splits"][out] = {"source": src, **_split_stats(sents, vocab, empty)}

    _write_outputs(out_dir, {out: data[src][0] for out, src in mapping.items()}, vocab, stats)
    return stats


def _write_outputs(out_dir: Path, texts: dict[str, list[list[str]]], vocab: Vocab, stats: dict[str, Any]) -> None:
    """Write everything into a temp dir beside `out_dir`, then rename into place (stats.json last)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for split, sents in texts.items():
            with open(tmp / f"{split}.txt", "w", encoding="utf-8", newline="\n") as f:
                f.writelines(" ".join(s) + "\n" for s in sents)
        vocab.save(tmp / "vocab.txt")
        (tmp / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        (out_dir / "stats.json").unlink(missing_ok=True)  # no stats.json = incomplete output
        for fname in [f"{s}.txt" for s in texts] + ["vocab.txt", "stats.json"]:
            os.replace(tmp / fname, out_dir / fname)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Preprocess a fetched corpus (language modelling or dialogue) into the "
                                            "canonical format of its task.")
    p.add_argument("--dataset", required=True, choices=list(DATASETS))
    add_source_arguments(p)
    p.add_argument("--tokenization", choices=TOKENIZATIONS, default="released",
                   help="language modelling: twr-vae-code reads the corpus as the original TWR-VAE code "
                        "(harness.data.tokenization)")
    p.add_argument("--context-window", type=int, default=CONTEXT_WINDOW,
                   help="dialogue: utterances per window incl. the response (reference diaglen; default %(default)s)")
    p.add_argument("--max-utt-len", type=int, default=MAX_UTT_LEN,
                   help="dialogue: tokens per utterance incl. <s> and </s> (reference maxlen; default %(default)s)")
    a = p.parse_args(argv)
    dialogue = DATASETS[a.dataset].kind == "dialogue"
    try:
        if dialogue and a.tokenization != "released":
            raise DataError(f"--tokenization {a.tokenization}: only language-modelling corpora can be re-tokenised")
        if dialogue:
            stats = preprocess_dialogue(a.dataset, a.raw, a.out, a.max_vocab, dict(a.split) or None,
                                        context_window=a.context_window, max_utt_len=a.max_utt_len)
        else:
            stats = preprocess_lm(a.dataset, a.raw, a.out, a.max_vocab, dict(a.split) or None, a.tokenization)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    unit = "examples" if dialogue else "sentences"
    counts = " / ".join(f"{s[unit]}" for s in stats["splits"].values())
    print(f"{a.dataset}: {counts} {unit}, vocab {stats['vocab_size']} -> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
