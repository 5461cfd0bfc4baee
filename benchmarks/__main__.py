"""Speed benchmark: the harness's TWR-VAE training step and IW-NLL evaluation against straightforward versions.

    .venv/bin/python -m benchmarks [--threads 2] [--data data/processed/ptb] [--out results/benchmarks/latest.json]

Measures, in one run on one machine, with the same weights, batches and random draws:
  train   tokens/s of the harness's training step (`TextVAE.training_step` with `harness.optim.Optimisation`:
          forward, backward, Adam) of TWR-VAE (paper sizes:
          emb 512, hidden 256, z 32, batch 64, dropout 0.5) against a re-implementation of the original
          ruizheliUOA/TWR-VAE step (benchmarks/original_style.py) and against the same with a per-step decoder
          loop; batches are consecutive chunks of the length-sorted training set, as the original batches them.
          Before timing, the two losses are compared on one batch of equal-length sentences with dropout off and
          the same noise (they are the same function there).
  iwnll   sentences/s of the importance-weighted log p(x) with K = 500 (chunks of 50 samples per decoder pass)
          against a loop with one decoder pass per sample (benchmarks/naive_iwnll.py), on the same draws; the
          estimates are compared.
Both are also measured with `precision: bfloat16` (harness.precision: the decoder's RNN and output-layer matmuls
in bf16, the rest float32), reported separately with their own loss / estimate differences: float32 is the
exact comparison, bfloat16 is the harness's fast option where the hardware has native bf16 (AMX here).
Figures are ratios against the baseline measured in the same run (median over repeats, implementations
interleaved). Writes JSON with `train_speedup`, `iwnll_speedup`, the machine, torch version and thread count.
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.naive_iwnll import he_style_iw_log_marginal, naive_iw_log_marginal
from benchmarks.original_style import OriginalStyleTWRVAE
from harness.config import REPO_ROOT, ArchitectureConfig, TrainConfig
from harness.data.lm_dataset import LMDataset
from harness.data.vocab import Vocab
from harness.io import code_version, now_iso, write_json_atomic
from harness.optim import Optimisation
from harness.precision import set_compute_precision
from metrics.lm import importance_weighted_log_marginal, sample_gaussian
from twrvae.model import TWRVAE, TWRVAEOptions

def reduced_precision_copy(model):
    """The same weights, computing as `precision: bfloat16`."""
    twin = copy.deepcopy(model)
    set_compute_precision(twin, "bfloat16")
    return twin


PAPER_ARCH = ArchitectureConfig(emb_dim=512, hidden_dim=256, z_dim=32, num_layers=1, dropout=0.5)


def benchmark_data(path: Path | None) -> tuple[Path, str]:
    """The processed PTB folder to read, and a note; falls back to the committed 200-sentence PTB sample."""
    if path is not None and (path / "train.txt").exists():
        return path, f"{path} (processed PTB)"
    from harness.data.preprocess import preprocess_lm

    root = Path(tempfile.mkdtemp(prefix="textvae-bench-"))
    shutil.copytree(REPO_ROOT / "tests" / "fixtures" / "ptb_tiny", root / "raw" / "ptb")
    preprocess_lm("ptb", root / "raw", root / "processed")
    return root / "processed", ("tests/fixtures/ptb_tiny (200-sentence PTB sample: small vocabulary, so the output "
                                "layer is cheaper than on full PTB; run `snakemake --cores 2` first for full PTB)")


def sorted_chunks(dataset: LMDataset, batch_size: int) -> list[list[int]]:
    order = torch.sort(dataset.lengths, stable=True).indices.tolist()
    return [order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]


def equal_length_batch(dataset: LMDataset, batch_size: int):
    """Up to `batch_size` sentences of the most frequent length: no padding, so both step definitions agree."""
    length = int(torch.mode(dataset.lengths).values)
    return dataset.collate(torch.nonzero(dataset.lengths == length).flatten()[:batch_size].tolist())


def timed(function, device: torch.device = torch.device("cpu")) -> float:
    """Seconds `function()` takes; on a GPU, until all the work it queued is done."""
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    synchronize()
    started = time.perf_counter()
    function()
    synchronize()
    return time.perf_counter() - started


def train_benchmark(dataset: LMDataset, vocab_size: int, batches: int, repeats: int, batch_size: int,
                    arch: ArchitectureConfig = PAPER_ARCH, device: torch.device = torch.device("cpu")) -> dict:
    torch.manual_seed(0)
    ours = TWRVAE(vocab_size, arch, TWRVAEOptions())
    sizes = (vocab_size, arch.emb_dim, arch.hidden_dim, arch.z_dim, arch.dropout)
    implementations = {name: model.to(device) for name, model in {
        "ours": ours,
        "ours_bfloat16": reduced_precision_copy(ours),
        "original": OriginalStyleTWRVAE(*sizes).copy_from(ours),
        "original_per_step": OriginalStyleTWRVAE(*sizes, per_step=True).copy_from(ours),
    }.items()}
    chunks = sorted_chunks(dataset, batch_size)
    # the same batches for every implementation: spread over the length range
    picks = [chunks[round(i * (len(chunks) - 1) / max(batches - 1, 1))] for i in range(batches)]
    data = [dataset.collate(chunk) for chunk in picks]
    tokens = sum(batch.num_predicted_tokens() for batch in data)
    data = [batch.to(device) for batch in data]

    # identical losses: equal-length batch, dropout off, same noise
    equal = equal_length_batch(dataset, batch_size).to(device)
    losses = {}
    for name, model in implementations.items():
        model.eval()
        torch.manual_seed(1)
        with torch.no_grad():
            losses[name] = float(model.loss(equal, 0).loss.sum() if name.startswith("ours")
                                 else model.loss(equal.tokens.t()))

    def harness_step(model):  # exactly what harness.train does per batch (Optimisation: reduce, NaN guard, step)
        optimisation = Optimisation(model.parameter_groups(), TrainConfig(lr=1e-4, loss_reduction="sum"))

        def run():
            for batch in data:
                model.training_step(batch, 0, optimisation)
        return run

    def original_step(model):  # main.py `train`: zero_grad, (kl + recon).backward(), Adam step
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

        def run():
            for batch in data:
                optimizer.zero_grad()
                model.loss(batch.tokens.t()).backward()
                optimizer.step()
        return run

    runners = {}
    for name, model in implementations.items():
        model.train()
        runners[name] = harness_step(model) if name.startswith("ours") else original_step(model)
        runners[name]()  # warm-up
    seconds = {name: [] for name in implementations}
    for _ in range(repeats):
        for name, run in runners.items():  # interleaved, so that machine noise hits all alike
            seconds[name].append(timed(run, device))
    speed = {name: tokens / statistics.median(values) for name, values in seconds.items()}
    reference = losses["original"]
    return {
        "tokens_per_second": speed,
        "seconds_per_pass": {name: statistics.median(values) for name, values in seconds.items()},
        "batches": batches, "batch_size": batch_size, "predicted_tokens_per_pass": tokens,
        "mean_length": tokens / (batches * batch_size), "repeats": repeats,
        "loss_check": {"batch_length": int(equal.lengths[0]), "batch_sentences": equal.size, "losses": losses,
                       "max_relative_difference": max(abs(losses[name] - reference) / abs(reference)
                                                      for name in ("ours", "original_per_step")),
                       "bfloat16_relative_difference": abs(losses["ours_bfloat16"] - reference) / abs(reference)},
        "speedup_vs_original": speed["ours"] / speed["original"],
        "speedup_vs_per_step_loop": speed["ours"] / speed["original_per_step"],
        "bfloat16_speedup_vs_original": speed["ours_bfloat16"] / speed["original"],
        "bfloat16_speedup_vs_per_step_loop": speed["ours_bfloat16"] / speed["original_per_step"],
    }


def iwnll_benchmark(dataset: LMDataset, vocab_size: int, sentences: int, samples: int, chunk: int, batch_size: int,
                    arch: ArchitectureConfig = PAPER_ARCH, repeats: int = 3, device: torch.device = torch.device("cpu"),
                    baselines: tuple[str, ...] = ("naive",), he_samples_per_pass: int = 100) -> dict:
    """Sentences/s of the harness's IW-NLL (float32 and bfloat16) against `baselines`: "naive" (one decoder pass
    per sample) and/or "he_style" (He et al.'s evaluation: one sentence at a time, `he_samples_per_pass` samples
    per pass), all on the same draws (CPU generators, so the same on every device)."""
    torch.manual_seed(0)
    model = TWRVAE(vocab_size, arch, TWRVAEOptions()).eval()
    model_bfloat16 = reduced_precision_copy(model).to(device)
    model = model.to(device)
    batches = [dataset.collate(list(range(start, min(start + batch_size, sentences)))).to(device)
               for start in range(0, min(sentences, len(dataset)), batch_size)]
    count = sum(batch.size for batch in batches)
    names = ("ours", "ours_bfloat16", *baselines)
    estimates = {name: [] for name in names}

    def harness_estimate(name, ours_model):  # what harness.evaluate does per batch for the NLL
        def run():
            with torch.no_grad():
                for index, batch in enumerate(batches):
                    mu, logvar = ours_model.posterior(batch)
                    generator = torch.Generator().manual_seed(index)
                    estimates[name].append(importance_weighted_log_marginal(
                        lambda z: ours_model.log_likelihood(batch, z), mu, logvar, samples, chunk, generator))
        return run

    def draws(index, mu):  # the standard-normal draws of the harness's estimator for batch `index`, in its order
        generator = torch.Generator().manual_seed(index)
        return torch.cat([sample_gaussian(torch.zeros_like(mu), torch.zeros_like(mu), min(chunk, samples - start),
                                          generator) for start in range(0, samples, chunk)])

    def naive():
        with torch.no_grad():
            for index, batch in enumerate(batches):
                mu, logvar = model.posterior(batch)
                estimates["naive"].append(naive_iw_log_marginal(model, batch, mu, logvar, draws(index, mu)))

    def he_style():
        with torch.no_grad():
            for index, batch in enumerate(batches):
                eps = draws(index, torch.zeros(batch.size, arch.z_dim, device=device))
                estimates["he_style"].append(he_style_iw_log_marginal(model, batch, eps, he_samples_per_pass))

    with torch.no_grad():  # warm-up: the first decoder calls of a shape pay oneDNN's / cuDNN's set-up
        mu, logvar = model.posterior(batches[0])
        for warm in (model, model_bfloat16):
            importance_weighted_log_marginal(lambda z: warm.log_likelihood(batches[0], z), mu, logvar, chunk, chunk)
        naive_iw_log_marginal(model, batches[0], mu, logvar, torch.randn(2, *mu.shape, device=device))
        he_style_iw_log_marginal(model, batches[0], torch.randn(2, *mu.shape, device=device), he_samples_per_pass)
    available = {"ours": harness_estimate("ours", model), "ours_bfloat16": harness_estimate("ours_bfloat16", model_bfloat16),
                 "naive": naive, "he_style": he_style}
    runners = {name: available[name] for name in names}
    runs = {name: [] for name in runners}
    for _ in range(repeats):  # interleaved, so that machine noise hits all alike
        for name, run in runners.items():
            estimates[name].clear()
            runs[name].append(timed(run, device))
    seconds = {name: statistics.median(values) for name, values in runs.items()}
    values = {name: torch.cat(estimates[name]).cpu() for name in names}
    reference = values[baselines[0]]
    return {
        "sentences_per_second": {name: count / value for name, value in seconds.items()},
        "seconds": seconds, "repeats": repeats, "sentences": count, "iw_samples": samples, "chunk": chunk,
        "batch_size": batch_size, "baselines": list(baselines), "he_samples_per_pass": he_samples_per_pass,
        "mean_log_px": {name: float(value.mean()) for name, value in values.items()},
        "max_abs_difference_log_px": max(float((values["ours"] - values[name]).abs().max()) for name in baselines),
        "bfloat16_max_abs_difference_log_px": float((values["ours_bfloat16"] - reference).abs().max()),
        "speedup": seconds[baselines[0]] / seconds["ours"],
        "bfloat16_speedup": seconds[baselines[0]] / seconds["ours_bfloat16"],
        "speedup_vs": {name: seconds[name] / seconds["ours"] for name in baselines},
        "bfloat16_speedup_vs": {name: seconds[name] / seconds["ours_bfloat16"] for name in baselines},
    }


def cpuinfo() -> str | None:
    """/proc/cpuinfo, or None where it cannot be read (not Linux)."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return None


def cpu_model(info: str | None) -> str:
    """The CPU's model name (platform.processor() is often just the architecture)."""
    lines = (info or "").splitlines()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                platform.processor() or platform.machine())


def native_bf16(info: str | None) -> bool | None:
    """Whether this CPU multiplies bf16 natively (AMX or AVX512-BF16); None where /proc/cpuinfo is unreadable."""
    return None if info is None else ("amx_bf16" in info or "avx512_bf16" in info)


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
    args = parser.parse_args(argv)
    emb, hidden, z = (int(v) for v in args.arch.split(","))
    arch = ArchitectureConfig(emb_dim=emb, hidden_dim=hidden, z_dim=z, num_layers=1, dropout=0.5)
    torch.set_num_threads(args.threads)
    data_dir, data_note = benchmark_data(args.data)
    vocab = Vocab.load(data_dir / "vocab.txt")
    print(f"data: {data_note}; vocabulary {len(vocab)}; {args.threads} threads", file=sys.stderr)
    train = train_benchmark(LMDataset(data_dir / "train.txt", vocab), len(vocab), args.train_batches, args.repeats, 64,
                            arch)
    print(f"train: ours {train['tokens_per_second']['ours']:.0f} tokens/s, original-style "
          f"{train['tokens_per_second']['original']:.0f}, per-step loop {train['tokens_per_second']['original_per_step']:.0f}"
          f" -> train_speedup {train['speedup_vs_original']:.2f}x ({train['speedup_vs_per_step_loop']:.2f}x vs the "
          f"per-step loop); losses agree to {train['loss_check']['max_relative_difference']:.1e} (relative)",
          file=sys.stderr)
    print(f"train, precision bfloat16: {train['tokens_per_second']['ours_bfloat16']:.0f} tokens/s -> "
          f"{train['bfloat16_speedup_vs_original']:.2f}x ({train['bfloat16_speedup_vs_per_step_loop']:.2f}x vs the "
          f"per-step loop); loss differs by {train['loss_check']['bfloat16_relative_difference']:.1e} (relative)",
          file=sys.stderr)
    iw = iwnll_benchmark(LMDataset(data_dir / "test.txt", vocab), len(vocab), args.iw_sentences, args.iw_samples, args.iw_chunk, 32,
                         arch, args.iw_repeats)
    print(f"iwnll (K={args.iw_samples}): ours {iw['sentences_per_second']['ours']:.2f} sentences/s, naive "
          f"{iw['sentences_per_second']['naive']:.2f} -> iwnll_speedup {iw['speedup']:.2f}x; estimates differ by at "
          f"most {iw['max_abs_difference_log_px']:.1e} nats", file=sys.stderr)
    print(f"iwnll, precision bfloat16: {iw['sentences_per_second']['ours_bfloat16']:.2f} sentences/s -> "
          f"{iw['bfloat16_speedup']:.2f}x; estimates differ by at most {iw['bfloat16_max_abs_difference_log_px']:.1e} "
          f"nats (mean log p(x) {iw['mean_log_px']['naive']:.3f})", file=sys.stderr)
    info = cpuinfo()
    payload = {
        "train_speedup": train["speedup_vs_original"],
        "train_speedup_vs_per_step_loop": train["speedup_vs_per_step_loop"],
        "iwnll_speedup": iw["speedup"],
        "bfloat16": {"train_speedup": train["bfloat16_speedup_vs_original"], "iwnll_speedup": iw["bfloat16_speedup"],
                     "note": "precision: bfloat16 (decoder RNN and output-layer matmuls in bf16; the rest float32); "
                             "the original-style and naive baselines run in float32, as the original does",
                     "cpu_has_native_bf16": native_bf16(info)},
        "train": train, "iwnll": iw,
        "data": data_note, "vocab_size": len(vocab),
        "architecture": {"emb_dim": arch.emb_dim, "hidden_dim": arch.hidden_dim, "z_dim": arch.z_dim, "dropout": arch.dropout},
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_model": cpu_model(info), "cpu_count": os.cpu_count(), "device": "cpu"},
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "code_version": code_version(), "created": now_iso(),
    }
    write_json_atomic(args.out, payload)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
