"""Language modelling (PTB, Yahoo, Yelp15): one sentence per line; the epoch is kept by recon at the posterior mean
+ the KL term, the original TWR-VAE code's criterion."""
from __future__ import annotations

from pathlib import Path

from harness.data.lm_dataset import LMDataset, batches
from harness.data.vocab import Vocab
from harness.tasks.base import Task


def _open_split(path: Path, vocab: Vocab, cap: int | None, max_length: int | None) -> LMDataset:
    return LMDataset(path, vocab, max_sentences=cap, max_length=max_length)


LM_TASK = Task("lm", ".txt", _open_split, batches, lambda model, batch: model.paper_protocol_terms(batch))
