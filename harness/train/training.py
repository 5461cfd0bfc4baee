"""Train one (dataset, model, seed) run: resumable, NaN-guarded, with a progress bar.

    python -m harness.train --run-config '<json>' --data data/processed/ptb --out results/<exp>/<ds>/<model>/seed<k>

Writes `model.pt` (the selected weights + run config) and `train_log.json` atomically at the end; while running,
`checkpoint.pt` in the same folder is refreshed after every epoch, and a re-run with the same training config
resumes from it (a different config starts afresh). A run stopped by its time budget keeps the checkpoint, so that a
later call, with another budget, continues it; a finished run removes it. A budget spent inside an epoch checkpoints
that epoch where it stopped (`state["in_epoch"]`: the batches done, the epoch's batch order, its running sums and
seconds), and the next call finishes it with the updates an uninterrupted run makes: an epoch longer than one call's
budget (Lagging VAE's aggressive phase) is trained over several calls.

The checkpoint also records the method's source hashes (harness.core.provenance) and the code version. A resume whose
method sources differ from the checkpoint's would mix two codes in one run, so it is refused unless asked for
(`--on-code-change restart` discards the checkpoint, `continue` resumes anyway); train_log.json records the resume
(`resumed_from`) and any files that changed during the run (`code_changed_during_run`). Each run has an id
(`run_id`, made at its fresh start, kept through checkpoints, resumes and warm starts), by which the records of the
calls that trained it are told from an earlier run's in the same folder (reproduction.cpu_reference).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
import uuid
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from harness.train.budget import run_budget
from harness.core.config import RunConfig
from harness.data.vocab import Vocab
from harness.train.early_stopping import EarlyStopping
from harness.core.io import (code_version, environment_info, now_iso, progress_interval, resolve_device,
                        save_torch_atomic, set_threads, write_json_atomic)
from harness.train.lr_schedule import LrSchedule
from harness.methods.model_api import TextVAE
from harness.train.optim import Optimisation, TrainingDiverged  # noqa: F401  (re-exported for callers)
from harness.core.precision import require_supported, set_compute_precision
from harness.core.provenance import method_source_files, source_hashes
from harness.core.runs import CHECKPOINT, MODEL, TRAIN_LOG, build_model, load_saved  # noqa: F401  (file names re-exported)
from harness.tasks import task_of
from harness.tasks.base import Task
from harness.tasks.lm import LM_TASK

ON_CODE_CHANGE = ("refuse", "restart", "continue")


class CodeChanged(ValueError):
    """A checkpoint was written by other method code than the code that would continue it (a ValueError, as a
    model.pt of another training config is refused by warm_start_checkpoint)."""


def changed_sources(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The files whose hashes differ between two `method_sources` mappings (one missing from either counts), sorted."""
    return sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))


def _code_changed_message(out_dir: Path, checkpoint: dict, changed: list[str], now: dict[str, str]) -> str:
    before = checkpoint["method_sources"]
    files = "; ".join(f"{path} ({before.get(path) or 'absent'} -> {now.get(path) or 'absent'})" for path in changed)
    state = checkpoint["state"]
    return (f"{out_dir}: its {CHECKPOINT} (epoch {state['epoch']}, step {state['step']}, code version "
            f"{checkpoint.get('code_version')}) was written by other method code; changed since: {files}. Resuming "
            f"would train one run with two codes. Either delete {Path(out_dir) / CHECKPOINT} to restart the run "
            "(or pass --on-code-change restart, which discards it), or pass --on-code-change continue to resume "
            "anyway, which train_log.json records as code_changed_during_run (train_run(on_code_change=...) in "
            "Python)")


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


@torch.no_grad()
def validation_loss(model, dataset, batch_size: int, device, task: Task = LM_TASK) -> float:
    """Mean per-example model-selection criterion: recon + kl of the task's `selection_terms`."""
    model.eval()
    total, count = 0.0, 0
    for batch in task.batches(dataset, batch_size, shuffle=False, generator=None):
        terms = task.selection_terms(model, batch.to(device))
        total += float((terms.recon + terms.kl).sum())
        count += batch.size
    model.train()
    return total / max(count, 1)


class EpochSums:
    """Running sums of an epoch's per-sentence terms, kept on the model's device: adding a batch does not wait for
    the GPU; the values are read once, at the end of the epoch."""

    def __init__(self, device: torch.device):
        self.totals = torch.zeros(3, dtype=torch.float64, device=device)  # loss, recon, kl
        self.sentences = 0

    def add(self, terms, sentences: int) -> None:
        self.totals += torch.stack([terms.loss.detach().sum(), terms.recon.detach().sum(),
                                    terms.kl.detach().sum()]).double()
        self.sentences += sentences

    def means(self) -> dict[str, float]:
        loss, recon, kl = (self.totals / max(self.sentences, 1)).tolist()
        return {"loss": loss, "recon": recon, "kl": kl}


def rng_state(device: torch.device) -> dict:
    """The global random states a run draws from on `device` (dropout, z noise): the CPU's, and the GPU's on CUDA."""
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def set_rng_state(state: dict | torch.Tensor, device: torch.device) -> None:
    if isinstance(state, torch.Tensor):  # a checkpoint from before GPU states were kept
        state = {"cpu": state, "cuda": None}
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda":
        if state.get("cuda") is None:
            raise ValueError("this checkpoint was written by a CPU run and cannot resume exactly on a GPU")
        torch.cuda.set_rng_state(state["cuda"], device)


def new_run_id() -> str:
    """A run's identity, kept in its checkpoints and train log: which records of calls belong to it (a work folder or
    a results folder may hold a record of an earlier run of the same model and seed)."""
    return f"{now_iso()[:19]}-{uuid.uuid4().hex[:8]}"


def warm_start_checkpoint(run: RunConfig, saved_model: Path, out_dir: Path) -> dict:
    """Make a run that stopped at its time budget before budget stops kept their checkpoint continuable.

    Writes `out_dir/checkpoint.pt` from the run's `model.pt`: the kept weights at the epoch the run completed, its
    history, step count and timings, with the optimizer state and the random state *restarted* (they were not
    saved); an lr schedule's and early stopping's counters, not saved either, are replayed from the validation
    losses (exact). Only where the kept weights are those of the last completed epoch and the training config is the
    same; the next `train_run` resumes from it and its summary's `warm_start` records what was restarted or replayed.
    Returns that record.
    """
    saved = load_saved(Path(saved_model))
    summary = saved["summary"]
    if summary["fingerprint"] != run.training_fingerprint():
        raise ValueError(f"{saved_model} was trained with another training config than {run.model.name}'s")
    completed, selected = summary["epochs_completed"], summary["selected_epoch"]
    if selected != completed:
        raise ValueError(f"{saved_model} keeps the weights of epoch {selected}, not of its last completed epoch "
                         f"({completed}): training cannot continue from them")
    history = [entry for entry in summary["history"] if entry["epoch"] <= completed]
    kept_loss = history[-1]["valid_loss"]
    # the step count of the last completed epoch (a budget stop inside the next one counted that one's batches too,
    # whose updates the kept weights do not have); a history from before entries kept their step: the run's count
    step = history[-1].get("step", summary["steps"]) if history else summary["steps"]
    record = {"from": Path(saved_model).name, "epoch": completed, "step": step,
              "code_version": summary["code_version"], "restarted": ["optimizer state", "random state"]}
    schedule_state = stopping_state = None
    if summary["lr_schedule"] is not None:
        schedule_state = replayed_schedule(run, history, summary["lr_schedule"], saved_model)
        record["replayed"] = ["lr schedule"]
    if run.train.early_stopping is not None:
        stopping_state = replayed_early_stopping(run, history, summary.get("early_stopping"), saved_model)
        record["replayed"] = record.get("replayed", []) + ["early stopping"]
    state = {"epoch": completed, "step": step, "history": history,
             "best_loss": math.inf if kept_loss is None or summary["select_by"] != "valid_loss" else kept_loss,
             "best_state": {"epoch": completed, "model": saved["state_dict"]},
             "train_seconds": summary["train_seconds"],
             "train_tokens": round(summary["train_tokens_per_second"] * summary["train_seconds"]),
             "lr_schedule": schedule_state, "early_stopping": stopping_state, "warm_start": record,
             # what the stopped run recorded (none for a model.pt from before the record existed); its
             # method_sources, below, are what the resume checks the current code against
             "code_changed_during_run": summary.get("code_changed_during_run", []),
             **({"run_id": summary["run_id"]} if summary.get("run_id") else {})}  # the same run, continued
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    save_torch_atomic(Path(out_dir) / CHECKPOINT, {"fingerprint": summary["fingerprint"], "model": saved["state_dict"],
                                                   "optimizer": None, "torch_rng": None, "batch_rng": None,
                                                   "method_sources": summary.get("method_sources"),
                                                   "code_version": summary.get("code_version"), "state": state})
    return record


def replayed_schedule(run: RunConfig, history: list[dict], recorded: dict, source: Path) -> dict:
    """The lr schedule's state after `history`, which the saved model does not keep: its counters are a function of
    the validated epochs' losses alone (harness.train.lr_schedule), so they are replayed, and checked against the
    schedule's recorded summary (final lr, decays)."""
    if recorded["stopped"] is not None:
        raise ValueError(f"{source}: its lr schedule ended training ({recorded['stopped']['reason']}); "
                         "there is nothing to continue")
    schedule = LrSchedule(run.train.lr_decay, run.train.lr)
    for entry in history:
        if entry.get("partial") is None:  # as train_run: a partial epoch decides nothing
            schedule.step(entry["epoch"], entry["valid_loss"])
    if schedule.summary() != recorded:
        raise ValueError(f"{source}: replaying its validation losses gives the lr schedule {schedule.summary()}, "
                         f"not the recorded {recorded}")
    return schedule.state_dict()


def on_cadence(entry: dict, validate_every: int) -> bool:
    """Whether a history entry is one of the scheduled validations (epochs 1, 1 + N, ...; a whole epoch): those that
    early stopping counts. A run stopped by its time budget also validates its last epoch off schedule, and a
    partial epoch: neither counts, so that a resumed run counts as one that was never stopped."""
    return (entry["epoch"] - 1) % validate_every == 0 and entry.get("partial") is None


def replayed_early_stopping(run: RunConfig, history: list[dict], recorded: dict | None, source: Path) -> dict:
    """Early stopping's state after `history`: a function of the scheduled validations' losses alone
    (harness.train.early_stopping), replayed and checked against the recorded summary (where the log has one)."""
    stopper = EarlyStopping(run.train.early_stopping)
    for entry in history:
        if on_cadence(entry, run.train.validate_every):
            stopper.update(entry["epoch"], entry["valid_loss"])
    if recorded is not None and stopper.summary() != recorded:
        raise ValueError(f"{source}: replaying its validation losses gives early stopping {stopper.summary()}, not "
                         f"the recorded {recorded}")
    if stopper.stopped is not None:
        raise ValueError(f"{source}: early stopping ended training ({stopper.stopped['reason']}); there is nothing "
                         "to continue")
    return stopper.state_dict()


def epoch_method_state(model: torch.nn.Module) -> dict:
    """The method's own scalar buffers (registered on the model itself, not its layers), as plain values: the phase a
    method keeps across updates, recorded in every epoch's history entry (Lagging VAE: whether the epoch was
    aggressive, its encoder-only updates, the validation MI it compares against)."""
    return {name: buffer.item() for name, buffer in model.named_buffers(recurse=False) if buffer.numel() == 1}


HOURS_CAP = "training-hours cap"  # train_run's max_train_hours: its stop reason


def past_hours_cap(state: dict, max_train_hours: float) -> bool:
    """Whether one more epoch, at the mean of the run's whole epochs so far, would end past the cap; never before the
    first epoch (nothing to judge by)."""
    whole = [entry["train_seconds"] for entry in state["history"] if not entry.get("partial")]
    return bool(whole) and state["train_seconds"] + sum(whole) / len(whole) > max_train_hours * 3600


def train_run(run: RunConfig, data_dir: Path, out_dir: Path, progress: bool = True,
              vectors_path: Path | None = None, time_budget_s: float | None = None,
              after_epoch: Callable[[dict, TextVAE], None] | None = None, on_code_change: str = "refuse",
              max_epochs: int | None = None, max_train_hours: float | None = None) -> dict:
    """Train one run to `train.epochs` (resuming from a checkpoint of the same training config) and write the model.

    time_budget_s: wall-clock seconds this call may train (and validate) for. Training stops before an epoch that
    would not fit (judged by the mean epoch so far), or mid-epoch once the budget is spent; that last, partial
    epoch is validated and may be selected like any other. The summary's `stopped_early` says so.
    max_epochs: stop once this many epochs are trained, before the recipe's `train.epochs`, as a time budget stops
    (the last epoch validated and a candidate, the checkpoint kept, so the run can go on;
    `stopped_early` = {"reason": "epoch cap", "max_epochs": N}): a second seed matched to a first one's length.
    max_train_hours: stop, as the epoch cap does, before an epoch that would take the run's training time over all its
    calls (train_log.json's `train_seconds`) past this many hours, judged by the mean epoch so far (`stopped_early` =
    {"reason": "training-hours cap", "max_train_hours": H, "train_hours": h}): a row whose recipe costs more than a
    declared machine-hour budget, run to that budget and evaluated there.
    after_epoch: called after every epoch with its history entry and the model (for learning curves); it must leave
    the model as it found it (train mode, weights, random state), or training changes.
    With `train.lr_decay` (harness.train.lr_schedule) every history entry has the epoch's `lr` and, when the schedule acted
    after it, `lr_decay` (the new lr, the reloaded epoch, whether training stops); the summary's `lr_schedule` has the
    final lr, the number of decays and the stop, if the schedule ended training before `train.epochs`.
    With `train.early_stopping` (harness.train.early_stopping) every scheduled validation's entry has `early_stopping` (the
    validation's number, the patience after it, whether it improved, significantly, and the stop); the summary's
    `early_stopping` has the final state, and `stopped_early` the rule's stop record when it ended training.
    on_code_change: what to do when the checkpoint's method source hashes differ from the current files' -- "refuse"
    (raise CodeChanged, naming the folder, the files and the ways out), "restart" (discard the checkpoint, recorded
    as `discarded_checkpoint`) or "continue" (resume; the files go into `code_changed_during_run`). A checkpoint
    without hashes (written before they were kept) resumes, and `code_changed_during_run` is then null: unknown.
    """
    if on_code_change not in ON_CODE_CHANGE:
        raise ValueError(f"on_code_change must be one of {', '.join(ON_CODE_CHANGE)}, not {on_code_change!r}")
    if max_train_hours is not None and not max_train_hours > 0:
        raise ValueError(f"max_train_hours must be a positive number of hours, not {max_train_hours!r}")
    started_run = time.monotonic()
    device = resolve_device(run.device)
    require_supported(run.train.precision, device, "train.precision")  # before anything is read or written
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    generator = seed_everything(run.seed)
    vocab = Vocab.load(Path(data_dir) / "vocab.txt")
    task = task_of(run)
    train_set = task.load_split(run, data_dir, vocab, "train", apply_max_length=True)
    valid_set = task.load_split(run, data_dir, vocab, "valid")
    model = build_model(run, len(vocab))
    method_sources = source_hashes(method_source_files(type(model), run.plugins))  # the code this call trains with
    version = code_version()
    print(f"training {run.model.name} seed {run.seed} ({len(train_set)} training examples): "
          f"{run_budget(run, evaluation=False)}", file=sys.stderr)  # the evaluation's K is not this job's to know
    embedding_init = None
    if vectors_path is not None:  # dialogue: pretrained word vectors initialise the embedding (before any resume)
        from harness.data.vectors import load_vectors

        embedding_init = model.initialise_embeddings(vocab, *load_vectors(vectors_path))
        print(f"embedding initialisation: {embedding_init}", file=sys.stderr)
    model = model.to(device)
    cfg = run.train
    set_compute_precision(model, cfg.precision, "train.precision")
    optimisation = Optimisation(model.parameter_groups(), cfg)
    schedule = None if cfg.lr_decay is None else LrSchedule(cfg.lr_decay, cfg.lr)
    stopper = None if cfg.early_stopping is None else EarlyStopping(cfg.early_stopping)

    fingerprint = run.training_fingerprint()
    state = {"epoch": 0, "step": 0, "history": [], "best_loss": math.inf, "best_state": None, "train_seconds": 0.0,
             "train_tokens": 0, "lr_schedule": None if schedule is None else schedule.state_dict(),
             "early_stopping": None if stopper is None else stopper.state_dict(), "code_changed_during_run": [],
             "run_id": new_run_id()}
    checkpoint_path = out_dir / CHECKPOINT
    resumed_from = discarded_checkpoint = None
    if checkpoint_path.exists():
        checkpoint = load_saved(checkpoint_path, map_location=device)
        kept = checkpoint.get("state", {})
        changed = None  # unknown: a checkpoint from before source hashes were kept
        if checkpoint.get("method_sources") is not None:
            changed = changed_sources(checkpoint["method_sources"], method_sources)
        if checkpoint.get("fingerprint") != fingerprint:
            print(f"ignoring {checkpoint_path}: it was written for another training config", file=sys.stderr)
            discarded_checkpoint = {"epoch": kept.get("epoch"), "step": kept.get("step"),
                                    "reason": "another training config"}
        elif changed and on_code_change == "refuse":
            raise CodeChanged(_code_changed_message(out_dir, checkpoint, changed, method_sources))
        elif changed and on_code_change == "restart":
            print(f"restarting {out_dir}: its {CHECKPOINT} was written by other method code ({', '.join(changed)} "
                  "changed since); discarded", file=sys.stderr)
            discarded_checkpoint = {"epoch": kept["epoch"], "step": kept["step"], "reason": "method sources changed",
                                    "changed_files": changed, "code_version": checkpoint.get("code_version")}
        else:
            model.load_state_dict(checkpoint["model"])
            if checkpoint["optimizer"] is not None:  # None: a warm start (warm_start_checkpoint) restarts it
                optimisation.load_state_dict(checkpoint["optimizer"])
            if checkpoint["torch_rng"] is not None:
                set_rng_state(checkpoint["torch_rng"], device)
                generator.set_state(checkpoint["batch_rng"])
            state = checkpoint["state"]
            if schedule is not None:  # the optimizer state already holds the lr; the schedule its counters
                schedule.load_state_dict(state["lr_schedule"])
                optimisation.set_lr(schedule.lr)
            if stopper is not None:  # the same training config: its checkpoints hold the rule's state
                stopper.load_state_dict(state["early_stopping"])
            resumed_from = {"epoch": state["epoch"], "step": state["step"], "run_id": state.get("run_id"),
                            "method_sources": checkpoint.get("method_sources"),
                            "code_version": checkpoint.get("code_version")}
            state.setdefault("run_id", new_run_id())  # a checkpoint from before runs had one: named from here on
            print(f"resuming {out_dir} from epoch {state['epoch']} (step {state['step']})", file=sys.stderr)
            carried = state.get("code_changed_during_run")  # an earlier resume's, kept in the checkpoint's state
            if changed is None or carried is None:  # unknown stays unknown through later resumes
                state["code_changed_during_run"] = None
                print("  " + ("the checkpoint does not record the method's source hashes (written before they were "
                              "kept)" if changed is None else "an earlier resume of this run could not compare its "
                              "method sources") + ": whether the code changed during the run is unknown",
                      file=sys.stderr)
            elif changed:
                state["code_changed_during_run"] = sorted(set(carried) | set(changed))
                print(f"  continuing across a change of the method's code ({', '.join(changed)}), as asked "
                      "(--on-code-change continue); train_log.json records it", file=sys.stderr)

    model.on_train_start(math.ceil(len(train_set) / cfg.batch_size))  # both tasks' batches chunk the split
    # inner-loop methods' extra updates (Lagging VAE's encoder, DialogWAE's critic, SeqGAN's discriminator) draw one
    # of the epoch's batches, uniformly: He et al. draw `train_data_batch[id_]`, a random pre-built batch of sentences
    # of one length (jxhe/vae-lagging-encoder text.py l.389-391), not sentences of mixed lengths padded together
    epoch_batches: list = []

    def random_batch():
        return epoch_batches[int(torch.randint(len(epoch_batches), (1,), generator=generator))].to(device)

    optimisation.random_batch = random_batch

    def valid_batches():
        return (batch.to(device) for batch in task.batches(valid_set, cfg.batch_size, shuffle=False, generator=None))

    def over_budget(extra: float = 0.0) -> bool:
        return time_budget_s is not None and time.monotonic() - started_run + extra > time_budget_s

    def validate_and_select(entry: dict) -> None:
        """Validation loss of the current weights into `entry`; keep them if they are the best so far."""
        entry["valid_loss"] = validation_loss(model, valid_set, cfg.batch_size, device, task)
        if cfg.select_by == "valid_loss" and entry["valid_loss"] < state["best_loss"]:
            state["best_loss"] = entry["valid_loss"]
            state["best_state"] = {"epoch": entry["epoch"], "model": copy.deepcopy(model.state_dict())}

    def save_checkpoint() -> None:
        save_torch_atomic(checkpoint_path, {"fingerprint": fingerprint, "model": model.state_dict(),
                                            "optimizer": optimisation.state_dict(), "torch_rng": rng_state(device),
                                            "batch_rng": generator.get_state(), "method_sources": method_sources,
                                            "code_version": version, "state": state})

    def save_in_epoch_checkpoint(epoch: int, done: int, of: int, sums: EpochSums, epoch_start_rng: torch.Tensor,
                                 seconds: float) -> None:
        """The checkpoint of an epoch stopped after `done` of its `of` batches, taken before the stop validates the
        partial weights (which changes nothing a continuation depends on): the next call rebuilds the epoch's batch
        order from `epoch_start_rng`, skips the batches done and goes on with these weights, optimizer, random states
        and running sums."""
        state["in_epoch"] = {"epoch": epoch, "batches": done, "of": of, "batch_rng_at_epoch_start": epoch_start_rng,
                             "sums": sums.totals.tolist(), "sentences": sums.sentences, "seconds": seconds}
        save_checkpoint()
        del state["in_epoch"]  # this call's own record of the partial epoch is its history entry

    stopped_early = None
    epoch_seconds: list[float] = []  # wall time of each epoch of this call, validation included
    model.train()
    for epoch in range(state["epoch"], cfg.epochs):
        if schedule is not None and schedule.stopped is not None:  # the recipe ended (e.g. before a kill + resume)
            break
        if stopper is not None and stopper.stopped is not None:  # likewise
            break
        capped = max_epochs is not None and epoch >= max_epochs
        hours_capped = max_train_hours is not None and past_hours_cap(state, max_train_hours)
        if capped or hours_capped or (epoch_seconds and over_budget(sum(epoch_seconds) / len(epoch_seconds))):
            stopped_early = ({"reason": "epoch cap", "max_epochs": max_epochs} if capped else
                             {"reason": HOURS_CAP, "max_train_hours": max_train_hours,
                              "train_hours": round(state["train_seconds"] / 3600, 4)} if hours_capped else
                             {"reason": "time budget", "budget_seconds": time_budget_s, "partial_epoch": None})
            if state["history"] and state["history"][-1]["valid_loss"] is None:  # the run ends here: its last
                validate_and_select(state["history"][-1])                         # weights are a candidate
                save_checkpoint()  # a later call continues with this epoch validated
            break
        started, epoch_started = time.perf_counter(), time.monotonic()
        sums = EpochSums(device)
        resumed = state.pop("in_epoch", None)  # an earlier call's budget stopped inside this epoch
        if resumed is not None and resumed["epoch"] != epoch + 1:
            raise ValueError(f"{checkpoint_path}: its state is inside epoch {resumed['epoch']} after {epoch} "
                             "whole epochs; the checkpoint is inconsistent")
        now_rng = generator.get_state()  # a resumed epoch's order was drawn before its stop, from the state saved then
        epoch_start_rng = now_rng if resumed is None else resumed["batch_rng_at_epoch_start"]
        generator.set_state(epoch_start_rng)
        epoch_batches[:] = task.batches(train_set, cfg.batch_size, shuffle=cfg.shuffle, generator=generator)
        earlier_seconds, skip = 0.0, 0
        if resumed is not None:
            generator.set_state(now_rng)
            earlier_seconds, skip = resumed["seconds"], resumed["batches"]
            if len(epoch_batches) != resumed["of"]:
                raise ValueError(f"{checkpoint_path}: epoch {epoch + 1} was stopped after {skip} of {resumed['of']} "
                                 f"batches, but the training data now make {len(epoch_batches)}")
            sums.totals = torch.tensor(resumed["sums"], dtype=torch.float64, device=device)
            sums.sentences = resumed["sentences"]
            print(f"continuing epoch {epoch + 1} after its batch {skip} of {len(epoch_batches)}", file=sys.stderr)
        bar = tqdm(epoch_batches[skip:], desc=f"train {run.model.name} epoch {epoch + 1}/{cfg.epochs}",
                   disable=not progress, unit="batch", file=sys.stderr, mininterval=progress_interval(),
                   initial=skip, total=len(epoch_batches))
        optimisation.where = f"{run.model.name} on {run.dataset} (seed {run.seed}), epoch {epoch + 1}"
        for done, batch in enumerate(bar, skip + 1):
            tokens = batch.num_predicted_tokens()  # counted on the CPU copy: no wait for the device
            terms = model.training_step(batch.to(device), state["step"], optimisation)
            state["step"] += 1
            state["train_tokens"] += tokens
            sums.add(terms, batch.size)
            if done % 25 == 0 and progress:  # reading values waits for the device: not every batch
                bar.set_postfix(recon=f"{float(terms.recon.detach().mean()):.2f}",
                                kl=f"{float(terms.kl.detach().mean()):.2f}", beta=f"{terms.beta:.2f}", refresh=False)
            if done < len(epoch_batches) and over_budget():
                stopped_early = {"reason": "time budget", "budget_seconds": time_budget_s,
                                 "partial_epoch": {"epoch": epoch + 1, "batches": done, "of": len(epoch_batches)}}
                save_in_epoch_checkpoint(epoch + 1, done, len(epoch_batches), sums, epoch_start_rng,
                                         earlier_seconds + time.perf_counter() - started)
                break
        bar.close()
        method_state = epoch_method_state(model)  # as the epoch's updates left it, before the end-of-epoch hook
        if stopped_early is None:  # end-of-epoch hooks (e.g. Lagging VAE's MI check) only after a whole epoch
            model.on_epoch_end(epoch + 1, valid_batches)
        seconds = earlier_seconds + time.perf_counter() - started  # over every call that trained this epoch
        state["train_seconds"] += seconds
        means = sums.means()
        entry = {"epoch": epoch + 1, "step": state["step"], "train_loss": means["loss"], "train_recon": means["recon"],
                 "train_kl": means["kl"], "valid_loss": None, "train_seconds": seconds}
        if method_state:
            entry["method_state"] = method_state
        if stopped_early is not None:
            entry["partial"] = stopped_early["partial_epoch"]
        if schedule is not None:
            entry["lr"] = schedule.lr  # the lr this epoch trained with
        if cfg.select_by == "last":
            state["best_state"] = {"epoch": epoch + 1, "model": copy.deepcopy(model.state_dict())}
        if epoch % cfg.validate_every == 0 or stopped_early is not None:  # epochs 1, 1 + N, ... as the original
            validate_and_select(entry)
        decision = None
        if schedule is not None and stopped_early is None:  # a partial epoch ends the run: it decides nothing
            decision = schedule.step(epoch + 1, entry["valid_loss"])  # validate_every is 1 (TrainConfig checks)
            if decision.decayed:
                entry["lr_decay"] = {"lr": decision.lr, "decays": schedule.decays,
                                     "reloaded_epoch": state["best_state"]["epoch"] if decision.reload_best else None,
                                     "optimizer_restarted": decision.restart_optimizer, "stop": decision.stop}
        verdict = None
        if stopper is not None and on_cadence(entry, cfg.validate_every):  # counted in scheduled validations
            verdict = stopper.update(epoch + 1, entry["valid_loss"])
            entry["early_stopping"] = verdict.record()
        state["history"].append(entry)
        if after_epoch is not None:
            after_epoch(entry, model)
        valid_text = "not validated" if entry["valid_loss"] is None else f"valid loss {entry['valid_loss']:.2f}"
        if verdict is not None:
            valid_text += (f" | patience {verdict.patience:g} at validation {verdict.validation}"
                           + (" (significant improvement)" if verdict.significant else ""))
        print(f"epoch {epoch + 1}{' (partial)' if stopped_early else ''}: train recon {means['recon']:.2f} "
              f"kl {means['kl']:.3f} | {valid_text}", file=sys.stderr)
        if verdict is not None and verdict.stop:
            print(f"training stops: {verdict.stop}; the weights of epoch {state['best_state']['epoch']} are kept",
                  file=sys.stderr)
        if decision is not None and decision.decayed:  # applied after `after_epoch`, which sees the epoch's weights
            if decision.reload_best:  # the harness's kept best weights (He et al. reload their saved best model)
                model.reload_weights(state["best_state"]["model"])
            optimisation.set_lr(decision.lr, restart=decision.restart_optimizer)
            print(f"lr decay {schedule.decays}: lr {decision.lr:g}"
                  + (f", weights of epoch {state['best_state']['epoch']} reloaded" if decision.reload_best else "")
                  + (f"; training stops: {decision.stop}" if decision.stop else ""), file=sys.stderr)
        elif decision is not None and decision.lr != entry["lr"]:  # a schedule of the epoch alone (cosine-per-cycle)
            optimisation.set_lr(decision.lr)
        if schedule is not None:
            state["lr_schedule"] = schedule.state_dict()
        if stopper is not None:
            state["early_stopping"] = stopper.state_dict()
        epoch_seconds.append(time.monotonic() - epoch_started)
        if stopped_early is not None:  # its checkpoint is written: the last whole epoch's, or the partial epoch's
            break
        state["epoch"] = epoch + 1
        save_checkpoint()

    summary = {
        "run_config": run.to_dict(),
        "fingerprint": fingerprint,
        "selected_epoch": state["best_state"]["epoch"],
        "select_by": cfg.select_by,
        "epochs_completed": state["epoch"],
        # a time budget's stop, or early stopping's (its record: reason, epoch, validation, patience, best_epoch,
        # last_significant_epoch); they exclude each other (a partial epoch decides nothing)
        "stopped_early": stopped_early if stopped_early is not None else None if stopper is None else stopper.stopped,
        "lr_schedule": None if schedule is None else schedule.summary(),
        "early_stopping": None if stopper is None else stopper.summary(),
        "history": state["history"],
        "steps": state["step"],
        "train_sentences": len(train_set),
        "train_seconds": state["train_seconds"],
        "train_tokens_per_second": state["train_tokens"] / max(state["train_seconds"], 1e-9),
        "code_version": version,
        "method_sources": method_sources,
        "run_id": state["run_id"],
        "resumed_from": resumed_from,
        "code_changed_during_run": state["code_changed_during_run"],
        "discarded_checkpoint": discarded_checkpoint,
        "versions": environment_info(),
        "device": str(device),
        "embedding_init": embedding_init,
        "warm_start": state.get("warm_start"),
        "finished": now_iso(),
    }
    save_torch_atomic(out_dir / MODEL, {"state_dict": state["best_state"]["model"], "vocab_size": len(vocab),
                                        "summary": summary})
    write_json_atomic(out_dir / TRAIN_LOG, summary)
    if stopped_early is None:  # the finished model supersedes it; a budget stop keeps it for a later call
        checkpoint_path.unlink(missing_ok=True)
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-config", required=True, help="JSON of a RunConfig (as the workflow passes it)")
    parser.add_argument("--data", required=True, type=Path, help="preprocessed dataset folder")
    parser.add_argument("--out", required=True, type=Path, help="run folder")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                        help="stop training after this many wall-clock seconds (at an epoch boundary when the next "
                             "epoch would not fit, else mid-epoch); train_log.json says where it stopped")
    parser.add_argument("--vectors", type=Path, default=None,
                        help="dialogue: word vectors that initialise the embedding (GloVe/word2vec text or .kv)")
    parser.add_argument("--on-code-change", choices=ON_CODE_CHANGE, default="refuse",
                        help="when the run folder's checkpoint.pt was written by other method code (its source "
                             "hashes differ): refuse (default, exit 2 naming the files), restart (discard the "
                             "checkpoint) or continue (resume anyway; train_log.json records "
                             "code_changed_during_run)")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    run = RunConfig.from_dict(json.loads(args.run_config))
    try:
        summary = train_run(run, args.data, args.out, progress=not args.no_progress, vectors_path=args.vectors,
                            time_budget_s=args.time_budget, on_code_change=args.on_code_change)
    except CodeChanged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"trained {run.model.name} on {run.dataset} seed {run.seed}: {summary['steps']} steps, "
          f"{summary['train_tokens_per_second']:.0f} tokens/s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
