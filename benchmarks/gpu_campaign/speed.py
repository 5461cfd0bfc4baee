"""Phase 2: the speed benchmarks of `python -m benchmarks` on the campaign's device, with the same weights and draws.

Training: tokens/s of the harness's step (float32 and bfloat16) against the original-style step and its per-step
decoder loop. IW-NLL (K = 500): sentences/s of the harness's estimator at each candidate `iw_chunk` (samples per
decoder pass), float32 and bfloat16, against He et al.'s evaluation loop (one sentence at a time, 100 samples per
pass) and the one-pass-per-sample loop. Ratios are against baselines measured in the same run, on the same device.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch

from benchmarks.measure import PAPER_ARCH, iwnll_benchmark, train_benchmark
from harness.core.config import ArchitectureConfig
from harness.data.lm_dataset import LMDataset
from harness.data.vocab import Vocab


@dataclass(frozen=True)
class SpeedSizes:
    arch: ArchitectureConfig
    train_batches: int
    repeats: int
    iw_sentences: int
    iw_samples: int
    iw_chunks: tuple[int, ...]
    iw_repeats: int
    he_samples_per_pass: int
    batch_size: int = 64
    iw_batch_size: int = 32


# IW batches of 64 sentences as config/paper.yaml evaluates; chunk 250 x 64 sentences = 16,000 sequences per decoder
# pass (~5 GB at PTB's longest sentences), small enough for six evaluations at once on one 80 GB GPU in phase 3
FULL = SpeedSizes(PAPER_ARCH, train_batches=20, repeats=5, iw_sentences=128, iw_samples=500, iw_chunks=(50, 250),
                  iw_repeats=3, he_samples_per_pass=100, iw_batch_size=64)
TINY = SpeedSizes(ArchitectureConfig(emb_dim=16, hidden_dim=16, z_dim=4, num_layers=1, dropout=0.5), train_batches=2,
                  repeats=1, iw_sentences=8, iw_samples=10, iw_chunks=(5, 10), iw_repeats=1, he_samples_per_pass=4,
                  batch_size=16, iw_batch_size=4)


def run_speed(plan, device: torch.device, sizes: SpeedSizes) -> dict:
    vocab = Vocab.load(plan.data_dir / "vocab.txt")
    started = time.perf_counter()
    train = train_benchmark(LMDataset(plan.data_dir / "train.txt", vocab), len(vocab), sizes.train_batches,
                            sizes.repeats, sizes.batch_size, sizes.arch, device)
    test = LMDataset(plan.data_dir / "test.txt", vocab)
    iwnll = {str(chunk): iwnll_benchmark(test, len(vocab), sizes.iw_sentences, sizes.iw_samples, chunk,
                                         sizes.iw_batch_size, sizes.arch, sizes.iw_repeats, device,
                                         baselines=("he_style", "naive"), he_samples_per_pass=sizes.he_samples_per_pass)
             for chunk in sizes.iw_chunks}
    fastest = max(iwnll, key=lambda chunk: iwnll[chunk]["sentences_per_second"]["ours"])
    return {
        "status": "passed",
        "summary": {
            "train_tokens_per_second": train["tokens_per_second"],
            "train_speedup_vs_original": train["speedup_vs_original"],
            "train_bfloat16_speedup_vs_original": train["bfloat16_speedup_vs_original"],
            "iwnll_sentences_per_second": {chunk: result["sentences_per_second"] for chunk, result in iwnll.items()},
            "iwnll_speedup_vs_he_style": {chunk: result["speedup_vs"]["he_style"] for chunk, result in iwnll.items()},
            "iwnll_bfloat16_speedup_vs_he_style": {chunk: (result["bfloat16_speedup_vs"] or {}).get("he_style")
                                                   for chunk, result in iwnll.items()},
            "bfloat16_unsupported": train["bfloat16_unsupported"],  # why bf16 was not measured (its figures None)
            "fastest_iw_chunk": int(fastest),
            "loss_relative_difference_vs_original": train["loss_check"]["max_relative_difference"],
            "iwnll_max_abs_difference_nats": max(result["max_abs_difference_log_px"] for result in iwnll.values()),
        },
        "train": train,
        "iwnll": iwnll,
        "sizes": {**asdict(sizes), "vocab_size": len(vocab)},
        "seconds": time.perf_counter() - started,
    }
