"""Data layer: dataset registry, verified fetching, preprocessing, vocabulary and batching.

Modules:
    registry     -- `DatasetSpec`/`FileSpec` and the `DATASETS` table (upstream URLs, sha256, sizes): every dataset name.
    fetch        -- `fetch_dataset` (mirror copy or download, size+sha256 check, manifest.json); files: checksums.
    preprocess   -- the one preprocessing command; `preprocess_lm` here, `preprocess_dialogue` in dialogue
                    (examples from dialogue_corpora); sources: which released file feeds each split.
    vocab        -- `Vocab` with fixed special ids (PAD 0, UNK 1, BOS 2, EOS 3).
    lm_dataset, dialogue_dataset -- the processed splits as batches; vectors: word vectors for dialogue.
"""
from harness.data.registry import DATASETS, DatasetSpec, FileSpec, get_spec

__all__ = ["DATASETS", "DatasetSpec", "FileSpec", "get_spec"]
