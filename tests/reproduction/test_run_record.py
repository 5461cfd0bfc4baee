"""Which calls trained a reference run (reproduction.run_record): a run's record is its own, never another run's."""
from __future__ import annotations

import json

import pytest

from harness.train.training import TRAIN_LOG
from reproduction.run_record import (PROVENANCE, RECORD, earlier_calls, evaluation_resumes, replaced_runs,
                                     run_record)

FIRST_CALL = {"command": "python -m reproduction.cpu_reference run --model twr-vae --budget-minutes 90",
              "budget_minutes": 90.0, "code_version": "d1d1904", "created": "2026-11-28T12:48:44+00:00"}


def provenance(**fields) -> dict:
    return {**FIRST_CALL, "model": "twr-vae", "seed": 1, "precision": "bfloat16", "threads": 2, "cpu": "AMD EPYC",
            "epochs_planned": 1000, "epochs_completed": 55, "selected_epoch": 55,
            "stopped_early": {"reason": "time budget", "budget_seconds": 5400.0, "partial_epoch": None}, **fields}


def test_a_continued_run_keeps_the_calls_before_it(tmp_path):
    """A checkpoint from before runs had ids: the calls come from this CPU's reference_run.json, with its CPU and
    precision; the record's calls that ended past the resumed checkpoint (an abandoned continuation) are dropped."""
    here = "cpu-amd-epyc/ptb/twr-vae/seed1"
    folder = tmp_path / here
    folder.mkdir(parents=True)
    (folder / "reference_run.json").write_text(json.dumps(provenance()))  # written before provenances listed calls
    legacy = {"epoch": 55, "step": 55 * 658, "run_id": None}
    record = run_record(tmp_path / "work", tmp_path, here, legacy)
    first = {"cpu": "AMD EPYC", "precision": "bfloat16", **FIRST_CALL, "epochs_from": 0, "epochs_to": 55}
    assert record == {"folder": here, "calls": [first]}
    assert earlier_calls(record, legacy) == [first]
    assert earlier_calls(record, None) == []  # a run started afresh owes nothing to the earlier one
    assert run_record(tmp_path / "work", tmp_path, here, None) == {"folder": here, "calls": []}
    later = {**FIRST_CALL, "budget_minutes": 40.0, "epochs_from": 55, "epochs_to": 90}
    (folder / "reference_run.json").write_text(json.dumps(provenance(calls=[first, later])))
    assert earlier_calls(run_record(tmp_path / "work", tmp_path, here, legacy), legacy) == [first]
    stepped = [{**first, "steps_from": 0, "steps_to": 100}, {**later, "epochs_to": 55, "steps_from": 100,
                                                             "steps_to": 120}]
    assert earlier_calls({"calls": stepped}, {"epoch": 55, "step": 100}) == stepped[:1]  # steps decide where kept
    # a run with an id takes no record of another run: not this CPU's folder's (no id), not a work record of another
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / RECORD).write_text(json.dumps({"folder": "x", "run_id": "old", "calls": stepped}))
    assert run_record(tmp_path / "work", tmp_path, here, {"epoch": 55, "step": 100, "run_id": "new"}
                      ) == {"folder": here, "calls": []}


def test_an_evaluation_only_call_reads_a_run_resumed_from_an_id_less_checkpoint_as_that_call_did():
    """The call that finished the run resumed a checkpoint from before ids (Lag-VAE's, say): its id was made then and
    no committed record has it, so the evaluation-only call reads the calls as that call would have (legacy)."""
    finished = {"epochs_completed": 40, "steps": 26320, "run_id": "made-at-resume", "code_version": "c",
                "resumed_from": {"epoch": 2, "step": 1316, "run_id": None}}
    assert evaluation_resumes(finished)["run_id"] is None
    for resumed in (None, {"epoch": 2, "step": 1316, "run_id": "made-at-start"}):
        assert evaluation_resumes({**finished, "resumed_from": resumed})["run_id"] == "made-at-resume"


def test_a_corrupt_record_is_refused_naming_the_file(tmp_path):
    """A truncated reference_calls.json (a disk filled mid-write by something else) is an error naming it, not a
    bare JSON message nor a silent fresh record."""
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / RECORD).write_text('{"folder": "cpu-a/ptb/twr-vae/seed1", "calls": [')
    with pytest.raises(ValueError, match="reference_calls.json: not valid JSON"):
        run_record(tmp_path / "work", tmp_path, "cpu-a/ptb/twr-vae/seed1", {"epoch": 1, "step": 8, "run_id": "r"})


def test_a_run_replacing_another_in_its_folder_keeps_a_line_on_it_and_on_those_it_replaced(tmp_path):
    assert replaced_runs(tmp_path, "B", None) == []  # a new folder
    (tmp_path / PROVENANCE).write_text(json.dumps({
        "run_id": "A", "epochs_completed": 2, "calls": [{}, {}], "evaluated": False, "cpu": "AMD EPYC",
        "precision": "bfloat16", "created": "2026-12-07T21:35:50+00:00",
        "replaces": [{"run_id": "Z", "epochs_completed": 1}]}))
    (tmp_path / TRAIN_LOG).write_text(json.dumps({"run_id": "A", "train_seconds": 1094.5}))
    assert replaced_runs(tmp_path, "B", None) == [
        {"run_id": "Z", "epochs_completed": 1},
        {"run_id": "A", "epochs_completed": 2, "calls": 2, "train_seconds": 1094.5, "evaluated": False,
         "cpu": "AMD EPYC", "precision": "bfloat16", "last_call": "2026-12-07T21:35:50+00:00"}]
    resumed_a = {"epoch": 2, "step": 16, "run_id": "A"}
    assert replaced_runs(tmp_path, "A", resumed_a) == [{"run_id": "Z", "epochs_completed": 1}]  # A continued
    (tmp_path / TRAIN_LOG).write_text(json.dumps({"run_id": "B", "train_seconds": 5.0}))  # not A's: not its time
    assert replaced_runs(tmp_path, "C", None)[-1]["train_seconds"] is None


def test_a_record_from_before_run_ids_is_the_same_run_when_its_checkpoint_is_resumed_and_read_whole_otherwise(
        tmp_path):
    """The oldest records have no id and keep their one call inline (no `calls`, no `evaluated`)."""
    (tmp_path / PROVENANCE).write_text(json.dumps({**FIRST_CALL, "epochs_completed": 57, "cpu": "AMD EPYC"}))
    (tmp_path / "metrics.json").write_text("{}")
    legacy_checkpoint = {"epoch": 57, "step": 100, "run_id": None}  # train_run gives the resumed run a new id
    assert replaced_runs(tmp_path, "2026-12-08T00:00:00-new", legacy_checkpoint) == []
    replaced = replaced_runs(tmp_path, "2026-12-08T00:00:00-new", None)  # a restart from epoch 0
    assert [(r["run_id"], r["epochs_completed"], r["calls"], r["evaluated"]) for r in replaced] == [
        (None, 57, 1, True)]


def test_an_unreadable_record_in_the_folder_is_named_not_read(tmp_path):
    (tmp_path / PROVENANCE).write_text("{truncated")
    [entry] = replaced_runs(tmp_path, "B", None)
    assert entry["unreadable"].startswith(f"{PROVENANCE} or {TRAIN_LOG}: <results folder>/{PROVENANCE}: not valid")
