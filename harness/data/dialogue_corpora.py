"""Switchboard and DailyDialog as the TWR-VAE / DialogWAE dialogue code reads them: tokenisation, dialogues of
speaker-tagged utterances, and the context/response examples of its test loader (details: docs/data.md)."""
from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from pathlib import Path

from harness.data.registry import DataError

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
