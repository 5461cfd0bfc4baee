"""A resume never mixes two versions of a method's code silently: the checkpoint records the method's source hashes
and code version; a changed source is refused unless the caller restarts or continues explicitly, and train_log.json
says what happened."""
from __future__ import annotations

import json

import pytest
import torch

from conftest import slow_updates, tiny_run
from harness.train import training as train_module
from harness.core.runs import load_saved
from harness.train.training import CHECKPOINT, TRAIN_LOG, CodeChanged, train_run

EDITED = "twrvae/model.py"


def edit_method_source(monkeypatch, path: str = EDITED) -> None:
    """As if `path` had been edited since the checkpoint was written: its hash differs from then on."""
    real = train_module.source_hashes

    def edited(files):
        hashes = real(files)
        assert path in hashes, f"{path} is not among the method's sources {sorted(hashes)}"
        return {**hashes, path: "0" * 16}

    monkeypatch.setattr(train_module, "source_hashes", edited)


def stop_at_budget(ptb_sample, out, monkeypatch, epochs=4):
    """A run of `epochs` stopped by its (fake-clock) time budget after 2 of them, its checkpoint kept."""
    slow_updates(monkeypatch)
    stopped = train_run(tiny_run(epochs=epochs, validate_every=4), ptb_sample, out, progress=False, time_budget_s=20)
    assert stopped["epochs_completed"] == 2 and (out / CHECKPOINT).exists()
    return stopped


def test_the_checkpoint_records_the_method_sources_and_an_unchanged_resume_says_where_it_resumed(
        ptb_sample, tmp_path, monkeypatch):
    stopped = stop_at_budget(ptb_sample, tmp_path, monkeypatch)
    assert stopped["resumed_from"] is None and stopped["code_changed_during_run"] == []
    checkpoint = load_saved(tmp_path / CHECKPOINT)
    assert checkpoint["method_sources"] == stopped["method_sources"] and EDITED in checkpoint["method_sources"]
    assert checkpoint["code_version"] == stopped["code_version"]
    continued = train_run(tiny_run(epochs=4, validate_every=4), ptb_sample, tmp_path, progress=False)
    assert [h["epoch"] for h in continued["history"]] == [1, 2, 3, 4] and continued["steps"] == 32
    assert continued["resumed_from"] == {"epoch": 2, "step": 16, "run_id": stopped["run_id"],
                                         "method_sources": stopped["method_sources"],
                                         "code_version": stopped["code_version"]}
    assert continued["run_id"] == stopped["run_id"]  # the same run, continued
    assert continued["code_changed_during_run"] == [] and continued["discarded_checkpoint"] is None
    assert json.loads((tmp_path / TRAIN_LOG).read_text())["resumed_from"]["epoch"] == 2


def test_a_resume_after_the_methods_source_changed_is_refused_naming_the_folder_files_and_ways_out(
        ptb_sample, tmp_path, monkeypatch):
    stop_at_budget(ptb_sample, tmp_path, monkeypatch)
    log_before = (tmp_path / TRAIN_LOG).read_text()
    edit_method_source(monkeypatch)
    with pytest.raises(CodeChanged) as refused:
        train_run(tiny_run(epochs=4, validate_every=4), ptb_sample, tmp_path, progress=False)
    message = str(refused.value)
    assert str(tmp_path) in message and EDITED in message and "0" * 16 in message
    assert f"delete {tmp_path / CHECKPOINT}" in message and "--on-code-change continue" in message
    assert (tmp_path / CHECKPOINT).exists() and (tmp_path / TRAIN_LOG).read_text() == log_before  # nothing touched


def test_restart_discards_the_checkpoint_of_other_code_and_trains_afresh(ptb_sample, tmp_path, monkeypatch):
    stop_at_budget(ptb_sample, tmp_path / "stopped", monkeypatch)
    whole = train_run(tiny_run(epochs=4, validate_every=4), ptb_sample, tmp_path / "whole", progress=False)
    edit_method_source(monkeypatch)
    restarted = train_run(tiny_run(epochs=4, validate_every=4), ptb_sample, tmp_path / "stopped", progress=False,
                          on_code_change="restart")
    assert restarted["resumed_from"] is None and restarted["code_changed_during_run"] == []
    assert restarted["discarded_checkpoint"]["changed_files"] == [EDITED]
    assert restarted["discarded_checkpoint"]["epoch"] == 2
    assert restarted["discarded_checkpoint"]["reason"] == "method sources changed"
    assert [h["train_loss"] for h in restarted["history"]] == [h["train_loss"] for h in whole["history"]]


def test_continue_resumes_across_the_change_and_the_log_keeps_it_through_later_resumes(
        ptb_sample, tmp_path, monkeypatch):
    stopped = stop_at_budget(ptb_sample, tmp_path, monkeypatch, epochs=6)
    edit_method_source(monkeypatch)
    run = tiny_run(epochs=6, validate_every=4)
    continued = train_run(run, ptb_sample, tmp_path, progress=False, time_budget_s=20, on_code_change="continue")
    assert continued["epochs_completed"] == 4 and continued["stopped_early"] is not None  # stopped again
    assert continued["code_changed_during_run"] == [EDITED]
    assert continued["resumed_from"]["method_sources"] == stopped["method_sources"]
    assert continued["method_sources"][EDITED] == "0" * 16
    assert json.loads((tmp_path / TRAIN_LOG).read_text())["code_changed_during_run"] == [EDITED]
    # the next resume, by the same (edited) code, needs no flag, and still says the run mixed code
    finished = train_run(run, ptb_sample, tmp_path, progress=False)
    assert finished["epochs_completed"] == 6 and finished["resumed_from"]["epoch"] == 4
    assert finished["code_changed_during_run"] == [EDITED]


def test_a_checkpoint_from_before_the_hashes_were_kept_resumes_with_the_check_unknown(ptb_sample, tmp_path,
                                                                                        monkeypatch):
    stop_at_budget(ptb_sample, tmp_path, monkeypatch)
    checkpoint = load_saved(tmp_path / CHECKPOINT)
    for key in ("method_sources", "code_version"):
        del checkpoint[key]
    del checkpoint["state"]["code_changed_during_run"]
    del checkpoint["state"]["run_id"]  # nor did it name its run
    torch.save(checkpoint, tmp_path / CHECKPOINT)
    continued = train_run(tiny_run(epochs=4, validate_every=4), ptb_sample, tmp_path, progress=False)
    assert continued["epochs_completed"] == 4 and continued["steps"] == 32
    assert continued["resumed_from"] == {"epoch": 2, "step": 16, "run_id": None, "method_sources": None,
                                         "code_version": None}
    assert continued["run_id"]  # named from this resume on
    assert continued["code_changed_during_run"] is None  # unknown


def test_the_command_line_refuses_with_exit_status_2_and_continues_when_asked(ptb_sample, tmp_path, monkeypatch,
                                                                            capsys):
    stop_at_budget(ptb_sample, tmp_path, monkeypatch)
    edit_method_source(monkeypatch)
    argv = ["--run-config", tiny_run(epochs=4, validate_every=4).to_json(), "--data", str(ptb_sample),
            "--out", str(tmp_path), "--no-progress"]
    capsys.readouterr()
    assert train_module.main(argv) == 2
    err = capsys.readouterr().err
    assert "\nerror: " in err and EDITED in err and "--on-code-change" in err
    assert "training twr-vae seed 1" in err and "IW-NLL" not in err  # the evaluation's K is not the train job's
    assert train_module.main(argv + ["--on-code-change", "continue"]) == 0
    assert json.loads((tmp_path / TRAIN_LOG).read_text())["code_changed_during_run"] == [EDITED]
    with pytest.raises(SystemExit):
        train_module.main(argv + ["--on-code-change", "maybe"])
