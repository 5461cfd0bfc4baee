"""What a DailyDialog training epoch costs per dialogue model (issue 35): config/paper.yaml's recipe, as the workflow's
train job runs it (harness.train.training.train_run), in float32 and in bfloat16 where the CPU multiplies bf16
natively and the method supports it; optionally the same measurement on other checkouts of this repository
(`--compare DIR`, e.g. a clone at the commit before a speed change), interleaved in one run, as ratios.

    python -m benchmarks.dialogue_epoch [--models cvae,twr-cvae-dailydialog] [--batches 12] [--repeats 1] \
        [--compare DIR ...] [--raw data/raw] [--threads 1] [--out results/benchmarks/dialogue_epoch.json]

Each measurement is a fresh process that trains the model for two epochs on the first `--batches` batches of the
training split (validation on one batch) and times the second epoch's training (the first warms up the allocator
and the kernels); seconds per batch x the full split's batches per epoch is the projected full epoch. The data are
DailyDialog's released files (`--raw`, as the fetch step leaves them), preprocessed once per checkout with
paper.yaml's vocabulary (10,000). A checkout named with --compare runs this file's measurement against its own
`harness` package (its directory first on the module path), so two code versions are timed by the same procedure.
What the original code's epoch costs is in results/fidelity/ (docs/fidelity.md): not repeated here.
A recipe with phases of different cost is timed per phase: `seqgan` times its MLE pre-training (where its schedule
starts), `seqgan@adversarial` its adversarial updates (PHASES: the run started there).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATASET = "dailydialog"
DEFAULT_MODELS = ("cvae", "twr-cvae-dailydialog")
THIS_FILE = Path(__file__).resolve()


# ---- the measurement, run in a fresh process against one checkout's harness ---------------------------------------

#: `--models seqgan@adversarial`: a phase of a multi-phase recipe timed on its own (the short run would otherwise time
#: only the phase the schedule starts with): the options that start the run in it.
PHASES = {"adversarial": {"pretrain_steps": 0, "discriminator_pretrain_steps": 0}}  # SeqGAN: REINFORCE + roll-outs


def measure(spec: str, precision: str, batches: int, raw: Path, data_dir: Path) -> dict:
    """Seconds per training batch of `spec` (a model of paper.yaml, seed 1, optionally `@phase` of PHASES) in
    `precision`, from the second of two epochs over the first `batches` batches; the full split's batches per epoch;
    the second epoch's training loss."""
    from harness.core.config import REPO_ROOT, ExperimentConfig
    from harness.core.io import code_version
    from harness.data.dialogue import preprocess_dialogue
    from harness.train.training import train_run

    model, _, phase = spec.partition("@")
    if phase and phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r} in {spec!r} (known: {sorted(PHASES)})")
    experiment = ExperimentConfig.from_file(REPO_ROOT / "config" / "paper.yaml")
    if not (data_dir / "stats.json").is_file():
        preprocess_dialogue(DATASET, raw, data_dir, max_vocab=experiment.raw["data_options"][DATASET]["max_vocab"])
    stats = json.loads((data_dir / "stats.json").read_text())
    run = experiment.run_config(DATASET, model, 1)
    if phase:
        run = dataclasses.replace(run, model=dataclasses.replace(run.model, options={**run.model.options,
                                                                                     **PHASES[phase]}))
    size = run.train.batch_size
    run = dataclasses.replace(
        run, device="cpu",
        data=dataclasses.replace(run.data, max_train_sentences=batches * size, max_valid_sentences=size),
        train=dataclasses.replace(run.train, epochs=2, precision=precision, validate_every=1, early_stopping=None))
    with tempfile.TemporaryDirectory(prefix="textvae-dialogue-epoch-") as out:
        summary = train_run(run, data_dir, Path(out), progress=False)
    second = summary["history"][1]
    full_examples = stats["splits"]["train"]["examples"]
    return {"model": spec, "phase": phase or None, "method": run.model.method, "precision": precision, "code_version": code_version(),
            "harness": str(REPO_ROOT), "batch_size": size, "batches_timed": batches,
            "seconds_per_batch": second["train_seconds"] / batches,
            "full_epoch_batches": math.ceil(full_examples / size), "full_train_examples": full_examples,
            "projected_epoch_seconds": second["train_seconds"] / batches * math.ceil(full_examples / size),
            "train_loss_epoch2": second["train_loss"]}


def worker_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--precision", required=True)
    parser.add_argument("--batches", type=int, required=True)
    parser.add_argument("--raw", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    from harness.core.io import set_threads
    set_threads(args.threads)
    print(json.dumps(measure(args.model, args.precision, args.batches, args.raw, args.data)))
    return 0


# ---- the driver: every (checkout, model, precision) interleaved, ratios against this checkout ----------------------

def run_measurement(checkout: Path, args: list[str]) -> dict:
    """`measure` in a fresh process whose `harness` is `checkout`'s."""
    program = ("import runpy, sys; sys.path.insert(0, sys.argv[1]); "
               "sys.exit(runpy.run_path(sys.argv[2])['worker_main'](sys.argv[3:]))")
    result = subprocess.run([sys.executable, "-c", program, str(checkout), str(THIS_FILE), *args],
                            cwd=checkout, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"measurement in {checkout} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    from harness.core.config import REPO_ROOT
    from harness.core.io import environment_info, now_iso, write_json_atomic
    from harness.core.machine import cpu_model, cpuinfo
    from harness.core.precision import bfloat16_unsupported

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--compare", type=Path, action="append", default=[], metavar="DIR",
                        help="another checkout of this repository to time the same way (repeatable)")
    parser.add_argument("--raw", type=Path, default=REPO_ROOT / "data" / "raw")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "benchmarks" / "dialogue_epoch.json")
    args = parser.parse_args(argv)
    if not (args.raw / DATASET).is_dir():
        print(f"error: {args.raw / DATASET} not found: fetch DailyDialog first (`python -m harness.data.fetch "
              f"--dataset {DATASET} --dest {args.raw} --mirror ../shared/data --no-download`)", file=sys.stderr)
        return 2
    for checkout in args.compare:
        if not (checkout / "harness" / "train" / "training.py").is_file():
            print(f"error: {checkout} is not a checkout of this repository with harness/train/training.py",
                  file=sys.stderr)
            return 2
    no_bfloat16 = bfloat16_unsupported("cpu")
    precisions = ["float32"] + ([] if no_bfloat16 else ["bfloat16"])
    checkouts = [REPO_ROOT, *(c.resolve() for c in args.compare)]
    records = []
    with tempfile.TemporaryDirectory(prefix="textvae-dialogue-epoch-data-") as scratch:
        for repeat in range(args.repeats):
            for model in args.models.split(","):
                for precision in precisions:
                    for index, checkout in enumerate(checkouts):
                        data = Path(scratch) / f"checkout{index}"
                        started = time.perf_counter()
                        try:
                            record = run_measurement(checkout, ["--model", model, "--precision", precision,
                                                                "--batches", str(args.batches), "--raw",
                                                                str(args.raw.resolve()), "--data", str(data),
                                                                "--threads", str(args.threads)])
                        except RuntimeError as exc:  # e.g. a method without bf16 in an older checkout
                            record = {"model": model, "precision": precision, "harness": str(checkout),
                                      "error": str(exc).splitlines()[-1]}
                        record.update(repeat=repeat, checkout=index, wall_seconds=time.perf_counter() - started)
                        records.append(record)
                        print(f"{model} {precision} checkout {index}: "
                              + (f"{record['seconds_per_batch']:.3f} s/batch, projected epoch "
                                 f"{record['projected_epoch_seconds']:.0f} s" if "error" not in record
                                 else record["error"]), file=sys.stderr)
    payload = {"what": "DailyDialog training epoch per dialogue model, config/paper.yaml's recipe (seed 1), "
                       f"seconds per batch over epoch 2 of 2 on the first {args.batches} batches, projected to the "
                       "full training split; checkout 0 is this one, the others --compare",
               "checkouts": [{"index": i, "code_version": next((r.get("code_version") for r in records
                                                                if r["checkout"] == i and "code_version" in r), None)}
                             for i in range(len(checkouts))],
               "cpu": cpu_model(cpuinfo()), "threads": args.threads, "bfloat16_unsupported": no_bfloat16,
               "versions": environment_info(), "created": now_iso(), "records": records,
               "ratios": ratios(records)}
    for record in payload["records"]:
        record.pop("harness", None)  # a machine path
    write_json_atomic(args.out, payload)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def ratios(records: list[dict]) -> dict:
    """Per model: seconds per batch of every (checkout, precision) over checkout 0's float32, medians over repeats
    (>1 = slower than this checkout in float32)."""
    import statistics

    timed = [r for r in records if "seconds_per_batch" in r]
    out: dict[str, dict[str, float]] = {}
    for model in sorted({r["model"] for r in timed}):
        def median(checkout, precision):
            values = [r["seconds_per_batch"] for r in timed
                      if r["model"] == model and r["checkout"] == checkout and r["precision"] == precision]
            return statistics.median(values) if values else None
        base = median(0, "float32")
        if base is None:
            continue
        out[model] = {f"checkout{c} {p}": median(c, p) / base
                      for c in sorted({r["checkout"] for r in timed}) for p in ("float32", "bfloat16")
                      if median(c, p) is not None}
    return out


if __name__ == "__main__":
    raise SystemExit(main())
