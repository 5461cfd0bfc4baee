"""Phase 3: paper-length PTB runs, trained at once as separate processes on the one device for a wall-clock budget.

Each planned model (config/paper.yaml's architecture, optimiser and schedules, seed 1, full PTB) is trained by the
harness's own command line (`python -m harness.train --time-budget S`: as many epochs as fit, the epochs reached
are recorded) and then evaluated by `python -m harness.evaluate` under both protocols with K = 500. The training
budget is what the phase's wall-clock allowance leaves after the evaluation, estimated from phase 2's IW-NLL speed;
evaluation uses phase 2's fastest `iw_chunk` (samples per decoder pass: speed only, the estimate is the same).
A process still running at the kill deadline (GPU sizes: a minute after the allowance) is killed and reported.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

from harness.core.config import REPO_ROOT, RunConfig


@dataclass(frozen=True)
class PaperRunSizes:
    total_seconds: float  # the phase's wall-clock allowance, training and evaluation of every model
    startup_seconds: float  # process start-up, data loading, the last epoch's validation
    eval_safety: float  # evaluation estimate = safety x (models x test sentences / phase 2's sentences/s)
    unmeasured_eval_share: float  # without phase 2: this share of the allowance is kept for evaluation
    kill_after_seconds: float | None  # processes still running then are killed (None: never), so that the command
    #                                   ends inside the device's time limit with what finished reported


FULL = PaperRunSizes(total_seconds=390, startup_seconds=45, eval_safety=2.0, unmeasured_eval_share=0.3,
                     kill_after_seconds=450)
TINY = PaperRunSizes(total_seconds=25, startup_seconds=10, eval_safety=2.0, unmeasured_eval_share=0.3,
                     kill_after_seconds=None)


def plan_budget(sizes: PaperRunSizes, models: int, test_sentences: int, speed: dict | None) -> dict:
    """Seconds of training per model (all train at once) so that training and evaluation fit the allowance."""
    if speed is not None:
        chunk = speed["summary"]["fastest_iw_chunk"]
        rate = speed["summary"]["iwnll_sentences_per_second"][str(chunk)]["ours"]
        evaluation = sizes.eval_safety * models * test_sentences / rate
        basis = (f"phase 2: {rate:.1f} sentences/s at iw_chunk {chunk} (TWR-VAE, float32) x {models} models x "
                 f"{test_sentences} test sentences x safety {sizes.eval_safety}")
    else:
        chunk, evaluation = None, sizes.unmeasured_eval_share * sizes.total_seconds
        basis = f"no phase 2 measurement: {sizes.unmeasured_eval_share:.0%} of the allowance kept for evaluation"
    train = sizes.total_seconds - sizes.startup_seconds - evaluation
    if train < 0.25 * sizes.total_seconds:
        basis += f"; the estimate left {train:.0f} s, raised to a quarter of the allowance"
        train = 0.25 * sizes.total_seconds
    return {"allowance_seconds": sizes.total_seconds, "train_seconds": round(train, 1),
            "evaluation_estimate_seconds": round(evaluation, 1), "iw_chunk": chunk, "basis": basis}


def _tail(path: Path, characters: int = 3000) -> str:
    return path.read_text(errors="replace")[-characters:] if path.is_file() else ""


def _step(command: list[str], log: Path, deadline: float | None) -> str:
    """Run one harness command, its output into `log`; 'ok', 'failed' or 'killed at the deadline'."""
    with open(log, "w") as handle:
        try:
            # `python -m` from the repository root imports this checkout; unbuffered, so a killed run's log is whole
            completed = subprocess.run(command, cwd=REPO_ROOT, stdout=handle, stderr=subprocess.STDOUT,
                                       env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                       timeout=None if deadline is None else max(deadline - time.monotonic(), 1.0))
        except subprocess.TimeoutExpired:
            return "killed at the deadline"
    return "ok" if completed.returncode == 0 else "failed"


def train_and_evaluate(run: RunConfig, run_dir: Path, data_dir: Path, train_seconds: float, deadline: float | None,
                       threads: int, announce: Callable[[str], None]) -> dict:
    """One model: train (with the budget) then evaluate, each by the harness's command line."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run_config.json").write_text(json.dumps(run.to_dict(), indent=2, sort_keys=True) + "\n")
    common = ["--data", str(data_dir), "--threads", str(threads), "--no-progress"]
    training = run.to_dict()
    training.pop("evaluate")  # as the workflow passes it: evaluation settings do not touch training
    status = _step([sys.executable, "-m", "harness.train", "--run-config", json.dumps(training), "--out", str(run_dir),
                    "--time-budget", str(train_seconds), *common], run_dir / "train.log", deadline)
    record: dict = {"model": run.model.name, "paper_name": run.model.paper_name, "epochs_planned": run.train.epochs,
                    "train": status}
    if status != "ok":
        announce(f"{run.model.name}: training {status}")
        return {**record, "status": f"training {status}", "log_tail": _tail(run_dir / "train.log")}
    log = json.loads((run_dir / "train_log.json").read_text())
    record.update({key: log[key] for key in ("epochs_completed", "stopped_early", "selected_epoch", "steps",
                                             "train_seconds", "train_tokens_per_second")})
    record["lr_schedule"] = log.get("lr_schedule")  # the baselines' lr decay may end training before the budget
    announce(f"{run.model.name}: trained {log['epochs_completed']} epoch(s) + "
             f"{'a partial one' if (log['stopped_early'] or {}).get('partial_epoch') else 'no partial one'}, "
             f"{log['train_tokens_per_second']:.0f} tokens/s")
    status = _step([sys.executable, "-m", "harness.evaluate", "--model", str(run_dir / "model.pt"), "--out",
                    str(run_dir / "metrics.json"), "--run-config", run.to_json(), *common],
                   run_dir / "evaluate.log", deadline)
    record["evaluate"] = status
    if status != "ok":
        announce(f"{run.model.name}: evaluation {status}")
        return {**record, "status": f"evaluation {status}", "log_tail": _tail(run_dir / "evaluate.log")}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    announce(f"{run.model.name}: evaluated in {metrics['timing']['eval_seconds']:.0f} s")
    return {**record, "status": "ok", "metrics": metrics["metrics"], "eval_seconds": metrics["timing"]["eval_seconds"]}


def paper_values(plan, paper_name: str | None) -> dict:
    return {row["metric"]: row["value"] for row in plan.raw["paper_values"] if row["model"] == paper_name}


def run_paper_runs(plan, models: list[str], device: str, out: Path, sizes: PaperRunSizes, speed: dict | None,
                   cpu_count: int, on_progress: Callable[[], None] = lambda: None) -> dict:
    started = time.monotonic()
    stats = json.loads((plan.data_dir / "stats.json").read_text())
    budget = plan_budget(sizes, len(models), stats["splits"]["test"]["sentences"], speed)
    deadline = None if sizes.kill_after_seconds is None else started + sizes.kill_after_seconds
    threads = max(1, cpu_count // len(models))
    lock = threading.Lock()

    def announce(message: str) -> None:
        with lock:
            print(f"[phase 3, {time.monotonic() - started:5.0f} s] {message}", file=sys.stderr, flush=True)
            on_progress()

    def one(model: str) -> dict:
        run = plan.run(model, device)
        if budget["iw_chunk"] is not None:
            run = replace(run, evaluate=replace(run.evaluate, iw_chunk=budget["iw_chunk"]))
        return train_and_evaluate(run, out / model, plan.data_dir, budget["train_seconds"], deadline, threads,
                                  announce)

    print(f"[phase 3] {len(models)} models at once on {device}, {threads} CPU thread(s) each; training "
          f"{budget['train_seconds']:.0f} s, allowance {sizes.total_seconds:.0f} s ({budget['basis']})",
          file=sys.stderr, flush=True)
    with ThreadPoolExecutor(max_workers=len(models)) as pool:
        runs = dict(zip(models, pool.map(one, models)))
    for model, record in runs.items():
        record["paper"] = paper_values(plan, record["paper_name"])
    ok = [model for model, record in runs.items() if record["status"] == "ok"]
    return {"status": "passed" if len(ok) == len(models) else ("partial" if ok else "failed"),
            "budget": budget, "sizes": asdict(sizes), "threads_per_run": threads, "runs": runs,
            "data_source": plan.raw["data_source"], "config_file": plan.raw["config_file"],
            "settings": plan.raw["settings"], "seconds": time.monotonic() - started}
