"""Table captions from the run configs in metrics.json (harness.report.captions): every model's recipe, in LaTeX that
compiles."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import REPO_ROOT
from harness.report.captions import training_caption
from harness.core.config import ExperimentConfig
from harness.report.tables import latex_escape


def records_of(config: str, table: str, seeds=(1,)) -> list[dict]:
    """What the metrics.json files of `table` would carry: each run's config, experiment and seed."""
    experiment = ExperimentConfig.from_file(REPO_ROOT / "config" / config)
    return [{"config": run.to_dict(), "experiment": run.experiment, "seed": run.seed}
            for run in experiment.runs() if table in run.model.paper_tables and run.seed in seeds]


def test_table_2_names_each_models_recipe():
    """The recipe most models share first (here the baselines' SGD), then every model's differences from it."""
    caption = latex_escape(training_caption(records_of("paper.yaml", "2"), "2"))
    # He et al.'s lr decay on a plateau, in words (harness.train.lr_schedule.describe), shared by most baselines
    assert caption.startswith("Training budget of experiment paper: 100 epochs, batch 64, sgd lr 1.0 with decay (x0.5 "
                              "after 2 epochs in a row without improvement, not before epoch 16, best weights "
                              "reloaded, optimizer restarted; stop after 5 decays), emb/hidden/z 512/256/32, "
                              "length-bucketed batches in random order, validated every epoch")
    assert ("twr-vae, twr-vae-mean, twr-vae-sum: epochs 1000, grad\\_clip None, loss\\_reduction sum, lr 0.0001, "
            "optimizer adam, shuffle False, validate\\_every 10.") in caption
    assert "timesteps padded, the original code's arithmetic" in caption
    # the models whose schedule differs from the shared one name theirs
    assert ("bn-vae: lr\\_decay (x0.5 after 5 epochs in a row without improvement, not before epoch 16, best weights "
            "reloaded, optimizer restarted; stop after 5 decays).") in caption
    assert ("cyc-vae: adam\\_eps 1e-08, epochs 40, lr 0.001, lr\\_decay (cosine from the lr towards 0 over every 10 "
            "epochs, restarting at each cycle), optimizer adam, weight\\_decay 0.0.") in caption
    assert "lr\\_decay (x0.5 after every epoch once an epoch did not improve, not before epoch 15; stop below lr 0.03)" \
        in caption


def test_table_5_names_each_dialogue_models_sizes_and_options():
    caption = latex_escape(training_caption(records_of("paper.yaml", "5"), "5"))
    assert ("twr-cvae-dailydialog (method twr-cvae): emb/hidden/z 200/300/200, embedding\\_init random, "
            "kl\\_increase\\_per\\_epoch 0.1, kl\\_start 0.1") in caption  # the DailyDialog script's KL schedule


def test_each_row_names_its_method_and_the_options_that_differ_from_its_defaults():
    caption = training_caption(records_of("paper.yaml", "2"), "2")
    assert "vae-lstm (method vae-rnn: kl_start 0.1, kl_warmup_steps 6600, word_dropout 0.25)" in caption
    assert "twr-vae (method twr-vae: timesteps padded)" in caption  # z_mode normal etc. are the defaults
    assert "twr-vae (method twr-vae, its defaults)" in training_caption(records_of("config.yaml", "2"), "2")


def test_a_reduced_precision_is_named():
    records = records_of("config.yaml", "2")
    for record in records:
        record["config"]["train"]["precision"] = "bfloat16"
    caption = training_caption(records, "2")
    assert "Training precision: bfloat16 (twr-vae, vae-lstm-noanneal;" in caption
    assert "Evaluation precision" not in caption
    assert "precision" not in training_caption(records_of("config.yaml", "2"), "2")


def test_an_experiment_wide_lr_decay_is_named_once_in_the_shared_recipe():
    records = records_of("config.yaml", "2")
    for record in records:
        record["config"]["train"]["lr_decay"] = {"mode": "plateau", "factor": 0.5, "patience": 2, "max_decays": 3}
    caption = training_caption(records, "2")
    assert "with decay (x0.5 after 2 epochs in a row without improvement; stop after 3 decays)" in caption
    assert "Per model" not in caption
    assert "decay" not in training_caption(records_of("config.yaml", "2"), "2")


def test_the_caption_compiles(tmp_path):
    caption = latex_escape(training_caption(records_of("paper.yaml", "2"), "2"))
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed: the caption's LaTeX was not compiled")
    (tmp_path / "caption.tex").write_text("\\documentclass{article}\n\\begin{document}\n" + caption + "\n\\end{document}\n")
    compiled = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "caption.tex"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
    assert compiled.returncode == 0, compiled.stdout[-2000:]
