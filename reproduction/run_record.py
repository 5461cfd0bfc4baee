"""Which calls trained a reference run, and where its results go (reproduction.cpu_reference's provenance).

A reference run is trained over many calls of `cpu_reference run`, each resuming the checkpoint the last one left, on
whatever CPU the session has. Each call lists the calls before it in `reference_run.json`. A run is known by its id
(harness.train.training's `run_id`, kept in its checkpoints, `model.pt` and train log); its record -- its results
folder, relative to results/reference, and its calls -- lives beside the checkpoint (`reference_calls.json`) and in
the committed `reference_run.json`, so that:

- a checkpoint or a warm start continued on another CPU type keeps the folder where the run started;
- a record of another run (an earlier run of the same model and seed, a new run killed before writing its own) is
  never spliced into a run's calls;
- training no record covers (a call killed after a checkpoint, before it wrote its results) is listed as such;
- a run that finished but whose final evaluation was killed is evaluated by the next call, not trained over;
- a run that replaces another in its results folder (the same model, seed and CPU type, started afresh, e.g. on a
  machine without the other's checkpoint) keeps a line on it (`replaces`): the machine time it cost stays on record.
"""
from __future__ import annotations

from pathlib import Path

from harness.core.config import RunConfig
from harness.core.io import read_json
from harness.core.runs import CHECKPOINT, MODEL
from harness.train.training import TRAIN_LOG

PROVENANCE = "reference_run.json"  # in the results folder: the run's calls and where it stands
RECORD = "reference_calls.json"  # in the work folder, beside the checkpoint: the run's results folder and its calls
CALL_KEYS = ("command", "budget_minutes", "code_version", "created")  # what each call of `run` recorded at first


def ends(call: dict, resumed_from: dict) -> tuple[int, int]:
    """(where `call` ended, where the checkpoint resumed from): in steps, or in epochs for a call recorded before calls
    kept their steps."""
    if "steps_to" in call:
        return call["steps_to"], resumed_from["step"]
    return call["epochs_to"], resumed_from["epoch"]


def earlier_calls(record: dict, resumed_from: dict | None) -> list[dict]:
    """The calls of `run` that trained the checkpoint this call resumed (`resumed_from`, train_run's; none when it
    started afresh): those of the run's record that ended at or before where it resumed from. A call whose checkpoint
    was later abandoned ended past it."""
    if resumed_from is None:
        return []
    kept = []
    for call in record["calls"]:
        ended_at, resumed_at = ends(call, resumed_from)
        if ended_at <= resumed_at:
            kept.append(call)
    return kept


def unrecorded_training(earlier: list[dict], resumed_from: dict | None) -> list[dict]:
    """The training between the last recorded call and the checkpoint this call resumed, if any: one entry saying
    so, with what the checkpoint knows (its epoch, step and code version); its CPU, budget and timings are unknown."""
    if resumed_from is None:
        return []
    last = earlier[-1] if earlier else {"epochs_to": 0, "steps_to": 0}
    recorded_to, resumed_at = ends(last, resumed_from)
    if recorded_to >= resumed_at:
        return []
    return [{"unrecorded": True, "budget_minutes": None, "code_version": resumed_from.get("code_version"),
             "epochs_from": last["epochs_to"], "epochs_to": resumed_from["epoch"],
             "steps_from": last.get("steps_to"), "steps_to": resumed_from["step"],
             "note": "trained by calls whose record is not here: a call killed after a checkpoint, before writing its "
                     "results, or the run's record found neither in the work folder nor under results/reference: "
                     "their CPU, budget and timings are unknown"}]


def run_record(work: Path, into: Path, here: str, resumed_from: dict | None) -> dict:
    """The record of the run this call trained: {"folder": its results folder under `into`, "calls": the calls that
    trained it before}; `here` is this CPU's folder for the run (cpu-<cpu>/<dataset>/<model>/seed<k>). A run started
    afresh (no checkpoint resumed) gets it and no calls. A resumed
    run is known by its id (train_run's `run_id`, kept in its checkpoints): its record is the work folder's (every
    call writes it there, beside the checkpoint) or a committed reference_run.json of the same model and seed with
    that id, on any CPU's folder -- so a run continued on another CPU type keeps the folder it started in; a record
    of another run (an earlier run of the same seed, a new run killed before writing its record) is never taken.
    A checkpoint from before runs had ids reads this CPU's folder, as calls were read then, and gives those calls
    (recorded without steps) that file's CPU and precision: a CPU folder's run was trained there, and a run's
    precision is part of its checkpoint's fingerprint."""
    if resumed_from is None:
        return {"folder": here, "calls": []}
    run_id = resumed_from.get("run_id")
    if run_id is None:
        return legacy_record(into, here)
    path = work / RECORD
    if path.is_file() and (record := read_json(path)).get("run_id") == run_id:
        return record
    for provenance_path in sorted(into.glob(f"cpu-*/{here.split('/', 1)[1]}/{PROVENANCE}")):
        provenance = read_json(provenance_path)
        if provenance.get("run_id") == run_id:
            return {"folder": provenance_path.parent.relative_to(into).as_posix(), "calls": provenance["calls"]}
    return {"folder": here, "calls": []}


def legacy_record(into: Path, here: str) -> dict:
    """A run without an id: the calls of this CPU's folder's reference_run.json (its only call where it lists none),
    those recorded without steps given the file's CPU and precision."""
    provenance_path = into / here / PROVENANCE
    if not provenance_path.is_file():
        return {"folder": here, "calls": []}
    earlier = read_json(provenance_path)
    calls = earlier.get("calls") or [{key: earlier[key] for key in CALL_KEYS if key in earlier}
                                     | {"epochs_from": 0, "epochs_to": earlier["epochs_completed"]}]
    return {"folder": here, "calls": [
        call if "steps_to" in call or call.get("unrecorded")
        else {"cpu": earlier.get("cpu"), "precision": earlier.get("precision"), **call} for call in calls]}


def finished_unevaluated(work: Path, run: RunConfig) -> dict | None:
    """The train log of the run in `work` if it ended its recipe (model.pt written, the checkpoint removed) and the
    call that ended it wrote no results -- killed during the evaluation, which takes about an hour on one thread: the
    next call evaluates it, where training afresh would discard the finished run. A finished run whose results were
    written (the work folder's record lists the call that ended it) is refused: evaluated already."""
    log_path = work / TRAIN_LOG
    if (work / CHECKPOINT).exists() or not (work / MODEL).exists() or not log_path.is_file():
        return None
    summary = read_json(log_path)
    if summary.get("fingerprint") != run.training_fingerprint() or summary.get("stopped_early") is not None:
        return None
    record_path = work / RECORD
    record = read_json(record_path) if record_path.is_file() else {}
    last = (record.get("calls") or [{}])[-1]
    if record.get("run_id") == summary.get("run_id") is not None and last.get("steps_to") == summary["steps"]:
        raise ValueError(f"{work} holds {run.model.name} seed {run.seed} finished and evaluated (its results: "
                         f"{record['folder']}); to train it again, remove {work}")
    return summary


def evaluation_resumes(summary: dict) -> dict:
    """What an evaluation-only call continues: the finished run at its end, known by its id -- or by none where the
    call that finished it resumed a checkpoint from before runs had ids (its id was made then, and no record has it:
    the run's calls are those of the CPU folder's record, as that call itself would have read them)."""
    before = summary.get("resumed_from")
    legacy = before is not None and before.get("run_id") is None
    return {"epoch": summary["epochs_completed"], "step": summary["steps"],
            "run_id": None if legacy else summary.get("run_id"), "code_version": summary["code_version"]}


def replaced_runs(dest: Path, run_id: str | None, resumed_from: dict | None) -> list[dict]:
    """The runs whose results this run's results replace in `dest`: those the folder's record already lists, then
    that record's own run where it is another one (its id, epochs, calls, training time, whether it was scored),
    read before the run's files overwrite it. Empty for a folder with no record. A record without an id is this
    run's where the run resumed a checkpoint from before runs had ids (train_run then gave it an id); an unreadable
    record is named, not read (this is called after training and evaluation: it must not lose them)."""
    path = dest / PROVENANCE
    if not path.is_file():
        return []
    try:
        earlier = read_json(path)
        log = read_json(dest / TRAIN_LOG) if (dest / TRAIN_LOG).is_file() else {}
    except (OSError, ValueError) as exc:
        return [{"unreadable": f"{PROVENANCE} or {TRAIN_LOG}: {exc}".replace(str(dest), "<results folder>")}]
    replaced = list(earlier.get("replaces") or [])
    legacy_resume = resumed_from is not None and resumed_from.get("run_id") is None
    if earlier.get("run_id") == run_id or (legacy_resume and earlier.get("run_id") is None):
        return replaced
    seconds = log.get("train_seconds") if log.get("run_id") == earlier.get("run_id") else None  # its own log only
    calls = len(earlier.get("calls") or [earlier])  # the oldest records hold their one call inline
    evaluated = earlier.get("evaluated", (dest / "metrics.json").is_file())  # the oldest records: scored if scores
    return replaced + [{"run_id": earlier.get("run_id"), "epochs_completed": earlier.get("epochs_completed"),
                        "calls": calls, "train_seconds": seconds, "evaluated": evaluated, "cpu": earlier.get("cpu"),
                        "precision": earlier.get("precision"), "last_call": earlier.get("created")}]
