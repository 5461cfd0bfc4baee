"""Data layer: dataset registry, verified fetching, preprocessing, vocabulary and LM batching.

Modules:
    registry     -- `DatasetSpec`/`FileSpec` and the `DATASETS` table (upstream URLs, sha256, sizes).
    fetch        -- `fetch_dataset` (mirror copy or download, size+sha256 check, manifest.json).
    preprocess   -- `preprocess_lm` (canonical one-sentence-per-line text, vocab.txt, stats.json).
    vocab        -- `Vocab` with fixed special ids (PAD 0, UNK 1, BOS 2, EOS 3).
    lm_dataset   -- `LMDataset`, `Batch`, `batches` (length-bucketed, deterministic batching).
"""
from harness.data.registry import DATASETS, DatasetSpec, FileSpec, get_spec

__all__ = ["DATASETS", "DatasetSpec", "FileSpec", "get_spec"]
