"""What `python -m benchmarks` and the GPU campaign measure: the training step and the IW-NLL of the harness against
the original-style and straightforward versions, with the same weights, batches and draws (see benchmarks/__main__.py
for the measurement as a whole).
"""
from __future__ import annotations

import copy
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.ceiling import PARTS, ceiling_runners, kernel_ceiling
from benchmarks.naive_iwnll import he_style_iw_log_marginal, naive_iw_log_marginal
from benchmarks.original_style import OriginalStyleTWRVAE
from harness.core import allocator
from harness.core.config import REPO_ROOT, ArchitectureConfig, TrainConfig
from harness.data.lm_dataset import LMDataset
from harness.train.optim import Optimisation
from harness.core.precision import bfloat16_unsupported, set_compute_precision
from metrics.lm import importance_weighted_log_marginal, sample_gaussian
from twrvae.model import TWRVAE, TWRVAEOptions


def reduced_precision_copy(model, device: torch.device = torch.device("cpu")):
    """The same weights on `device`, computing as `precision: bfloat16`."""
    twin = copy.deepcopy(model).to(device)
    set_compute_precision(twin, "bfloat16")
    return twin


PAPER_ARCH = ArchitectureConfig(emb_dim=512, hidden_dim=256, z_dim=32, num_layers=1, dropout=0.5)


def benchmark_data(path: Path | None) -> tuple[Path, str]:
    """The processed PTB folder to read, and a note; falls back to the committed 200-sentence PTB sample."""
    if path is not None and (path / "train.txt").exists():
        shown = path.resolve().relative_to(REPO_ROOT) if path.resolve().is_relative_to(REPO_ROOT) else path.name
        return path, f"{shown} (processed PTB)"  # no machine path in the committed results
    from harness.data.preprocess import preprocess_lm

    root = Path(tempfile.mkdtemp(prefix="textvae-bench-"))
    shutil.copytree(REPO_ROOT / "tests" / "fixtures" / "ptb_tiny", root / "raw" / "ptb")
    preprocess_lm("ptb", root / "raw", root / "processed")
    return root / "processed", ("tests/fixtures/ptb_tiny (200-sentence PTB sample: small vocabulary, so the output "
                                "layer is cheaper than on full PTB; run `snakemake --cores 2` first for full PTB)")


def sorted_chunks(dataset: LMDataset, batch_size: int) -> list[list[int]]:
    order = torch.sort(dataset.lengths, stable=True).indices.tolist()
    return [order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]


def benchmark_batches(dataset: LMDataset, batches: int, batch_size: int) -> list:
    """The training benchmark's batches: `batches` of length-sorted chunks, spread over the length range."""
    chunks = sorted_chunks(dataset, batch_size)
    picks = [chunks[round(i * (len(chunks) - 1) / max(batches - 1, 1))] for i in range(batches)]
    return [dataset.collate(chunk) for chunk in picks]


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
    no_bfloat16 = bfloat16_unsupported(device)  # then bfloat16 is not measured, and the record says why
    implementations = {name: model.to(device) for name, model in {
        "ours": ours,
        **({} if no_bfloat16 else {"ours_bfloat16": reduced_precision_copy(ours, device)}),
        "original": OriginalStyleTWRVAE(*sizes).copy_from(ours),
        "original_per_step": OriginalStyleTWRVAE(*sizes, per_step=True).copy_from(ours),
    }.items()}
    data = benchmark_batches(dataset, batches, batch_size)
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

    def harness_step(model):  # exactly what harness.train.training does per batch (Optimisation: reduce, NaN guard, step)
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
    ceiling_dtypes = {"float32": torch.float32, **({} if no_bfloat16 else {"bfloat16": torch.bfloat16})} \
        if device.type == "cpu" else {}
    for precision, dtype in ceiling_dtypes.items():  # the step's kernels alone (benchmarks/ceiling.py)
        for part, run in ceiling_runners(data, arch, vocab_size, dtype).items():
            runners[f"ceiling_{precision}:{part}"] = run
    for run in runners.values():
        run()  # warm-up
    seconds = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():  # interleaved, so that machine noise hits all alike
            seconds[name].append(timed(run, device))
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    speed = {name: tokens / medians[name] for name in implementations}
    ceiling = {}
    for precision, dtype in ceiling_dtypes.items():
        parts = {part: medians[f"ceiling_{precision}:{part}"] for part in PARTS}
        ceiling[precision] = kernel_ceiling(parts, tokens, dtype)
        ceiling[precision]["step_share"] = speed["ours" if precision == "float32" else "ours_bfloat16"] / \
            ceiling[precision]["tokens_per_second"]
    reference = losses["original"]
    bfloat16 = {} if no_bfloat16 else {  # None where the device cannot compute in bf16 (`bfloat16_unsupported`)
        "relative_difference": abs(losses["ours_bfloat16"] - reference) / abs(reference),
        "speedup_vs_original": speed["ours_bfloat16"] / speed["original"],
        "speedup_vs_per_step_loop": speed["ours_bfloat16"] / speed["original_per_step"]}
    return {
        "tokens_per_second": speed,
        "seconds_per_pass": {name: medians[name] for name in implementations},
        "kernel_ceiling": ceiling,
        "batches": batches, "batch_size": batch_size, "predicted_tokens_per_pass": tokens,
        "mean_length": tokens / (batches * batch_size), "repeats": repeats,
        "loss_check": {"batch_length": int(equal.lengths[0]), "batch_sentences": equal.size, "losses": losses,
                       "max_relative_difference": max(abs(losses[name] - reference) / abs(reference)
                                                      for name in ("ours", "original_per_step")),
                       "bfloat16_relative_difference": bfloat16.get("relative_difference")},
        "speedup_vs_original": speed["ours"] / speed["original"],
        "speedup_vs_per_step_loop": speed["ours"] / speed["original_per_step"],
        "bfloat16_speedup_vs_original": bfloat16.get("speedup_vs_original"),
        "bfloat16_speedup_vs_per_step_loop": bfloat16.get("speedup_vs_per_step_loop"),
        "bfloat16_unsupported": no_bfloat16,
    }


def iwnll_benchmark(dataset: LMDataset, vocab_size: int, sentences: int, samples: int, chunk: int, batch_size: int,
                    arch: ArchitectureConfig = PAPER_ARCH, repeats: int = 3, device: torch.device = torch.device("cpu"),
                    baselines: tuple[str, ...] = ("naive",), he_samples_per_pass: int = 100) -> dict:
    """Sentences/s of the harness's IW-NLL (float32 and bfloat16) against `baselines`: "naive" (one decoder pass
    per sample) and/or "he_style" (He et al.'s evaluation: one sentence at a time, `he_samples_per_pass` samples
    per pass), all on the same draws (CPU generators, so the same on every device).

    Scores the first `sentences` sentences of `dataset`, or all of them where it has fewer (the committed 50-sentence
    PTB test sample); the record's `sentences` is how many were scored, `sentences_requested` how many were asked."""
    if len(dataset) == 0:
        raise ValueError("the IW-NLL benchmark needs test sentences, and the test split is empty")
    count = min(sentences, len(dataset))
    torch.manual_seed(0)
    model = TWRVAE(vocab_size, arch, TWRVAEOptions()).eval()
    no_bfloat16 = bfloat16_unsupported(device)  # then bfloat16 is not measured, and the record says why
    model_bfloat16 = None if no_bfloat16 else reduced_precision_copy(model, device)
    model = model.to(device)
    batches = [dataset.collate(list(range(start, min(start + batch_size, count)))).to(device)
               for start in range(0, count, batch_size)]
    names = ("ours", *(() if no_bfloat16 else ("ours_bfloat16",)), *baselines)
    estimates = {name: [] for name in names}

    def harness_estimate(name, ours_model):  # what harness.evaluate.evaluation does per batch for the NLL
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
        for warm in (candidate for candidate in (model, model_bfloat16) if candidate is not None):
            importance_weighted_log_marginal(lambda z: warm.log_likelihood(batches[0], z), mu, logvar, chunk, chunk)
        naive_iw_log_marginal(model, batches[0], mu, logvar, torch.randn(2, *mu.shape, device=device))
        he_style_iw_log_marginal(model, batches[0], torch.randn(2, *mu.shape, device=device), he_samples_per_pass)
    available = {"ours": harness_estimate("ours", model), "naive": naive, "he_style": he_style,
                 "ours_bfloat16": harness_estimate("ours_bfloat16", model_bfloat16)}
    runners = {name: available[name] for name in names}
    runs = {name: [] for name in runners}
    for _ in range(repeats):  # interleaved, so that machine noise hits all alike
        for name, run in runners.items():
            estimates[name].clear()
            runs[name].append(timed(run, device))
    seconds = {name: statistics.median(values) for name, values in runs.items()}
    values = {name: torch.cat(estimates[name]).cpu() for name in names}
    reference = values[baselines[0]]
    bfloat16 = {} if no_bfloat16 else {  # None where the device cannot compute in bf16 (`bfloat16_unsupported`)
        "bfloat16_max_abs_difference_log_px": float((values["ours_bfloat16"] - reference).abs().max()),
        "bfloat16_speedup": seconds[baselines[0]] / seconds["ours_bfloat16"],
        "bfloat16_speedup_vs": {name: seconds[name] / seconds["ours_bfloat16"] for name in baselines}}
    return {
        "sentences_per_second": {name: count / value for name, value in seconds.items()},
        "seconds": seconds, "repeats": repeats, "sentences": count, "sentences_requested": sentences,
        "iw_samples": samples, "chunk": chunk,
        "batch_size": batch_size, "baselines": list(baselines), "he_samples_per_pass": he_samples_per_pass,
        "mean_log_px": {name: float(value.mean()) for name, value in values.items()},
        "max_abs_difference_log_px": max(float((values["ours"] - values[name]).abs().max()) for name in baselines),
        "speedup": seconds[baselines[0]] / seconds["ours"],
        "speedup_vs": {name: seconds[name] / seconds["ours"] for name in baselines},
        "bfloat16_max_abs_difference_log_px": bfloat16.get("bfloat16_max_abs_difference_log_px"),
        "bfloat16_speedup": bfloat16.get("bfloat16_speedup"),
        "bfloat16_speedup_vs": bfloat16.get("bfloat16_speedup_vs"),
        "bfloat16_unsupported": no_bfloat16,
    }


def allocator_settings() -> dict:
    """The malloc thresholds the harness set for this process (harness/core/allocator.py; None: left to the environment)
    and the environment's own, if any."""
    return {"mallopt": allocator.applied(),
            **{name: os.environ[name] for name in allocator.ENVIRONMENT if name in os.environ}}


def matmul_peak(threads: int, size: int = 2048, repeats: int = 10) -> dict:
    """GFLOP/s of a `size`² matmul in float32 and in bfloat16 on this CPU (the best of three timings of `repeats`
    products each): the ceiling the training step's matmul work is compared with."""
    torch.set_num_threads(threads)
    peaks = {"float32": None, "bfloat16": None}  # bfloat16 stays None where this CPU has no bf16 kernels
    dtypes = {"float32": torch.float32, **({} if bfloat16_unsupported("cpu") else {"bfloat16": torch.bfloat16})}
    for name, dtype in dtypes.items():
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        for _ in range(3):
            a @ b
        best = min(timed(lambda: [a @ b for _ in range(repeats)]) for _ in range(3))
        peaks[name] = 2 * size ** 3 * repeats / best / 1e9
    return {"gflops": peaks, "size": size, "threads": threads}


def training_flops_per_token(arch: ArchitectureConfig, vocab_size: int) -> dict:
    """Matmul FLOPs of one TWR-VAE training step per predicted token: forward + the two backward products (inputs,
    weights) of the encoder LSTM, the posterior heads, the decoder LSTM (input = embedding ; z) and the V-wide
    output layer. The model's necessary work, counted once (the harness's recomputed logits, when they happen, and
    elementwise work are not counted); the encoder's extra <s> per sentence is not counted either."""
    e, h, z, v = arch.emb_dim, arch.hidden_dim, arch.z_dim, vocab_size
    parts = {"encoder_rnn": 2 * 4 * h * (e + h), "posterior_heads": 2 * 2 * h * z,
             "decoder_rnn": 2 * 4 * h * (e + z + h), "output_layer": 2 * h * v}
    parts = {name: 3 * flops for name, flops in parts.items()}  # forward, grad of inputs, grad of weights
    return {"per_token": sum(parts.values()), "parts": parts}
