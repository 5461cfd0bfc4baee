"""Dialogue (Switchboard, DailyDialog): one (context, response) example per JSON line; the epoch is kept by recon
+ KL at full weight (no auxiliary losses); sampled responses scored with BLEU / BOW / distinct; Table 5."""
from __future__ import annotations

from pathlib import Path

from harness.data.dialogue_dataset import DialogueDataset, dialogue_batches
from harness.data.vocab import Vocab
from harness.report.dialogue_tables import render_dialogue_table
from harness.tasks.base import Task


def _open_split(path: Path, vocab: Vocab, cap: int | None, max_length: int | None) -> DialogueDataset:
    return DialogueDataset(path, vocab, max_examples=cap)  # utterances are already cut by preprocessing


def _evaluate_run(*args, **kwargs) -> dict:
    # imported here: dialogue evaluation needs nltk and gensim, which a language-model-only install (the GPU image)
    # lacks; importing the tasks must not need them
    from harness.evaluate.dialogue_evaluate import evaluate_dialogue_run

    return evaluate_dialogue_run(*args, **kwargs)


def _render_table(summary, paper, records, table: str, caption: str) -> str:
    vectors = [record.get("word_vectors") or "unnamed vectors" for record in records]
    return render_dialogue_table(summary, paper, vectors, caption_extra=caption)


DIALOGUE_TASK = Task("dialogue", ".jsonl", _open_split, dialogue_batches, lambda model, batch: model.loss(batch, step=0),
                     _evaluate_run, _render_table)
