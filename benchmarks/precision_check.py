"""Does bfloat16 training change what a model learns? The default experiment's TWR-VAE, float32 against bfloat16.

    python -m benchmarks.precision_check [--seeds 1,2,3] [--out results/benchmarks/precision_default.json]

Trains and evaluates config/config.yaml's TWR-VAE (6,000 PTB sentences, 4 epochs, paper sizes, K = 100) once per
seed with `precision: float32` and once with `precision: bfloat16` (training and evaluation), through the same
harness.train.training / harness.evaluate.evaluation functions as the workflow, and writes every run's metrics with, per precision,
the mean and spread over seeds: bfloat16 is safe where its means lie within the float32 seed spread.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from harness.core.config import REPO_ROOT, ExperimentConfig
from harness.evaluate.evaluation import evaluate_run
from harness.core.io import code_version, now_iso, set_threads, write_json_atomic
from harness.core.machine import cpu_model, cpuinfo
from harness.train.training import train_run

METRICS = {"uniform": ("NLL", "PPL", "KL", "MI", "AU"), "paper": ("NLL", "PPL", "KL", "MI")}


def run_once(seed: int, precision: str, data_dir: Path) -> dict:
    run = ExperimentConfig.from_file(REPO_ROOT / "config" / "config.yaml").run_config("ptb", "twr-vae", seed)
    run = dataclasses.replace(run, train=dataclasses.replace(run.train, precision=precision),
                              evaluate=dataclasses.replace(run.evaluate, precision=precision))
    with tempfile.TemporaryDirectory(prefix="textvae-precision-") as out:
        summary = train_run(run, data_dir, Path(out), progress=False)
        metrics = evaluate_run(Path(out) / "model.pt", data_dir, Path(out) / "metrics.json", run, progress=False)
    return {"seed": seed, "precision": precision, "train_seconds": summary["train_seconds"],
            "metrics": {protocol: {key: metrics["metrics"][protocol][key] for key in keys}
                        for protocol, keys in METRICS.items()}}


def summarise(runs: list[dict]) -> dict:
    summary = {}
    for precision in ("float32", "bfloat16"):
        group = [r for r in runs if r["precision"] == precision]
        summary[precision] = {
            protocol: {key: {"mean": statistics.fmean(r["metrics"][protocol][key] for r in group),
                             "std": statistics.stdev(r["metrics"][protocol][key] for r in group) if len(group) > 1 else None}
                       for key in keys} for protocol, keys in METRICS.items()}
        summary[precision]["train_seconds"] = statistics.fmean(r["train_seconds"] for r in group)
    summary["within_float32_spread"] = {
        protocol: {key: abs(summary["bfloat16"][protocol][key]["mean"] - summary["float32"][protocol][key]["mean"])
                   <= 2 * (summary["float32"][protocol][key]["std"] or 0.0) for key in keys}
        for protocol, keys in METRICS.items()}
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--data", type=Path, default=REPO_ROOT / "data" / "processed" / "ptb")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "benchmarks" / "precision_default.json")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    if not (args.data / "train.txt").is_file():
        print(f"error: {args.data}/train.txt not found: run `snakemake --cores 2` first", file=sys.stderr)
        return 2
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for precision in ("float32", "bfloat16"):
            runs.append(run_once(seed, precision, args.data))
            u = runs[-1]["metrics"]["uniform"]
            print(f"seed {seed} {precision}: NLL {u['NLL']:.2f} KL {u['KL']:.2f} MI {u['MI']:.2f} AU {u['AU']} "
                  f"({runs[-1]['train_seconds']:.0f} s training)", file=sys.stderr)
    payload = {"runs": runs, "summary": summarise(runs), "config": "config/config.yaml, model twr-vae",
               "cpu": cpu_model(cpuinfo()), "threads": torch.get_num_threads(), "torch": torch.__version__,
               "code_version": code_version(), "created": now_iso(),
               "rule": "bfloat16 is within the float32 spread where |mean difference| <= 2 float32 standard deviations"}
    write_json_atomic(args.out, payload)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
