"""What an experiment will spend, in words: per model its data caps, epochs, batch, optimiser, evaluation samples,
device and precision, and where its results go. Printed by the workflow before any job (also by `snakemake -n`)
and by `harness.train.training` when a run starts, so that a budget inherited from a base config is seen, not found later.
"""
from __future__ import annotations

from harness.core.config import ExperimentConfig, RunConfig
from harness.data.registry import DATASETS


def data_caps(run: RunConfig) -> str:
    caps = [f"{split} {cap}" for split in ("train", "valid", "test")
            if (cap := getattr(run.data, f"max_{split}_sentences")) is not None]
    remapped = [f"{out} from {source}" for out, source in run.data.remapped().items()]
    return ", ".join(caps + remapped) or "full"


def run_budget(run: RunConfig, evaluation: bool = True) -> str:
    """One line: the training and evaluation budget of one run (all seeds of a model share it).

    evaluation=False leaves the evaluation's samples out: `harness.train.training` prints the line for its job, whose run
    config the workflow passes without the `evaluate` block (evaluation settings do not retrain), so the run's
    `evaluate` there holds the defaults, not what the evaluation job will use."""
    train, evaluate = run.train, run.evaluate
    optimiser = f"{train.optimizer} lr {train.lr:g}" + (" decayed on plateau" if train.lr_decay else "")
    epochs = f"{train.epochs} epochs" + (f" at most (early stopping, patience {train.early_stopping.patience} "
                                         "validations)" if train.early_stopping else "")
    scoring = (f"{evaluate.responses_per_context} responses per context" if DATASETS[run.dataset].kind == "dialogue"
               else f"IW-NLL K={evaluate.iw_samples}")
    return (f"{run.dataset} data {data_caps(run)}; {epochs}, batch {train.batch_size}, {optimiser}, "
            f"{train.precision}; " + (f"{scoring}; " if evaluation else "") + f"device {run.device}")


def experiment_budget(experiment: ExperimentConfig) -> list[str]:
    """Lines for the whole experiment: the output folder, then one line per (model, dataset) with its seeds."""
    runs = experiment.runs()
    seeds = ", ".join(map(str, experiment.raw["seeds"]))
    lines = [f"experiment {experiment.experiment!r} -> results/{experiment.experiment}/ ({len(runs)} runs, "
             f"seeds {seeds})"]
    seen = set()
    for run in runs:
        if (run.model.name, run.dataset) not in seen:
            seen.add((run.model.name, run.dataset))
            lines.append(f"  {run.model.name} ({run.model.method}): {run_budget(run)}")
    return lines
