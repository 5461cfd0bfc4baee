"""Likelihood audit: how tight is a trained language model's importance-weighted NLL? (issue 32)

    python -m reproduction.likelihood_audit subset                     # writes the committed subset (done once)
    python -m reproduction.likelihood_audit run --model-pt runs/.../model.pt --out results/reference/.../likelihood_audit.json
    python -m reproduction.likelihood_audit padding --model-pt runs/.../model.pt --out padding_audit.json \
        [--batch-sizes 64,32] [--iw-samples 100] [--limit N] [--threads 1]

An importance-weighted estimate with the model's q(z|x) as proposal bounds -log p(x) from above, in expectation, and
the bound can be loose by many nats when q is far narrower than the true posterior (its weights then have infinite
variance). On a fixed, committed subset of PTB test sentences (`results/reference/ptb_audit_subset.json`: N sentences
stratified by length, tied to test.txt's sha256), `run` scores one model with every estimator of metrics/likelihood.py:

- IW with K in {1, 10, 100, 500, 5000} for each proposal: q; q widened (x1.5, x2); a defensive mixture (q widened x2
  with weight 0.9, the prior 0.1); for TWR-VAE the mixture of its timestep posteriors; a Gaussian fitted to each
  sentence's ELBO with the decoder frozen, and that Gaussian widened x1.5 (an ELBO fit is narrower than the
  posterior). The K sweep uses the first K of the same K_max draws (nested estimates); the fit's seconds count in
  both fitted proposals' compute;
- AIS from the prior with increasing numbers of intermediate distributions (step sizes tuned on one pass with a few
  chains, then frozen for a second pass with a new seed and more chains);

each with its per-sentence values, the mean NLL over the subset, its Monte Carlo standard error, the median effective
sample size and its compute seconds; and the paper protocol's number on the same sentences for reference. The figure
beside the JSON plots every estimator's NLL against its compute. All in float32 (AIS and the fitted proposal need
gradients in z); sentences are batched by exact length, so no sentence's score depends on another's padding.

With `--bdmc N`, bidirectional Monte Carlo (Grosse, Ghahramani & Adams 2015) checks AIS itself where its error can be
bounded: N sentences simulated from the model (z* ~ N(0, I), then x ~ p(x|z*) word by word, at most the subset's
longest sentence's words; a pair whose sentence has not ended by then is redrawn whole, which keeps z* an exact
sample of p(z|x)) are scored by forward AIS (step sizes tuned and frozen as above: a stochastic lower bound on
log p(x)) and by reverse AIS from z* with the same frozen transitions (a stochastic upper bound). Their gap, per
sentence and in total, bounds forward AIS's error on sentences like the model's own (`estimators`' "BDMC
forward/reverse, T steps"; the simulated sentences under `bdmc`). Methods whose p(x|z) is not a
layers.recurrent.LatentDecoder's (every language model here is one) are skipped with a note.

`padding` measures how much the batching changes a model's numbers. With `timesteps: padded` (the original TWR-VAE
code's arithmetic) the latent the decoder reads is the encoder state at the batch's last padded position, so a
sentence's score depends on its batch-mates. Each sentence of the test set the evaluation scores (its caps applied)
is scored under every scheme: batches of one length (the uniform protocol's, evaluate.batch_size) and length-sorted
batches of each --batch-sizes (the paper protocol's and the original code's; default evaluate.batch_size). Per
sentence: the fed latent's posterior from model.posterior on its batch, its KL to N(0, I), the reconstruction at the
posterior mean and IW log p(x) with K = --iw-samples; the IW draws are z_k = mu + sigma eps[k, sentence] with the
same eps in every scheme (seeded by the run's seed), and the decoder terms (which do not depend on padding: the
decoder is causal and scores real tokens only) are computed on the same one-length batches whatever scheme gave the
posterior, so a difference between schemes is the posterior's, neither Monte Carlo noise nor rounding. Against the one-length scheme: the mean, mean absolute and max absolute per-sentence difference of
NLL, KL and recon, the fraction of sentences whose posterior mean moved (max abs > 1e-5) and the fraction padded in
their batch. --limit N scores N sentences stratified by length (as the subset above), each still encoded in its
batch of the full test set: the posteriors of a full run (the decoder terms to float32 rounding). Float32; a model whose posterior ignores
padding (timesteps: own, the baselines) gives zero differences.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from harness.core.config import REPO_ROOT
from harness.data.lm_dataset import Batch, LMDataset, batches, equal_length_batches
from harness.data.vocab import BOS_ID, EOS_ID, Vocab
from harness.core.io import code_version, environment_info, now_iso, set_threads, write_json_atomic
from harness.core.machine import cpu_model, cpuinfo
from harness.core.precision import set_compute_precision
from harness.core.runs import load_trained
from harness.tasks import task_of
from layers.recurrent import LatentDecoder
from metrics.likelihood import (Estimate, GaussianMixtureProposal, GaussianProposal, Mixture, StandardNormal,
                                annealed_importance_sampling, bdmc, draw_log_weights, fit_gaussian_proposal,
                                summarise_log_weights)
from metrics.lm import gaussian_kl_standard_normal

SUBSET = REPO_ROOT / "results" / "reference" / "ptb_audit_subset.json"
KS = (1, 10, 100, 500, 5000)
FITTED_WIDENING = 1.5  # the fitted Gaussian widened: its standard deviation times this


# ---- the committed subset
def stratified(lengths: list[int], size: int) -> list[int]:
    """`size` indices spread evenly over the sentences sorted by length (the (i + 1/2) / size quantiles)."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    if size > len(order):
        raise ValueError(f"a subset of {size} sentences was asked for, the test set has {len(order)}")
    return sorted(order[int((i + 0.5) * len(order) / size)] for i in range(size))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_subset(data_dir: Path, size: int, path: Path) -> dict:
    test = data_dir / "test.txt"
    lengths = [len(line.split()) for line in test.read_text().splitlines()]
    indices = stratified(lengths, size)
    subset = {"what": f"{size} PTB test sentences stratified by length (the (i + 1/2) / {size} quantiles of the "
                      "length-sorted test set), for reproduction.likelihood_audit", "test_file": "test.txt",
              "test_sha256": sha256_of(test), "indices": indices, "words": [lengths[i] for i in indices]}
    write_json_atomic(path, subset)
    return subset


SUBSET_KEYS = ("test_file", "test_sha256", "indices")  # what `subset` writes and `run --subset` needs


def load_subset(path: Path, data_dir: Path) -> list[int]:
    """The test-set indices of a subset file, refused (naming the file) when it is unreadable, lacks a key or was
    drawn from another test set."""
    try:
        subset = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a subset file (invalid JSON: {exc})") from None
    missing = [key for key in SUBSET_KEYS if key not in subset] if isinstance(subset, dict) else list(SUBSET_KEYS)
    if missing:
        raise ValueError(f"{path} is not a subset file: it lacks {', '.join(missing)} (write one with "
                         "`python -m reproduction.likelihood_audit subset`)")
    indices = subset["indices"]
    if not isinstance(indices, list) or not indices or not all(type(i) is int and i >= 0 for i in indices):
        raise ValueError(f"{path}: `indices` must be a non-empty list of test-sentence numbers (integers >= 0)")
    actual = sha256_of(data_dir / subset["test_file"])
    if actual != subset["test_sha256"]:
        raise ValueError(f"{data_dir / subset['test_file']} (sha256 {actual[:12]}...) is not the test set {path} was "
                         f"drawn from ({subset['test_sha256'][:12]}...): preprocess full PTB as the default workflow does")
    return subset["indices"]


# ---- estimators on one batch of equal-length sentences
def iw_sweep(log_likelihood, proposal, ks: tuple[int, ...], chunk: int, generator) -> tuple[dict[int, Estimate], float]:
    """IW estimates for every K in `ks` from the first K of max(ks) draws, and the seconds the draws took."""
    started = time.perf_counter()
    weights = draw_log_weights(log_likelihood, proposal, max(ks), chunk, generator)
    estimates = {}
    for k in ks:
        log_px, ess, stderr = summarise_log_weights(weights[:k])
        estimates[k] = Estimate(log_px, ess, stderr, k)
    return estimates, time.perf_counter() - started


def proposals(model, batch, mu, logvar, twr: bool) -> dict:
    q = GaussianProposal(mu, logvar)
    found = {"q": q, "q widened x1.5": q.widened(1.5), "q widened x2": q.widened(2.0),
             "defensive mixture (0.9 q x2 + 0.1 prior)": Mixture(q.widened(2.0), StandardNormal(
                 batch.size, mu.size(1), mu.dtype, mu.device), 0.1)}
    if twr:
        with torch.no_grad():
            mu_t, logvar_t, steps = model.timestep_posteriors(batch)
        exists = torch.arange(mu_t.size(1), device=mu.device).unsqueeze(0) < steps.unsqueeze(1)
        found["TWR-VAE timestep mixture"] = GaussianMixtureProposal(mu_t, logvar_t, torch.where(exists, 0.0, -math.inf))
    return found


def audit_batch(model, batch, settings: dict, twr: bool, seed: int) -> dict[str, dict]:
    """estimator name -> {"nll": [B], "ess": [B], "stderr": [B], "seconds": s, ...} for one batch."""
    generator = torch.Generator().manual_seed(seed)

    def log_likelihood(z):
        return model.log_likelihood(batch, z)

    with torch.no_grad():
        mu, logvar = model.posterior(batch)
        terms = model.paper_protocol_terms(batch, (mu, logvar))
    results = {"paper protocol": {"nll": (terms.recon + terms.kl).double().tolist(), "seconds": 0.0}}
    found = proposals(model, batch, mu, logvar, twr)
    started = time.perf_counter()
    fitted, trace = fit_gaussian_proposal(log_likelihood, mu, logvar, settings["fit_steps"], settings["fit_lr"],
                                          settings["fit_samples"], generator)
    found["fitted Gaussian"] = fitted
    # an ELBO fit (reverse KL) is narrower than the posterior it fits: widened, it covers more of it (TWR-VAE epoch
    # 111, 7 sentences: 0.8 nat lower at K = 1000)
    found[f"fitted Gaussian widened x{FITTED_WIDENING:g}"] = fitted.widened(FITTED_WIDENING)
    fit_seconds = time.perf_counter() - started
    for name, proposal in found.items():
        sweep, seconds = iw_sweep(log_likelihood, proposal, settings["ks"], settings["chunk"], generator)
        for k, estimate in sweep.items():
            results[f"IW {name}, K={k}"] = {
                "estimator": f"IW {name}", "K": k, "nll": (-estimate.log_px).tolist(), "ess": estimate.ess.tolist(),
                "stderr": estimate.stderr.tolist(), "seconds": seconds * k / max(settings["ks"])
                + (fit_seconds if name.startswith("fitted Gaussian") else 0.0)}
    results["fitted Gaussian ELBO trace"] = {"first": trace[0], "last": trace[-1], "seconds": fit_seconds}
    for steps in settings["ais_steps"]:
        started = time.perf_counter()
        tuned = annealed_importance_sampling(log_likelihood, batch.size, mu.size(1), steps, settings["ais_tune_chains"],
                                             settings["leapfrog"], settings["step_size"], generator=generator,
                                             device=mu.device, adapt_rate=settings["adapt_rate"])
        estimate = annealed_importance_sampling(log_likelihood, batch.size, mu.size(1), steps, settings["ais_chains"],
                                                settings["leapfrog"], schedule=tuned.extra["schedule"],
                                                generator=torch.Generator().manual_seed(seed + 1), device=mu.device)
        results[f"AIS, {steps} steps"] = {
            "estimator": "AIS", "steps": steps, "nll": (-estimate.log_px).tolist(), "ess": estimate.ess.tolist(),
            "stderr": estimate.stderr.tolist(), "acceptance": estimate.extra["acceptance"],
            "tuning_acceptance": tuned.extra["acceptance"], "seconds": time.perf_counter() - started}
    return results


# ---- bidirectional Monte Carlo on sentences simulated from the model
def latent_decoder(model) -> LatentDecoder | None:
    """The model's p(x|z) if it is a layers.recurrent.LatentDecoder's (every SequenceVAE: TWR-VAE and the
    language-model baselines, whose log_likelihood is its token_log_likelihood), else None."""
    decoder = getattr(model, "decoder", None)
    return decoder if isinstance(decoder, LatentDecoder) else None


@torch.no_grad()
def sample_sentences(decoder: LatentDecoder, z: torch.Tensor, max_words: int, generator: torch.Generator
                     ) -> tuple[list[list[int]], torch.Tensor]:
    """Ancestral samples x ~ p(x|z) for latents z [N, Z]: from <s>, each next token drawn from the softmax of the
    decoder's scores and fed back (as `LatentDecoder.greedy` feeds back its argmax), every token of the vocabulary
    allowed, until </s> or `max_words` words and one more token. Returns each row's word ids (without <s> and </s>)
    and which rows ended with </s> [N] (bool): only those are complete samples of p(x|z)."""
    rows = z.size(0)
    token = torch.full((rows, 1), BOS_ID, dtype=torch.long, device=z.device)
    state, steps = None, []
    finished = torch.zeros(rows, dtype=torch.bool)
    for _ in range(max_words + 1):
        hidden, state = decoder.hidden_states(token, z, state)
        probs = torch.softmax(decoder.logits(hidden[:, -1]).double(), dim=-1).cpu()
        drawn = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        steps.append(drawn.masked_fill(finished, EOS_ID))
        finished |= drawn == EOS_ID
        token = drawn.unsqueeze(1).to(z.device)
        if bool(finished.all()):
            break
    ids = torch.stack(steps, 1).tolist()
    return [row[:row.index(EOS_ID)] if EOS_ID in row else row for row in ids], finished


def simulate(decoder: LatentDecoder, count: int, max_words: int, generator: torch.Generator, device,
             rounds: int = 20) -> tuple[torch.Tensor, list[list[int]], int]:
    """`count` pairs z* ~ N(0, I), x ~ p(x|z*) whose x ends within `max_words` words, drawn max(count, 64) at a
    time for at most `rounds` rounds (the first `count` that end are kept). A pair whose x has not ended is dropped
    whole (redrawing x alone would bias z*): the pairs kept are draws of p(z, x) restricted to short x, so z* is still
    an exact draw of p(z|x). Returns z* [n, Z] (n <= count), the sentences' word ids and how many pairs were drawn."""
    kept_z, kept_words, drawn = [], [], 0
    dims = decoder.z_to_hidden.in_features
    dtype = decoder.z_to_hidden.weight.dtype
    for _ in range(rounds):
        if len(kept_words) >= count:
            break
        z = torch.randn((max(count, 64), dims), generator=generator, dtype=dtype).to(device)
        words, finished = sample_sentences(decoder, z, max_words, generator)
        drawn += z.size(0)
        for row in torch.nonzero(finished).squeeze(1).tolist():
            kept_z.append(z[row])
            kept_words.append(words[row])
    kept_z, kept_words = kept_z[:count], kept_words[:count]
    z = torch.stack(kept_z) if kept_z else torch.zeros((0, dims), dtype=dtype, device=device)
    return z, kept_words, drawn


def sentence_batch(rows: list[list[int]], device) -> Batch:
    """<s> words </s> rows of equal length as a Batch."""
    tokens = torch.tensor([[BOS_ID, *row, EOS_ID] for row in rows], dtype=torch.long)
    return Batch(tokens, torch.full((len(rows),), tokens.size(1), dtype=torch.long)).to(device)


def bdmc_audit(model, settings: dict, max_words: int, seed: int, vocab: Vocab | None = None, progress: bool = True
               ) -> tuple[dict, dict]:
    """(estimator entries "BDMC forward/reverse, T steps" for each T of settings["bdmc_steps"], the simulation's
    record) for settings["bdmc"] sentences simulated from the model. Per sentence: log_px_forward (forward AIS, a
    stochastic lower bound on log p(x)), log_px_reverse (reverse AIS from the simulating z*, a stochastic upper
    bound), gap = reverse - forward, each direction's standard error and ESS, and the mean over chains of the
    single-chain gap -log w~ - log w (Grosse et al.'s; larger); in total their sums and the gap's mean and max.
    Sentences are batched by length; each batch's step sizes are tuned on a forward pass of its own (as the
    audit's AIS) and frozen for both directions."""
    decoder = latent_decoder(model)
    if decoder is None:
        note = (f"skipped: {type(model).__name__}'s p(x|z) is not a layers.recurrent.LatentDecoder's, and this audit "
                "samples sentences only from one")
        if progress:
            print(f"audit: BDMC {note}", file=sys.stderr)
        return {}, {"requested": settings["bdmc"], "skipped": note}
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    z_all, sentences, drawn = simulate(decoder, settings["bdmc"], max_words, generator, device)
    record = {"requested": settings["bdmc"], "simulated": len(sentences), "pairs_drawn": drawn,
              "max_words": max_words, "seed": seed, "word_ids": sentences}
    if vocab is not None:
        record["text"] = [" ".join(vocab.decode(words)) for words in sentences]
    if len(sentences) < settings["bdmc"]:
        record["note"] = (f"only {len(sentences)} of {drawn} simulated sentences ended within {max_words} words; "
                          "BDMC scores those")
        if progress:
            print(f"audit: BDMC {record['note']}", file=sys.stderr)
    if not sentences:
        return {}, record
    by_length: dict[int, list[int]] = {}
    for index, words in enumerate(sentences):
        by_length.setdefault(len(words), []).append(index)
    entries: dict[str, dict] = {}
    for steps in settings["bdmc_steps"]:
        entry = {"estimator": "BDMC", "steps": steps, "chains": settings["ais_chains"],
                 "tuning_chains": settings["ais_tune_chains"], "leapfrog": settings["leapfrog"],
                 "what": "log p(x) of sentences simulated from the model lies, in expectation, between log_px_forward "
                         "(forward AIS, a lower bound) and log_px_reverse (reverse AIS from the simulating z, an "
                         "upper bound); gap = reverse - forward bounds forward AIS's error on such sentences",
                 "sentence": [], "words": [], "log_px_forward": [], "log_px_reverse": [], "gap": [],
                 "single_chain_gap": [], "stderr_forward": [], "stderr_reverse": [], "ess_forward": [],
                 "ess_reverse": [], "acceptance_forward": [], "acceptance_reverse": [], "tuning_acceptance": [],
                 "seconds": 0.0}
        for number, (length, group) in enumerate(sorted(by_length.items())):
            started = time.perf_counter()
            batch = sentence_batch([sentences[i] for i in group], device)
            z_exact = z_all[group]

            def log_likelihood(z, batch=batch):
                return model.log_likelihood(batch, z)

            tuned = annealed_importance_sampling(
                log_likelihood, batch.size, z_exact.size(1), steps, settings["ais_tune_chains"], settings["leapfrog"],
                settings["step_size"], generator=torch.Generator().manual_seed(seed + 1 + number), device=device,
                adapt_rate=settings["adapt_rate"])
            sandwich = bdmc(log_likelihood, z_exact, steps, tuned.extra["schedule"], settings["ais_chains"],
                            settings["leapfrog"], torch.Generator().manual_seed(seed + 1001 + number))
            lower, upper = sandwich.lower, sandwich.upper
            chain_gap = (-upper.extra["log_weights"] - lower.extra["log_weights"]).mean(0)
            entry["sentence"].extend(group)
            entry["words"].extend([length] * len(group))
            for key, values in (("log_px_forward", lower.log_px), ("log_px_reverse", upper.log_px),
                                ("gap", sandwich.gap), ("single_chain_gap", chain_gap),
                                ("stderr_forward", lower.stderr), ("stderr_reverse", upper.stderr),
                                ("ess_forward", lower.ess), ("ess_reverse", upper.ess)):
                entry[key].extend(values.double().tolist())
            entry["acceptance_forward"].append(lower.extra["acceptance"])
            entry["acceptance_reverse"].append(upper.extra["acceptance"])
            entry["tuning_acceptance"].append(tuned.extra["acceptance"])
            entry["seconds"] += time.perf_counter() - started
        count = len(entry["gap"])
        entry.update({"sentences": count, "log_px_forward_total": sum(entry["log_px_forward"]),
                      "log_px_reverse_total": sum(entry["log_px_reverse"]), "gap_total": sum(entry["gap"]),
                      "gap_mean": sum(entry["gap"]) / count, "gap_max": max(entry["gap"]),
                      "single_chain_gap_mean": sum(entry["single_chain_gap"]) / count})
        entries[f"BDMC forward/reverse, {steps} steps"] = entry
        if progress:
            print(f"audit: BDMC with {steps} steps done ({count} simulated sentences, mean gap "
                  f"{entry['gap_mean']:.3f} nats)", file=sys.stderr)
    return entries, record


# ---- the whole audit
def audit(model_pt: Path, data_dir: Path, subset_path: Path, settings: dict, progress: bool = True) -> dict:
    run, summary, model, vocab, device = load_trained(model_pt, data_dir)
    set_compute_precision(model, "float32", "audit precision")
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)  # the decoder is frozen: gradients flow to z only
    test = LMDataset(data_dir / "test.txt", Vocab.load(data_dir / "vocab.txt"))
    indices = load_subset(subset_path, data_dir)
    by_length: dict[int, list[int]] = {}
    for index in indices:
        by_length.setdefault(int(test.lengths[index]), []).append(index)
    twr = run.model.method == "twr-vae"
    merged: dict[str, dict] = {}
    order: list[int] = []
    for number, (length, group) in enumerate(sorted(by_length.items())):
        batch = test.collate(torch.tensor(group)).to(device)
        torch.manual_seed(run.seed)
        for name, result in audit_batch(model, batch, settings, twr, run.seed + number).items():
            entry = merged.setdefault(name, {key: value for key, value in result.items()
                                             if key not in ("nll", "ess", "stderr", "seconds")} | {"seconds": 0.0})
            entry["seconds"] += result["seconds"]
            for key in ("nll", "ess", "stderr"):
                if key in result:
                    entry.setdefault(key, []).extend(result[key])
            if "acceptance" in result:
                entry.setdefault("acceptance_per_batch", []).append(result["acceptance"])
        order.extend(group)
        if progress:
            print(f"audit: length {length} done ({len(order)} of {len(indices)} sentences)", file=sys.stderr)
    for entry in merged.values():
        if "nll" in entry:
            values = entry["nll"]
            entry["nll_mean"] = sum(values) / len(values)
            if "stderr" in entry:
                entry["stderr_of_mean"] = math.sqrt(sum(s * s for s in entry["stderr"])) / len(values)
                entry["ess_median"] = sorted(entry["ess"])[len(entry["ess"]) // 2]
    bdmc_record = None
    if settings.get("bdmc", 0) > 0:
        max_words = max(int(test.lengths[index]) for index in indices) - 2
        entries, bdmc_record = bdmc_audit(model, settings, max_words, run.seed + 1_000_000, vocab, progress)
        merged.update(entries)
    full = metrics_of_these_weights(model_pt.parent / "metrics.json", summary)
    return {"what": "likelihood audit (reproduction.likelihood_audit): -log p(x) estimates per sentence of the subset",
            "model": run.model.name, "method": run.model.method, "seed": run.seed,
            "epochs_completed": summary.get("epochs_completed"), "selected_epoch": summary.get("selected_epoch"),
            "subset": {"file": subset_path.name, "sentences": order}, "settings": {**settings, "ks": list(settings["ks"])},
            "precision": "float32", "full_test_set_metrics": full, "estimators": merged, "bdmc": bdmc_record,
            "code_version": code_version(), "versions": environment_info(), "cpu": cpu_model(cpuinfo()),
            "threads": torch.get_num_threads(), "created": now_iso()}


def draw(payload: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sandwiches = sorted((entry["steps"], entry["gap_mean"], entry["single_chain_gap_mean"])
                        for entry in payload["estimators"].values() if entry.get("estimator") == "BDMC")
    if sandwiches:
        figure, (axis, right) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [2, 1]})
        right.plot([s[0] for s in sandwiches], [s[1] for s in sandwiches], marker="o", label="reverse - forward AIS")
        right.plot([s[0] for s in sandwiches], [s[2] for s in sandwiches], marker="o", label="single-chain gap")
        right.axhline(0.0, color="black", linewidth=0.5)
        right.set_xscale("log")
        right.set_xticks([s[0] for s in sandwiches], [str(s[0]) for s in sandwiches])
        right.minorticks_off()
        right.set_xlabel("AIS steps")
        right.set_ylabel("BDMC gap (nats per sentence, mean)")
        right.set_title(f"BDMC on {payload['bdmc']['simulated']} sentences simulated from the model", fontsize=9)
        right.legend(fontsize=6)
    else:
        figure, axis = plt.subplots(figsize=(7, 4))
    lines: dict[str, list[tuple[float, float]]] = {}
    for name, entry in payload["estimators"].items():
        if "estimator" in entry and "nll_mean" in entry:
            lines.setdefault(entry["estimator"], []).append((max(entry["seconds"], 1e-3), entry["nll_mean"]))
    for name, points in sorted(lines.items()):
        points.sort()
        axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, linewidth=1, label=name)
    paper = payload["estimators"]["paper protocol"]["nll_mean"]
    axis.axhline(paper, color="black", linestyle="--", linewidth=1, label=f"paper protocol {paper:.1f}")
    axis.set_xscale("log")
    threads = payload['threads']
    axis.set_xlabel(f"compute seconds ({payload['cpu']}, {threads} thread{'' if threads == 1 else 's'})")
    axis.set_ylabel("NLL estimate, mean over the subset")
    axis.set_title(f"{payload['model']} seed {payload['seed']}: -log p(x) by estimator "
                   f"({len(payload['subset']['sentences'])} PTB test sentences)", fontsize=9)
    axis.legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=120, metadata={"Software": None})
    plt.close(figure)


def metrics_of_these_weights(metrics_path: Path, summary: dict) -> dict | None:
    """The run folder's full-test-set metrics if they score the audited weights (same epochs trained and kept), else
    None: a metrics.json written for an earlier stop of a resumed run describes other weights."""
    if not metrics_path.is_file():
        return None
    payload = json.loads(metrics_path.read_text())
    training = payload.get("training") or {}
    same = all(training.get(key) == summary.get(key) for key in ("epochs_completed", "selected_epoch"))
    return payload["metrics"] if same else None


# ---- the padding audit: how much does the batching change a model's numbers?
ONE_LENGTH = "one length"


def sorted_scheme(batch_size: int) -> str:
    return f"length-sorted, batch {batch_size}"


def scheme_batches(test: LMDataset, scheme: tuple[str, int]) -> Iterator[tuple[torch.Tensor, Batch]]:
    """(dataset indices [B], batch) of one batching scheme: ("one length", b) as the uniform protocol batches
    (harness.data.lm_dataset.equal_length_batches), ("sorted", b) as the paper protocol and the original code
    (lm_dataset.batches, length-sorted, shuffle=False)."""
    kind, batch_size = scheme
    order = torch.sort(test.lengths, stable=True).indices
    if kind == "one length":
        _, counts = torch.unique_consecutive(test.lengths[order], return_counts=True)
        chunks = [chunk for group in torch.split(order, counts.tolist()) for chunk in torch.split(group, batch_size)]
        made = equal_length_batches(test, batch_size)
    else:
        chunks = list(torch.split(order, batch_size))
        made = batches(test, batch_size, shuffle=False, generator=None)
    for chunk, batch in zip(chunks, made, strict=True):
        if not torch.equal(test.lengths[chunk], batch.lengths):  # the indices must be the batcher's own
            raise RuntimeError(f"scheme {scheme}: the batches do not walk the sentences as expected")
        yield chunk, batch


@torch.no_grad()
def scheme_posteriors(model, test: LMDataset, scheme: tuple[str, int], selected: torch.Tensor, device
                      ) -> dict[str, torch.Tensor]:
    """Per selected sentence (in `selected`'s order): the fed latent's posterior mu, logvar [S, Z] from
    model.posterior on the sentence's whole batch of this scheme (its latent may depend on its batch-mates) and
    the pads [S] it had there (the batch's length minus its own). Batches without a selected sentence are skipped."""
    position = torch.full((len(test),), -1, dtype=torch.long)
    position[selected] = torch.arange(selected.numel())
    out = {key: [None] * selected.numel() for key in ("mu", "logvar", "pads")}
    for indices, batch in scheme_batches(test, scheme):
        rows = torch.nonzero(position[indices] >= 0).squeeze(1)
        if rows.numel() == 0:
            continue
        mu, logvar = model.posterior(batch.to(device))
        values = {"mu": mu[rows.to(device)].cpu(), "logvar": logvar[rows.to(device)].cpu(),
                  "pads": batch.tokens.size(1) - batch.lengths[rows]}
        for key, value in values.items():
            for place, row in zip(position[indices[rows]].tolist(), value):
                out[key][place] = row
    return {key: torch.stack(values) for key, values in out.items()}


@torch.no_grad()
def decoder_terms(model, test: LMDataset, selected: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                  eps: torch.Tensor, chunk: int, batch_size: int, device) -> dict[str, torch.Tensor]:
    """Per selected sentence, given its posterior mu, logvar [S, Z]: KL(q || N(0, I)), the reconstruction at the
    posterior mean and IW log p(x) (metrics.likelihood.draw_log_weights, the Gaussian q) with the given draws
    z_k = mu + sigma eps[k, sentence] (eps [K, S, Z]). The decoder is causal and scores real tokens only, so its terms
    do not depend on padding: they are computed on the same batches (the selected sentences in one-length batches of
    `batch_size`) whatever scheme the posterior came from, and equal posteriors give equal numbers, bit for bit."""
    out = {key: torch.empty(selected.numel(), dtype=torch.float64) for key in ("kl", "recon", "log_px")}
    lengths = test.lengths[selected]
    order = torch.sort(lengths, stable=True).indices
    _, counts = torch.unique_consecutive(lengths[order], return_counts=True)
    for group in torch.split(order, counts.tolist()):
        for places in torch.split(group, batch_size):
            batch = test.collate(selected[places]).to(device)
            m, lv = mu[places].to(device), logvar[places].to(device)
            noise = eps[:, places].to(device=device, dtype=m.dtype)
            log_weights = draw_log_weights(lambda z: model.log_likelihood(batch, z), GaussianProposal(m, lv),
                                           noise.size(0), chunk, eps=noise)
            out["log_px"][places] = summarise_log_weights(log_weights)[0].cpu()
            out["kl"][places] = gaussian_kl_standard_normal(m, lv).double().cpu()
            out["recon"][places] = (-model.log_likelihood(batch, m.unsqueeze(0))[0]).double().cpu()
    return out


def abs_differences(values: torch.Tensor, reference: torch.Tensor) -> dict:
    difference = values - reference
    return {"mean": float(difference.mean()), "mean_abs": float(difference.abs().mean()),
            "max_abs": float(difference.abs().max())}


def padding_audit(model, test: LMDataset, batch_sizes: list[int], one_length_batch_size: int, iw_samples: int,
                  iw_chunk: int, seed: int, selected: torch.Tensor | None = None, progress: bool = True) -> dict:
    """Every scheme's per-sentence numbers and means, and each length-sorted scheme's differences from the
    one-length scheme (a sentence's own numbers, no padding). `selected`: dataset indices to score (default all)."""
    device = next(model.parameters()).device
    selected = torch.arange(len(test)) if selected is None else torch.as_tensor(selected, dtype=torch.long)
    z_dim = model.posterior(test.collate(selected[:1]).to(device))[0].size(1)
    eps = torch.randn((iw_samples, selected.numel(), z_dim), generator=torch.Generator().manual_seed(seed),
                      dtype=torch.float64)
    schemes = [(ONE_LENGTH, one_length_batch_size)] + [("sorted", size) for size in batch_sizes]
    found, reference = {}, None
    for scheme in schemes:
        started = time.perf_counter()
        scored = scheme_posteriors(model, test, scheme, selected, device)
        scored.update(decoder_terms(model, test, selected, scored["mu"], scored["logvar"], eps, iw_chunk,
                                    one_length_batch_size, device))
        name = ONE_LENGTH if scheme[0] == ONE_LENGTH else sorted_scheme(scheme[1])
        padded = scored["pads"] > 0
        entry = {"batching": (f"batches of at most {scheme[1]} sentences of one length (the uniform protocol's)"
                              if scheme[0] == ONE_LENGTH else f"length-sorted batches of {scheme[1]} (the paper "
                              "protocol's and the original code's, lm_dataset.batches with shuffle=False)"),
                 "batch_size": scheme[1],
                 "NLL": float(-scored["log_px"].mean()), "KL": float(scored["kl"].mean()),
                 "recon_at_mean": float(scored["recon"].mean()), "padded_fraction": float(padded.double().mean()),
                 "mean_pads_of_padded": float(scored["pads"][padded].double().mean()) if bool(padded.any()) else 0.0,
                 "seconds": 0.0,
                 "per_sentence": {"log_px": scored["log_px"].tolist(), "kl": scored["kl"].tolist(),
                                  "recon_at_mean": scored["recon"].tolist(), "pads": scored["pads"].long().tolist()}}
        if reference is None:
            reference = scored
        else:
            differs = (scored["mu"] - reference["mu"]).abs().amax(1) > 1e-5
            entry["vs_one_length"] = {
                "NLL": abs_differences(-scored["log_px"], -reference["log_px"]),
                "KL": abs_differences(scored["kl"], reference["kl"]),
                "recon_at_mean": abs_differences(scored["recon"], reference["recon"]),
                "posterior_mean_differs_fraction": float(differs.double().mean()),
                "padded_fraction": entry["padded_fraction"],
                "posterior_mean_max_abs_diff": float((scored["mu"] - reference["mu"]).abs().max()),
                "posterior_logvar_max_abs_diff": float((scored["logvar"] - reference["logvar"]).abs().max()),
                "differs_but_unpadded": int((differs & ~padded).sum()),
                "padded_but_equal": int((~differs & padded).sum())}
        entry["seconds"] = time.perf_counter() - started
        found[name] = entry
        if progress:
            print(f"audit padding: {name} done ({entry['seconds']:.1f} s)", file=sys.stderr)
    return found


def padding_payload(model_pt: Path, data_dir: Path, batch_sizes: list[int] | None, iw_samples: int,
                    limit: int | None, progress: bool = True) -> dict:
    run, summary, model, vocab, device = load_trained(model_pt, data_dir)
    set_compute_precision(model, "float32", "audit precision")
    model.eval()
    test = task_of(run).load_split(run, data_dir, vocab, "test")  # the test set the evaluation scores
    lengths = [int(length) - 2 for length in test.lengths]
    selected = None
    if limit is not None:
        if limit < 1:
            raise ValueError(f"--limit must be >= 1, got {limit}")
        selected = stratified(lengths, min(limit, len(test)))
    sizes = batch_sizes or [run.evaluate.batch_size]
    schemes = padding_audit(model, test, sizes, run.evaluate.batch_size, iw_samples, run.evaluate.iw_chunk,
                            run.seed, selected, progress)
    sentences = list(range(len(test))) if selected is None else list(selected)
    options = getattr(model, "options", None)
    return {"what": "padding audit (reproduction.likelihood_audit padding): each test sentence scored on the uniform "
                    "protocol's one-length batches and on length-sorted batches as the paper protocol batches; with "
                    "`timesteps: padded` the latent is read at the batch's padded length",
            "model": run.model.name, "method": run.model.method, "seed": run.seed,
            "options": dataclasses.asdict(options) if dataclasses.is_dataclass(options) else dict(run.model.options),
            "timesteps": getattr(options, "timesteps", "own"),
            "epochs_completed": summary.get("epochs_completed"), "selected_epoch": summary.get("selected_epoch"),
            "test": {"file": str(test.path.name), "sentences_in_test_set": len(test), "scored": len(sentences),
                     "selection": "all" if selected is None else
                     f"stratified by length (--limit {limit}): the (i + 1/2) / {len(sentences)} quantiles of the "
                     "length-sorted test set, each scored in its batch of the full test set",
                     "sentences": sentences, "words": [lengths[i] for i in sentences]},
            "settings": {"iw_samples": iw_samples, "iw_chunk": run.evaluate.iw_chunk,
                         "one_length_batch_size": run.evaluate.batch_size, "batch_sizes": sizes,
                         "noise": f"the same standard-normal draws eps[k, sentence] in every scheme (seed {run.seed}), "
                                  "z_k = mu + sigma eps: a difference between schemes is the batching's, not Monte "
                                  "Carlo noise",
                         "posterior_differs_threshold": 1e-5},
            "precision": "float32", "schemes": schemes,
            "code_version": code_version(), "versions": environment_info(), "cpu": cpu_model(cpuinfo()),
            "threads": torch.get_num_threads(), "device": str(device), "created": now_iso()}


def padding_table(payload: dict) -> str:
    header = (f"{'scheme':<24} {'NLL':>9} {'KL':>8} {'recon@mu':>9} {'padded':>7} {'mu diff':>7} "
              f"{'|dNLL| mean/max':>17} {'|dKL| mean/max':>17} {'|drecon| mean/max':>18}")
    lines = [f"{payload['model']} ({payload['method']}, timesteps: {payload['timesteps']}), "
             f"{payload['test']['scored']} of {payload['test']['sentences_in_test_set']} test sentences, "
             f"K={payload['settings']['iw_samples']}", header]
    for name, entry in payload["schemes"].items():
        vs = entry.get("vs_one_length")
        row = (f"{name:<24} {entry['NLL']:>9.3f} {entry['KL']:>8.3f} {entry['recon_at_mean']:>9.3f} "
               f"{entry['padded_fraction']:>7.1%}")
        if vs:
            row += f" {vs['posterior_mean_differs_fraction']:>7.1%}" + "".join(
                f" {vs[key]['mean_abs']:>8.3f}/{vs[key]['max_abs']:<8.3f}" for key in ("NLL", "KL", "recon_at_mean"))
        lines.append(row)
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    subset_parser = sub.add_parser("subset")
    subset_parser.add_argument("--size", type=int, default=40)
    run_parser = sub.add_parser("run")
    run_parser.add_argument("--model-pt", type=Path, required=True)
    run_parser.add_argument("--out", type=Path, required=True, help="likelihood_audit.json (the figure goes beside it)")
    run_parser.add_argument("--ks", default=",".join(map(str, KS)))
    run_parser.add_argument("--ais-steps", default="100,500")
    run_parser.add_argument("--ais-chains", type=int, default=8)
    run_parser.add_argument("--ais-tune-chains", type=int, default=2)
    run_parser.add_argument("--leapfrog", type=int, default=5)
    run_parser.add_argument("--step-size", type=float, default=0.05)
    run_parser.add_argument("--adapt-rate", type=float, default=1.05,
                            help="step-size factor per transition of the tuning pass (Wu et al.: 1.02 over 10,000 steps)")
    run_parser.add_argument("--fit-steps", type=int, default=300)
    run_parser.add_argument("--fit-lr", type=float, default=0.02)
    run_parser.add_argument("--fit-samples", type=int, default=8)
    run_parser.add_argument("--chunk", type=int, default=500)
    run_parser.add_argument("--bdmc", type=int, default=0,
                            help="simulate this many sentences from the model and sandwich their log p(x) between "
                                 "forward and reverse AIS (bidirectional Monte Carlo); 0: off")
    run_parser.add_argument("--bdmc-steps", default="", help="AIS steps for BDMC (default: those of --ais-steps)")
    run_parser.add_argument("--threads", type=int, default=2)
    padding_parser = sub.add_parser("padding", help="how much the batching changes the numbers (timesteps: padded)")
    padding_parser.add_argument("--model-pt", type=Path, required=True)
    padding_parser.add_argument("--out", type=Path, required=True, help="the JSON to write")
    padding_parser.add_argument("--batch-sizes", default="",
                                help="length-sorted batch sizes to compare, e.g. 64,32 (default: evaluate.batch_size)")
    padding_parser.add_argument("--iw-samples", type=int, default=100)
    padding_parser.add_argument("--limit", type=int, default=None,
                                help="score only N test sentences stratified by length, each in its full-test-set batch")
    padding_parser.add_argument("--threads", type=int, default=1)
    for sub_parser in (subset_parser, run_parser, padding_parser):
        sub_parser.add_argument("--data", type=Path, default=REPO_ROOT / "data" / "processed" / "ptb")
    for sub_parser in (subset_parser, run_parser):
        sub_parser.add_argument("--subset", type=Path, default=SUBSET)
    args = parser.parse_args(argv)
    try:
        if args.command == "subset":
            write_subset(args.data, args.size, args.subset)
            print(f"wrote {args.subset}", file=sys.stderr)
            return 0
        if args.command == "padding":
            set_threads(args.threads)
            sizes = [int(size) for size in args.batch_sizes.split(",") if size]
            if args.iw_samples < 1 or any(size < 1 for size in sizes):
                raise ValueError("--iw-samples and every --batch-sizes entry must be >= 1")
            payload = padding_payload(args.model_pt, args.data, sizes, args.iw_samples, args.limit)
            write_json_atomic(args.out, payload)
            print(padding_table(payload))
            print(f"wrote {args.out}", file=sys.stderr)
            return 0
        set_threads(args.threads)
        settings = {"ks": tuple(int(k) for k in args.ks.split(",")),
                    "ais_steps": [int(s) for s in args.ais_steps.split(",") if s],
                    "ais_chains": args.ais_chains, "ais_tune_chains": args.ais_tune_chains, "leapfrog": args.leapfrog,
                    "step_size": args.step_size, "adapt_rate": args.adapt_rate, "fit_steps": args.fit_steps, "fit_lr": args.fit_lr,
                    "fit_samples": args.fit_samples, "chunk": args.chunk, "bdmc": args.bdmc}
        settings["bdmc_steps"] = [int(s) for s in args.bdmc_steps.split(",") if s] or settings["ais_steps"]
        if args.bdmc < 0:
            raise ValueError(f"--bdmc must be >= 0, got {args.bdmc}")
        payload = audit(args.model_pt, args.data, args.subset, settings)
        write_json_atomic(args.out, payload)
        draw(payload, args.out.with_suffix(".png"))
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
