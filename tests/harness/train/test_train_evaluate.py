"""Training and evaluation on the committed PTB sample: outputs, determinism, resume, NaN guard."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from conftest import FIXTURES, slow_updates, tiny_config, tiny_run
from harness.train import training as train_module
from harness.core.config import (ArchitectureConfig, DataOptions, EvaluateConfig, ExperimentConfig, ModelEntry, RunConfig,
                            TrainConfig)
from harness.evaluate.evaluation import evaluate_run
from harness.core.runs import TRAINING_RECORD, load_saved
from harness.train.training import MODEL, TRAIN_LOG, TrainingDiverged, train_run
from metrics.lm import gaussian_kl_standard_normal


def device_run(device: torch.device, epochs: int) -> RunConfig:
    """The same run built without the schema (the GPU image has no jsonschema): the typed config's own defaults."""
    config = tiny_config(epochs=epochs)
    return RunConfig(experiment="smoke", dataset="ptb", seed=1, device=device.type,
                     data=DataOptions(**config["data_options"]["ptb"]),
                     architecture=ArchitectureConfig(**config["architecture"]), train=TrainConfig(**config["train"]),
                     evaluate=EvaluateConfig(**config["evaluate"]),
                     model=ModelEntry(name="twr-vae", **config["model_defs"]["twr-vae"]))


def metric_values(path: Path) -> dict:
    return json.loads(path.read_text())["metrics"]


def test_training_and_evaluation_write_complete_results(ptb_sample, tmp_path):
    run = tiny_run()
    summary = train_run(run, ptb_sample, tmp_path, progress=False)
    assert (tmp_path / MODEL).exists() and (tmp_path / TRAIN_LOG).exists()
    assert not (tmp_path / "checkpoint.pt").exists()  # superseded by model.pt
    assert [h["epoch"] for h in summary["history"]] == [1, 2] and summary["train_sentences"] == 120
    payload = evaluate_run(tmp_path / MODEL, ptb_sample, tmp_path / "metrics.json", progress=False)
    uniform, paper = payload["metrics"]["uniform"], payload["metrics"]["paper"]
    assert set(uniform) >= {"NLL", "PPL", "KL", "MI", "AU"} and set(paper) >= {"NLL", "PPL", "KL", "MI"}
    assert all(math.isfinite(uniform[k]) for k in ("NLL", "PPL", "KL", "MI"))
    # PPL is exp(NLL per predicted token): consistent with NLL and the token count
    assert math.log(uniform["PPL"]) == pytest.approx(uniform["NLL"] * 30 / payload["data"]["test_tokens"], rel=1e-6)
    # the IW bound is at least as tight as the single-sample ELBO (in expectation; K=6 leaves a wide margin)
    assert uniform["NLL"] <= -uniform["elbo"] + 1.0
    assert payload["data"]["reduced"] and "train capped at 120 of 200" in payload["data"]["note"]
    assert payload["config"]["seed"] == 1 and payload["code_version"] and payload["timing"]["train_seconds"] > 0
    # what train_log.json says of how the weights were trained, repeated: every TRAINING_RECORD key, as trained
    assert payload["training"] == {key: summary.get(key) for key in TRAINING_RECORD}
    assert payload["training"]["resumed_from"] is None and payload["training"]["code_changed_during_run"] == []


def test_same_seed_gives_identical_metrics(ptb_sample, tmp_path, device):
    run = device_run(device, epochs=1)
    for name in ("a", "b"):
        train_run(run, ptb_sample, tmp_path / name, progress=False)
        evaluate_run(tmp_path / name / MODEL, ptb_sample, tmp_path / name / "metrics.json", progress=False)
    assert metric_values(tmp_path / "a" / "metrics.json") == metric_values(tmp_path / "b" / "metrics.json")


def test_a_killed_run_resumes_to_the_same_result(ptb_sample, tmp_path, monkeypatch, device):
    run = device_run(device, epochs=2)
    train_run(run, ptb_sample, tmp_path / "straight", progress=False)

    real_save = train_module.save_torch_atomic

    def save_then_die(path, payload):
        real_save(path, payload)
        if Path(path).name == "checkpoint.pt":
            raise KeyboardInterrupt("simulated kill after the first epoch's checkpoint")

    monkeypatch.setattr(train_module, "save_torch_atomic", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_run(run, ptb_sample, tmp_path / "killed", progress=False)
    assert (tmp_path / "killed" / "checkpoint.pt").exists() and not (tmp_path / "killed" / MODEL).exists()
    monkeypatch.setattr(train_module, "save_torch_atomic", real_save)
    resumed = train_run(run, ptb_sample, tmp_path / "killed", progress=False)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    a = torch.load(tmp_path / "straight" / MODEL, weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "killed" / MODEL, weights_only=False)["state_dict"]
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_a_nan_loss_stops_training_naming_the_step_and_writes_no_result(ptb_sample, tmp_path, monkeypatch):
    from twrvae.model import TWRVAE

    real_loss = TWRVAE.loss

    def poisoned(self, batch, step):
        terms = real_loss(self, batch, step)
        if step == 3:
            terms.loss = terms.loss * float("nan")
        return terms

    monkeypatch.setattr(TWRVAE, "loss", poisoned)
    with pytest.raises(TrainingDiverged, match="step 3"):
        train_run(tiny_run(), ptb_sample, tmp_path, progress=False)
    assert not (tmp_path / MODEL).exists() and not (tmp_path / TRAIN_LOG).exists()


def test_the_basic_vae_trains_through_the_same_harness(ptb_sample, tmp_path):
    run = tiny_run("basic", epochs=1)
    train_run(run, ptb_sample, tmp_path, progress=False)
    payload = evaluate_run(tmp_path / MODEL, ptb_sample, tmp_path / "metrics.json", progress=False)
    assert payload["method"] == "vae-rnn" and payload["paper_name"] is None


def test_the_optimizer_is_a_config_choice():
    from harness.core.config import TrainConfig
    from harness.train.optim import Optimisation

    params = [torch.nn.Parameter(torch.zeros(2))]
    assert isinstance(Optimisation({"all": params}, TrainConfig()).optimizers["all"], torch.optim.Adam)
    sgd = Optimisation({"all": params}, TrainConfig(optimizer="sgd", lr=1.0)).optimizers["all"]
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["lr"] == 1.0


def test_the_run_built_without_the_schema_is_the_validated_one():
    assert device_run(torch.device("cpu"), epochs=2).to_dict() == tiny_run(epochs=2).to_dict()


def test_a_spent_time_budget_stops_mid_epoch_and_says_so(ptb_sample, tmp_path):
    summary = train_run(tiny_run(epochs=3), ptb_sample, tmp_path, progress=False, time_budget_s=0.0)
    assert summary["stopped_early"] == {"reason": "time budget", "budget_seconds": 0.0,
                                        "partial_epoch": {"epoch": 1, "batches": 1, "of": 8}}
    assert summary["epochs_completed"] == 0 and summary["steps"] == 1 and summary["selected_epoch"] == 1
    assert summary["history"][0]["partial"] == {"epoch": 1, "batches": 1, "of": 8}
    assert (tmp_path / MODEL).exists()
    in_epoch = load_saved(tmp_path / "checkpoint.pt")["state"]["in_epoch"]  # the stop inside epoch 1, to go on from
    assert (in_epoch["epoch"], in_epoch["batches"], in_epoch["of"], in_epoch["sentences"]) == (1, 1, 8, 16)


def lagging_run(epochs: int):
    config = tiny_config("lag", epochs)
    config["model_defs"]["lag"] = {"method": "lagging-vae", "options": {"inner_max_steps": 4, "inner_check_every": 2}}
    return ExperimentConfig.from_mapping(config).runs()[0]


@pytest.mark.parametrize("make_run", [lambda: tiny_run(epochs=3), lambda: lagging_run(3)], ids=["twr-vae", "lagging"])
def test_an_epoch_stopped_by_the_budget_is_continued_where_it_stopped_with_the_same_updates(ptb_sample, tmp_path,
                                                                                             monkeypatch, make_run,
                                                                                             capsys):
    """Budgets spent inside epochs (fake clock, 1 s an update; Lagging VAE: every encoder-only update too, so that its
    epoch 1 spans three calls, and its random batches draw on the batch generator): each later call goes on with the
    stopped epoch from its checkpoint, and the run ends with the losses, steps and weights of an uninterrupted run."""
    run = make_run()
    whole = train_run(run, ptb_sample, tmp_path / "whole", progress=False)
    reports = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lagging-vae epoch")]
    slow_updates(monkeypatch)
    calls = [train_run(run, ptb_sample, tmp_path / "stopped", progress=False, time_budget_s=budget)
             for budget in (5, 5, None)]
    # each call went on from the step where the one before stopped (not from the last whole epoch)
    assert [c["resumed_from"] and c["resumed_from"]["step"] for c in calls] == [None, calls[0]["steps"],
                                                                                calls[1]["steps"]]
    # Lagging VAE's per-epoch report counts the encoder-only updates of every call that trained the epoch
    assert [line for line in capsys.readouterr().err.splitlines() if line.startswith("lagging-vae epoch")] == reports
    stops = [c["stopped_early"]["partial_epoch"]["epoch"] for c in calls[:2]]  # both inside an epoch
    assert stops == ([1, 2] if run.model.name == "twr-vae" else [1, 1])  # Lagging VAE's epoch 1 spans three calls
    assert [c["epochs_completed"] for c in calls[:2]] == [stop - 1 for stop in stops]
    continued = calls[-1]
    assert continued["stopped_early"] is None and not (tmp_path / "stopped" / "checkpoint.pt").exists()
    assert continued["steps"] == whole["steps"]
    assert [h["epoch"] for h in continued["history"]] == [1, 2, 3]
    assert not any(h.get("partial") for h in continued["history"])
    for key in ("train_loss", "train_kl", "valid_loss", "method_state"):
        assert [h.get(key) for h in continued["history"]] == [h.get(key) for h in whole["history"]], key
    ours, theirs = (load_saved(path / MODEL)["state_dict"] for path in (tmp_path / "stopped", tmp_path / "whole"))
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_a_continued_epoch_is_refused_when_the_data_no_longer_make_its_batches(ptb_sample, tmp_path, monkeypatch):
    slow_updates(monkeypatch)
    train_run(tiny_run(epochs=2), ptb_sample, tmp_path, progress=False, time_budget_s=3)
    saved = load_saved(tmp_path / "checkpoint.pt")
    saved["state"]["in_epoch"]["of"] = 9  # as if the training split had changed under the same config
    torch.save(saved, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="stopped after 4 of 9 batches, but the training data now make 8"):
        train_run(tiny_run(epochs=2), ptb_sample, tmp_path, progress=False)


@pytest.mark.parametrize("budget, epochs_completed", [(15.0, 1), (25.0, 2), (None, 3)])
def test_a_time_budget_stops_before_an_epoch_that_would_not_fit(ptb_sample, tmp_path, monkeypatch, budget,
                                                                  epochs_completed):
    # a fake clock on which only validation takes time, 10 s per epoch: deterministic whatever the machine
    clock = {"now": 0.0}
    real_validation = train_module.validation_loss

    def slow_validation(*args, **kwargs):
        clock["now"] += 10.0
        return real_validation(*args, **kwargs)

    monkeypatch.setattr(train_module, "validation_loss", slow_validation)
    monkeypatch.setattr(train_module.time, "monotonic", lambda: clock["now"])
    summary = train_run(tiny_run(epochs=3), ptb_sample, tmp_path, progress=False, time_budget_s=budget)
    assert summary["epochs_completed"] == epochs_completed == len(summary["history"])
    assert summary["stopped_early"] == (None if budget is None else
                                        {"reason": "time budget", "budget_seconds": budget, "partial_epoch": None})


def test_a_stochastic_posterior_is_scored_once_under_both_protocols(ptb_sample, tmp_path):
    # SA-VAE refines q(z|x) with noisy SVI steps: both protocols must score the same refined posterior
    train_run(tiny_run("sa", epochs=1), ptb_sample, tmp_path, progress=False)
    payload = evaluate_run(tmp_path / MODEL, ptb_sample, tmp_path / "metrics.json", progress=False)
    assert payload["metrics"]["paper"]["KL"] == pytest.approx(payload["metrics"]["uniform"]["KL"], rel=1e-12)


def test_validation_every_n_epochs_selects_among_the_validated_ones(ptb_sample, tmp_path):
    # the original TWR-VAE code validates at 0-based epochs 0, 10, 20, ...: here 1-based 1, 3, 5 for N = 2
    summary = train_run(tiny_run(epochs=5, validate_every=2), ptb_sample, tmp_path, progress=False)
    validated = [h["epoch"] for h in summary["history"] if h["valid_loss"] is not None]
    assert validated == [1, 3, 5] and summary["selected_epoch"] in validated


def test_a_budget_stop_validates_the_last_weights_even_off_schedule(ptb_sample, tmp_path, monkeypatch):
    clock = {"now": 0.0}
    real_step = train_module.Optimisation.minimise

    def slow_step(self, *args, **kwargs):  # 1 s per update on a fake clock: 8 updates per epoch
        clock["now"] += 1.0
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(train_module.Optimisation, "minimise", slow_step)
    monkeypatch.setattr(train_module.time, "monotonic", lambda: clock["now"])
    summary = train_run(tiny_run(epochs=6, validate_every=4), ptb_sample, tmp_path, progress=False, time_budget_s=20)
    assert summary["epochs_completed"] == 2 and summary["stopped_early"]["partial_epoch"] is None
    assert [h["valid_loss"] is not None for h in summary["history"]] == [True, True]  # epoch 2: at the stop


def test_a_budget_stop_keeps_its_checkpoint_and_a_later_call_continues_it_exactly(ptb_sample, tmp_path, monkeypatch):
    slow_updates(monkeypatch)
    run = tiny_run(epochs=4, validate_every=4)
    stopped = train_run(run, ptb_sample, tmp_path / "stopped", progress=False, time_budget_s=20)
    assert stopped["epochs_completed"] == 2 and (tmp_path / "stopped" / "checkpoint.pt").exists()
    continued = train_run(run, ptb_sample, tmp_path / "stopped", progress=False)
    assert continued["stopped_early"] is None and not (tmp_path / "stopped" / "checkpoint.pt").exists()
    assert [h["epoch"] for h in continued["history"]] == [1, 2, 3, 4] and continued["steps"] == 32
    assert continued["history"][1]["valid_loss"] == stopped["history"][1]["valid_loss"]  # the stop's validation kept
    whole = train_run(run, ptb_sample, tmp_path / "whole", progress=False)
    # the same updates as without the stop (its epoch-2 validation is the one difference: a candidate more)
    assert [h["train_loss"] for h in whole["history"]] == [h["train_loss"] for h in continued["history"]]


def test_an_epoch_cap_ends_the_run_as_a_budget_stop_does_and_the_run_can_go_on(ptb_sample, tmp_path):
    """`max_epochs` (a second seed matched to a first one's length): the run stops after that epoch with it validated
    off the schedule (a candidate, as a budget stop's), keeps its checkpoint and says why; the same run without the cap
    continues it to the recipe's epochs with the same updates as an uncapped run."""
    run = tiny_run(epochs=4, validate_every=4)
    capped = train_run(run, ptb_sample, tmp_path / "capped", progress=False, max_epochs=3)
    assert capped["epochs_completed"] == 3 and capped["stopped_early"] == {"reason": "epoch cap", "max_epochs": 3}
    assert [h["valid_loss"] is not None for h in capped["history"]] == [True, False, True]
    assert (tmp_path / "capped" / "checkpoint.pt").exists()
    again = train_run(run, ptb_sample, tmp_path / "capped", progress=False, max_epochs=3)  # a second call: nothing
    assert again["epochs_completed"] == 3 and again["history"] == capped["history"]
    continued = train_run(run, ptb_sample, tmp_path / "capped", progress=False)
    assert continued["stopped_early"] is None and continued["epochs_completed"] == 4
    whole = train_run(run, ptb_sample, tmp_path / "whole", progress=False)
    assert [h["train_loss"] for h in whole["history"]] == [h["train_loss"] for h in continued["history"]]


def test_a_training_hours_cap_ends_the_run_before_an_epoch_that_would_pass_it(ptb_sample, tmp_path, monkeypatch):
    """`max_train_hours` (a recipe dearer than a declared machine-hour budget): on a clock where an epoch trains 8 s,
    a 20 s cap allows 2 epochs (a third would end at 24 s), over calls as within one; the stop is recorded, the last
    epoch validated, the checkpoint kept; without the cap the run goes on with the same updates as an uncapped run."""
    clock = slow_updates(monkeypatch)
    monkeypatch.setattr(train_module.time, "perf_counter", lambda: clock["now"])
    run = tiny_run(epochs=4, validate_every=4)
    cap = 20 / 3600
    capped = train_run(run, ptb_sample, tmp_path / "capped", progress=False, max_train_hours=cap)
    assert capped["epochs_completed"] == 2 and capped["train_seconds"] == 16.0
    assert capped["stopped_early"] == {"reason": train_module.HOURS_CAP, "max_train_hours": cap,
                                       "train_hours": round(16 / 3600, 4)}
    assert [h["valid_loss"] is not None for h in capped["history"]] == [True, True]
    assert (tmp_path / "capped" / "checkpoint.pt").exists()
    again = train_run(run, ptb_sample, tmp_path / "capped", progress=False, max_train_hours=cap)  # over calls too
    assert again["epochs_completed"] == 2 and again["history"] == capped["history"]
    one_more = train_run(run, ptb_sample, tmp_path / "capped", progress=False, max_train_hours=30 / 3600)
    assert one_more["epochs_completed"] == 3 and one_more["stopped_early"]["reason"] == train_module.HOURS_CAP
    continued = train_run(run, ptb_sample, tmp_path / "capped", progress=False)
    assert continued["stopped_early"] is None and continued["epochs_completed"] == 4
    whole = train_run(run, ptb_sample, tmp_path / "whole", progress=False)
    assert [h["train_loss"] for h in whole["history"]] == [h["train_loss"] for h in continued["history"]]
    with pytest.raises(ValueError, match="max_train_hours"):
        train_run(run, ptb_sample, tmp_path / "refused", progress=False, max_train_hours=0)
    assert not (tmp_path / "refused").exists()


def test_a_run_whose_checkpoint_is_gone_warm_starts_from_its_last_kept_weights(ptb_sample, tmp_path, monkeypatch):
    slow_updates(monkeypatch)
    run = tiny_run(epochs=4, validate_every=4)
    stopped = train_run(run, ptb_sample, tmp_path, progress=False, time_budget_s=20)
    (tmp_path / "checkpoint.pt").unlink()  # as budget stops left it before they kept the checkpoint
    record = train_module.warm_start_checkpoint(run, tmp_path / MODEL, tmp_path / "continued")
    assert record["epoch"] == 2 and record["step"] == 16 and record["restarted"] == ["optimizer state", "random state"]
    continued = train_run(run, ptb_sample, tmp_path / "continued", progress=False)
    assert [h["epoch"] for h in continued["history"]] == [1, 2, 3, 4] and continued["steps"] == 32
    assert continued["history"][:2] == stopped["history"] and continued["warm_start"] == record
    assert continued["train_seconds"] > stopped["train_seconds"]
    with pytest.raises(ValueError, match="another training config"):
        train_module.warm_start_checkpoint(tiny_run(epochs=5, validate_every=4), tmp_path / MODEL, tmp_path / "x")


def test_a_warm_start_counts_the_steps_of_the_kept_epoch_not_of_a_partial_epoch_after_it(ptb_sample, tmp_path,
                                                                                         monkeypatch):
    """A budget stop inside epoch 3 whose partial weights were not kept: model.pt's summary counts the partial
    epoch's updates, which the kept weights of epoch 2 never had; the warm start resumes at epoch 2's step (the KL
    schedule reads the step), and keeps the run's id."""
    slow_updates(monkeypatch)
    run = tiny_run(epochs=4, validate_every=4)
    train_run(run, ptb_sample, tmp_path, progress=False, time_budget_s=20)
    saved = load_saved(tmp_path / MODEL)
    summary = saved["summary"]
    assert summary["steps"] == 16 and summary["history"][-1]["step"] == 16
    partial = {**summary["history"][-1], "epoch": 3, "step": 19, "partial": {"epoch": 3, "batches": 3, "of": 8}}
    saved["summary"] = {**summary, "steps": 19, "history": [*summary["history"], partial]}
    torch.save(saved, tmp_path / "partial_model.pt")
    record = train_module.warm_start_checkpoint(run, tmp_path / "partial_model.pt", tmp_path / "continued")
    assert record["epoch"] == 2 and record["step"] == 16
    continued = train_run(run, ptb_sample, tmp_path / "continued", progress=False)
    assert continued["steps"] == 32 and continued["run_id"] == summary["run_id"]


def test_a_warm_start_replays_the_lr_schedule_from_the_validation_losses(ptb_sample, tmp_path, monkeypatch):
    slow_updates(monkeypatch)
    run = tiny_run(epochs=4, validate_every=1, lr_decay={"mode": "plateau", "patience": 1, "factor": 0.5})
    stopped = train_run(run, ptb_sample, tmp_path, progress=False, time_budget_s=20)
    assert stopped["epochs_completed"] == stopped["selected_epoch"] == 2
    kept = load_saved(tmp_path / "checkpoint.pt")["state"]["lr_schedule"]  # what the stop knew, then lost
    assert kept["reference"] == stopped["history"][-1]["valid_loss"]  # not the initial state: a replay must happen
    (tmp_path / "checkpoint.pt").unlink()
    record = train_module.warm_start_checkpoint(run, tmp_path / MODEL, tmp_path / "continued")
    assert record["replayed"] == ["lr schedule"] and record["restarted"] == ["optimizer state", "random state"]
    assert load_saved(tmp_path / "continued" / "checkpoint.pt")["state"]["lr_schedule"] == kept
    continued = train_run(run, ptb_sample, tmp_path / "continued", progress=False)
    assert [h["epoch"] for h in continued["history"]] == [1, 2, 3, 4] and continued["lr_schedule"]["stopped"] is None


def test_a_warm_start_refuses_weights_that_are_not_the_last_epochs(ptb_sample, tmp_path, monkeypatch):
    slow_updates(monkeypatch)
    run = tiny_run(epochs=4, validate_every=1)
    train_run(run, ptb_sample, tmp_path, progress=False, time_budget_s=0.0)  # kept: a partial first epoch
    with pytest.raises(ValueError, match="not of its last completed epoch"):
        train_module.warm_start_checkpoint(run, tmp_path / MODEL, tmp_path / "continued")


@pytest.mark.parametrize("shuffle", [False, True])
def test_unshuffled_training_walks_the_same_ascending_batches_every_epoch(ptb_sample, tmp_path, monkeypatch, shuffle):
    from twrvae.model import TWRVAE

    seen: list[list[int]] = []
    real_step = TWRVAE.training_step

    def recording_step(self, batch, step, optimisation):
        seen.append(batch.lengths.tolist())
        return real_step(self, batch, step, optimisation)

    monkeypatch.setattr(TWRVAE, "training_step", recording_step)
    train_run(tiny_run(epochs=2, shuffle=shuffle), ptb_sample, tmp_path, progress=False)
    first, second = seen[: len(seen) // 2], seen[len(seen) // 2:]
    flat = [length for batch in first for length in batch]
    if shuffle:  # He et al.: other batches, in another order, every epoch
        assert first != second and flat != sorted(flat)
    else:  # the original TWR-VAE code: the corpus sorted by length once, ascending batches, the same every epoch
        assert first == second and flat == sorted(flat)


def test_another_tokenization_is_named_in_the_results_without_calling_them_reduced(tmp_path):
    from harness.data.preprocess import preprocess_lm

    shutil.copytree(FIXTURES / "ptb_tiny", tmp_path / "raw" / "ptb")
    preprocess_lm("ptb", tmp_path / "raw", tmp_path / "processed", tokenization="twr-vae-code")
    run = ExperimentConfig.from_mapping({**tiny_config(epochs=1), "data_options": {"ptb": {
        "tokenization": "twr-vae-code"}}}).runs()[0]
    train_run(run, tmp_path / "processed", tmp_path / "run", progress=False)
    data = evaluate_run(tmp_path / "run" / MODEL, tmp_path / "processed", tmp_path / "metrics.json", progress=False)["data"]
    assert data["tokenization"] == "twr-vae-code" and not data["reduced"]
    assert "twr-vae-code tokenization" in data["note"]


def test_the_trainer_tells_the_method_its_batches_per_epoch_before_the_first_step(tmp_path):
    from harness.data.dialogue import preprocess_dialogue

    shutil.copytree(FIXTURES / "dialogue_tiny" / "dailydialog", tmp_path / "raw" / "dailydialog")
    preprocess_dialogue("dailydialog", tmp_path / "raw", tmp_path / "data")  # 38 training examples
    sizes = {"emb_dim": 8, "hidden_dim": 6, "z_dim": 3, "kl_warmup_steps": 0, "kl_start": 0.1,
             "kl_increase_per_epoch": 0.1}
    run = ExperimentConfig.from_mapping({
        "device": "cpu", "datasets": ["dailydialog"], "models": ["twr-cvae"], "train": {"epochs": 2, "batch_size": 10},
        "model_defs": {"twr-cvae": {"method": "twr-cvae", "options": sizes}}}).runs()[0]
    seen = []
    train_run(run, tmp_path / "data", tmp_path / "out", progress=False,
              after_epoch=lambda entry, model: seen.append((entry["step"], model.batches_per_epoch,
                                                           model.kl_weight(entry["step"] - 1))))
    assert seen == [(4, 4, pytest.approx(0.2)), (8, 4, pytest.approx(0.3))]  # ceil(38 / 10) = 4 batches per epoch


def test_the_one_evaluation_command_writes_reconstructions_without_changing_the_numbers(ptb_sample, tmp_path):
    """`python -m harness.evaluate --samples-out`: the test set's greedy reconstructions beside metrics.json, with
    the same metrics as without them (decoding draws nothing)."""
    from harness.data.vocab import Vocab
    from harness.evaluate.evaluation import main as evaluate_main

    train_run(tiny_run(epochs=1), ptb_sample, tmp_path, progress=False)
    plain = evaluate_run(tmp_path / MODEL, ptb_sample, tmp_path / "plain.json", progress=False)
    assert evaluate_main(["--model", str(tmp_path / MODEL), "--data", str(ptb_sample), "--out",
                          str(tmp_path / "metrics.json"), "--samples-out", str(tmp_path / "samples.jsonl"),
                          "--no-progress"]) == 0
    assert metric_values(tmp_path / "metrics.json") == plain["metrics"]
    records = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    vocab = Vocab.load(ptb_sample / "vocab.txt")
    test = [" ".join(vocab.decode(vocab.encode(line.split())))
            for line in (ptb_sample / "test.txt").read_text().splitlines() if line.strip()]
    assert len(records) == plain["data"]["test_sentences"]
    assert sorted(record["sentence"] for record in records) == sorted(test[:len(records)])
    assert all(isinstance(record["reconstruction"], str) for record in records)


def test_the_one_evaluation_command_evaluates_a_dialogue_run(tmp_path):
    """A dialogue run goes to its task's evaluation: samples.jsonl and metrics.json with Table 5's metrics; without
    word vectors it is refused with a message (exit 2) and nothing is written."""
    from harness.data.dialogue import preprocess_dialogue
    from harness.evaluate.evaluation import main as evaluate_main
    from harness.data.word_vectors import train_word2vec

    shutil.copytree(FIXTURES / "dialogue_tiny" / "dailydialog", tmp_path / "raw" / "dailydialog")
    preprocess_dialogue("dailydialog", tmp_path / "raw", tmp_path / "data")
    run = ExperimentConfig.from_mapping({
        "device": "cpu", "datasets": ["dailydialog"], "models": ["cvae"], "train": {"epochs": 1, "batch_size": 10},
        "evaluate": {"batch_size": 6, "responses_per_context": 2, "max_response_length": 6},
        "model_defs": {"cvae": {"method": "cvae", "options": {"emb_dim": 8, "hidden_dim": 6, "z_dim": 3}}}}).runs()[0]
    train_run(run, tmp_path / "data", tmp_path / "run", progress=False)
    arguments = ["--model", str(tmp_path / "run" / MODEL), "--data", str(tmp_path / "data"), "--out",
                 str(tmp_path / "metrics.json"), "--samples-out", str(tmp_path / "samples.jsonl"),
                 "--run-config", run.to_json(), "--no-progress"]
    assert evaluate_main(arguments) == 2 and not (tmp_path / "metrics.json").exists()
    train_word2vec(tmp_path / "data" / "train.jsonl", tmp_path / "vectors.kv", dim=8, epochs=1)
    assert evaluate_main([*arguments, "--vectors", str(tmp_path / "vectors.kv")]) == 0
    payload = json.loads((tmp_path / "metrics.json").read_text())
    assert payload["task"] == "dialogue" and {"BLEU-F1", "BOW-A", "Inter-dist2"} <= set(payload["metrics"]["uniform"])
    assert len((tmp_path / "samples.jsonl").read_text().splitlines()) > 0
    log = json.loads((tmp_path / "run" / "train_log.json").read_text())
    assert payload["training"] == {key: log.get(key) for key in TRAINING_RECORD}  # the same keys as a language model


class _NotATensor:
    """A pickled object of an arbitrary class: what a malicious model.pt could carry."""


def test_a_model_file_with_a_pickled_object_is_refused(tmp_path):
    from harness.core.runs import load_trained

    torch.save({"state_dict": {}, "vocab_size": 3, "summary": {"payload": _NotATensor()}}, tmp_path / MODEL)
    with pytest.raises(ValueError, match=r"model.pt holds more than tensors and plain values"):
        load_trained(tmp_path / MODEL, tmp_path)


def test_a_sentences_uniform_score_does_not_depend_on_its_batch_mates(ptb_sample, tmp_path):
    """With `timesteps: padded` (the original TWR-VAE code) a sentence's latent is read at its batch's padded length,
    so in a batch with longer sentences it is read after pads (checked first: this is what makes the test able to
    fail). The uniform protocol scores batches of one length: the same sentence alone and among sentences of other
    lengths gets the same posterior, so the same KL up to float32 rounding. (Alone = twice, as active units need two sentences.)"""
    import dataclasses

    from harness.data.lm_dataset import LMDataset, equal_length_batches
    from harness.data.vocab import Vocab
    from harness.evaluate.lm_evaluate import evaluate_model
    from harness.core.runs import build_model

    run = tiny_run(model="twr-vae")
    run = dataclasses.replace(run, model=dataclasses.replace(run.model, options={**run.model.options,
                                                                                  "timesteps": "padded"}))
    vocab = Vocab.load(ptb_sample / "vocab.txt")
    everything = LMDataset(ptb_sample / "test.txt", vocab)
    lengths = everything.lengths.tolist()
    shortest, longest = min(range(len(lengths)), key=lengths.__getitem__), max(range(len(lengths)), key=lengths.__getitem__)
    (tmp_path / "alone.txt").write_text(((ptb_sample / "test.txt").read_text().splitlines()[shortest] + "\n") * 2)
    alone = LMDataset(tmp_path / "alone.txt", vocab)
    torch.manual_seed(0)
    model = build_model(run, len(vocab)).eval()
    with torch.no_grad():
        padded_kl = gaussian_kl_standard_normal(*model.posterior(everything.collate([shortest, longest])))[0]
        own_kl = gaussian_kl_standard_normal(*model.posterior(everything.collate([shortest])))[0]
    assert abs(float(padded_kl - own_kl)) > 1e-3 * float(own_kl)  # read after the pads, the latent is another

    by_itself = evaluate_model(model, alone, run, torch.device("cpu"), progress=False)
    among_others = evaluate_model(model, everything, run, torch.device("cpu"), progress=False)
    for kl in (among_others["per_sentence"]["kl"][shortest], by_itself["per_sentence"]["kl"][0]):
        assert kl == pytest.approx(float(own_kl), rel=1e-5)  # float32 rounding of other batch sizes only
    assert all(batch.lengths.unique().numel() == 1 for batch in equal_length_batches(everything, 4))


def test_every_epoch_records_the_methods_phase_as_its_updates_left_it(ptb_sample, tmp_path, capsys):
    """Lagging VAE's scalar buffers in each history entry, taken before its end-of-epoch MI check: epochs 1 and 2
    aggressive (8 batches x 4 encoder-only updates), each comparing with the MI before it; the MI drop after epoch 2
    ends the phase, so epoch 3 has none. A method without such buffers records nothing."""
    history = train_run(lagging_run(3), ptb_sample, tmp_path / "lag", progress=False)["history"]
    reports = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lagging-vae epoch")]
    mi = [float(line.split("validation MI ")[1].split()[0]) for line in reports]
    states = [h["method_state"] for h in history]
    assert [(s["aggressive"], s["inner_steps_taken"]) for s in states] == [(True, 32), (True, 32), (False, 0)]
    assert states[0]["previous_mi"] == 0.0
    assert [round(s["previous_mi"], 3) for s in states[1:]] == mi  # the MI each epoch's check compares against
    assert mi[1] < mi[0]  # the drop that ends the phase (as printed after epoch 2)
    assert not any("method_state" in h for h in train_run(tiny_run(epochs=1), ptb_sample, tmp_path / "twr",
                                                          progress=False)["history"])


def test_inner_loop_updates_draw_whole_batches_of_the_epoch(ptb_sample, tmp_path, monkeypatch):
    """Lagging VAE's encoder-only updates after the first draw one of the epoch's (length-bucketed) batches, as He et
    al. draw `train_data_batch[id_]` (text.py l.389-391), not sentences of mixed lengths padded together: every batch
    a loss is computed on is one the epoch's batching made, and updates beyond the epoch's batches happened."""
    from baselines.lagging_vae import LaggingVAE

    made, seen = [], []
    real_batches, real_loss = train_module.task_of, LaggingVAE.loss

    def recording_task(run):
        task = real_batches(run)

        def batches(*args, **kwargs):
            for batch in task.batches(*args, **kwargs):
                made.append(batch.tokens.clone())
                yield batch
        return type(task)(**{**task.__dict__, "batches": batches})

    def recording_loss(self, batch, step):
        seen.append(batch.tokens.clone())
        return real_loss(self, batch, step)

    monkeypatch.setattr(train_module, "task_of", recording_task)
    monkeypatch.setattr(LaggingVAE, "loss", recording_loss)
    train_run(lagging_run(1), ptb_sample, tmp_path, progress=False)
    assert len(seen) > 2 * 8  # 8 batches an epoch: most losses are the inner loop's
    assert all(any(tokens.shape == batch.shape and torch.equal(tokens, batch) for batch in made) for tokens in seen)
