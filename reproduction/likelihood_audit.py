"""Likelihood audit: how tight is a trained language model's importance-weighted NLL? (issue 32)

    python -m reproduction.likelihood_audit subset                     # writes the committed subset (done once)
    python -m reproduction.likelihood_audit run --model-pt runs/.../model.pt --out results/reference/.../likelihood_audit.json

An importance-weighted estimate with the model's q(z|x) as proposal bounds -log p(x) from above, in expectation, and
the bound can be loose by many nats when q is far narrower than the true posterior (its weights then have infinite
variance). On a fixed, committed subset of PTB test sentences (`results/reference/ptb_audit_subset.json`: N sentences
stratified by length, tied to test.txt's sha256), `run` scores one model with every estimator of metrics/likelihood.py:

- IW with K in {1, 10, 100, 500, 5000} for each proposal: q; q widened (x1.5, x2); a defensive mixture (q widened x2
  with weight 0.9, the prior 0.1); for TWR-VAE the mixture of its timestep posteriors; a Gaussian fitted to each
  sentence's ELBO with the decoder frozen. The K sweep uses the first K of the same K_max draws (nested estimates);
- AIS from the prior with increasing numbers of intermediate distributions (step sizes tuned on one pass with a few
  chains, then frozen for a second pass with a new seed and more chains);

each with its per-sentence values, the mean NLL over the subset, its Monte Carlo standard error, the median effective
sample size and its compute seconds; and the paper protocol's number on the same sentences for reference. The figure
beside the JSON plots every estimator's NLL against its compute. All in float32 (AIS and the fitted proposal need
gradients in z); sentences are batched by exact length, so no sentence's score depends on another's padding.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import torch

from harness.core.config import REPO_ROOT
from harness.data.lm_dataset import LMDataset
from harness.data.vocab import Vocab
from harness.core.io import code_version, environment_info, now_iso, set_threads, write_json_atomic
from harness.core.machine import cpu_model, cpuinfo
from harness.core.precision import set_compute_precision
from harness.core.runs import load_trained
from metrics.likelihood import (Estimate, GaussianMixtureProposal, GaussianProposal, Mixture, StandardNormal,
                                annealed_importance_sampling, draw_log_weights, fit_gaussian_proposal,
                                summarise_log_weights)

SUBSET = REPO_ROOT / "results" / "reference" / "ptb_audit_subset.json"
KS = (1, 10, 100, 500, 5000)


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


def load_subset(path: Path, data_dir: Path) -> list[int]:
    subset = json.loads(Path(path).read_text())
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
    fit_seconds = time.perf_counter() - started
    for name, proposal in found.items():
        sweep, seconds = iw_sweep(log_likelihood, proposal, settings["ks"], settings["chunk"], generator)
        for k, estimate in sweep.items():
            results[f"IW {name}, K={k}"] = {
                "estimator": f"IW {name}", "K": k, "nll": (-estimate.log_px).tolist(), "ess": estimate.ess.tolist(),
                "stderr": estimate.stderr.tolist(), "seconds": seconds * k / max(settings["ks"])
                + (fit_seconds if name == "fitted Gaussian" else 0.0)}
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
    full = metrics_of_these_weights(model_pt.parent / "metrics.json", summary)
    return {"what": "likelihood audit (reproduction.likelihood_audit): -log p(x) estimates per sentence of the subset",
            "model": run.model.name, "method": run.model.method, "seed": run.seed,
            "epochs_completed": summary.get("epochs_completed"), "selected_epoch": summary.get("selected_epoch"),
            "subset": {"file": subset_path.name, "sentences": order}, "settings": {**settings, "ks": list(settings["ks"])},
            "precision": "float32", "full_test_set_metrics": full, "estimators": merged,
            "code_version": code_version(), "versions": environment_info(), "cpu": cpu_model(cpuinfo()),
            "threads": torch.get_num_threads(), "created": now_iso()}


def draw(payload: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    lines: dict[str, list[tuple[float, float]]] = {}
    for name, entry in payload["estimators"].items():
        if "estimator" in entry:
            lines.setdefault(entry["estimator"], []).append((max(entry["seconds"], 1e-3), entry["nll_mean"]))
    for name, points in sorted(lines.items()):
        points.sort()
        axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, linewidth=1, label=name)
    paper = payload["estimators"]["paper protocol"]["nll_mean"]
    axis.axhline(paper, color="black", linestyle="--", linewidth=1, label=f"paper protocol {paper:.1f}")
    axis.set_xscale("log")
    axis.set_xlabel(f"compute seconds ({payload['cpu']}, {payload['threads']} threads)")
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
    run_parser.add_argument("--threads", type=int, default=2)
    for sub_parser in (subset_parser, run_parser):
        sub_parser.add_argument("--data", type=Path, default=REPO_ROOT / "data" / "processed" / "ptb")
        sub_parser.add_argument("--subset", type=Path, default=SUBSET)
    args = parser.parse_args(argv)
    try:
        if args.command == "subset":
            write_subset(args.data, args.size, args.subset)
            print(f"wrote {args.subset}", file=sys.stderr)
            return 0
        set_threads(args.threads)
        settings = {"ks": tuple(int(k) for k in args.ks.split(",")),
                    "ais_steps": [int(s) for s in args.ais_steps.split(",") if s],
                    "ais_chains": args.ais_chains, "ais_tune_chains": args.ais_tune_chains, "leapfrog": args.leapfrog,
                    "step_size": args.step_size, "adapt_rate": args.adapt_rate, "fit_steps": args.fit_steps, "fit_lr": args.fit_lr,
                    "fit_samples": args.fit_samples, "chunk": args.chunk}
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
