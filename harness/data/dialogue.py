"""Dialogue corpora (Switchboard, DailyDialog) -> context/response examples, and padded dialogue batches.

Everything follows the dialogue code of TWR-VAE (ruizheliUOA/TWR-VAE ``dialogue_switchboard/data.py``,
``dialogue_dd/data.py``, ``train_swda.py`` / ``train_dailydial.py``), which is guxd/DialogWAE ``data.py`` /
``configs.py`` and, before it, snakeztc/NeuralDialog-CVAE (Zhao et al. 2017):

* Tokenisation: ``nltk.WordPunctTokenizer().tokenize(utt.lower())`` (``SWDACorpus.process`` /
  ``DailyDialCorpus.process``), i.e. the regex ``\\w+|[^\\w\\s]+`` on the lower-cased text.
* DailyDialog: one dialogue per line, utterances split on ``__eou__`` (``l.split('__eou__')[:-1]``); speakers
  alternate. Switchboard: the TWR-VAE json-lines conversion of Zhao et al.'s pickle, ``utts`` =
  ``[caller, text, [dialog_act, sentiment]]``; the reference reads the same records from the pickle.
* Speaker ids are the reference's "floors": Switchboard ``int(caller == "B")``; DailyDialog ``int(k % 2 == 0)``
  for the k-th utterance (0-based; the reference counts ``floor = 2, 3, ...``), so its first speaker is 1.
* A start-of-dialogue utterance ``<s> <d> </s>`` with speaker 0 is put before every dialogue (``bod_utt``); it
  is an ordinary context utterance (the word ``<d>``) and is counted in the vocabulary, as in the reference.
* Examples (``DataLoader.epoch_init`` + ``_prepare_batch`` with ``diaglen = 10``, ``step_size = 1`` and batch size
  1, the setting of the reference's test loader): in the row ``[<d>, u_0, .., u_{m-1}]`` every position r in
  ``1 .. len(row) - 2`` is a response and its context is ``row[max(0, r - 9) : r]``. So the context holds at
  most ``diaglen - 1 = 9`` utterances (the window of ``diaglen`` utterances includes the response), the first
  real utterance is a response (its context is the ``<d>`` utterance alone), and the LAST utterance of a
  dialogue is never a response (``cut_end`` stops at ``len(row) - 1``) -- kept for fidelity, see
  `build_examples(include_last=...)`.
* Lengths: ``maxlen = 40`` counts ``<s>`` and ``</s>``; ``pad_to`` cuts a longer utterance to
  ``tokens[:39] + ['</s>']``, i.e. its first 38 words. Context utterances and the response are both cut.
* ``floors`` of a batch: ``int(speaker == response_speaker)`` per context utterance (``_prepare_batch``).
* Vocabulary: the most frequent tokens of the TRAIN dialogues' utterances (untruncated, ``<d>`` included,
  ``build_vocab``), capped at `DatasetSpec.max_vocab` = 10,000 ids. Here the cap counts the 4 specials
  (`harness.data.vocab.Vocab`); the reference's list is ``<pad>, <unk>`` + 10,000 counted types (``<s>``, ``</s>``
  among them), i.e. 10,002 ids. Ties at the cut-off are broken alphabetically here (insertion order there).

Differences on purpose: the reference's training loader cuts all dialogues of a length-sorted batch of 96 at
the same positions, which repeats the last utterances of the shorter dialogues and drops ``n % 96`` dialogues
per epoch; here every split is the set of examples its test loader sees, once each. Absent context slots have
length 0 (the reference fills them with 2). The reference strips ``<s>`` from context utterances in the model
(``context[:, :, 1:]``); batches here keep it and the models strip it (`DialogueVAE.encode_context`).

Output of `preprocess_dialogue` in `out_dir`:
  train.jsonl / valid.jsonl / test.jsonl -- one example per line: ``{"context": [[tok, ..], ..],
      "speakers": [int, ..], "response": [tok, ..], "response_speaker": int, "response_act": str|null,
      "dialogue": int, "turn": int}``; tokens are words after truncation, without ``<s>``/``</s>``; words not in
      the vocabulary are kept (`Vocab.encode` maps them to ``<unk>``); ``dialogue`` is the 0-based dialogue
      index in the source file, ``turn`` the 0-based index of the response among its utterances.
  vocab.txt  -- `Vocab` built from the train split's dialogues.
  stats.json -- counts, lengths, OOV rates, settings, sources; written last (its presence marks a complete output).

CLI: ``python -m harness.data.dialogue --dataset dailydialog --raw data/raw --out data/processed/dailydialog``
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from harness.data.fetch import manifest_path, sha256_file
from harness.data.preprocess import _resolve_splits, add_source_arguments
from harness.data.registry import DataError, get_spec
from harness.data.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Vocab

__all__ = [
    "Utterance", "Dialogue", "Example", "tokenize", "read_dailydialog", "read_swda_jsonl", "read_dialogues",
    "build_examples", "preprocess_dialogue", "DialogueDataset", "DialogueBatch", "dialogue_batches",
    "START_TOKEN", "START_SPEAKER", "CONTEXT_WINDOW", "MAX_UTT_LEN",
]

START_TOKEN = "<d>"  # the reference's bod_utt = ["<s>", "<d>", "</s>"]
START_SPEAKER = 0  # its floor
CONTEXT_WINDOW = 10  # the reference's diaglen: utterances in the window, the response included
MAX_UTT_LEN = 40  # the reference's maxlen: tokens of an utterance, <s> and </s> included
EOU = "__eou__"
SWDA_CALLERS = ("A", "B")

@functools.cache
def _tokenizer():
    """nltk is imported on first use: training and evaluation read processed files and do not need it."""
    from nltk.tokenize import WordPunctTokenizer

    return WordPunctTokenizer()


def tokenize(text: str) -> list[str]:
    """The reference's tokenisation: ``nltk.WordPunctTokenizer().tokenize(text.lower())``."""
    return _tokenizer().tokenize(text.lower())


@dataclass
class Utterance:
    speaker: int  # the reference's floor (see the module docstring)
    tokens: list[str]
    act: str | None = None  # dialog act (Switchboard) or None


Dialogue = list[Utterance]


@dataclass
class Example:
    """One response with its context (utterances oldest first, the last one right before the response)."""

    context: list[list[str]]
    speakers: list[int]
    response: list[str]
    response_speaker: int
    dialogue: int
    turn: int
    response_act: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"context": self.context, "speakers": self.speakers, "response": self.response,
                "response_speaker": self.response_speaker, "response_act": self.response_act,
                "dialogue": self.dialogue, "turn": self.turn}


# ---------------------------------------------------------------------------------------------
# parsers

def _read_lines(path: Path) -> list[str]:
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise DataError(f"input file {path} does not exist (run the fetch step first)") from None
    except UnicodeDecodeError as e:
        raise DataError(f"input file {path} is not valid UTF-8: {e}") from e
    lines = text.split("\n")  # not splitlines(): it would also split on U+2028 etc. inside a line
    if lines[-1] == "":
        lines.pop()
    return lines


def read_dailydialog(path: Path) -> list[Dialogue]:
    """DailyDialog ``dialogues_<split>.txt``: one dialogue per line, each utterance followed by ``__eou__``.

    Blank lines are skipped. `DataError` naming the file (and line) if it is missing, not UTF-8, has no
    dialogue, or a line has no ``__eou__`` or text after its last ``__eou__``.
    """
    dialogues: list[Dialogue] = []
    for lineno, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        parts = line.split(EOU)
        if len(parts) < 2:
            raise DataError(f"{path}:{lineno}: no '{EOU}' in the line (expected utterances each ending with "
                            f"' {EOU}'): {line[:80]!r}")
        if parts[-1].strip():
            raise DataError(f"{path}:{lineno}: text after the last '{EOU}': {parts[-1][:80]!r}")
        dialogues.append([Utterance(int(k % 2 == 0), tokenize(u)) for k, u in enumerate(parts[:-1])])
    if not dialogues:
        raise DataError(f"input file {path} is empty (no dialogue)")
    return dialogues


def read_swda_jsonl(path: Path) -> list[Dialogue]:
    """Switchboard json lines (TWR-VAE ``json_data/*.jsonl``): one object per line with ``utts`` =
    ``[[caller 'A'|'B', text, [dialog_act, [4 sentiment scores]] or null], ...]``.

    Blank lines are skipped. `DataError` naming the file and line on bad JSON, a missing or empty ``utts``, a
    malformed utterance, or a file with no dialogue.
    """
    dialogues: list[Dialogue] = []
    for lineno, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{lineno}: invalid JSON: {e}") from None
        if not isinstance(record, dict) or "utts" not in record:
            raise DataError(f"{path}:{lineno}: not a dialogue record (JSON object with key 'utts')")
        utts = record["utts"]
        if not isinstance(utts, list) or not utts:
            raise DataError(f"{path}:{lineno}: 'utts' must be a non-empty list, got {str(utts)[:80]!r}")
        dialogue: Dialogue = []
        for i, utt in enumerate(utts):
            ok = isinstance(utt, list) and len(utt) == 3 and utt[0] in SWDA_CALLERS and isinstance(utt[1], str)
            feat = utt[2] if ok else None
            if ok and feat is not None and not (isinstance(feat, list) and feat and isinstance(feat[0], str)):
                ok = False
            if not ok:
                raise DataError(f"{path}:{lineno}: utterance {i} is not [caller 'A'|'B', text, "
                                f"[dialog_act, sentiment]]: {str(utt)[:80]!r}")
            dialogue.append(Utterance(int(utt[0] == "B"), tokenize(utt[1]), feat[0] if feat else None))
        dialogues.append(dialogue)
    if not dialogues:
        raise DataError(f"input file {path} is empty (no dialogue)")
    return dialogues


READERS = {"swda": read_swda_jsonl, "dailydialog": read_dailydialog}


def read_dialogues(name: str, path: Path) -> list[Dialogue]:
    """The parser of dataset `name` applied to `path`."""
    if name not in READERS:
        raise DataError(f"no dialogue reader for dataset {name!r}; known: {sorted(READERS)}")
    return READERS[name](path)


# ---------------------------------------------------------------------------------------------
# examples

def build_examples(dialogues: Sequence[Dialogue], context_window: int = CONTEXT_WINDOW,
                   max_utt_len: int = MAX_UTT_LEN, start_marker: bool = True,
                   include_last: bool = False) -> list[Example]:
    """Context/response pairs of every dialogue, in order (see the module docstring for the sources).

    context_window: the reference's ``diaglen``: utterances in a window, the response included, so a context
        holds at most ``context_window - 1`` utterances (the most recent ones; the ``<d>`` start utterance
        counts as one while it is in the window).
    max_utt_len: the reference's ``maxlen``: tokens per utterance counting ``<s>`` and ``</s>``; longer context
        utterances and responses keep their first ``max_utt_len - 2`` words.
    start_marker: put the ``<d>`` utterance (speaker `START_SPEAKER`) before every dialogue, as the reference.
        Then the first utterance is a response too; without it the first utterance only serves as context.
    include_last: also make the last utterance of each dialogue a response (the reference never does).
    """
    if context_window < 2:
        raise ValueError(f"context_window must be >= 2 (one context utterance + the response), got {context_window}")
    if max_utt_len < 3:
        raise ValueError(f"max_utt_len must be >= 3 (<s>, one word, </s>), got {max_utt_len}")
    words = max_utt_len - 2
    offset = 1 if start_marker else 0
    examples: list[Example] = []
    for d, dialogue in enumerate(dialogues):
        row = ([Utterance(START_SPEAKER, [START_TOKEN])] if start_marker else []) + list(dialogue)
        last = len(row) - (1 if include_last else 2)
        for r in range(1, last + 1):
            window = row[max(0, r - (context_window - 1)): r]
            out = row[r]
            examples.append(Example(
                context=[u.tokens[:words] for u in window], speakers=[u.speaker for u in window],
                response=out.tokens[:words], response_speaker=out.speaker, dialogue=d, turn=r - offset,
                response_act=out.act))
    return examples


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
    mapping = _resolve_splits(ds, source_splits)
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


# ---------------------------------------------------------------------------------------------
# dataset and batches

@dataclass
class DialogueBatch:
    """A padded batch of examples. Utterances are ``<s> w1..wn </s>`` then PAD (0)."""

    context: torch.LongTensor  # [B, J, U]; J = max num_utterances, U = longest context utterance (with <s>, </s>)
    context_lengths: torch.LongTensor  # [B, J]: n + 2, 0 for absent utterances
    num_utterances: torch.LongTensor  # [B]: context utterances (left-aligned, oldest first)
    floors: torch.LongTensor  # [B, J]: 1 if the utterance's speaker is the response's, else 0 (0 if absent)
    response: torch.LongTensor  # [B, L]: <s> w1..wn </s> then PAD
    response_lengths: torch.LongTensor  # [B] = n + 2
    indices: torch.LongTensor  # [B]: example indices in the dataset

    def to(self, device: torch.device | str) -> "DialogueBatch":
        return DialogueBatch(*(t.to(device) for t in (self.context, self.context_lengths, self.num_utterances,
                                                       self.floors, self.response, self.response_lengths,
                                                       self.indices)))

    @property
    def size(self) -> int:
        """Number of examples B."""
        return int(self.response.shape[0])

    def num_predicted_tokens(self) -> int:
        """Response words + </s> over the batch = ``(response_lengths - 1).sum()``."""
        return int((self.response_lengths - 1).sum())


class DialogueDataset:
    """Examples of one processed split (``<split>.jsonl``), encoded once into flat id tensors.

    max_examples: keep only the FIRST n examples of the file (deterministic cap).
    """

    def __init__(self, path: Path, vocab: Vocab, max_examples: int | None = None):
        path = Path(path)
        self.path = path
        self.vocab = vocab
        utts: list[list[int]] = []  # wrapped utterances: all context utterances, then responses interleaved
        ctx_start: list[int] = []
        ctx_count: list[int] = []
        resp_index: list[int] = []
        floors: list[int] = []
        self.references: list[list[str]] = []  # response words (after truncation), for evaluation
        try:
            with open(path, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    if max_examples is not None and len(resp_index) >= max_examples:
                        break
                    if not line.strip():
                        continue
                    try:
                        ex = json.loads(line)
                        context, speakers, response = ex["context"], ex["speakers"], ex["response"]
                        rs = ex["response_speaker"]
                        if len(context) != len(speakers) or not context:
                            raise ValueError("context and speakers differ in length or are empty")
                    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                        raise DataError(f"{path}:{lineno}: not a dialogue example: {e}") from None
                    ctx_start.append(len(utts))
                    ctx_count.append(len(context))
                    utts.extend([BOS_ID, *vocab.encode(u), EOS_ID] for u in context)
                    floors.extend(int(s == rs) for s in speakers)
                    resp_index.append(len(utts))
                    utts.append([BOS_ID, *vocab.encode(response), EOS_ID])
                    self.references.append(list(response))
        except FileNotFoundError:
            raise DataError(f"{path} does not exist (run the preprocessing step first)") from None
        except UnicodeDecodeError as e:
            raise DataError(f"{path} is not valid UTF-8: {e}") from e
        if not resp_index:
            raise DataError(f"{path}: no examples (empty file)")
        self.utt_lengths = torch.tensor([len(u) for u in utts], dtype=torch.long)
        self.utt_offsets = torch.zeros(len(utts) + 1, dtype=torch.long)
        self.utt_offsets[1:] = torch.cumsum(self.utt_lengths, 0)
        self.ids = torch.tensor([i for u in utts for i in u], dtype=torch.long)
        self.context_start = torch.tensor(ctx_start, dtype=torch.long)
        self.num_utterances = torch.tensor(ctx_count, dtype=torch.long)
        self.response_index = torch.tensor(resp_index, dtype=torch.long)
        self.floors = torch.tensor(floors, dtype=torch.long)  # aligned with context utterances
        # floor k of example i is floors[floor_start[i] + k]
        self.floor_start = torch.zeros(len(ctx_count), dtype=torch.long)
        self.floor_start[1:] = torch.cumsum(self.num_utterances, 0)[:-1]
        self.response_lengths = self.utt_lengths[self.response_index]

    def __len__(self) -> int:
        return int(self.response_index.numel())

    def utterance(self, u: int) -> torch.LongTensor:
        """Ids of stored utterance u: <s> w1..wn </s>."""
        return self.ids[int(self.utt_offsets[u]): int(self.utt_offsets[u + 1])]

    def context_of(self, i: int) -> list[torch.LongTensor]:
        start = int(self.context_start[i])
        return [self.utterance(start + k) for k in range(int(self.num_utterances[i]))]

    def response_of(self, i: int) -> torch.LongTensor:
        return self.utterance(int(self.response_index[i]))

    @property
    def num_tokens(self) -> int:
        """Response words + </s> over the dataset (the NLL/PPL denominator)."""
        return int((self.response_lengths - 1).sum())

    def collate(self, indices: list[int] | torch.Tensor) -> DialogueBatch:
        """Pad the given examples into a `DialogueBatch`."""
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if idx.numel() == 0:
            raise ValueError("cannot collate an empty list of examples")
        b = idx.numel()
        num = self.num_utterances[idx]
        j = int(num.max())
        ctx_lengths = torch.zeros(b, j, dtype=torch.long)
        floors = torch.zeros(b, j, dtype=torch.long)
        for row, i in enumerate(idx.tolist()):
            n, start, fstart = int(self.num_utterances[i]), int(self.context_start[i]), int(self.floor_start[i])
            ctx_lengths[row, :n] = self.utt_lengths[start: start + n]
            floors[row, :n] = self.floors[fstart: fstart + n]
        context = torch.full((b, j, int(ctx_lengths.max())), PAD_ID, dtype=torch.long)
        for row, i in enumerate(idx.tolist()):
            for k, utt in enumerate(self.context_of(i)):
                context[row, k, : utt.numel()] = utt
        resp_lengths = self.response_lengths[idx]
        response = torch.full((b, int(resp_lengths.max())), PAD_ID, dtype=torch.long)
        for row, i in enumerate(idx.tolist()):
            seq = self.response_of(i)
            response[row, : seq.numel()] = seq
        return DialogueBatch(context, ctx_lengths, num.clone(), floors, response, resp_lengths.clone(), idx.clone())


def dialogue_batches(dataset: DialogueDataset, batch_size: int, shuffle: bool, generator: torch.Generator | None,
                     bucket: bool = True) -> Iterator[DialogueBatch]:
    """Yield batches covering every example once (as `harness.data.lm_dataset.batches`).

    bucket=True: examples sorted by (number of context utterances, response length) and chunked, so a batch
        needs little padding. With shuffle=True, examples are first permuted with `generator`, then stably
        sorted, and the batch order is permuted too.
    bucket=False: file order (shuffle=False) or a random permutation (shuffle=True).
    Identical `generator` state -> identical batches.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(dataset)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    if bucket:
        key = dataset.num_utterances * (int(dataset.response_lengths.max()) + 1) + dataset.response_lengths
        order = order[torch.sort(key[order], stable=True).indices]
    chunks = list(torch.split(order, batch_size))
    if shuffle and bucket:
        chunks = [chunks[i] for i in torch.randperm(len(chunks), generator=generator).tolist()]
    for chunk in chunks:
        yield dataset.collate(chunk)


# ---------------------------------------------------------------------------------------------
# CLI

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Preprocess a fetched dialogue corpus into context/response examples.")
    p.add_argument("--dataset", required=True, choices=sorted(READERS))
    add_source_arguments(p)
    p.add_argument("--context-window", type=int, default=CONTEXT_WINDOW,
                   help="utterances per window incl. the response (reference diaglen; default %(default)s)")
    p.add_argument("--max-utt-len", type=int, default=MAX_UTT_LEN,
                   help="tokens per utterance incl. <s> and </s> (reference maxlen; default %(default)s)")
    a = p.parse_args(argv)
    try:
        stats = preprocess_dialogue(a.dataset, a.raw, a.out, a.max_vocab, dict(a.split) or None,
                                    context_window=a.context_window, max_utt_len=a.max_utt_len)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    counts = " / ".join(f"{s['examples']}" for s in stats["splits"].values())
    print(f"{a.dataset}: {counts} examples, vocab {stats['vocab_size']} -> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
