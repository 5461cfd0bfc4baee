"""Language-modelling dataset over a preprocessed split, and deterministic length-bucketed batching.

A sentence w1..wn becomes the row ``<s> w1 .. wn </s>`` (length n + 2), right-padded with PAD (id 0).
The decoder predicts tokens 1..n+1 (words and </s>), so a batch holds ``(lengths - 1).sum()``
predicted tokens -- the denominator of per-word NLL/PPL in He et al. (2019) and Li et al. (2020),
which count </s> as a word.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.data.registry import DataError
from harness.data.vocab import BOS_ID, EOS_ID, PAD_ID, Vocab


@dataclass
class Batch:
    """A padded batch of sentences."""

    tokens: torch.LongTensor  # [B, L]: <s> w1..wn </s> then PAD (0); L = max(lengths)
    lengths: torch.LongTensor  # [B] = n + 2

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(self.tokens.to(device), self.lengths.to(device))

    @property
    def size(self) -> int:
        """Number of sentences B."""
        return int(self.tokens.shape[0])

    def num_predicted_tokens(self) -> int:
        """Words + </s> over the batch = ``(lengths - 1).sum()``."""
        return int((self.lengths - 1).sum())


class LMDataset:
    """Token ids of one processed split (one sentence per line), encoded once and cached.

    max_sentences: keep only the FIRST n non-dropped lines of the file (deterministic cap).
    max_length: drop sentences with more than `max_length` words (BOS/EOS not counted);
        `num_dropped` counts them.
    """

    def __init__(self, path: Path, vocab: Vocab, max_sentences: int | None = None, max_length: int | None = None):
        path = Path(path)
        self.path = path
        self.vocab = vocab
        self.num_dropped = 0
        rows: list[list[int]] = []
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if max_sentences is not None and len(rows) >= max_sentences:
                        break
                    toks = line.split()
                    if not toks:
                        continue
                    if max_length is not None and len(toks) > max_length:
                        self.num_dropped += 1
                        continue
                    rows.append([BOS_ID, *vocab.encode(toks), EOS_ID])
        except UnicodeDecodeError as e:
            raise DataError(f"{path} is not valid UTF-8: {e}") from e
        if not rows:
            raise DataError(f"{path}: no sentences (empty file or everything filtered)")
        self.lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)  # n + 2
        self.offsets = torch.zeros(len(rows) + 1, dtype=torch.long)
        self.offsets[1:] = torch.cumsum(self.lengths, 0)
        self.ids = torch.tensor([i for r in rows for i in r], dtype=torch.long)  # flat, BOS/EOS included

    def __len__(self) -> int:
        return int(self.lengths.numel())

    def __getitem__(self, i: int) -> torch.LongTensor:
        """Ids of sentence i: <s> w1..wn </s>."""
        return self.ids[int(self.offsets[i]): int(self.offsets[i + 1])]

    @property
    def num_tokens(self) -> int:
        """Words + </s> over the dataset (the NLL/PPL denominator)."""
        return int((self.lengths - 1).sum())

    @property
    def num_words(self) -> int:
        """Words only (no </s>)."""
        return int((self.lengths - 2).sum())

    def collate(self, indices: list[int] | torch.Tensor) -> Batch:
        """Pad the given sentences into a `Batch`."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        lengths = self.lengths[idx]
        tokens = torch.full((len(idx), int(lengths.max())), PAD_ID, dtype=torch.long)
        for row, i in enumerate(idx.tolist()):
            seq = self[i]
            tokens[row, : seq.numel()] = seq
        return Batch(tokens, lengths.clone())


def equal_length_batches(dataset: LMDataset, batch_size: int) -> Iterator[Batch]:
    """Batches of at most `batch_size` sentences that all have the same length, in order of length then file order:
    no sentence is padded, so nothing computed for one depends on its batch-mates (with `timesteps: padded` a
    sentence's latent is read at the batch's padded length)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = torch.sort(dataset.lengths, stable=True).indices
    _, counts = torch.unique_consecutive(dataset.lengths[order], return_counts=True)
    for group in torch.split(order, counts.tolist()):
        for chunk in torch.split(group, batch_size):
            yield dataset.collate(chunk)


def batches(dataset: LMDataset, batch_size: int, shuffle: bool, generator: torch.Generator | None,
            bucket: bool = True) -> Iterator[Batch]:
    """Yield batches covering every sentence once.

    bucket=True: sentences sorted by length and chunked, so a batch holds similar lengths. With
        shuffle=True, sentences are first permuted with `generator` (so ties of equal length mix
        differently every epoch), then stably sorted by length, and the batch order is permuted too.
    bucket=False: file order (shuffle=False) or a random permutation of sentences (shuffle=True).
    Identical `generator` state -> identical batches. generator=None with shuffle=True uses torch's
    global RNG.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(dataset)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    if bucket:
        order = order[torch.sort(dataset.lengths[order], stable=True).indices]
    chunks = list(torch.split(order, batch_size))
    if shuffle and bucket:
        chunks = [chunks[i] for i in torch.randperm(len(chunks), generator=generator).tolist()]
    for chunk in chunks:
        yield dataset.collate(chunk)
