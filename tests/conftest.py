"""Shared fixtures: tiny models and batches, and where the optional dataset mirror lives."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

SHARED_DATA = (REPO_ROOT / ".." / "shared" / "data").resolve()
FIXTURES = REPO_ROOT / "tests" / "fixtures"

needs_mirror = pytest.mark.skipif(
    not (SHARED_DATA / "ptb" / "ptb.train.txt").exists(),
    reason=f"the dataset mirror {SHARED_DATA} is absent (tests on real data need it; everything else runs without)",
)


def make_batch(rows: list[list[int]]):
    """A Batch from word-id rows (ids >= 4), adding <s>=2 and </s>=3 and padding with 0."""
    from harness.data.lm_dataset import Batch

    seqs = [[2, *row, 3] for row in rows]
    width = max(len(s) for s in seqs)
    tokens = torch.tensor([s + [0] * (width - len(s)) for s in seqs], dtype=torch.long)
    return Batch(tokens=tokens, lengths=torch.tensor([len(s) for s in seqs], dtype=torch.long))


def tiny_model(method: str = "twr-vae", vocab_size: int = 12, z_dim: int = 4, **options):
    from harness.config import ArchitectureConfig
    from harness.registry import get_method

    torch.manual_seed(0)
    arch = ArchitectureConfig(emb_dim=8, hidden_dim=16, z_dim=z_dim, num_layers=1, dropout=0.0)
    return get_method(method).build(vocab_size, arch, options)
