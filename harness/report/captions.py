"""Table captions' account of how the runs were trained, built from the run configs every metrics.json carries.

The caption names the experiment's shared recipe (the value most models use for each training key) and, per
model, every key that differs, the options that change what a number means (KL over padded timesteps, a reduced
precision) and, for dialogue, each model's sizes and options. Plain text; harness.report.tables escapes it for LaTeX.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any, Iterable

from harness.core.config import RunConfig
from harness.train.early_stopping import describe as describe_early_stopping
from harness.train.lr_schedule import describe as describe_lr_decay

DIALOGUE_SIZE_DEFAULTS = {"emb_dim": 200, "hidden_dim": 300, "z_dim": 200}  # the CVAE family's (Appendix F)


def train_setting(key: str, value: Any) -> str:
    """One train setting as a caption lists it: `key value`, the lr decay and early stopping rules in words."""
    if key == "lr_decay" and value is not None:
        return f"{key} ({describe_lr_decay(value)})"
    if key == "early_stopping" and value is not None:
        return f"{key} ({describe_early_stopping(value)})"
    return f"{key} {value}"


def dialogue_model_description(name: str, options: dict) -> str:
    """`name: emb/hidden/z 200/300/200, key value, ...`: every option a config sets is named."""
    sizes = "/".join(str(options.get(key, default)) for key, default in DIALOGUE_SIZE_DEFAULTS.items())
    others = "".join(f", {key} {value}" for key, value in sorted(options.items()) if key not in DIALOGUE_SIZE_DEFAULTS)
    return f"{name}: emb/hidden/z {sizes}{others}"


def non_default_options(run: RunConfig) -> dict[str, Any]:
    """The options of the run's model that differ from its method's defaults."""
    from harness.methods.lookup import get_method, load_plugins

    load_plugins(run.plugins)  # a method of a plugin module registers itself on import
    defaults = dataclasses.asdict(get_method(run.model.method).Options())
    return {key: value for key, value in sorted(run.model.options.items()) if defaults.get(key, object()) != value}


def method_description(run: RunConfig) -> str:
    """`model (method m: key value, ...)`: the method behind a row and the options it runs with."""
    options = ", ".join(f"{key} {value}" for key, value in non_default_options(run).items())
    return f"{run.model.name} (method {run.model.method}" + (f": {options})" if options else ", its defaults)")


def _train_settings(run: RunConfig) -> dict[str, Any]:
    settings = dataclasses.asdict(run.train)
    for key in ("lr_decay", "early_stopping"):  # unset: not named (captions stay those of runs before the options)
        if settings.get(key) is None:
            settings.pop(key, None)
    return settings


def _shared(values: Iterable[Any]) -> Any:
    """The value most models use (ties: the first in model-name order)."""
    counts = Counter(repr(value) for value in values)
    first = max(counts.values())
    return next(value for value in values if counts[repr(value)] == first)


def training_caption(records: list[dict], table: str) -> str:
    """How the runs behind `records` (metrics.json payloads of one table) were trained; records without a run
    config (not written by harness.evaluate.evaluation) are counted, not described."""
    unknown = sum("config" not in record for record in records)
    records = [record for record in records if "config" in record]
    note = f" {unknown} result file(s) carry no run config: their training is not described." if unknown else ""
    if not records:
        return note.strip()
    runs = {}
    for record in records:
        run = RunConfig.from_dict(record["config"])
        runs.setdefault(run.model.name, run)
    models = [runs[name] for name in sorted(runs)]
    settings = {run.model.name: _train_settings(run) for run in models}
    shared = {key: _shared([settings[run.model.name].get(key) for run in models])
              for key in sorted({key for values in settings.values() for key in values})}
    grouped: dict[str, list[str]] = {}  # identical differences are listed once, with every model that has them
    for run in models:
        differing = {key: value for key, value in settings[run.model.name].items() if shared.get(key) != value}
        if differing:
            grouped.setdefault(", ".join(train_setting(k, v) for k, v in sorted(differing.items())), []).append(
                run.model.name)
    changed = "".join(f" {', '.join(names)}: {values}." for values, names in grouped.items())
    padded = [run.model.name for run in models if run.model.options.get("timesteps") == "padded"]
    if padded:
        changed += (f" {', '.join(padded)}: KL and latent read over the batch's padded length, padding included "
                    "(timesteps padded, the original code's arithmetic).")
    if str(table) == "5":  # dialogue models carry their layer sizes in their options
        described = "; ".join(dialogue_model_description(f"{run.model.name} (method {run.model.method})",
                                                         run.model.options) for run in models)
        sizes, described = "sizes and options per model below", f" Models: {described}."
    else:
        arch = _shared([run.architecture for run in models])
        sizes, described = f"emb/hidden/z {arch.emb_dim}/{arch.hidden_dim}/{arch.z_dim}", ""
        for other, names in _by_value({run.model.name: run.architecture for run in models}).items():
            if other != arch:  # a baseline's own paper's sizes
                changed += (f" {', '.join(names)}: emb/hidden/z {other.emb_dim}/{other.hidden_dim}/{other.z_dim}"
                            f"{f', dropout {other.dropout}' if other.dropout != arch.dropout else ''}.")
    precision = "".join(
        f" {stage} precision: {value} ({', '.join(names)}; RNN and output-layer matmuls; the rest float32)."
        for stage, key in (("Training", "train"), ("Evaluation", "evaluate"))
        for value, names in _by_value({run.model.name: getattr(run, key).precision for run in models}).items()
        if value != "float32")
    order = ("batches in ascending length order every epoch" if shared.get("shuffle") is False
             else "length-bucketed batches in random order")
    validation = (f"validated every {shared['validate_every']} epochs" if shared.get("validate_every", 1) > 1
                  else "validated every epoch")
    kept = "the last epoch's" if shared.get("select_by") == "last" else "the validated epoch with the lowest loss"
    decay = f" with decay ({describe_lr_decay(shared['lr_decay'])})" if shared.get("lr_decay") else ""
    experiments = ", ".join(sorted({run.experiment for run in models}))
    seeds = ", ".join(str(seed) for seed in sorted({int(record["seed"]) for record in records}))
    per_model = f" Per model:{changed}" if changed else ""
    methods = "" if str(table) == "5" else f" Methods: {'; '.join(method_description(run) for run in models)}."
    return (f"Training budget of experiment {experiments}: {shared['epochs']} epochs, batch {shared['batch_size']}, "
            f"{shared.get('optimizer', 'adam')} lr {shared['lr']}{decay}, {sizes}, {order}, {validation}, "
            f"weights kept: {kept}; seeds {seeds}.{described}{methods}{per_model}{precision}{note}")


def _by_value(values: dict[str, Any]) -> dict[Any, list[str]]:
    grouped: dict[Any, list[str]] = {}
    for name, value in values.items():
        grouped.setdefault(value, []).append(name)
    return grouped
