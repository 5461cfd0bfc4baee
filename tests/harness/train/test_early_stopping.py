"""Early stopping on validation patience (Zhao et al. 2017, NeuralDialog-CVAE): the rule on hand-made losses, its
state across a checkpoint, the config, and the trainer stopping, recording why and keeping the best weights."""
from __future__ import annotations

import dataclasses
import io
import json
import re
from pathlib import Path

import pytest
import torch

from conftest import REPO_ROOT, slow_updates, tiny_run
from harness.train import training as train_module
from harness.core.config import ConfigError, EarlyStoppingConfig, ExperimentConfig, RunConfig, TrainConfig, validate_config
from harness.train.early_stopping import EarlyStopping, describe
from harness.core.runs import load_saved
from harness.train.training import CHECKPOINT, MODEL, TRAIN_LOG, train_run

ZHAO = EarlyStoppingConfig(patience=10, patience_increase=2.0, improvement_threshold=0.996)  # config_utils.py l.42-44


def decisions(config: EarlyStoppingConfig, losses: list[float], stopper: EarlyStopping | None = None,
              first_epoch: int = 1) -> list[tuple]:
    """(epoch, validation, patience, improved, significant, stop) for losses validated at consecutive epochs, up to
    and including the validation that stops."""
    stopper = stopper or EarlyStopping(config)
    out = []
    for epoch, loss in enumerate(losses, first_epoch):
        d = stopper.update(epoch, loss)
        out.append((epoch, d.validation, d.patience, d.improved, d.significant, d.stop))
        if d.stop:
            break
    return out


# losses of validations 1-12 under Zhao et al.'s settings, and what the rule makes of each
SEQUENCE = [
    100,  # 1: the first validation is always significant (the reference starts infinite): patience max(10, 2) = 10
    99.8,  # 2: a new best, but not <= 0.996 x 100 = 99.6: insignificant, patience stays 10, the reference stays 100
    99.55,  # 3: only 0.25 % below the best (99.8), yet <= 99.6 (the reference, not the best): significant, max(10, 6)
    99.6,  # 4: not a new best
    99.55,  # 5: equal to the best: not a new best (strictly lower wins)
    90,  # 6: significant: patience max(10, 12) = 12, the reference 90
    89.7,  # 7: a new best, not <= 89.64: patience stays 12
    95, 95, 95, 95,  # 8-11: no new best
    89.65,  # 12: a new best, not <= 89.64 (the reference is still 90): no extension, and 12 <= 12: stop
]


def test_zhao_et_al_patience_grows_on_significant_improvements_only_and_stops_at_the_deadline():
    got = decisions(ZHAO, SEQUENCE)
    assert [(v, p, imp, sig) for _, v, p, imp, sig, _ in got] == [
        (1, 10, True, True), (2, 10, True, False), (3, 10, True, True), (4, 10, False, False),
        (5, 10, False, False), (6, 12, True, True), (7, 12, True, False), (8, 12, False, False),
        (9, 12, False, False), (10, 12, False, False), (11, 12, False, False), (12, 12, True, False)]
    assert [stop for *_, stop in got[:-1]] == [None] * 11  # validation 10 passes: the deadline had moved to 12
    reason = ("early stopping: patience 12 reached at validation 12 (last significant improvement at validation 6 "
              "(epoch 6))")
    assert got[-1][-1] == reason


def test_a_significant_improvement_at_the_deadline_moves_it_instead():
    got = decisions(ZHAO, SEQUENCE[:11] + [89.6, 89.6])  # 12: 89.6 <= 89.64: patience max(12, 24) = 24
    assert got[11][1:5] == (12, 24, True, True) and got[11][5] is None and got[12][5] is None


def test_without_improvement_training_runs_the_initial_patience_and_stops_there():
    stopper = EarlyStopping(ZHAO)
    got = decisions(ZHAO, [5.0] + [6.0] * 20, stopper)
    assert len(got) == 10 and got[-1][1:3] == (10, 10)
    assert stopper.stopped == {"reason": got[-1][-1], "epoch": 10, "validation": 10, "patience": 10,
                               "best_epoch": 1, "last_significant_epoch": 1}
    assert stopper.summary() == {"validations": 10, "patience": 10, "best_epoch": 1, "last_significant_epoch": 1,
                                 "stopped": stopper.stopped}
    with pytest.raises(RuntimeError, match="already ended training after epoch 10"):
        stopper.update(11, 1.0)


def test_patience_is_counted_in_validations_and_the_stop_names_the_epoch():
    stopper = EarlyStopping(dataclasses.replace(ZHAO, patience=3))
    for epoch, loss in ((1, 5.0), (3, 6.0), (5, 6.0)):  # validate_every 2: epochs 1, 3, 5 are validations 1, 2, 3
        decision = stopper.update(epoch, loss)
    assert decision.validation == 3 and decision.stop
    assert stopper.stopped["epoch"] == 5 and stopper.stopped["validation"] == 3


def test_the_threshold_is_relative_to_the_loss_of_the_last_significant_improvement():
    # the same sequence at another scale gives the same decisions: the threshold is a factor, not a difference
    scaled = [(v, p, imp, sig, stop) for _, v, p, imp, sig, stop in decisions(ZHAO, [10 * x for x in SEQUENCE])]
    assert scaled == [(v, p, imp, sig, stop) for _, v, p, imp, sig, stop in decisions(ZHAO, SEQUENCE)]
    # 0.3 % below the reference is not significant, 0.5 % is, whatever the loss's size
    for reference in (2.0, 50.0, 1000.0):
        assert decisions(ZHAO, [reference, reference * 0.997])[1][4] is False
        assert decisions(ZHAO, [reference, reference * 0.995])[1][4] is True
    # shifted by a constant, the same differences are no longer the same fractions
    shifted = [x + 1000 for x in SEQUENCE]
    assert [sig for *_, sig, _ in decisions(ZHAO, shifted)][:3] == [True, False, False]
    # a threshold of 1: every new best is significant
    assert all(imp == sig for *_, imp, sig, _ in decisions(dataclasses.replace(ZHAO, improvement_threshold=1.0),
                                                           SEQUENCE))


def test_a_negative_reference_takes_the_threshold_on_its_magnitude():
    # 0.996 x -100 = -99.6 would be above the loss; the rule asks for 0.4 % of |reference| below it: -100.4
    got = decisions(ZHAO, [-100.0, -100.3, -100.45])
    assert [(imp, sig) for *_, imp, sig, _ in got] == [(True, True), (True, False), (True, True)]


def test_the_state_round_trip_mid_sequence_continues_with_the_same_decisions():
    straight = decisions(ZHAO, SEQUENCE)
    first = EarlyStopping(ZHAO)
    decisions(ZHAO, SEQUENCE[:7], first)  # after validation 7: reference 90, best 89.7, patience 12
    buffer = io.BytesIO()
    torch.save({"state": first.state_dict()}, buffer)  # as checkpoint.pt keeps it, read back as load_saved does
    buffer.seek(0)
    second = EarlyStopping(ZHAO)
    second.load_state_dict(torch.load(buffer, weights_only=True)["state"])
    assert second.state_dict() == first.state_dict()
    assert decisions(ZHAO, SEQUENCE[7:], second, first_epoch=8) == straight[7:]
    assert decisions(ZHAO, SEQUENCE[7:], first, first_epoch=8) == straight[7:]


def test_the_replay_of_a_saved_history_refuses_a_run_the_rule_ended(tmp_path):
    run = tiny_run("basic", epochs=20, early_stopping={"patience": 2})
    history = [{"epoch": 1, "valid_loss": 5.0}, {"epoch": 2, "valid_loss": 4.0},
               {"epoch": 3, "valid_loss": 6.0, "partial": {"epoch": 3, "batches": 1, "of": 8}}]  # partial: not counted
    state = train_module.replayed_early_stopping(run, history, None, tmp_path / MODEL)
    assert state["validations"] == 2 and state["patience"] == 4 and state["stopped"] is None
    history[2].pop("partial")
    with pytest.raises(ValueError, match="early stopping ended training"):
        train_module.replayed_early_stopping(run, history + [{"epoch": 4, "valid_loss": 6.0}], None, tmp_path / MODEL)


# --------------------------------------------------------------------------- configuration


def test_the_paper_config_gives_the_cvae_zhao_et_als_rule_and_nothing_else_one():
    experiment = ExperimentConfig.from_file(REPO_ROOT / "config" / "paper.yaml")
    train = experiment.train_config("cvae")
    assert train.early_stopping == ZHAO and train.epochs == 60 and train.validate_every == 1
    assert train.select_by == "valid_loss"
    others = [model for model in experiment.raw["model_defs"] if model != "cvae"]
    assert others and all(experiment.train_config(model).early_stopping is None for model in others)


def test_the_schema_and_the_dataclass_name_the_same_keys_and_snakemake_accepts_them():
    from snakemake.utils import validate

    from harness.core.config import SCHEMA_PATH, load_schema

    keys = load_schema()["properties"]["train"]["properties"]["early_stopping"]["properties"]
    assert set(keys) == {field.name for field in dataclasses.fields(EarlyStoppingConfig)}
    assert validate_config({})["train"]["early_stopping"] is None and TrainConfig().early_stopping is None
    given = validate_config({"train": {"early_stopping": {"patience": 4}}})["train"]["early_stopping"]
    assert TrainConfig(early_stopping=given).early_stopping == dataclasses.replace(ZHAO, patience=4)
    assert TrainConfig(early_stopping={}).early_stopping == ZHAO  # the defaults are Zhao et al.'s
    for early_stopping in (None, {}, {"patience": 10, "patience_increase": 2.0, "improvement_threshold": 0.996}):
        validate({"train": {"early_stopping": early_stopping}}, str(SCHEMA_PATH))  # the Snakefile's validator


@pytest.mark.parametrize("early_stopping, match", [
    ({"patience": 1.5}, r"early_stopping\.patience: expected an integer, got 1\.5"),
    ({"patience": "10"}, r"early_stopping\.patience: expected an integer, got '10'"),
    ({"patience_increase": "2"}, r"early_stopping\.patience_increase: expected a number, got '2'"),
    ({"improvement_threshold": True}, r"early_stopping\.improvement_threshold: expected a number, got True"),
    ({"patience": 10, "patiense": 12}, r"early_stopping: unknown key\(s\) \['patiense'\]"),
    ({"initial_patience": 10}, r"early_stopping: unknown key\(s\) \['initial_patience'\]"),
    ({"patience": 0}, "early_stopping: patience 0 must be an integer >= 1"),
    ({"patience_increase": 0.5}, r"early_stopping: patience_increase 0\.5 must be >= 1"),
    ({"improvement_threshold": 1.2}, r"early_stopping: improvement_threshold 1\.2 must lie in \(0, 1\]"),
    ("yes", r"early_stopping: expected a mapping"),
])
def test_a_bad_early_stopping_in_a_model_entry_names_the_entry_and_the_key(early_stopping, match):
    raw = {"models": ["m"], "model_defs": {"m": {"method": "vae-rnn", "train": {"early_stopping": early_stopping}}}}
    with pytest.raises(ConfigError, match=re.escape("model_defs.m.train.") + match):
        ExperimentConfig.from_mapping(raw)


@pytest.mark.parametrize("early_stopping, where", [
    ({"patience": "ten"}, "train.early_stopping.patience"),
    ({"patience": 10, "patiense": 2}, "train.early_stopping"),
    ({"improvement_threshold": 0}, "train.early_stopping.improvement_threshold"),
    ({"patience_increase": 0.5}, "train.early_stopping.patience_increase"),
])
def test_a_bad_early_stopping_at_the_top_is_rejected_by_the_schema(early_stopping, where):
    with pytest.raises(ConfigError, match=re.escape(where)):
        validate_config({"train": {"early_stopping": early_stopping}})


def test_early_stopping_needs_the_best_validation_kept():
    with pytest.raises(ConfigError, match="select_by: valid_loss"):
        TrainConfig(early_stopping={}, select_by="last")


def test_an_unset_early_stopping_leaves_run_configs_and_fingerprints_as_they_were():
    run = ExperimentConfig.from_file(REPO_ROOT / "config" / "config.yaml").runs()[0]
    assert run.train.early_stopping is None and "early_stopping" not in run.to_dict()["train"]
    stopping = dataclasses.replace(run, train=dataclasses.replace(run.train, early_stopping=ZHAO))
    assert stopping.to_dict()["train"]["early_stopping"] == {"patience": 10, "patience_increase": 2.0,
                                                            "improvement_threshold": 0.996}
    assert RunConfig.from_dict(json.loads(stopping.to_json())) == stopping
    assert stopping.training_fingerprint() != run.training_fingerprint()


def test_the_caption_and_the_budget_line_name_the_rule():
    from harness.train.budget import run_budget
    from harness.report.captions import train_setting

    assert describe(ZHAO) == ("patience 10 validations, raised to 2k by a new best at validation k at least 0.4 % "
                              "below the last such one; the best kept")
    assert train_setting("early_stopping", dataclasses.asdict(ZHAO)).startswith("early_stopping (patience 10 ")
    line = run_budget(tiny_run("basic", epochs=60, early_stopping={}), evaluation=False)
    assert "; 60 epochs at most (early stopping, patience 10 validations), batch 16" in line


# --------------------------------------------------------------------------- the trainer


def scripted_validation(monkeypatch, losses: list[float]) -> dict:
    """Validation losses in order, one per validation call (train_module.validation_loss replaced)."""
    calls = {"n": 0}

    def validation_loss(*args, **kwargs):
        calls["n"] += 1
        return losses[calls["n"] - 1]

    monkeypatch.setattr(train_module, "validation_loss", validation_loss)
    return calls


# validate_every 2: validations 1-4 are epochs 1, 3, 5, 7. Patience 2; a significant improvement (<= 0.9 x the
# reference) at validation 2 moves it to 4; validation 3 is a new best but not significant; validation 4 stops.
TINY_RULE = {"patience": 2, "patience_increase": 2.0, "improvement_threshold": 0.9}
TINY_LOSSES = [10.0, 8.0, 7.5, 7.9]


def test_the_trainer_stops_at_the_deadline_keeps_the_best_validation_and_says_why(ptb_sample, tmp_path, monkeypatch,
                                                                                    capsys):
    scripted_validation(monkeypatch, TINY_LOSSES)
    weights = {}
    summary = train_run(tiny_run("basic", epochs=12, validate_every=2, early_stopping=TINY_RULE), ptb_sample,
                        tmp_path, progress=False,
                        after_epoch=lambda entry, model: weights.update({entry["epoch"]: {
                            k: v.detach().clone() for k, v in model.state_dict().items()}}))
    reason = ("early stopping: patience 4 reached at validation 4 (last significant improvement at validation 2 "
              "(epoch 3))")
    assert summary["stopped_early"] == {"reason": reason, "epoch": 7, "validation": 4, "patience": 4,
                                        "best_epoch": 5, "last_significant_epoch": 3}
    assert summary["epochs_completed"] == 7 and [h["epoch"] for h in summary["history"]] == list(range(1, 8))
    assert summary["early_stopping"] == {"validations": 4, "patience": 4, "best_epoch": 5, "last_significant_epoch": 3,
                                         "stopped": summary["stopped_early"]}
    records = {h["epoch"]: h.get("early_stopping") for h in summary["history"]}
    assert records == {1: {"validation": 1, "patience": 2, "improved": True, "significant": True, "stop": None},
                       2: None,
                       3: {"validation": 2, "patience": 4, "improved": True, "significant": True, "stop": None},
                       4: None,
                       5: {"validation": 3, "patience": 4, "improved": True, "significant": False, "stop": None},
                       6: None,
                       7: {"validation": 4, "patience": 4, "improved": False, "significant": False, "stop": reason}}
    # the kept model is the best validation's (epoch 5, loss 7.5), not the last epoch's
    assert summary["selected_epoch"] == 5
    kept = load_saved(tmp_path / MODEL)["state_dict"]
    assert all(torch.equal(kept[k], weights[5][k]) for k in kept) and not all(
        torch.equal(kept[k], weights[7][k]) for k in kept)
    logged = json.loads((tmp_path / TRAIN_LOG).read_text())
    assert logged["stopped_early"]["reason"] == reason and logged["early_stopping"]["patience"] == 4
    assert not (tmp_path / CHECKPOINT).exists()  # a finished run: nothing to continue
    err = capsys.readouterr().err
    assert "valid loss 8.00 | patience 4 at validation 2 (significant improvement)" in err
    assert f"training stops: {reason}; the weights of epoch 5 are kept" in err


def test_a_resumed_run_continues_the_rule_identically(ptb_sample, tmp_path, monkeypatch):
    run = tiny_run("basic", epochs=12, validate_every=2, early_stopping=TINY_RULE)
    scripted_validation(monkeypatch, TINY_LOSSES)
    straight = train_run(run, ptb_sample, tmp_path / "straight", progress=False)

    real_save = train_module.save_torch_atomic

    def save_then_die(path, payload):  # killed after epoch 4: two validations counted, the deadline moved to 4
        real_save(path, payload)
        if Path(path).name == CHECKPOINT and payload["state"]["epoch"] == 4:
            raise KeyboardInterrupt("simulated kill")

    calls = scripted_validation(monkeypatch, TINY_LOSSES)
    monkeypatch.setattr(train_module, "save_torch_atomic", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_run(run, ptb_sample, tmp_path / "killed", progress=False)
    kept = load_saved(tmp_path / "killed" / CHECKPOINT)["state"]["early_stopping"]
    assert kept["validations"] == 2 and kept["patience"] == 4 and kept["reference"] == 8.0
    monkeypatch.setattr(train_module, "save_torch_atomic", real_save)
    assert calls["n"] == 2
    resumed = train_run(run, ptb_sample, tmp_path / "killed", progress=False)

    def without_times(history):
        return [{k: v for k, v in h.items() if k != "train_seconds"} for h in history]

    assert without_times(resumed["history"]) == without_times(straight["history"])
    assert resumed["stopped_early"] == straight["stopped_early"] and resumed["epochs_completed"] == 7
    assert resumed["early_stopping"] == straight["early_stopping"] and resumed["resumed_from"]["epoch"] == 4


def test_a_warm_start_replays_early_stopping_from_the_validation_losses(ptb_sample, tmp_path, monkeypatch):
    slow_updates(monkeypatch)  # 8 s an epoch on a fake clock: a 20 s budget stops after epoch 2
    scripted_validation(monkeypatch, [10.0, 8.0, 7.9, 7.8, 7.7, 7.6])
    run = tiny_run("basic", epochs=6, early_stopping={"patience": 3, "improvement_threshold": 0.9})
    stopped = train_run(run, ptb_sample, tmp_path, progress=False, time_budget_s=20)
    assert stopped["stopped_early"]["reason"] == "time budget" and stopped["epochs_completed"] == 2
    kept = load_saved(tmp_path / CHECKPOINT)["state"]["early_stopping"]
    assert kept["patience"] == 4 and kept["validations"] == 2  # not the initial state: a replay must happen
    (tmp_path / CHECKPOINT).unlink()
    record = train_module.warm_start_checkpoint(run, tmp_path / MODEL, tmp_path / "continued")
    assert record["replayed"] == ["early stopping"]
    assert load_saved(tmp_path / "continued" / CHECKPOINT)["state"]["early_stopping"] == kept
    continued = train_run(run, ptb_sample, tmp_path / "continued", progress=False)
    assert continued["stopped_early"]["epoch"] == 4 and continued["epochs_completed"] == 4  # 4 <= 2 x 2
    assert continued["selected_epoch"] == 4
