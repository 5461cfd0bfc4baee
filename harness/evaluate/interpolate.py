"""Latent-space interpolation between test sentences (Li et al. 2020, §4.3: Figures 2-3, Tables 4 and 7).

For each pair (s1, s2) of test sentences: z1, z2 = the posterior means of the latent the decoder is fed
(z_T for TWR-VAE), z_alpha = (1 - alpha) z1 + alpha z2 for alpha = 0, 1/steps, ..., 1, each decoded greedily.
Pairs are disjoint and random (a permutation of the test set seeded with the run's seed, taken two by two),
so adjacent corpus sentences, which share a topic, are not paired on purpose. The decoding itself is
harness.evaluate.interpolation's `interpolate_pairs` (which `python -m harness.methods.check_method` runs on a tiny model too).

Writes `interpolation.json` (ROUGE-1/2/L F1 curves against s1 and s2, averaged over the pairs, with the
settings, data, config and code version) and `interpolation.jsonl` (every pair's decoded sentences).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from harness.core.config import InterpolateConfig, RunConfig
from harness.core.contract import build_dataclass
from harness.evaluate.interpolation import interpolate_pairs, random_pairs, sentence_text  # noqa: F401  (re-exported)
from harness.core.io import atomic_write, code_version, environment_info, now_iso, set_threads, write_json_atomic
from harness.core.runs import data_description, load_trained
from harness.tasks import task_of
from metrics.rouge import interpolation_curves


def interpolate_run(model_path: Path, data_dir: Path, out_json: Path, out_samples: Path, settings: InterpolateConfig,
                    run: RunConfig | None = None, progress: bool = True) -> dict:
    run, summary, model, vocab, device = load_trained(model_path, data_dir, run)
    test = task_of(run).load_split(run, data_dir, vocab, "test")
    torch.manual_seed(run.seed)  # methods that draw noise inside `posterior` (SA-VAE's SVI) use the global RNG
    started = time.perf_counter()
    records = interpolate_pairs(model, test, vocab, random_pairs(len(test), settings.pairs, run.seed), settings,
                                device, progress)
    curves = interpolation_curves([(r["source"], r["target"], r["sentences"]) for r in records])
    seconds = time.perf_counter() - started

    def write_samples(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    atomic_write(out_samples, write_samples)
    payload = {
        "schema_version": 1,
        "experiment": run.experiment, "dataset": run.dataset, "model": run.model.name, "method": run.model.method,
        "paper_name": run.model.paper_name, "seed": run.seed,
        "protocol": ("z = posterior mean of the decoder's latent; z_alpha = (1 - alpha) z1 + alpha z2; greedy "
                     "decoding; ROUGE F1 (rouge-score, whitespace tokens) against s1 (source) and s2 (target), "
                     "mean over pairs"),
        "settings": {"pairs": len(records), "alphas": settings.alphas, "max_length": settings.max_length},
        "curves": curves,
        "data": data_description(run, data_dir, summary["train_sentences"], test),
        "config": run.to_dict(),
        "code_version": code_version(),
        "versions": environment_info(),
        "device": str(device),
        "timing": {"interpolate_seconds": seconds},
        "created": now_iso(),
    }
    write_json_atomic(out_json, payload)
    return payload


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="model.pt written by harness.train.training")
    parser.add_argument("--data", required=True, type=Path, help="preprocessed dataset folder")
    parser.add_argument("--out", required=True, type=Path, help="interpolation.json to write")
    parser.add_argument("--samples-out", required=True, type=Path, help="interpolation.jsonl to write")
    parser.add_argument("--settings", default="{}", help="JSON of the config's `interpolate` section")
    parser.add_argument("--run-config", default=None, help="JSON RunConfig (evaluation settings may differ)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    settings = build_dataclass(InterpolateConfig, json.loads(args.settings), "interpolate")  # lists become tuples
    run = RunConfig.from_dict(json.loads(args.run_config)) if args.run_config else None
    payload = interpolate_run(args.model, args.data, args.out, args.samples_out, settings, run,
                              progress=not args.no_progress)
    curves = payload["curves"]
    print(f"{payload['model']} on {payload['dataset']}: {payload['settings']['pairs']} pairs; ROUGE-L F1 vs s1 "
          f"{curves['rougeL']['source'][0]:.3f} -> {curves['rougeL']['source'][-1]:.3f}, vs s2 "
          f"{curves['rougeL']['target'][0]:.3f} -> {curves['rougeL']['target'][-1]:.3f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
