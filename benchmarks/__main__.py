"""Speed benchmark: the harness's TWR-VAE training step and IW-NLL evaluation against straightforward versions.

    .venv/bin/python -m benchmarks [--threads 2] [--data data/processed/ptb] [--out results/benchmarks/latest.json]

Measures, in one run on one machine, with the same weights, batches and random draws:
  train   tokens/s of the harness's training step (`TextVAE.training_step` with `harness.train.optim.Optimisation`:
          forward, backward, Adam) of TWR-VAE (paper sizes:
          emb 512, hidden 256, z 32, batch 64, dropout 0.5) against a re-implementation of the original
          ruizheliUOA/TWR-VAE step (benchmarks/original_style.py) and against the same with a per-step decoder
          loop; batches are consecutive chunks of the length-sorted training set, as the original batches them.
          Before timing, the two losses are compared on one batch of equal-length sentences with dropout off and
          the same noise (they are the same function there).
  ceiling tokens/s of the step's matmul and RNN kernels alone at its shapes, on the same batches
          (benchmarks/ceiling.py): what no implementation on these kernels can exceed here, and the step's share of it.
  iwnll   sentences/s of the importance-weighted log p(x) with K = 500 (chunks of 50 samples per decoder pass)
          against a loop with one decoder pass per sample (benchmarks/naive_iwnll.py), on the same draws; the
          estimates are compared.
Both are also measured with `precision: bfloat16` (harness.core.precision: the encoder's and decoder's RNNs and the
output-layer matmuls in bf16, the rest float32), reported separately with their own loss / estimate differences:
float32 is the exact comparison, bfloat16 is the harness's fast option where the hardware has native bf16 (AMX,
AVX512-BF16).
Figures are ratios against the baseline measured in the same run (median over repeats, implementations
interleaved). Writes JSON with `train_speedup`, `iwnll_speedup`, the machine, torch version and thread count.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import torch

from benchmarks.epoch import epoch_benchmark
from benchmarks.measure import (allocator_settings, benchmark_data, iwnll_benchmark, matmul_peak, train_benchmark,
                                training_flops_per_token)
from harness.core.config import REPO_ROOT, ArchitectureConfig
from harness.data.lm_dataset import LMDataset
from harness.data.vocab import Vocab
from harness.core.io import code_version, now_iso, write_json_atomic
from harness.core.machine import cpu_model, cpuinfo, native_bf16
from harness.core.precision import bfloat16_unsupported


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO_ROOT / "data" / "processed" / "ptb")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "benchmarks" / "latest.json")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-batches", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--iw-sentences", type=int, default=64)
    parser.add_argument("--iw-samples", type=int, default=500)
    parser.add_argument("--iw-repeats", type=int, default=3)
    parser.add_argument("--iw-chunk", type=int, default=50, help="samples per decoder pass (config evaluate.iw_chunk)")
    parser.add_argument("--arch", default="512,256,32", help="emb,hidden,z sizes (default: the paper's)")
    parser.add_argument("--no-epoch", action="store_true",
                        help="skip the end-to-end epochs (harness float32 / bfloat16, original-style) on the data")
    args = parser.parse_args(argv)
    emb, hidden, z = (int(v) for v in args.arch.split(","))
    arch = ArchitectureConfig(emb_dim=emb, hidden_dim=hidden, z_dim=z, num_layers=1, dropout=0.5)
    torch.set_num_threads(args.threads)
    data_dir, data_note = benchmark_data(args.data)
    vocab = Vocab.load(data_dir / "vocab.txt")
    print(f"data: {data_note}; vocabulary {len(vocab)}; {args.threads} threads", file=sys.stderr)
    no_bfloat16 = bfloat16_unsupported("cpu")
    if no_bfloat16:
        print(f"precision bfloat16 is not measured: {no_bfloat16}", file=sys.stderr)
    train_data = LMDataset(data_dir / "train.txt", vocab)
    train = train_benchmark(train_data, len(vocab), args.train_batches, args.repeats, 64, arch)
    speed = train["tokens_per_second"]
    print(f"train: ours {speed['ours']:.0f} tokens/s, original-style {speed['original']:.0f}, per-step loop "
          f"{speed['original_per_step']:.0f} -> train_speedup {train['speedup_vs_original']:.2f}x "
          f"({train['speedup_vs_per_step_loop']:.2f}x vs the per-step loop); losses agree to "
          f"{train['loss_check']['max_relative_difference']:.1e} (relative)", file=sys.stderr)
    if not no_bfloat16:
        print(f"train, precision bfloat16: {speed['ours_bfloat16']:.0f} tokens/s -> "
              f"{train['bfloat16_speedup_vs_original']:.2f}x ({train['bfloat16_speedup_vs_per_step_loop']:.2f}x vs the "
              f"per-step loop); loss differs by {train['loss_check']['bfloat16_relative_difference']:.1e} (relative)",
              file=sys.stderr)
    peak = matmul_peak(args.threads)
    flops = training_flops_per_token(arch, len(vocab))
    fraction_of_peak = {
        name: speed[key] * flops["per_token"] / 1e9 / peak["gflops"][precision] if key in speed else None
        for name, key, precision in (("float32", "ours", "float32"), ("bfloat16", "ours_bfloat16", "bfloat16"),
                                     ("original_float32", "original", "float32"))}
    ceiling = train["kernel_ceiling"]
    print(f"matmul peak: {peak['gflops']['float32']:.0f} GFLOP/s float32; training step "
          f"{flops['per_token'] / 1e6:.1f} MFLOP/token -> ours at {fraction_of_peak['float32']:.0%} of it "
          f"(original-style {fraction_of_peak['original_float32']:.0%}); kernel ceiling (the step's matmul and RNN "
          f"kernels alone, same batches) {ceiling['float32']['tokens_per_second']:.0f} tokens/s, the step at "
          f"{ceiling['float32']['step_share']:.0%} of it", file=sys.stderr)
    if not no_bfloat16:
        print(f"bfloat16: matmul peak {peak['gflops']['bfloat16']:.0f} GFLOP/s, ours at "
              f"{fraction_of_peak['bfloat16']:.0%} of it; kernel ceiling {ceiling['bfloat16']['tokens_per_second']:.0f} "
              f"tokens/s, the step at {ceiling['bfloat16']['step_share']:.0%} of it", file=sys.stderr)
    epoch = None
    if not args.no_epoch:
        epoch = epoch_benchmark(data_dir, arch)
        print(f"epoch end to end: harness {epoch['seconds']['harness']:.0f} s float32; original-style "
              f"{epoch['seconds']['original']:.0f} s -> {epoch['speedup_vs_original']:.2f}x", file=sys.stderr)
        if not no_bfloat16:
            print(f"epoch, precision bfloat16: {epoch['seconds']['harness_bfloat16']:.0f} s -> "
                  f"{epoch['bfloat16_speedup_vs_original']:.2f}x", file=sys.stderr)
    iw = iwnll_benchmark(LMDataset(data_dir / "test.txt", vocab), len(vocab), args.iw_sentences, args.iw_samples,
                         args.iw_chunk, 32, arch, args.iw_repeats)
    if iw["sentences"] < args.iw_sentences:
        print(f"iwnll: the test split has {iw['sentences']} sentences, fewer than --iw-sentences {args.iw_sentences}: "
              f"all {iw['sentences']} are scored", file=sys.stderr)
    print(f"iwnll (K={args.iw_samples}, {iw['sentences']} sentences): ours {iw['sentences_per_second']['ours']:.2f} "
          f"sentences/s, naive {iw['sentences_per_second']['naive']:.2f} -> iwnll_speedup {iw['speedup']:.2f}x; "
          f"estimates differ by at most {iw['max_abs_difference_log_px']:.1e} nats (mean log p(x) {iw['mean_log_px']['naive']:.3f})",
          file=sys.stderr)
    if not no_bfloat16:
        print(f"iwnll, precision bfloat16: {iw['sentences_per_second']['ours_bfloat16']:.2f} sentences/s -> "
              f"{iw['bfloat16_speedup']:.2f}x; estimates differ by at most "
              f"{iw['bfloat16_max_abs_difference_log_px']:.1e} nats", file=sys.stderr)
    info = cpuinfo()
    payload = {
        "train_speedup": train["speedup_vs_original"],
        "train_speedup_vs_per_step_loop": train["speedup_vs_per_step_loop"],
        "iwnll_speedup": iw["speedup"],
        "bfloat16": {"train_speedup": train["bfloat16_speedup_vs_original"], "iwnll_speedup": iw["bfloat16_speedup"],
                     "note": "precision: bfloat16 (encoder and decoder RNNs and output-layer matmuls in bf16; "
                             "the rest float32); the original-style and naive baselines run in float32, as the original does",
                     "cpu_has_native_bf16": native_bf16(info),
                     "unsupported": no_bfloat16},  # why bfloat16 was not measured (its figures are then None)
        "train_tokens_per_second": {"float32": speed["ours"], "bfloat16": speed.get("ours_bfloat16"),
                                    "original_style": speed["original"]},
        "matmul_peak": peak, "flops": flops, "fraction_of_peak": fraction_of_peak, "kernel_ceiling": ceiling,
        "epoch": epoch,
        "train": train, "iwnll": iw,
        "data": data_note, "vocab_size": len(vocab),
        "architecture": {"emb_dim": arch.emb_dim, "hidden_dim": arch.hidden_dim, "z_dim": arch.z_dim, "dropout": arch.dropout},
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_model": cpu_model(info), "cpu_count": os.cpu_count(), "device": "cpu",
                    "allocator": allocator_settings()},
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "code_version": code_version(), "created": now_iso(),
    }
    write_json_atomic(args.out, payload)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
