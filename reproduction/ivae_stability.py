"""Does iVAE's dual KL estimate stay finite? config/dialogue_smoke.yaml's `ivae` run (baselines/ivae.py), trained
once per seed with every critic update's loss and every model update's dual KL estimate recorded (issue 18: on a
fresh clone the estimate went to -2.5e28 and the critic loss to inf at step 67, and the NaN guard stopped the run).

    python -m reproduction.ivae_stability --seeds 1,2,3,4,5 --out results/benchmarks/ivae_stability.json \
        [--data data/processed/dailydialog] [--vectors data/processed/dailydialog/word2vec.kv] [--epochs N] \
        [--options JSON] [--threads 1]

The processed data and word vectors are the smoke config's workflow outputs; build them with
    snakemake --cores 2 --configfile config/dialogue_smoke.yaml data/processed/dailydialog/word2vec.kv
Training is harness.train.training.train_run, as the workflow's train rule runs it (same run config, data caps, word-vector
initialisation, NaN guard); `--epochs` shortens every seed's run alike and the JSON says so. `--options` overrides
method options of the config's entry, e.g. the code before issue 18's fix (a plain nu trained at train.lr, PyTorch's
initialisation, samplers without normalisation): --options '{"critic_layer_norm": false, "sampler_layer_norm": false,
"critic_lr_scale": 1, "init": "pytorch"}'. One thread by
default: on a shared two-core machine two threads made a step about ten times slower.

Per seed the JSON holds whether training finished (else the NaN guard's message), the min / max of the dual KL
estimate (the batch mean of baselines/ivae.py `dual_kl` at each model update, before beta) and of the critic loss
(the batch mean of `critic_loss` at each critic update), how many of those were not finite, and the validation loss
(recon + dual KL, the harness's selection criterion) after every epoch, and the trained prior's sample spread
(`prior_spread`: 0 = every response of a context the same).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import sys
import tempfile
from pathlib import Path
from unittest import mock

import torch

from baselines.ivae import IVAE
from harness.core.config import REPO_ROOT, ExperimentConfig
from harness.core.io import code_version, environment_info, now_iso, set_threads, write_json_atomic
from harness.core.machine import cpu_model, cpuinfo
from harness.train.optim import TrainingDiverged
from harness.train.training import train_run

CONFIG = "config/dialogue_smoke.yaml"
MODEL = "ivae"
DATASET = "dailydialog"


class _RecordingOptimisation:
    """Stands in for the harness's Optimisation inside iVAE's training step: notes the batch mean of every critic
    loss it is handed, then lets the real one take the step (and its NaN guard act)."""

    def __init__(self, optimisation, critic_losses: list[float]):
        self._optimisation, self._critic_losses = optimisation, critic_losses

    def minimise(self, per_example_loss, step, groups=None):
        if groups == ("critic",):
            self._critic_losses.append(float(per_example_loss.detach().mean()))
        return self._optimisation.minimise(per_example_loss, step, groups)

    def __getattr__(self, name):
        return getattr(self._optimisation, name)


@contextlib.contextmanager
def recording(trace: dict[str, list[float]]):
    """While active, every IVAE training step appends to trace["critic_loss"] and trace["dual_kl"]."""
    original = IVAE.training_step

    def training_step(model, batch, step, optimisation):
        terms = original(model, batch, step, _RecordingOptimisation(optimisation, trace["critic_loss"]))
        trace["dual_kl"].append(float(terms.kl.detach().mean()))
        return terms

    with mock.patch.object(IVAE, "training_step", training_step):
        yield


def extremes(values: list[float]) -> dict:
    """min / max over the finite values, and how many were not finite (JSON has no inf or NaN)."""
    finite = [v for v in values if math.isfinite(v)]
    return {"min": min(finite, default=None), "max": max(finite, default=None), "count": len(values),
            "non_finite": len(values) - len(finite)}


def overall_range(runs: list[dict], key: str) -> list[float | None]:
    """[min, max] of a logged quantity over every seed's finite values; the non-finite ones are counted per seed."""
    lows = [r[key]["min"] for r in runs if r[key]["min"] is not None]
    highs = [r[key]["max"] for r in runs if r[key]["max"] is not None]
    return [min(lows, default=None), max(highs, default=None)]


def smoke_run(seed: int, epochs: int | None = None, options: dict | None = None):
    """The smoke config's iVAE run config, with `epochs` and method `options` overridden where given."""
    run = ExperimentConfig.from_file(REPO_ROOT / CONFIG).run_config(DATASET, MODEL, seed)
    if epochs is not None:
        run = dataclasses.replace(run, train=dataclasses.replace(run.train, epochs=epochs))
    if options:
        run = dataclasses.replace(run, model=dataclasses.replace(run.model, options={**run.model.options, **options}))
    return run


def prior_spread(model_path: Path, data: Path, run, contexts: int = 50, draws: int = 10) -> float:
    """Mean over the first validation contexts of the spread (std over `draws` samples, mean over z's dimensions) of
    z ~ p(z|c): 0 when the prior sampler's noise no longer reaches z (dead ReLUs; then the S responses of a context
    are one greedy response repeated)."""
    from harness.core.runs import load_trained
    from harness.tasks import task_of

    run, _, model, vocab, device = load_trained(model_path, data, run)
    valid = task_of(run).load_split(run, data, vocab, "valid")
    batch = valid.collate(list(range(min(contexts, len(valid))))).to(device)
    model.eval()
    with torch.no_grad():
        c, _ = model.encode_context(batch)
        z = model.prior_net(c.repeat_interleave(draws, dim=0)).view(c.size(0), draws, -1)
    return float(z.std(1).mean())


def train_seed(seed: int, data: Path, vectors: Path | None, epochs: int | None, options: dict | None) -> dict:
    run = smoke_run(seed, epochs, options)
    trace: dict[str, list[float]] = {"dual_kl": [], "critic_loss": []}
    record = {"seed": seed, "finished": False, "diverged": None}
    with tempfile.TemporaryDirectory(prefix="ivae-stability-") as out, recording(trace):
        try:
            summary = train_run(run, data, Path(out), progress=False, vectors_path=vectors)
            record["prior_z_spread"] = prior_spread(Path(out) / "model.pt", data, run)
        except TrainingDiverged as error:
            summary, record["diverged"] = None, str(error)
    record.update(dual_kl=extremes(trace["dual_kl"]), critic_loss=extremes(trace["critic_loss"]),
                  model_updates=len(trace["dual_kl"]))
    if summary is not None:
        history = summary["history"]
        record.update(finished=True, final_valid_loss=history[-1]["valid_loss"],
                      valid_loss_per_epoch=[entry["valid_loss"] for entry in history],
                      train_kl_per_epoch=[entry["train_kl"] for entry in history],
                      selected_epoch=summary["selected_epoch"], train_seconds=summary["train_seconds"],
                      embedding_init={k: v for k, v in (summary["embedding_init"] or {}).items() if k != "vectors"})
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="1,2,3,4,5", help="comma-separated seeds")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "benchmarks" / "ivae_stability.json")
    parser.add_argument("--data", type=Path, default=REPO_ROOT / "data" / "processed" / DATASET,
                        help="the processed DailyDialog folder of the smoke config")
    parser.add_argument("--vectors", type=Path, default=None,
                        help="word vectors initialising the embedding (default: <data>/word2vec.kv, as the workflow)")
    parser.add_argument("--epochs", type=int, default=None, help="train every seed for this many epochs instead")
    parser.add_argument("--options", type=json.loads, default=None, help="JSON: method options to override")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    vectors = args.vectors or args.data / "word2vec.kv"
    if not (args.data / "stats.json").exists() or not vectors.exists():
        parser.error(f"{args.data} lacks the processed data or word vectors: run `snakemake --cores 2 --configfile "
                     f"{CONFIG} data/processed/{DATASET}/word2vec.kv` first")
    seeds = [int(s) for s in args.seeds.split(",")]
    base = smoke_run(seeds[0], options=args.options)
    runs = []
    for seed in seeds:
        runs.append(train_seed(seed, args.data, vectors, args.epochs, args.options))
        r = runs[-1]
        print(f"seed {seed}: {'finished' if r['finished'] else 'DIVERGED'}; dual KL in [{r['dual_kl']['min']}, "
              f"{r['dual_kl']['max']}], critic loss in [{r['critic_loss']['min']}, {r['critic_loss']['max']}], "
              f"final valid loss {r.get('final_valid_loss')}, prior z spread {r.get('prior_z_spread')}", file=sys.stderr)
    epochs = base.train.epochs if args.epochs is None else args.epochs
    payload = {
        "what": f"{CONFIG} `{MODEL}` on {DATASET}, one training run per seed (harness.train.training.train_run); dual KL = "
                "batch mean of nu(z_q) - exp(nu(z_p)) + 1 at each model update, critic loss = batch mean of "
                "exp(nu(z_p)) - nu(z_q) at each critic update",
        "config": CONFIG, "model": MODEL, "dataset": DATASET,
        "options": dataclasses.asdict(IVAE.parse_options(base.model.options)),
        "options_overridden": args.options,
        "train": {**dataclasses.asdict(base.train), "epochs": epochs},
        "data": dataclasses.asdict(base.data),
        "reduction": None if epochs == base.train.epochs else
        f"every seed trained {epochs} epochs instead of the config's {base.train.epochs}",
        "all_finished": all(r["finished"] for r in runs),
        "dual_kl_range": overall_range(runs, "dual_kl"),
        "critic_loss_range": overall_range(runs, "critic_loss"),
        "runs": runs,
        "threads": torch.get_num_threads(), "cpu": cpu_model(cpuinfo()),
        "code_version": code_version(), "versions": environment_info(), "created": now_iso(),
    }
    write_json_atomic(args.out, payload)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0 if payload["all_finished"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
