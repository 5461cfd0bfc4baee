"""Latent-space interpolation on a model: what `python -m harness.evaluate.interpolate` (the workflow's `interpolate` job) runs
on a trained one and `python -m harness.methods.check_method` on a tiny one (Li et al. 2020, §4.3; see harness.evaluate.interpolate).

A model's `posterior` gives each sentence's latent, `greedy_decode` decodes the points between two of them.
"""
from __future__ import annotations

import sys

import torch
from tqdm.auto import tqdm

from harness.core.config import InterpolateConfig
from harness.data.lm_dataset import LMDataset
from harness.data.vocab import Vocab
from harness.core.io import progress_interval


def random_pairs(size: int, pairs: int | None, seed: int) -> list[tuple[int, int]]:
    """Disjoint pairs of sentence indices from a seeded permutation of range(size); at most `pairs` of them."""
    order = torch.randperm(size, generator=torch.Generator().manual_seed(seed)).tolist()
    all_pairs = list(zip(order[0::2], order[1::2]))
    if pairs is not None and pairs > len(all_pairs):
        raise ValueError(f"interpolate.pairs = {pairs}, but the test set of {size} sentences has only "
                         f"{len(all_pairs)} disjoint pairs")
    return all_pairs if pairs is None else all_pairs[:pairs]


def sentence_text(dataset: LMDataset, vocab: Vocab, index: int) -> str:
    """The sentence's words (without <s> and </s>) as stored in the processed split."""
    return " ".join(vocab.itos[i] for i in dataset[index].tolist()[1:-1])


@torch.no_grad()
def interpolate_pairs(model, dataset: LMDataset, vocab: Vocab, pairs: list[tuple[int, int]], settings: InterpolateConfig,
                      device, progress: bool = True) -> list[dict]:
    """Decoded sentences along each pair's line in latent space: [{source, target, sentences[steps+1]}]."""
    model.eval()
    alphas = torch.tensor(settings.alphas, device=device).view(1, -1, 1)
    records = []
    bar = tqdm(total=len(pairs), desc=f"interpolate (alpha x {len(settings.alphas)})", unit="pair",
               disable=not progress, file=sys.stderr, mininterval=progress_interval())
    for start in range(0, len(pairs), settings.batch_size):
        chunk = pairs[start:start + settings.batch_size]
        sources, targets = zip(*chunk)
        z_source, _ = model.posterior(dataset.collate(list(sources)).to(device))
        z_target, _ = model.posterior(dataset.collate(list(targets)).to(device))
        path = (1 - alphas) * z_source.unsqueeze(1) + alphas * z_target.unsqueeze(1)  # [P, steps+1, Z]
        decoded = model.greedy_decode(path.reshape(-1, path.size(-1)), settings.max_length)
        per_pair = len(settings.alphas)
        for row, (source, target) in enumerate(chunk):
            words = decoded[row * per_pair:(row + 1) * per_pair]
            records.append({
                "source_index": source, "target_index": target,
                "source": sentence_text(dataset, vocab, source), "target": sentence_text(dataset, vocab, target),
                "sentences": [" ".join(vocab.itos[i] for i in ids) for ids in words],
            })
        bar.update(len(chunk))
    bar.close()
    return records
