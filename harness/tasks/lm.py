"""Language modelling (PTB, Yahoo, Yelp15): one sentence per line; the epoch is kept by recon at the posterior mean
+ the KL term (the original TWR-VAE code's criterion); IW-NLL / PPL / KL / MI / AU and the paper protocol; Tables 2-3."""
from __future__ import annotations

from pathlib import Path

from harness.data.lm_dataset import LMDataset, batches
from harness.data.vocab import Vocab
from harness.evaluate.lm_evaluate import evaluate_lm_run
from harness.report.tables import render_lm_table
from harness.tasks.base import Task


def _open_split(path: Path, vocab: Vocab, cap: int | None, max_length: int | None) -> LMDataset:
    return LMDataset(path, vocab, max_sentences=cap, max_length=max_length)


def _render_table(summary, paper, records, table: str, caption: str) -> str:
    return render_lm_table(summary, paper, table=table, caption_extra=caption)


LM_TASK = Task("lm", ".txt", _open_split, batches, lambda model, batch: model.paper_protocol_terms(batch),
               evaluate_lm_run, _render_table)
