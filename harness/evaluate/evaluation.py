"""Evaluate a trained run: the one evaluation command of both tasks (workflow rule `evaluate`).

    python -m harness.evaluate --model .../model.pt --data data/processed/<dataset> --out .../metrics.json \
        [--samples-out .../samples.jsonl] [--vectors .../word2vec.kv] [--run-config '<json>']

The run's task (harness.tasks) evaluates it: language models in harness.evaluate.lm_evaluate (both protocols; with
--samples-out the test set's reconstructions), dialogue in harness.evaluate.dialogue_evaluate (sampled responses, written to
--samples-out, scored with the word vectors of --vectors). metrics.json is written last (docs/results_format.md).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.core.config import RunConfig
from harness.core.io import set_threads
from harness.core.runs import load_trained
from harness.tasks import task_of
from metrics.catalogue import METRICS


def evaluate_run(model_path: Path, data_dir: Path, out_path: Path, run: RunConfig | None = None,
                 progress: bool = True, samples_path: Path | None = None, vectors_path: Path | None = None) -> dict:
    """Evaluate the trained `model_path` on its test split (evaluation settings from `run` when given)."""
    loaded = load_trained(model_path, data_dir, run)
    run, vocab = loaded[0], loaded[3]
    task = task_of(run)
    test = task.load_split(run, data_dir, vocab, "test")
    return task.evaluate_run(loaded, test, Path(data_dir), Path(out_path), samples_path=samples_path,
                             vectors_path=vectors_path, progress=progress)


def summary_line(payload: dict) -> str:
    """The headline numbers of a metrics.json payload, for the log."""
    uniform = payload["metrics"]["uniform"]
    shown = ", ".join(f"{name} {uniform[name]:.3f}" for name, metric in METRICS.items()
                      if name in uniform and metric.better is not None)
    return f"{payload['model']} on {payload['dataset']} (uniform protocol): {shown}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="model.pt written by harness.train.training")
    parser.add_argument("--data", required=True, type=Path, help="preprocessed dataset folder")
    parser.add_argument("--out", required=True, type=Path, help="metrics.json to write")
    parser.add_argument("--samples-out", type=Path, default=None,
                        help="samples.jsonl: reconstructions (language models; optional), sampled responses "
                             "(dialogue; required)")
    parser.add_argument("--vectors", type=Path, default=None, help="dialogue: word vectors of the BOW metrics")
    parser.add_argument("--run-config", default=None, help="JSON RunConfig (evaluation settings may differ)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    run = RunConfig.from_dict(json.loads(args.run_config)) if args.run_config else None
    try:
        payload = evaluate_run(args.model, args.data, args.out, run, progress=not args.no_progress,
                               samples_path=args.samples_out, vectors_path=args.vectors)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary_line(payload), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
