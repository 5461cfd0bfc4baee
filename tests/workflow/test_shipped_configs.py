"""Every shipped config runs end to end, scaled down, in CI: every model entry of every file in config/ trains a
few batches with its own method, options, optimiser and schedules, is evaluated as the `evaluate` rule evaluates it,
and the config's tables are rendered from those results, so that a shipped config cannot silently break (a method
that crashes or diverges with its shipped options, an entry the harness no longer accepts, a table that cannot take
the config's rows).

The scaling is a config overlay (`base:` the shipped file, harness.core.config.layered_config), as a user would write it:
tiny sizes, one epoch of batches of 8 on the committed tiny datasets, small evaluation budgets, and every option
counted in updates (`*_steps`) capped at 2, so that each phase of a schedule (KL warm-up, SeqGAN's pre-training then
adversarial updates) is reached within those few batches. The language-modelling entries train on the tiny PTB
sample whatever their dataset, the dialogue entries on the tiny DailyDialog sample: what is checked here is the
entry, not the dataset (fetching and preprocessing every dataset is tested in tests/harness/data). The workflow's
plan for every shipped config is checked by tests/workflow/test_workflow.py's dry runs, and the embedded default and
the dialogue DAG run through Snakemake there."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import FIXTURES, REPO_ROOT, skip_without_bfloat16
from harness.report.aggregate import main as aggregate_main
from harness.core.config import ExperimentConfig, RunConfig
from harness.evaluate.evaluation import evaluate_run
from harness.methods.lookup import get_method
from harness.core.runs import MODEL
from harness.train.training import train_run

SHIPPED = sorted(path.name for path in (REPO_ROOT / "config").glob("*.yaml"))
TINY_SIZES = {"emb_dim": 16, "hidden_dim": 16, "z_dim": 4}
MAX_STEPS_OPTION = 2
TABLES = ("2", "3", "5")


def task_of_method(method: str) -> str:
    return get_method(method).task


def scaled_options(method: str, options: dict) -> dict:
    """The entry's options with the dialogue models' sizes made tiny and every `*_steps` count capped."""
    names = {field for field in get_method(method).Options.__dataclass_fields__}
    scaled = {key: value for key, value in TINY_SIZES.items() if key in names}
    scaled.update({key: min(value, MAX_STEPS_OPTION) for key, value in options.items()
                   if key.endswith("_steps") and isinstance(value, int) and not isinstance(value, bool)})
    return scaled


def scaled_overlay(name: str) -> dict:
    """The overlay that shrinks config/<name> to a few batches per model entry."""
    raw = ExperimentConfig.from_file(REPO_ROOT / "config" / name).raw
    model_defs = {}
    for model in raw["models"]:
        entry = raw["model_defs"][model]
        overlay = {"train": {"epochs": 1, "batch_size": 8, "validate_every": 1}}
        if entry.get("architecture"):
            overlay["architecture"] = TINY_SIZES
        options = scaled_options(entry["method"], entry.get("options") or {})
        if options:
            overlay["options"] = options
        model_defs[model] = overlay
    return {
        "base": str(REPO_ROOT / "config" / name),
        "experiment": f"scaled-{name.removesuffix('.yaml')}",
        "data_mirror": None, "paper_values": None, "allow_download": False, "device": "cpu", "seeds": [1],
        "data_options": {dataset: {"max_train_sentences": 48, "max_valid_sentences": 8, "max_test_sentences": 8}
                         for dataset in raw["datasets"]},
        "architecture": TINY_SIZES,
        "evaluate": {"iw_samples": 4, "iw_chunk": 4, "batch_size": 8, "mi_samples": 2, "responses_per_context": 2,
                     "max_response_length": 8},
        "model_defs": model_defs,
    }


def entry_body(run: RunConfig) -> str:
    """What makes a run's training and evaluation differ, apart from its dataset and seed."""
    payload = run.to_dict()
    for key in ("experiment", "dataset", "seed", "data"):
        payload.pop(key)
    return json.dumps(payload, sort_keys=True)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> dict[str, tuple[Path, Path | None]]:
    """Per task: the processed tiny dataset (as the preprocess rule writes it) and, for dialogue, word vectors."""
    from harness.data.dialogue import preprocess_dialogue
    from harness.data.preprocess import preprocess_lm
    from harness.data.word_vectors import train_word2vec

    root = tmp_path_factory.mktemp("tiny-data")
    shutil.copytree(FIXTURES / "ptb_tiny", root / "raw" / "ptb")
    preprocess_lm("ptb", root / "raw", root / "ptb")
    shutil.copytree(FIXTURES / "dialogue_tiny" / "dailydialog", root / "raw" / "dailydialog")
    preprocess_dialogue("dailydialog", root / "raw", root / "dailydialog")
    train_word2vec(root / "dailydialog" / "train.jsonl", root / "vectors.kv", dim=TINY_SIZES["emb_dim"], epochs=1)
    return {"lm": (root / "ptb", None), "dialogue": (root / "dailydialog", root / "vectors.kv")}


def finite_headline_metrics(payload: dict) -> dict:
    uniform = payload["metrics"]["uniform"]
    headline = {key: uniform[key] for key in ("NLL", "KL", "BLEU-F1", "BOW-A") if key in uniform}
    assert headline, sorted(uniform)
    assert all(math.isfinite(value) for value in headline.values()), headline
    return headline


def test_the_scaling_reaches_every_phase_of_the_shipped_schedules():
    """SeqGAN's adversarial phase and every KL warm-up end within the few batches the scaled entries train."""
    overlay = scaled_overlay("dialogue_smoke.yaml")["model_defs"]
    assert overlay["seqgan"]["options"]["pretrain_steps"] == 2 and overlay["cvae"]["options"]["kl_warmup_steps"] == 2
    assert overlay["cvae"]["options"]["emb_dim"] == TINY_SIZES["emb_dim"]


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_config_runs_end_to_end_scaled_down(tmp_path, tiny_data, name):
    overlay = tmp_path / f"scaled-{name}"
    overlay.write_text(yaml.safe_dump(scaled_overlay(name)))
    experiment = ExperimentConfig.from_file(overlay)
    experiment.check()
    runs = experiment.runs()
    if any("bfloat16" in (run.train.precision, run.evaluate.precision) for run in runs):
        skip_without_bfloat16()  # there the config stops at once, naming the setting (tests/harness/core/test_precision.py)
    assert {run.model.name for run in runs} == set(experiment.raw["models"])
    results = tmp_path / "results" / experiment.experiment
    trained: dict[str, Path] = {}  # entry body -> its metrics.json (runs differing only by dataset train once)
    for run in runs:
        task = task_of_method(run.model.method)
        data_dir, vectors = tiny_data[task]
        metrics_path = results / run.dataset / run.model.name / f"seed{run.seed}" / "metrics.json"
        metrics_path.parent.mkdir(parents=True, exist_ok=True)
        body = entry_body(run)
        if body in trained:  # the same entry on another dataset: its results, relabelled, for the table stage
            record = json.loads(trained[body].read_text())
            record["dataset"] = run.dataset
            metrics_path.write_text(json.dumps(record))
            continue
        train_run(run, data_dir, metrics_path.parent, progress=False, vectors_path=vectors)
        payload = evaluate_run(metrics_path.parent / MODEL, data_dir, metrics_path, run, progress=False,
                               samples_path=metrics_path.parent / "samples.jsonl", vectors_path=vectors)
        finite_headline_metrics(payload)
        assert json.loads(metrics_path.read_text())["metrics"] == payload["metrics"]
        trained[body] = metrics_path
    tables = [table for table in TABLES if any(table in run.model.paper_tables for run in runs)]
    assert tables, f"{name} fills none of Tables {TABLES}"
    for table in tables:
        metrics = [str(results / run.dataset / run.model.name / f"seed{run.seed}" / "metrics.json")
                   for run in runs if table in run.model.paper_tables]
        out = results / "tables" / f"table{table}"
        assert aggregate_main(["--results", *metrics, "--paper", "", "--table", table,
                               "--out-csv", f"{out}.csv", "--out-tex", f"{out}.tex",
                               "--out-significance", f"{out}_significance.csv",
                               "--reference", experiment.raw["significance"]["reference"]]) == 0
        assert "\\begin{table" in Path(f"{out}.tex").read_text()
