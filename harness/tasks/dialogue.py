"""Dialogue (Switchboard, DailyDialog): one (context, response) example per JSON line; the epoch is kept by recon
+ KL at full weight (no auxiliary losses)."""
from __future__ import annotations

from pathlib import Path

from harness.data.dialogue_dataset import DialogueDataset, dialogue_batches
from harness.data.vocab import Vocab
from harness.tasks.base import Task


def _open_split(path: Path, vocab: Vocab, cap: int | None, max_length: int | None) -> DialogueDataset:
    return DialogueDataset(path, vocab, max_examples=cap)  # utterances are already cut by preprocessing


DIALOGUE_TASK = Task("dialogue", ".jsonl", _open_split, dialogue_batches, lambda model, batch: model.loss(batch, step=0))
