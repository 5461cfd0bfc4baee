"""Learning-rate decay on a validation plateau: the two reference recipes on hand-made losses, the config, and the
trainer applying them (lr, reloaded best weights, stop, resume)."""
from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pytest
import torch

from conftest import REPO_ROOT
from harness.train import training as train_module
from harness.core.config import ConfigError, ExperimentConfig, LrDecayConfig, RunConfig, TrainConfig, validate_config
from harness.train.lr_schedule import LrSchedule, describe
from harness.train.optim import Optimisation
from harness.train.training import MODEL, train_run

# He et al. 2019 (jxhe/vae-lagging-encoder text.py) and Kim et al. 2018 (harvardnlp/sa-vae train_text.py)
HE = LrDecayConfig(mode="plateau", factor=0.5, patience=2, start_epoch=16, max_decays=5, reload_best=True,
                   restart_optimizer=True)
KIM = LrDecayConfig(mode="every-epoch-after-plateau", factor=0.5, patience=1, start_epoch=15, min_lr=0.03)


def run_schedule(config: LrDecayConfig, losses: list[float], lr: float = 1.0):
    """(epoch, new lr) of every decay, and (epoch, reason) of the stop, for validation losses of epochs 1, 2, ..."""
    schedule, decays = LrSchedule(config, lr), []
    for epoch, loss in enumerate(losses, 1):
        decision = schedule.step(epoch, loss)
        if decision.decayed:
            decays.append((epoch, decision.lr))
        if decision.stop:
            return decays, (epoch, decision.stop), schedule
    return decays, None, schedule


def test_he_et_al_decay_when_the_loss_exceeds_the_last_not_worse_one_twice_and_stop_at_the_fifth():
    losses = [100 - k for k in range(10)]  # epochs 1-10 improve to 91
    losses += [92, 93, 93.5, 94, 95]  # epochs 11-15: worse five times, but before epoch 16 (0-based 15): no decay...
    losses += [96]  # epoch 16: ...and the count was not reset, so the first validation allowed decays at once
    losses += [95, 95]  # 17: better than the reference (96, epoch 16's loss); 18: equal is not worse
    losses += [95.5, 95.2]  # 19, 20: both above 95, though 20 is below 19: decay 2 (a global best of 91 is irrelevant)
    losses += [96, 97]  # 21, 22: decay 3; the reference becomes 97
    losses += [96.9, 97, 98]  # 23 resets; 24, 25: decay 4
    losses += [99, 99, 50]  # 26, 27: decay 5 and the stop: epoch 28 is never trained
    decays, stop, schedule = run_schedule(HE, losses)
    assert decays == [(16, 0.5), (20, 0.25), (22, 0.125), (25, 0.0625), (27, 0.03125)]
    assert stop == (27, "lr decayed 5 times (max_decays 5)")
    assert schedule.stopped == {"epoch": 27, "reason": stop[1]}
    with pytest.raises(RuntimeError, match="already stopped"):
        schedule.step(28, 50)


def test_bn_vae_patience_five_waits_for_five_worse_validations():
    bn = dataclasses.replace(HE, patience=5)
    losses = [10.0] * 16 + [11, 12, 13, 14] + [11.5]  # epochs 17-21 worse than 10 (equal losses are not worse)
    losses += [12] * 10  # 22-26 worse than 11.5 (epoch 21's); 27-31 equal to 12 (epoch 26's): not worse
    decays, stop, _ = run_schedule(bn, losses)
    assert decays == [(21, 0.5), (26, 0.25)] and stop is None


def test_kim_et_al_halve_every_epoch_from_the_first_non_improving_epoch_from_15_and_stop_below_003():
    losses = [100 - k for k in range(12)]  # epochs 1-12 improve to 89
    losses += [90, 88, 87]  # 13 does not improve, but 13 < min_epochs 15; 14, 15 improve
    losses += [87]  # 16: equal is not better: decaying starts, after this epoch
    losses += [80, 79, 78, 77, 76, 75]  # improving or not, every epoch halves; 21 takes lr below 0.03
    decays, stop, schedule = run_schedule(KIM, losses)
    assert decays == [(16, 0.5), (17, 0.25), (18, 0.125), (19, 0.0625), (20, 0.03125), (21, 0.015625)]
    assert stop == (21, "lr 0.015625 fell below min_lr 0.03")
    assert schedule.summary() == {"final_lr": 0.015625, "decays": 6, "stopped": {"epoch": 21, "reason": stop[1]}}


def test_kim_et_al_a_non_improving_epoch_at_min_epochs_itself_starts_decaying():
    improving = [10 - k for k in range(14)]  # epochs 1-14, down to -3
    assert run_schedule(KIM, improving + [-4, -2])[0] == [(16, 0.5)]  # epoch 15 improved: 16 is the first plateau
    assert run_schedule(KIM, improving + [-3])[0] == [(15, 0.5)]  # equal at epoch 15 = min_epochs: decays at once


def test_fu_et_al_cosine_restarts_the_lr_with_every_cycle_whatever_the_losses():
    schedule = LrSchedule(LrDecayConfig(mode="cosine-per-cycle", cycle_epochs=4), 1.0)
    lrs = [schedule.lr] + [schedule.step(epoch, loss).lr for epoch, loss in enumerate([5, 9, 1, 7, 3, 3, 3, 3], 1)]
    cosine = [1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4))]
    assert lrs == pytest.approx(cosine * 2 + [1.0])  # epochs 1-4, 5-8, 9: the lr of epoch e, set before it
    assert schedule.decays == 0 and schedule.stopped is None  # `epochs` ends the run


def test_the_state_round_trip_continues_the_schedule_identically():
    losses = [5, 4, 4.5, 4.6, 4.2, 4.3, 4.4, 4.1, 4.5, 4.6, 4.7]
    config = dataclasses.replace(HE, start_epoch=1, max_decays=None)
    straight, _, _ = run_schedule(config, losses)
    first = LrSchedule(config, 1.0)
    for epoch, loss in enumerate(losses[:6], 1):
        first.step(epoch, loss)
    second = LrSchedule(config, 1.0)
    second.load_state_dict(first.state_dict())
    assert second.state_dict() == first.state_dict()
    resumed = [(epoch, d.lr) for epoch, loss in enumerate(losses[6:], 7) if (d := second.step(epoch, loss)).decayed]
    assert [d for d in straight if d[0] > 6] == resumed and resumed


# --------------------------------------------------------------------------- configuration


def test_the_paper_config_gives_each_baseline_its_reference_recipe():
    experiment = ExperimentConfig.from_file(REPO_ROOT / "config" / "paper.yaml")
    assert experiment.train_config("vae-lstm").lr_decay == HE
    assert experiment.train_config("lag-vae").lr_decay == HE
    assert experiment.train_config("bn-vae").lr_decay == dataclasses.replace(HE, patience=5)  # text_anneal_fb.py
    assert experiment.train_config("sa-vae").lr_decay == KIM
    # Fu et al.'s decay block is commented out, but their lr follows a cosine restarted with every KL cycle
    assert experiment.train_config("cyc-vae").lr_decay == LrDecayConfig(mode="cosine-per-cycle", cycle_epochs=10)
    assert experiment.train_config("cyc-vae").optimizer == "adam"
    assert experiment.train_config("twr-vae").lr_decay is None


def test_the_schema_and_the_dataclass_name_the_same_keys_and_snakemake_accepts_them():
    from snakemake.utils import validate

    from harness.core.config import SCHEMA_PATH, load_schema

    keys = load_schema()["properties"]["train"]["properties"]["lr_decay"]["properties"]
    assert set(keys) == {field.name for field in dataclasses.fields(LrDecayConfig)}
    assert validate_config({})["train"]["lr_decay"] is None and TrainConfig().lr_decay is None
    given = validate_config({"train": {"lr_decay": {"mode": "plateau"}}})["train"]["lr_decay"]
    assert TrainConfig(lr_decay=given).lr_decay == LrDecayConfig(mode="plateau", factor=0.5, patience=1)
    for lr_decay in (None, {"mode": "plateau"}):  # the Snakefile validates the config with Snakemake's validator
        validate({"train": {"lr_decay": lr_decay}}, str(SCHEMA_PATH))


@pytest.mark.parametrize("lr_decay, match", [
    ({"mode": "halve"}, "mode 'halve'"),
    ({"mode": "plateau", "factor": 1.0}, "factor"),
    ({"mode": "plateau", "patiense": 2}, "patiense"),
    ({"factor": 0.5}, "mode"),
    ({"mode": "plateau", "max_decays": 0}, "max_decays"),
    ({"mode": "cosine-per-cycle"}, "cycle_epochs"),
    ({"mode": "cosine-per-cycle", "cycle_epochs": 10, "reload_best": True}, "reload_best would not act"),
    ({"mode": "plateau", "cycle_epochs": 10}, "cycle_epochs is for mode cosine-per-cycle"),
])
def test_a_bad_lr_decay_in_a_model_entry_names_the_entry_and_the_key(lr_decay, match):
    raw = {"models": ["m"], "model_defs": {"m": {"method": "vae-rnn", "train": {"lr_decay": lr_decay}}}}
    with pytest.raises(ConfigError, match=re.escape("model_defs.m.train") + ".*" + match):
        ExperimentConfig.from_mapping(raw)


def test_a_bad_lr_decay_at_the_top_is_rejected_by_the_schema():
    with pytest.raises(ConfigError, match="train.lr_decay"):
        validate_config({"train": {"lr_decay": {"mode": "plateau", "patiense": 2}}})


@pytest.mark.parametrize("train, match", [
    ({"validate_every": 10}, "validate_every 1"),
    ({"select_by": "last"}, "select_by: valid_loss"),
])
def test_lr_decay_needs_every_epoch_validated_and_kept_best_weights(train, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(lr_decay={"mode": "plateau", "reload_best": True}, **train)


def test_an_unset_lr_decay_leaves_run_configs_and_fingerprints_as_they_were():
    run = ExperimentConfig.from_file(REPO_ROOT / "config" / "config.yaml").runs()[0]
    assert run.train.lr_decay is None and "lr_decay" not in run.to_dict()["train"]
    assert RunConfig.from_dict(run.to_dict()) == run
    decayed = dataclasses.replace(run, train=dataclasses.replace(run.train, lr_decay=HE))
    assert decayed.to_dict()["train"]["lr_decay"]["patience"] == 2
    assert RunConfig.from_dict(decayed.to_dict()) == decayed
    assert decayed.training_fingerprint() != run.training_fingerprint()


def test_the_caption_phrase_names_each_rule():
    assert describe(HE) == ("x0.5 after 2 epochs in a row without improvement, not before epoch 16, best weights "
                            "reloaded, optimizer restarted; stop after 5 decays")
    assert describe(dataclasses.asdict(KIM)) == ("x0.5 after every epoch once an epoch did not improve, not before "
                                                 "epoch 15; stop below lr 0.03")
    assert describe({"mode": "cosine-per-cycle", "cycle_epochs": 10}) == (
        "cosine from the lr towards 0 over every 10 epochs, restarting at each cycle")


@pytest.mark.parametrize("restart", [False, True])
def test_setting_the_lr_keeps_or_drops_the_optimizer_state(restart):
    params = [torch.nn.Parameter(torch.ones(3))]
    optimisation = Optimisation({"all": params}, TrainConfig(lr=0.1))
    optimisation.minimise(params[0].sum().expand(2), step=0)
    assert optimisation.optimizers["all"].state  # Adam moments
    optimisation.set_lr(0.05, restart=restart)
    optimizer = optimisation.optimizers["all"]
    assert optimizer.param_groups[0]["lr"] == 0.05 and bool(optimizer.state) is not restart
    assert isinstance(optimizer, torch.optim.Adam)


# --------------------------------------------------------------------------- the trainer


def tiny_sgd_run(lr_decay: dict, epochs: int = 10):
    return ExperimentConfig.from_mapping({
        "device": "cpu", "models": ["basic"],
        "data_options": {"ptb": {"max_train_sentences": 120, "max_test_sentences": 30}},
        "architecture": {"emb_dim": 16, "hidden_dim": 16, "z_dim": 4},
        "train": {"epochs": epochs, "batch_size": 16, "optimizer": "sgd", "lr": 0.5, "grad_clip": 5.0,
                  "loss_reduction": "mean", "lr_decay": lr_decay},
        "model_defs": {"basic": {"method": "vae-rnn"}},
    }).runs()[0]


class Recorder:
    """Scripted validation losses (epoch k gets losses[k - 1]); the lr and the weights every epoch starts from."""

    def __init__(self, monkeypatch, losses):
        self.losses, self.validated = losses, 0
        self.lrs: dict[int, set[float]] = {}  # epoch -> the lrs its updates used
        self.optimizers: dict[int, set[int]] = {}  # epoch -> ids of the optimizers that stepped
        self.start: dict[int, dict[int, torch.Tensor]] = {}  # epoch -> weights before its first update
        self.end: dict[int, dict[int, torch.Tensor]] = {}  # epoch -> weights after it (as after_epoch sees them)
        real_minimise = Optimisation.minimise
        recorder = self

        def minimise(self, loss, step, groups=None):
            epoch = int(self.where.rsplit("epoch ", 1)[1])
            if epoch not in recorder.start:
                recorder.start[epoch] = {id(p): p.detach().clone() for ps in self.groups.values() for p in ps}
            recorder.lrs.setdefault(epoch, set()).update(o.param_groups[0]["lr"] for o in self.optimizers.values())
            recorder.optimizers.setdefault(epoch, set()).update(id(o) for o in self.optimizers.values())
            return real_minimise(self, loss, step, groups)

        monkeypatch.setattr(Optimisation, "minimise", minimise)
        monkeypatch.setattr(train_module, "validation_loss", self.validation_loss)

    def validation_loss(self, *args, **kwargs):
        self.validated += 1
        return self.losses[self.validated - 1]

    def after_epoch(self, entry, model):
        self.end[entry["epoch"]] = {id(p): p.detach().clone() for p in model.parameters()}


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


HE_TINY = {"mode": "plateau", "factor": 0.5, "patience": 2, "start_epoch": 3, "max_decays": 2, "reload_best": True,
           "restart_optimizer": True}
HE_TINY_LOSSES = [10, 9, 9.5, 9.7, 9.6, 9.8, 9.9, 1, 1, 1]  # decays after epochs 4 and 7 (the second one stops)


def test_he_et_al_recipe_halves_the_lr_reloads_the_best_weights_and_stops(ptb_sample, tmp_path, monkeypatch):
    recorder = Recorder(monkeypatch, HE_TINY_LOSSES)
    summary = train_run(tiny_sgd_run(HE_TINY), ptb_sample, tmp_path, progress=False, after_epoch=recorder.after_epoch)
    history = summary["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5, 6, 7] and summary["epochs_completed"] == 7
    assert [h["lr"] for h in history] == [0.5] * 4 + [0.25] * 3
    assert {epoch: lrs for epoch, lrs in recorder.lrs.items()} == {e: {0.5 if e <= 4 else 0.25} for e in range(1, 8)}
    assert history[3]["lr_decay"] == {"lr": 0.25, "decays": 1, "reloaded_epoch": 2, "optimizer_restarted": True,
                                      "stop": None}
    assert history[6]["lr_decay"] == {"lr": 0.125, "decays": 2, "reloaded_epoch": 2, "optimizer_restarted": True,
                                      "stop": "lr decayed 2 times (max_decays 2)"}
    assert all("lr_decay" not in history[k] for k in (0, 1, 2, 4, 5))
    assert summary["lr_schedule"] == {"final_lr": 0.125, "decays": 2,
                                      "stopped": {"epoch": 7, "reason": "lr decayed 2 times (max_decays 2)"}}
    assert summary["stopped_early"] is None and summary["selected_epoch"] == 2
    # epoch 5 starts from epoch 2's weights (the kept best), not epoch 4's; undecayed epochs continue where they were
    assert same_weights(recorder.start[5], recorder.end[2]) and not same_weights(recorder.start[5], recorder.end[4])
    assert all(same_weights(recorder.start[e], recorder.end[e - 1]) for e in (2, 3, 4, 6, 7))
    assert recorder.optimizers[5] != recorder.optimizers[4] and recorder.optimizers[6] == recorder.optimizers[5]
    saved = torch.load(tmp_path / MODEL, weights_only=False)
    assert saved["summary"]["lr_schedule"]["decays"] == 2


def test_kim_et_al_recipe_halves_every_epoch_without_reloading_and_stops_below_min_lr(ptb_sample, tmp_path,
                                                                                       monkeypatch):
    kim = {"mode": "every-epoch-after-plateau", "factor": 0.5, "start_epoch": 2, "min_lr": 0.2}
    recorder = Recorder(monkeypatch, [10, 9, 9, 8, 7, 6])  # epoch 3 does not improve: 0.25 after 3, 0.125 after 4
    summary = train_run(tiny_sgd_run(kim), ptb_sample, tmp_path, progress=False, after_epoch=recorder.after_epoch)
    assert [h["lr"] for h in summary["history"]] == [0.5, 0.5, 0.5, 0.25]
    assert summary["lr_schedule"]["stopped"] == {"epoch": 4, "reason": "lr 0.125 fell below min_lr 0.2"}
    assert summary["history"][2]["lr_decay"]["reloaded_epoch"] is None
    assert same_weights(recorder.start[4], recorder.end[3])  # no reload
    assert recorder.optimizers[4] == recorder.optimizers[3]  # the same optimizer, its lr set
    assert summary["selected_epoch"] == 4


def test_the_cosine_recipe_sets_every_epochs_lr_before_it_trains(ptb_sample, tmp_path, monkeypatch):
    recorder = Recorder(monkeypatch, [10, 9, 9, 8, 7, 6, 5])
    summary = train_run(tiny_sgd_run({"mode": "cosine-per-cycle", "cycle_epochs": 3}, epochs=7), ptb_sample, tmp_path,
                        progress=False, after_epoch=recorder.after_epoch)
    expected = [0.5 * 0.5 * (1 + math.cos(math.pi * ((e - 1) % 3) / 3)) for e in range(1, 8)]
    assert [h["lr"] for h in summary["history"]] == pytest.approx(expected)
    assert all(len(recorder.lrs[e]) == 1 for e in range(1, 8))  # one lr for all of an epoch's updates
    assert [recorder.lrs[e].pop() for e in range(1, 8)] == pytest.approx(expected)  # and the one the history names
    assert summary["epochs_completed"] == 7 and summary["lr_schedule"]["stopped"] is None
    assert all("lr_decay" not in h for h in summary["history"])


def test_a_resumed_run_continues_the_schedule_identically(ptb_sample, tmp_path, monkeypatch):
    run = tiny_sgd_run(HE_TINY)
    Recorder(monkeypatch, HE_TINY_LOSSES)
    straight = train_run(run, ptb_sample, tmp_path / "straight", progress=False)

    real_save = train_module.save_torch_atomic

    def save_then_die(path, payload):  # killed after epoch 5: after the first decay, with a count under way
        real_save(path, payload)
        if Path(path).name == "checkpoint.pt" and payload["state"]["epoch"] == 5:
            raise KeyboardInterrupt("simulated kill")

    recorder = Recorder(monkeypatch, HE_TINY_LOSSES)
    monkeypatch.setattr(train_module, "save_torch_atomic", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_run(run, ptb_sample, tmp_path / "killed", progress=False)
    checkpoint = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=False)
    assert checkpoint["state"]["lr_schedule"]["lr"] == 0.25 and checkpoint["state"]["lr_schedule"]["decays"] == 1
    monkeypatch.setattr(train_module, "save_torch_atomic", real_save)
    recorder.validated = 5  # the scripted losses continue with epoch 6
    resumed = train_run(run, ptb_sample, tmp_path / "killed", progress=False)

    def without_times(history):
        return [{k: v for k, v in h.items() if k != "train_seconds"} for h in history]

    assert without_times(resumed["history"]) == without_times(straight["history"])
    assert resumed["lr_schedule"] == straight["lr_schedule"] and resumed["epochs_completed"] == 7
    a = torch.load(tmp_path / "straight" / MODEL, weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "killed" / MODEL, weights_only=False)["state_dict"]
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_a_checkpoint_of_a_finished_schedule_resumes_to_the_end_without_training(ptb_sample, tmp_path, monkeypatch):
    run = tiny_sgd_run(HE_TINY)
    real_save = train_module.save_torch_atomic

    def save_then_die(path, payload):  # killed after the checkpoint of the stopping epoch, before model.pt
        real_save(path, payload)
        if Path(path).name == "checkpoint.pt" and payload["state"]["epoch"] == 7:
            raise KeyboardInterrupt("simulated kill")

    Recorder(monkeypatch, HE_TINY_LOSSES)
    monkeypatch.setattr(train_module, "save_torch_atomic", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_run(run, ptb_sample, tmp_path, progress=False)
    monkeypatch.setattr(train_module, "save_torch_atomic", real_save)
    recorder = Recorder(monkeypatch, [])  # no validation may happen
    summary = train_run(run, ptb_sample, tmp_path, progress=False)
    assert recorder.validated == 0 and not recorder.lrs and summary["epochs_completed"] == 7
    assert summary["lr_schedule"]["stopped"]["epoch"] == 7


def test_without_lr_decay_the_history_is_unchanged(ptb_sample, tmp_path):
    run = dataclasses.replace(tiny_sgd_run(HE_TINY, epochs=1), train=dataclasses.replace(
        tiny_sgd_run(HE_TINY, epochs=1).train, lr_decay=None))
    summary = train_run(run, ptb_sample, tmp_path, progress=False)
    assert summary["lr_schedule"] is None and "lr" not in summary["history"][0]
    assert math.isfinite(summary["history"][0]["valid_loss"])
