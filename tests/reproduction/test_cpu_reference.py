"""The CPU reference run's provenance across calls: a continued run names every call that trained it."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from reproduction import cpu_reference
from reproduction.cpu_reference import caption
from harness.report import status
from conftest import FIXTURES, slow_updates, tiny_run
from test_run_record import FIRST_CALL, provenance  # the record's unit tests' call and provenance


def reference_run(seed: int = 1, metrics: dict | None = None, **fields) -> status.ReferenceRun:
    """A committed run as the board reads it, from provenance(**fields)."""
    return status.ReferenceRun(FIXTURES, "ptb", "twr-vae", seed, metrics or {}, provenance(seed=seed, **fields))


def test_the_caption_names_every_budget_and_a_warm_start():
    calls = [{**FIRST_CALL, "epochs_from": 0, "epochs_to": 55},
             {**FIRST_CALL, "budget_minutes": 40.0, "epochs_from": 55, "epochs_to": 90}]
    text = caption([reference_run(calls=calls, epochs_completed=90, selected_epoch=88,
                                  warm_start={"epoch": 55, "restarted": ["optimizer state", "random state"]})])
    assert ("twr-vae seed 1: 90 of 1000 epochs over calls budgeted 90 + 40 min (continued from epoch 55 with the "
            "optimizer state restarted), stopped by time budget, kept epoch 88") in text
    assert ("twr-vae seed 1: 55 of 1000 epochs over calls budgeted 90 min, stopped by time budget, kept epoch 55"
            in caption([reference_run()]))
    assert text.startswith("CPU reference runs (AMD EPYC, 2 threads, 2026-11-28)")


def test_the_caption_gives_each_run_its_own_seed_and_stop_reason():
    """A CPU folder may hold runs of different seeds and stops: the caption must not give every run the first's."""
    capped = reference_run(seed=2, epochs_completed=193, selected_epoch=179,
                           stopped_early={"reason": "epoch cap", "max_epochs": 193}, threads=1)
    decayed = reference_run(seed=1, stopped_early=None, threads=1,
                            metrics={"training": {"lr_schedule": {"stopped": {"reason": "lr decayed 5 times"}}}})
    text = caption([decayed, capped])
    assert "twr-vae seed 1: 55 of 1000 epochs over calls budgeted 90 min, stopped by lr decayed 5 times" in text
    assert "twr-vae seed 2: 193 of 1000 epochs over calls budgeted 90 min, stopped by epoch cap, kept epoch 179" in text
    assert "1 thread," in text and "wall-clock" not in text


def test_a_budget_stopped_reference_run_continued_by_a_second_call_lists_both_and_renders(ptb_sample, tmp_path,
                                                                                          monkeypatch):
    slow_updates(monkeypatch)  # 8 updates an epoch at 1 s each: a 1-minute call trains 7 epochs, the next the rest
    monkeypatch.setattr(cpu_reference, "reference_run_config",
                        lambda model, seed, precision, dataset="ptb": tiny_run(epochs=10, validate_every=5))
    work, into = tmp_path / "work", tmp_path / "reference"
    first = cpu_reference.run("twr-vae", 1, "float32", 1.0, ptb_sample, work, into)
    stopped = json.loads((first / "reference_run.json").read_text())
    assert stopped["epochs_completed"] == 7 and (work / "checkpoint.pt").exists()
    assert [(c["epochs_from"], c["epochs_to"]) for c in stopped["calls"]] == [(0, 7)]

    second = cpu_reference.run("twr-vae", 1, "float32", 1.0, ptb_sample, work, into, note="contended timings")
    assert second == first and not (work / "checkpoint.pt").exists()  # finished: the checkpoint goes
    finished = json.loads((second / "reference_run.json").read_text())
    assert [(c["epochs_from"], c["epochs_to"]) for c in finished["calls"]] == [(0, 7), (7, 10)]
    assert [c.get("note") for c in finished["calls"]] == [None, "contended timings"]  # the note stays with its call
    assert finished["epochs_completed"] == 10 and finished["stopped_early"] is None
    assert finished["budget_minutes"] == 2.0 and finished["warm_start"] is None
    curve = status.read_curve(second / cpu_reference.CURVE)
    assert [point["epoch"] for point in curve] == list(range(1, 11))
    assert all(point["test"]["NLL"] > 0 for point in curve)

    cpu_reference.render(second.parents[2], tmp_path / "no-paper.csv")
    table = (second.parents[2] / "table2.tex").read_text()
    assert "twr-vae seed 1: 10 of 10 epochs over calls budgeted 1 + 1 min, stopped by epoch budget, kept epoch" in table
    assert (second.parents[2] / "learning_curve.png").stat().st_size > 0


def test_render_draws_the_named_cpu_folders_and_refuses_one_that_is_not_there(tmp_path, capsys, monkeypatch):
    """`render --cpu all` renders every CPU folder (Table 2 of an older session's CPU is redrawn under today's rules);
    an unknown folder is one error line, exit 2."""
    calls = []
    monkeypatch.setattr(cpu_reference, "render", lambda folder, paper: calls.append(folder.name))
    for name in ("cpu-a", "cpu-b"):
        (tmp_path / name).mkdir()
    assert cpu_reference.main(["render", "--into", str(tmp_path), "--cpu", "all"]) == 0
    assert calls == ["cpu-a", "cpu-b"]
    assert cpu_reference.main(["render", "--into", str(tmp_path), "--cpu", "cpu-c"]) == 2
    assert "cpu-c is not a CPU folder" in capsys.readouterr().err


def test_evaluate_final_scores_only_the_call_that_ends_the_recipe(ptb_sample, tmp_path, monkeypatch):
    """`--evaluate final`: a budget stop commits its curve and train log without metrics.json (and removes an
    earlier call's, which scored other weights); the board prefers a scored run; the call that ends the recipe scores."""
    slow_updates(monkeypatch)
    monkeypatch.setattr(cpu_reference, "reference_run_config",
                        lambda model, seed, precision, dataset="ptb": tiny_run(epochs=10, validate_every=5))
    scored = []
    real_evaluate = cpu_reference.evaluate_run
    monkeypatch.setattr(cpu_reference, "evaluate_run", lambda *a, **k: scored.append(1) or real_evaluate(*a, **k))
    work, into = tmp_path / "work", tmp_path / "reference"
    dest = into / cpu_reference.cpu_slug() / "ptb" / "twr-vae" / "seed1"
    dest.mkdir(parents=True)
    (dest / "metrics.json").write_text("{}")  # as an earlier call with `--evaluate always` would have left
    first = cpu_reference.run("twr-vae", 1, "float32", 1.0, ptb_sample, work, into, evaluate="final")
    stopped = json.loads((first / "reference_run.json").read_text())
    assert first == dest and scored == [] and not (first / "metrics.json").exists()
    assert stopped["evaluated"] is False and stopped["eval_seconds"] is None
    assert stopped["calls"][-1]["command"].endswith("--evaluate final")
    assert [p["epoch"] for p in status.read_curve(first / cpu_reference.CURVE)] == list(range(1, 8))
    cpu_reference.render(first.parents[2], tmp_path / "no-paper.csv")  # curves only: no table from an unscored run
    assert not (first.parents[2] / "table2.tex").exists()
    assert (first.parents[2] / "learning_curve.png").stat().st_size > 0
    (run,), = status.collect_runs(into).values()
    assert run.metrics == {} and run.value("uniform", "NLL") is None

    second = cpu_reference.run("twr-vae", 1, "float32", 1.0, ptb_sample, work, into, evaluate="final")
    finished = json.loads((second / "reference_run.json").read_text())
    assert scored == [1] and finished["evaluated"] is True and (second / "metrics.json").is_file()
    (run,), = status.collect_runs(into).values()
    assert run.value("uniform", "NLL") > 0


def test_an_epoch_capped_run_is_scored_and_the_board_reads_it_as_short_of_the_recipe(ptb_sample, tmp_path, monkeypatch):
    """`run --max-epochs N --evaluate final` (TWR-VAE seed 2 matched to seed 1's 193 epochs): the cap ends the run, so
    it is evaluated; the provenance names the cap; the board counts it as short of the recipe's end (partial, not
    differs)."""
    monkeypatch.setattr(cpu_reference, "reference_run_config",
                        lambda model, seed, precision, dataset="ptb": tiny_run(epochs=10, validate_every=5))
    dest = cpu_reference.run("twr-vae", 2, "float32", 60.0, ptb_sample, tmp_path / "work", tmp_path / "reference",
                             evaluate="final", max_epochs=3)
    provenance = json.loads((dest / "reference_run.json").read_text())
    assert provenance["evaluated"] is True and (dest / "metrics.json").is_file()
    assert provenance["max_epochs"] == 3 and provenance["epochs_completed"] == 3 and provenance["epochs_planned"] == 10
    assert provenance["stopped_early"] == {"reason": "epoch cap", "max_epochs": 3}
    assert provenance["command"].endswith("--evaluate final --max-epochs 3")
    (run,), = status.collect_runs(tmp_path / "reference").values()
    assert run.stop_reason == "epoch cap" and not run.at_recipe_end


def test_a_run_capped_in_training_hours_is_scored_and_the_board_reads_it_as_short_of_the_recipe(
        ptb_sample, tmp_path, monkeypatch):
    """`run --max-train-hours H --evaluate final` (a Table 5 pilot whose recipe costs more than its declared 8 h): the
    cap ends the run, so it is evaluated; the command and provenance name the cap; the board reads it as partial."""
    from harness.train import training as train_module

    clock = slow_updates(monkeypatch)
    monkeypatch.setattr(train_module.time, "perf_counter", lambda: clock["now"])
    monkeypatch.setattr(cpu_reference, "reference_run_config",
                        lambda model, seed, precision, dataset="ptb": tiny_run(epochs=10, validate_every=5))
    dest = cpu_reference.run("twr-vae", 1, "float32", 60.0, ptb_sample, tmp_path / "work", tmp_path / "reference",
                             evaluate="final", max_train_hours=20 / 3600)
    provenance = json.loads((dest / "reference_run.json").read_text())
    assert provenance["evaluated"] is True and (dest / "metrics.json").is_file()
    assert provenance["max_train_hours"] == 20 / 3600 and provenance["epochs_completed"] == 2
    assert provenance["stopped_early"]["reason"] == "training-hours cap"
    assert provenance["command"].endswith(f"--evaluate final --max-train-hours {20 / 3600:g}")
    (run,), = status.collect_runs(tmp_path / "reference").values()
    assert run.stop_reason == "training-hours cap" and not run.at_recipe_end


def test_render_draws_every_seed_of_a_model(tmp_path, monkeypatch):
    """Two seeds of one model in one CPU folder are two curves (seed 2 matched to seed 1), not one overwriting the
    other."""
    drawn = {}
    monkeypatch.setattr(cpu_reference, "draw_curve", lambda curves, paper, path: drawn.update(curves))
    for seed in (1, 2):
        folder = tmp_path / "cpu-a" / "ptb" / "twr-vae" / f"seed{seed}"
        folder.mkdir(parents=True)
        (folder / "reference_run.json").write_text(json.dumps(provenance(seed=seed, evaluated=False)))
        (folder / cpu_reference.CURVE).write_text(json.dumps({"epoch": 1, "test": {"NLL": 130.0 + seed}}) + "\n")
    cpu_reference.render(tmp_path / "cpu-a", tmp_path / "no-paper.csv")
    assert sorted(drawn) == [("twr-vae", 1), ("twr-vae", 2)] and drawn["twr-vae", 2][0]["test"]["NLL"] == 132.0


def test_the_board_prefers_a_scored_run_to_a_longer_one_still_in_training(tmp_path):
    for cpu, epochs, evaluated in (("cpu-a", 19, True), ("cpu-b", 30, False)):
        folder = tmp_path / cpu / "ptb" / "bn-vae" / "seed1"
        folder.mkdir(parents=True)
        (folder / "reference_run.json").write_text(json.dumps(provenance(model="bn-vae", epochs_completed=epochs,
                                                                         evaluated=evaluated)))
        if evaluated:
            (folder / "metrics.json").write_text(json.dumps({"metrics": {"uniform": {"NLL": 114.0}}}))
    (run,), = status.collect_runs(tmp_path).values()
    assert run.folder.parts[-4] == "cpu-a" and run.value("uniform", "NLL") == 114.0


def dialogue_sample(tmp_path):
    """The committed tiny DailyDialog, preprocessed, and word2vec vectors of its training split (8 dimensions)."""
    from harness.data.dialogue import preprocess_dialogue
    from harness.data.word_vectors import train_word2vec

    shutil.copytree(FIXTURES / "dialogue_tiny" / "dailydialog", tmp_path / "raw" / "dailydialog")
    preprocess_dialogue("dailydialog", tmp_path / "raw", tmp_path / "data")
    train_word2vec(tmp_path / "data" / "train.jsonl", tmp_path / "data" / "word2vec.kv", dim=8, epochs=1)
    return tmp_path / "data"


def tiny_dialogue_run(model, seed, precision, dataset):
    from harness.core.config import ExperimentConfig

    assert dataset == "dailydialog"
    return ExperimentConfig.from_mapping({
        "device": "cpu", "datasets": ["dailydialog"], "models": ["cvae"], "seeds": [seed],
        "train": {"epochs": 6, "batch_size": 10, "precision": precision, "select_by": "valid_loss",
                  "validate_every": 1},
        "evaluate": {"batch_size": 6, "responses_per_context": 2, "max_response_length": 6},
        "model_defs": {"cvae": {"method": "cvae", "options": {"emb_dim": 8, "hidden_dim": 6, "z_dim": 3}}}}).runs()[0]


def test_a_dialogue_reference_run_continues_across_calls_and_scores_table5_at_the_end(tmp_path, monkeypatch):
    """issue 35's pilots: `run --dataset dailydialog --evaluate final` trains a dialogue recipe by budget, its curve
    holds the training and validation losses, the board lists it in training with its validation loss, and the call
    that ends the recipe scores Table 5's metrics into .../dailydialog/<model>/seed1/, rendered as table5.tex."""
    data = dialogue_sample(tmp_path)
    clock = slow_updates(monkeypatch)  # 1 s per update, 4 updates per epoch (38 examples in batches of 10)
    monkeypatch.setattr(cpu_reference, "reference_run_config", tiny_dialogue_run)
    work, into = tmp_path / "work", tmp_path / "reference"
    first = cpu_reference.run("cvae", 1, "float32", 10 / 60, data, work, into, evaluate="final",
                              dataset="dailydialog", vectors=data / "word2vec.kv")
    assert first == into / cpu_reference.cpu_slug() / "dailydialog" / "cvae" / "seed1"
    stopped = json.loads((first / "reference_run.json").read_text())
    assert stopped["evaluated"] is False and 0 < stopped["epochs_completed"] < 6 and clock["now"] > 0
    assert stopped["dataset"] == "dailydialog" and stopped["word_vectors"] == "word2vec.kv"
    assert stopped["command"].startswith("python -m reproduction.cpu_reference run --dataset dailydialog --model cvae")
    curve = status.read_curve(first / cpu_reference.CURVE)
    assert curve and all("test" not in point and point["valid_loss"] > 0 for point in curve)
    (line,) = status.training_lines(into)
    assert line[1] == "dailydialog" and line[5].startswith("validation loss ")

    second = cpu_reference.run("cvae", 1, "float32", 10.0, data, work, into, evaluate="final",
                               dataset="dailydialog", vectors=data / "word2vec.kv")
    finished = json.loads((second / "reference_run.json").read_text())
    assert finished["evaluated"] is True and finished["epochs_completed"] == 6
    assert [(c["epochs_from"], c["epochs_to"]) for c in finished["calls"]] == [
        (0, stopped["epochs_completed"]), (stopped["epochs_completed"], 6)]
    metrics = json.loads((second / "metrics.json").read_text())
    assert metrics["task"] == "dialogue" and {"BLEU-F1", "BOW-A", "Inter-dist2"} <= set(metrics["metrics"]["uniform"])
    assert (work / "samples.jsonl").is_file() and not (second / "samples.jsonl").exists()  # samples stay in work
    cpu_reference.render(second.parents[2], tmp_path / "no-paper.csv")
    assert "BLEU" in (second.parents[2] / "table5.tex").read_text()
    assert not (second.parents[2] / "table2.tex").exists() and not (second.parents[2] / "learning_curve.png").exists()
    assert status.training_lines(into) == []


def test_a_dialogue_run_without_its_data_or_vectors_is_refused_naming_the_file(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    arguments = ["run", "--dataset", "dailydialog", "--model", "cvae", "--data", str(tmp_path / "data"),
                 "--into", str(tmp_path / "reference"), "--work", str(tmp_path / "work")]
    assert cpu_reference.main(arguments) == 2
    assert "train.jsonl not found: preprocess full dailydialog first" in capsys.readouterr().err
    (tmp_path / "data" / "train.jsonl").write_text("")
    assert cpu_reference.main(arguments) == 2
    assert "word2vec.kv not found: a dialogue run needs word vectors" in capsys.readouterr().err
    assert not (tmp_path / "work").exists() and not (tmp_path / "reference").exists()
    with pytest.raises(ValueError, match="reference runs are made on ptb, dailydialog"):
        cpu_reference.check_inputs("yahoo", tmp_path / "data", None)


def test_each_call_records_the_code_it_trained_with_not_the_checkout_at_its_end(ptb_sample, tmp_path, monkeypatch):
    """A call trains for hours while commits land: its `code_version` is the one training started with (as its
    train_log.json's), not the checkout's when it writes its results."""
    from harness.train import training as train_module

    monkeypatch.setattr(train_module, "code_version", lambda: "trained-with")
    monkeypatch.setattr(cpu_reference, "reference_run_config",
                        lambda model, seed, precision, dataset="ptb": tiny_run(epochs=1))
    dest = cpu_reference.run("twr-vae", 1, "float32", 60.0, ptb_sample, tmp_path / "work", tmp_path / "reference",
                             evaluate="final")
    provenance = json.loads((dest / "reference_run.json").read_text())
    assert provenance["code_version"] == provenance["calls"][0]["code_version"] == "trained-with"
    assert json.loads((dest / "train_log.json").read_text())["code_version"] == "trained-with"


def on_cpu(monkeypatch, name: str) -> None:
    monkeypatch.setattr(cpu_reference, "cpuinfo", lambda: f"model name\t: {name}\n")


def test_a_run_continued_on_another_cpu_keeps_its_folder_and_names_each_calls_cpu(ptb_sample, tmp_path, monkeypatch):
    """The checkpoint carries its run's record: the call on CPU B adds itself to the folder of CPU A, where the run
    started, instead of starting a record of its own in CPU B's folder (which would hold no earlier call, or splice
    in another run's calls left there)."""
    slow_updates(monkeypatch)
    monkeypatch.setattr(cpu_reference, "reference_run_config",
                        lambda model, seed, precision, dataset="ptb": tiny_run(epochs=10, validate_every=5))
    work, into = tmp_path / "work", tmp_path / "reference"
    stale = into / "cpu-cpu-b" / "ptb" / "twr-vae" / "seed1"  # an older, abandoned run of CPU B
    stale.mkdir(parents=True)
    (stale / "reference_run.json").write_text(json.dumps(provenance(cpu="CPU B", epochs_completed=3, calls=[
        {**FIRST_CALL, "epochs_from": 0, "epochs_to": 3}])))
    on_cpu(monkeypatch, "CPU A")
    first = cpu_reference.run("twr-vae", 1, "float32", 1.0, ptb_sample, work, into, evaluate="final")
    on_cpu(monkeypatch, "CPU B")
    second = cpu_reference.run("twr-vae", 1, "float32", 1.0, ptb_sample, work, into, evaluate="final")
    assert first == second == into / "cpu-cpu-a" / "ptb" / "twr-vae" / "seed1"
    finished = json.loads((second / "reference_run.json").read_text())
    assert [(c["cpu"], c["precision"], c["threads"], c["epochs_from"], c["epochs_to"], c["steps_from"], c["steps_to"])
            for c in finished["calls"]] == [("CPU A", "float32", torch.get_num_threads(), 0, 7, 0, 56),
                                            ("CPU B", "float32", torch.get_num_threads(), 7, 10, 56, 80)]
    assert finished["cpu"] == "CPU A + CPU B" and finished["evaluated"] is True
    assert finished["calls"][0]["command"].endswith(f"--budget-minutes 1 --threads {torch.get_num_threads()} "
                                                    "--evaluate final")
    assert json.loads((stale / "reference_run.json").read_text())["epochs_completed"] == 3  # left as it was

    on_cpu(monkeypatch, "CPU B")  # a fresh start (no checkpoint) begins a record of its own, in this CPU's folder
    fresh = cpu_reference.run("twr-vae", 2, "float32", 1.0, ptb_sample, tmp_path / "work2", into, evaluate="final")
    assert fresh == into / "cpu-cpu-b" / "ptb" / "twr-vae" / "seed2"
    assert [c["cpu"] for c in json.loads((fresh / "reference_run.json").read_text())["calls"]] == ["CPU B"]


def test_a_call_stopped_inside_the_first_epoch_stays_in_the_record(ptb_sample, tmp_path, monkeypatch):
    """A call that ends inside epoch 1 (a Lag-VAE epoch outlasts a call) trained the run too: the call that finishes
    the epoch lists it (its epochs 0 to 0, steps 0 to 4)."""
    slow_updates(monkeypatch)  # 8 updates an epoch at 1 s each: a 4-second call stops inside epoch 1
    monkeypatch.setattr(cpu_reference, "reference_run_config",
                        lambda model, seed, precision, dataset="ptb": tiny_run(epochs=2))
    work, into = tmp_path / "work", tmp_path / "reference"
    cpu_reference.run("twr-vae", 1, "float32", 4.5 / 60, ptb_sample, work, into, evaluate="final")
    dest = cpu_reference.run("twr-vae", 1, "float32", 60.0, ptb_sample, work, into, evaluate="final")
    finished = json.loads((dest / "reference_run.json").read_text())
    assert [(c["epochs_from"], c["epochs_to"], c["steps_from"], c["steps_to"]) for c in finished["calls"]] == [
        (0, 0, 0, finished["calls"][0]["steps_to"]), (0, 2, finished["calls"][0]["steps_to"], 16)]
    assert 0 < finished["calls"][0]["steps_to"] < 8


def test_training_by_a_call_killed_before_its_record_is_listed_as_unrecorded(ptb_sample, tmp_path, monkeypatch):
    """A call killed after a checkpoint but before writing its results trained epochs no record names: the next call
    lists that stretch as `unrecorded` (the checkpoint's epochs, steps and code version; no CPU, no budget), and the
    board's budgets say so."""
    slow_updates(monkeypatch)
    monkeypatch.setattr(cpu_reference, "reference_run_config",
                        lambda model, seed, precision, dataset="ptb": tiny_run(epochs=10, validate_every=5))
    work, into = tmp_path / "work", tmp_path / "reference"
    cpu_reference.run("twr-vae", 1, "float32", 1.0, ptb_sample, work, into, evaluate="final")
    record_after_first = (work / cpu_reference.RECORD).read_text()
    cpu_reference.run("twr-vae", 1, "float32", 16 / 60, ptb_sample, work, into, evaluate="final")
    (work / cpu_reference.RECORD).write_text(record_after_first)  # as if the second call died before its record
    dest = cpu_reference.run("twr-vae", 1, "float32", 1.0, ptb_sample, work, into, evaluate="final")
    calls = json.loads((dest / "reference_run.json").read_text())["calls"]
    assert [(c.get("unrecorded", False), c["epochs_from"], c["epochs_to"], c["steps_from"], c["steps_to"])
            for c in calls] == [(False, 0, 7, 0, 56), (True, 7, 9, 56, 72), (False, 9, 10, 72, 80)]
    assert calls[1]["budget_minutes"] is None and "cpu" not in calls[1]
    assert status.call_budgets(calls) == "1 + unrecorded + 1 min"


def test_a_new_run_killed_before_its_record_takes_no_calls_of_the_run_before_it(ptb_sample, tmp_path, monkeypatch):
    """The work folder and this CPU's results folder still hold run A's record when run B, started afresh in the same
    work folder, dies after a checkpoint and before writing its own: the next call continues B and lists B's earlier
    training as unrecorded, none of A's calls (their steps would have matched B's resumed step)."""
    slow_updates(monkeypatch)
    monkeypatch.setattr(cpu_reference, "reference_run_config",
                        lambda model, seed, precision, dataset="ptb": tiny_run(epochs=10, validate_every=5))
    work, into = tmp_path / "work", tmp_path / "reference"
    dest = cpu_reference.run("twr-vae", 1, "float32", 1.0, ptb_sample, work, into, evaluate="final")  # run A
    record_a, provenance_a = (work / cpu_reference.RECORD).read_text(), (dest / "reference_run.json").read_text()
    (work / "checkpoint.pt").unlink()  # run B starts afresh ...
    cpu_reference.run("twr-vae", 1, "float32", 16 / 60, ptb_sample, work, into, evaluate="final")
    (work / cpu_reference.RECORD).write_text(record_a)  # ... and dies before writing its record
    (dest / "reference_run.json").write_text(provenance_a)
    again = cpu_reference.run("twr-vae", 1, "float32", 16 / 60, ptb_sample, work, into, evaluate="final")
    provenance = json.loads((again / "reference_run.json").read_text())
    assert [(c.get("unrecorded", False), c["steps_from"], c["steps_to"]) for c in provenance["calls"]] == [
        (True, 0, 16), (False, 16, 32)]
    assert provenance["run_id"] != json.loads(provenance_a)["run_id"]
    # B's results replace A's in the folder: A stays on record there (its id, epochs, calls, training time)
    a = json.loads(provenance_a)
    assert [(r["run_id"], r["epochs_completed"], r["calls"]) for r in provenance["replaces"]] == [
        (a["run_id"], a["epochs_completed"], 1)]
    assert provenance["replaces"][0]["evaluated"] is False  # budget-stopped under --evaluate final
    assert provenance["replaces"][0]["train_seconds"] is None  # the folder's train log is B's (A's was overwritten)


def test_a_warm_start_on_another_cpu_finds_its_run_by_id_under_results(ptb_sample, tmp_path, monkeypatch):
    """A new machine without the checkpoint or the work folder's record: `--warm-start model.pt` continues the run
    (the id travels in model.pt), and its record is the committed one of the CPU it started on, found by that id."""
    slow_updates(monkeypatch)
    monkeypatch.setattr(cpu_reference, "reference_run_config",
                        lambda model, seed, precision, dataset="ptb": tiny_run(epochs=4, validate_every=4))
    work, into = tmp_path / "work", tmp_path / "reference"
    on_cpu(monkeypatch, "CPU A")
    first = cpu_reference.run("twr-vae", 1, "float32", 20 / 60, ptb_sample, work, into, evaluate="final")
    stopped = json.loads((first / "reference_run.json").read_text())
    assert stopped["epochs_completed"] == 2 and stopped["calls"][0]["steps_to"] == 16
    moved = tmp_path / "model.pt"
    shutil.copyfile(work / "model.pt", moved)
    shutil.rmtree(work)  # the new machine has the committed results and model.pt, nothing else
    on_cpu(monkeypatch, "CPU B")
    second = cpu_reference.run("twr-vae", 1, "float32", 10.0, ptb_sample, work, into, warm_start=moved,
                               evaluate="final")
    assert second == first
    finished = json.loads((second / "reference_run.json").read_text())
    assert finished["run_id"] == stopped["run_id"] and finished["cpu"] == "CPU A + CPU B"
    assert [(c["cpu"], c["epochs_from"], c["steps_from"], c["steps_to"]) for c in finished["calls"]] == [
        ("CPU A", 0, 0, stopped["calls"][0]["steps_to"]), ("CPU B", 2, 16, 32)]


def test_a_call_killed_in_the_final_evaluation_is_followed_by_an_evaluation_not_a_new_run(ptb_sample, tmp_path,
                                                                                           monkeypatch):
    """The call that ends the recipe removes the checkpoint, then evaluates (an hour on one thread). Killed there, it
    leaves model.pt and no results; the same command then evaluates the finished run (no training: a fresh start
    would have discarded it) and lists the killed call's training as unrecorded. Once evaluated, it is refused."""
    slow_updates(monkeypatch)
    monkeypatch.setattr(cpu_reference, "reference_run_config",
                        lambda model, seed, precision, dataset="ptb": tiny_run(epochs=10, validate_every=5))
    work, into = tmp_path / "work", tmp_path / "reference"
    cpu_reference.run("twr-vae", 1, "float32", 1.0, ptb_sample, work, into, evaluate="final")  # 7 epochs
    real_evaluate = cpu_reference.evaluate_run

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as a session's end kills it

    monkeypatch.setattr(cpu_reference, "evaluate_run", killed)
    with pytest.raises(KeyboardInterrupt):
        cpu_reference.run("twr-vae", 1, "float32", 10.0, ptb_sample, work, into, evaluate="final")
    assert not (work / "checkpoint.pt").exists() and (work / "model.pt").exists()
    monkeypatch.setattr(cpu_reference, "evaluate_run", real_evaluate)
    monkeypatch.setattr(cpu_reference, "train_run", lambda *a, **k: pytest.fail("trained over a finished run"))
    dest = cpu_reference.run("twr-vae", 1, "float32", 10.0, ptb_sample, work, into, evaluate="final")
    provenance = json.loads((dest / "reference_run.json").read_text())
    assert provenance["evaluated"] is True and (dest / "metrics.json").is_file()
    assert provenance["epochs_completed"] == 10 and provenance["stopped_early"] is None
    assert [(c.get("unrecorded", False), c.get("evaluation_only", False), c["epochs_from"], c["epochs_to"])
            for c in provenance["calls"]] == [(False, False, 0, 7), (True, False, 7, 10), (False, True, 10, 10)]
    assert provenance["calls"][-1]["note"].startswith("evaluation only")
    with pytest.raises(ValueError, match="finished and evaluated"):
        cpu_reference.run("twr-vae", 1, "float32", 10.0, ptb_sample, work, into, evaluate="final")
