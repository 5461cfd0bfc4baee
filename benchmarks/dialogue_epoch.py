"""What a DailyDialog training epoch costs per dialogue model (issue 35): config/paper.yaml's recipe, as the workflow's
train job runs it (harness.train.training.train_run), in float32 and in bfloat16 where the CPU multiplies bf16
natively and the method supports it; optionally the same measurement on other checkouts of this repository
(`--compare DIR`, e.g. a clone at the commit before a speed change) and the original codes' epochs (`--original
[MODEL=]DIR`), interleaved in one run, as ratios.

    python -m benchmarks.dialogue_epoch [--models cvae,twr-cvae-dailydialog] [--batches 12] [--repeats 1] \
        [--compare DIR ...] [--original [MODEL=]DIR ... [--original-dialogues N] [--original-epochs 2]] \
        [--raw data/raw] [--threads 1] [--precisions float32,bfloat16] [--out results/benchmarks/dialogue_epoch.json]

    python -m benchmarks.dialogue_epoch --dataset ptb [--models vae-lstm,lag-vae]   # -> results/benchmarks/ptb_epoch.json

Each measurement is a fresh process that trains the model for two epochs on the first `--batches` batches of the
training split (validation on one batch) and times the second epoch's training (the first warms up the allocator
and the kernels); seconds per batch x the full split's batches per epoch is the projected full epoch. The data are
DailyDialog's released files (`--raw`, as the fetch step leaves them), preprocessed once per checkout with
paper.yaml's vocabulary (10,000). A checkout named with --compare runs this file's measurement against its own
`harness` package (its directory first on the module path), so two code versions are timed by the same procedure.
A recipe with phases of different cost is timed per phase: `seqgan` times its MLE pre-training (where its schedule
starts), `seqgan@adversarial` its adversarial updates (PHASES: the run started there).

`--original DIR` also times, once per repeat after the harness's measurements, the code behind the paper's TWR-VAE Table
5 row: ruizheliUOA/TWR-VAE's `dialogue_dd/train_dailydial.py` (commit 68105544), DIR being a copy of its `dialogue_dd/`
with the patches of docs/fidelity.md plus the timing ones; `--original dialogwae=DIR` the code behind the WAE row,
guxd/DialogWAE's `train.py --model DialogWAE` (commit 29f206af), patched for the CPU, current torch and timing
(ORIGINALS; docs/performance.md says how to rebuild either copy; none of their code is in this repository). Each runs in
a fresh process of this interpreter, with the same `--threads`, seed 1, on the CPU, for `--original-epochs` epochs
(default 2, as the harness: the last one is timed, the first warms up) on the first `--original-dialogues` training
dialogues, without its test scoring or validation. Both originals train on "grids": their dialogues, sorted by length,
in groups of their batch size (96 / 32), each group cut at every position into batches of one response per dialogue;
TWR-VAE's script makes one update per grid, DialogWAE's takes 5 grids per update (n_iters_d): the autoencoder and the
generator train on the first, the critic on each, so that an epoch of it trains the autoencoder on 15,200 of its 75,968
grid examples. N is a whole number of groups; its default is the number giving about as many training examples as the
harness's timed epoch at the full split's rate (TWR-VAE, 12 batches of 96: 192 dialogues). Recorded: its training
seconds, updates and examples (those its updates train the decoder on), seconds per example and per update, and the
projected full epoch (seconds per example x its full split's training examples: 75,072 for TWR-VAE, 15,200 for
DialogWAE). `ratios[MODEL]["original float32"]` (and "original bfloat16") is this checkout's MODEL seconds per training
example in that precision over its original's (float32 only), medians over repeats: < 1 = the harness is faster. (Per
example, not per update: the harness's batches are bucketed by size and of its recipe's batch size, 96 for TWR-CVAE, 32
for DialogWAE, as the originals' grids.)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import hashlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATASET = "dailydialog"
#: `--dataset ptb` times the language-model recipes the same way (issue 31: the cost of a PTB row before running it,
#: Lag-VAE's aggressive encoder phase above all), written to ptb_epoch.json; the status board reads both files.
DEFAULT_MODELS = {"dailydialog": ("cvae", "twr-cvae-dailydialog"), "ptb": ("vae-lstm", "lag-vae")}
DEFAULT_OUT = {"dailydialog": "dialogue_epoch.json", "ptb": "ptb_epoch.json"}
THIS_FILE = Path(__file__).resolve()


# ---- the measurement, run in a fresh process against one checkout's harness ---------------------------------------

#: `--models seqgan@adversarial`: a phase of a multi-phase recipe timed on its own (the short run would otherwise time
#: only the phase the schedule starts with): the options that start the run in it.
PHASES = {"adversarial": {"pretrain_steps": 0, "discriminator_pretrain_steps": 0}}  # SeqGAN: REINFORCE + roll-outs


def measure(spec: str, precision: str, batches: int, raw: Path, data_dir: Path, dataset: str = DATASET) -> dict:
    """Seconds per training batch of `spec` (a model of paper.yaml, seed 1, optionally `@phase` of PHASES) on
    `dataset` in `precision`, from the second of two epochs over the first `batches` batches; the full split's batches
    per epoch; the second epoch's training loss."""
    from harness.core.config import REPO_ROOT, ExperimentConfig
    from harness.core.io import code_version
    from harness.data.dialogue import preprocess_dialogue
    from harness.data.preprocess import preprocess_lm
    from harness.data.registry import DATASETS
    from harness.train.training import train_run

    model, _, phase = spec.partition("@")
    if phase and phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r} in {spec!r} (known: {sorted(PHASES)})")
    experiment = ExperimentConfig.from_file(REPO_ROOT / "config" / "paper.yaml")
    dialogue = DATASETS[dataset].kind == "dialogue"
    if not (data_dir / "stats.json").is_file():
        preprocess = preprocess_dialogue if dialogue else preprocess_lm
        preprocess(dataset, raw, data_dir, max_vocab=(experiment.raw["data_options"].get(dataset) or {}).get("max_vocab"))
    stats = json.loads((data_dir / "stats.json").read_text())
    run = experiment.run_config(dataset, model, 1)
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
    first, second = summary["history"][0], summary["history"][1]
    full_examples = stats["splits"]["train"]["examples" if dialogue else "sentences"]
    examples = min(batches * size, full_examples)
    return {"model": spec, "dataset": dataset, "phase": phase or None, "method": run.model.method, "precision": precision, "code_version": code_version(),
            "harness": str(REPO_ROOT), "batch_size": size, "batches_timed": batches,
            "seconds_per_batch": second["train_seconds"] / batches,
            "examples_timed": examples, "updates_timed": second["step"] - first["step"],
            "seconds_per_example": second["train_seconds"] / examples,
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
    parser.add_argument("--dataset", default=DATASET)
    args = parser.parse_args(argv)
    from harness.core.io import set_threads
    set_threads(args.threads)
    print(json.dumps(measure(args.model, args.precision, args.batches, args.raw, args.data, args.dataset)))
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


# ---- the original codes (patched copies, each in a fresh process), timed beside the harness's model ----------------

@dataclasses.dataclass(frozen=True)
class OriginalCode:
    """A patched copy of the code behind a Table 5 row, timed on its DailyDialog training (docs/performance.md says how
    each copy is rebuilt; none of its code is in this repository)."""
    model: str  # the harness's model of config/paper.yaml it is compared with
    code: str  # which code, at which commit, for the record
    copy: str  # what DIR is, for the refusal
    script: str  # its training script in DIR
    options: tuple[str, ...]  # its data/model options ("{dir}" = DIR)
    group: int  # its batch_size: dialogues per group of grids (the left-over ones dropped)
    examples_per_group: float  # training examples (one per update x batch) per group on the full split
    files: tuple[str, ...]
    markers: dict  # {file: strings the patches add}
    absent: dict  # {file: strings the patches remove}


ORIGINALS: dict[str, OriginalCode] = {o.model: o for o in (
    OriginalCode(
        model="twr-cvae-dailydialog",
        code="ruizheliUOA/TWR-VAE dialogue_dd/train_dailydial.py (68105544, patched)",
        copy="a patched copy of ruizheliUOA/TWR-VAE's dialogue_dd/",
        script="train_dailydial.py", options=("--data_path", "{dir}/data/"),
        # full split: 11,118 // 96 = 115 groups, 782 updates of 96 examples (6.8 per group)
        group=96, examples_per_group=782 * 96 / 115,
        files=("train_dailydial.py", "models_dailydial.py", "utils_dailydial.py", "data.py",
               "data/train.utts.txt", "data/valid.utts.txt", "data/test.utts.txt"),
        markers={"train_dailydial.py": ("'--epochs'", "'--threads'", "'--max_train_dialogues'", "'--no_eval'",
                                        "'--record'", '"train_seconds"', '"full_train_examples"',
                                        "utils_dailydial.use_cuda")},
        absent={"models_dailydial.py": ("dtype=np.int)",), "utils_dailydial.py": ("dtype=np.int)",)}),
    OriginalCode(
        model="dialogwae",
        code="guxd/DialogWAE train.py --model DialogWAE (29f206af, patched)",
        copy="a patched copy of guxd/DialogWAE",
        script="train.py", options=("--data_path", "{dir}/data/", "--dataset", "DailyDial", "--model", "DialogWAE"),
        # full split: 11,118 // 32 = 347 groups, 2,374 grids of 32; an update takes 1 + n_iters_d - 1 grids (the
        # autoencoder and generator train on the first, the critic on all 5): 475 updates of 32 examples
        group=32, examples_per_group=475 * 32 / 347,
        files=("train.py", "models/dialogwae.py", "modules.py", "data.py", "helper.py", "configs.py",
               "experiments/metrics.py", "data/DailyDial/train.utts.txt", "data/DailyDial/valid.utts.txt",
               "data/DailyDial/test.utts.txt"),
        markers={"train.py": ("'--no_gpu'", "'--epochs'", "'--threads'", "'--max_train_dialogues'", "'--no_eval'",
                              "'--record'", '"train_seconds"', '"full_train_examples"', "helper.use_cuda")},
        absent={"models/dialogwae.py": ("torch.FloatTensor([1])",), "modules.py": ("dtype=np.int)",)}),
)}
DEFAULT_ORIGINAL = "twr-cvae-dailydialog"  # `--original DIR` without MODEL=


def parse_original(value: str) -> tuple[str, Path]:
    """`--original [MODEL=]DIR` -> (model, DIR); a plain DIR (a path may hold '=') is the TWR-VAE dialogue code's
    copy."""
    model, sep, folder = value.partition("=")
    if sep and model in ORIGINALS:
        if not folder:
            raise ValueError(f"--original {value!r}: no folder after {model}=")
        return model, Path(folder)
    if sep and "/" not in model and not Path(value).exists():
        raise ValueError(f"--original {value!r}: no original code is registered for {model!r} "
                         f"(known: {', '.join(sorted(ORIGINALS))}; a folder whose path holds '=' as "
                         f"{DEFAULT_ORIGINAL}=DIR)")
    return DEFAULT_ORIGINAL, Path(value)


def original_problems(directory: Path, original: OriginalCode = ORIGINALS[DEFAULT_ORIGINAL]) -> list[str]:
    """What `directory` lacks to be `original`'s patched copy (empty: it is one)."""
    if not directory.is_dir():
        return [f"{directory} is not a folder"]
    problems = [f"no {name}" for name in original.files if not (directory / name).is_file()]
    for name, markers in original.markers.items():
        if (directory / name).is_file():
            text = (directory / name).read_text(errors="replace")
            problems += [f"{name} lacks {marker} (harness-timing.patch not applied)" for marker in markers
                         if marker not in text]
    for name, markers in original.absent.items():
        if (directory / name).is_file():
            text = (directory / name).read_text(errors="replace")
            problems += [f"{name} still has {marker} (harness-timing.patch not applied)" for marker in markers
                         if marker in text]
    return problems


def recipe_batch_size(model: str) -> int:
    """The batch size of `model`'s DailyDialog recipe in config/paper.yaml."""
    from harness.core.config import REPO_ROOT, ExperimentConfig

    paper = ExperimentConfig.from_file(REPO_ROOT / "config" / "paper.yaml")
    return paper.run_config(DATASET, model, 1).train.batch_size


def original_default_dialogues(batches: int, batch_size: int = 96,
                               original: OriginalCode = ORIGINALS[DEFAULT_ORIGINAL]) -> int:
    """Whole groups of dialogues giving the original about as many training examples as the harness's `batches`
    of `batch_size` at the full split's rate (at least one group)."""
    return original.group * max(1, round(batches * batch_size / original.examples_per_group))


def original_command(directory: Path, record: Path, dialogues: int, epochs: int, threads: int,
                     original: OriginalCode = ORIGINALS[DEFAULT_ORIGINAL]) -> list[str]:
    """The patched original's training for `epochs` epochs on the first `dialogues` dialogues, seed 1, on the CPU,
    without test scoring, one JSON line per epoch appended to `record`."""
    return [sys.executable, str(directory / original.script),
            *(option.format(dir=directory) for option in original.options),
            "--no_gpu", "--seed", "1", "--epochs", str(epochs), "--threads", str(threads),
            "--max_train_dialogues", str(dialogues), "--no_eval", "--record", str(record)]


def original_record(lines: list[dict], dialogues: int, original: OriginalCode = ORIGINALS[DEFAULT_ORIGINAL]) -> dict:
    """The original's JSON lines (one per epoch) -> this benchmark's record: its last epoch's training timed.
    Examples are those its updates train on (DialogWAE: the autoencoder's, one grid per update)."""
    last = lines[-1]
    seconds, examples, updates = last["train_seconds"], last["train_examples"], last["train_batches"]
    own = {key: value for key, value in last.items() if key.startswith("train_")  # its losses and counts
           and key not in ("train_seconds", "train_examples", "train_batches", "train_dialogues")}
    return {"model": "original", "side": "original", "compared_with": original.model, "checkout": "original",
            "precision": "float32", "code": original.code,
            "train_dialogues": last["train_dialogues"], "dialogues_requested": dialogues,
            "epochs_run": len(lines), "epoch_timed": last["epoch"], "threads": last.get("threads"),
            "train_seconds": seconds, "train_seconds_per_epoch": [line["train_seconds"] for line in lines],
            "examples_timed": examples, "updates_timed": updates,
            "seconds_per_example": seconds / examples, "seconds_per_update": seconds / updates,
            "full_train_dialogues": last["full_train_dialogues"], "full_train_updates": last["full_train_batches"],
            "full_train_examples": last["full_train_examples"],
            "projected_epoch_seconds": seconds / examples * last["full_train_examples"],
            "original_fields": own}


def run_original(directory: Path, dialogues: int, epochs: int, threads: int,
                 original: OriginalCode = ORIGINALS[DEFAULT_ORIGINAL]) -> dict:
    """The patched original in a fresh process (working directory a scratch folder: its logs go there)."""
    with tempfile.TemporaryDirectory(prefix="textvae-dialogue-epoch-original-") as scratch:
        record = Path(scratch) / "raw.jsonl"
        result = subprocess.run(original_command(directory, record, dialogues, epochs, threads, original),
                                cwd=scratch, capture_output=True, text=True)
        if result.returncode != 0 or not record.is_file():
            raise RuntimeError(f"the original failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
        lines = [json.loads(line) for line in record.read_text().splitlines() if line.strip()]
    return original_record(lines, dialogues, original)


def original_files(directory: Path, original: OriginalCode = ORIGINALS[DEFAULT_ORIGINAL]) -> dict:
    """sha256 of the patched original's code files (which version was timed, without its path)."""
    return {name: hashlib.sha256((directory / name).read_bytes()).hexdigest()[:16]
            for name in original.files if name.endswith(".py")}


def main(argv=None) -> int:
    from harness.core.config import REPO_ROOT
    from harness.core.io import environment_info, now_iso, write_json_atomic
    from harness.core.machine import cpu_model, cpuinfo
    from harness.core.precision import bfloat16_unsupported

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default=DATASET, choices=tuple(DEFAULT_MODELS),
                        help="dailydialog (default) or ptb: the language-model recipes, written to ptb_epoch.json")
    parser.add_argument("--models", default=None, help="comma-separated models of config/paper.yaml (default: "
                        + "; ".join(f"{d}: {','.join(m)}" for d, m in DEFAULT_MODELS.items()) + ")")
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--compare", type=Path, action="append", default=[], metavar="DIR",
                        help="another checkout of this repository to time the same way (repeatable)")
    parser.add_argument("--original", action="append", default=[], metavar="[MODEL=]DIR",
                        help="a patched copy of the original code of MODEL (" + ", ".join(sorted(ORIGINALS))
                             + f"; default {DEFAULT_ORIGINAL}: ruizheliUOA/TWR-VAE's dialogue_dd/; dialogwae: "
                             "guxd/DialogWAE; docs/performance.md): time its training epoch too, once per repeat "
                             "(repeatable)")
    parser.add_argument("--original-dialogues", type=int, default=None, metavar="N",
                        help="each original trains on the first N training dialogues, a multiple of its batch size "
                             "(96 TWR-VAE, 32 DialogWAE; default: whole groups giving about as many training "
                             "examples as the harness's timed epoch)")
    parser.add_argument("--original-epochs", type=int, default=2,
                        help="epochs the original runs; the last one's training is timed (default 2, as the harness)")
    parser.add_argument("--raw", type=Path, default=REPO_ROOT / "data" / "raw")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--precisions", default=None, metavar="LIST",
                        help="comma-separated precisions to time, of float32,bfloat16 (default: both where the CPU "
                             "multiplies bf16 natively, else float32)")
    parser.add_argument("--note", default="", help="how the machine was loaded, e.g. a reference run on the other "
                        "core (recorded in the file)")
    parser.add_argument("--out", type=Path, default=None,
                        help="default results/benchmarks/dialogue_epoch.json (ptb: ptb_epoch.json)")
    args = parser.parse_args(argv)
    models = args.models.split(",") if args.models else list(DEFAULT_MODELS[args.dataset])
    out = args.out or REPO_ROOT / "results" / "benchmarks" / DEFAULT_OUT[args.dataset]
    if not (args.raw / args.dataset).is_dir():
        print(f"error: {args.raw / args.dataset} not found: fetch it first (`python -m harness.data.fetch "
              f"--dataset {args.dataset} --dest {args.raw} --mirror ../shared/data --no-download`)", file=sys.stderr)
        return 2
    if args.original and args.dataset != DATASET:
        print(f"error: --original times the original's DailyDialog script; it has no {args.dataset} counterpart here",
              file=sys.stderr)
        return 2
    for checkout in args.compare:
        if not (checkout / "harness" / "train" / "training.py").is_file():
            print(f"error: {checkout} is not a checkout of this repository with harness/train/training.py",
                  file=sys.stderr)
            return 2
    originals = {}  # model -> (OriginalCode, DIR, dialogues)
    for value in args.original:
        try:
            model, folder = parse_original(value)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        original = ORIGINALS[model]
        problems = original_problems(folder, original)
        if problems:
            print(f"error: {folder} is not {original.copy} (docs/performance.md says how to rebuild it): "
                  + "; ".join(problems), file=sys.stderr)
            return 2
        if model in originals:
            print(f"error: --original names {model}'s original twice", file=sys.stderr)
            return 2
        if model not in models:
            print(f"error: --original {value}: {model} is not among the timed --models ({','.join(models)}): the "
                  "original would be timed with nothing to compare it with", file=sys.stderr)
            return 2
        batch_size = recipe_batch_size(model)
        dialogues = args.original_dialogues or original_default_dialogues(args.batches, batch_size, original)
        if dialogues <= 0 or dialogues % original.group:
            print(f"error: --original-dialogues {dialogues} is not a positive multiple of {original.group} "
                  f"(the original of {model} trains on groups of {original.group} dialogues and drops the "
                  "left-over ones)", file=sys.stderr)
            return 2
        originals[model] = (original, folder.resolve(), dialogues)
    if originals and args.original_epochs < 1:
        print("error: --original-epochs must be at least 1", file=sys.stderr)
        return 2
    no_bfloat16 = bfloat16_unsupported("cpu")
    precisions = ["float32"] + ([] if no_bfloat16 else ["bfloat16"])
    if args.precisions is not None:
        requested = [p.strip() for p in args.precisions.split(",") if p.strip()]
        unknown = [p for p in requested if p not in ("float32", "bfloat16")]
        if unknown or not requested:
            print(f"error: --precisions {args.precisions!r}: give float32 and/or bfloat16", file=sys.stderr)
            return 2
        if "bfloat16" in requested and no_bfloat16:
            print(f"error: --precisions bfloat16 on this CPU: {no_bfloat16}", file=sys.stderr)
            return 2
        precisions = [p for p in precisions if p in requested]
    checkouts = [REPO_ROOT, *(c.resolve() for c in args.compare)]
    records = []
    with tempfile.TemporaryDirectory(prefix="textvae-dialogue-epoch-data-") as scratch:
        for repeat in range(args.repeats):
            for model in models:
                for precision in precisions:
                    for index, checkout in enumerate(checkouts):
                        data = Path(scratch) / f"checkout{index}"
                        started = time.perf_counter()
                        try:
                            record = run_measurement(checkout, ["--model", model, "--precision", precision,
                                                                "--batches", str(args.batches), "--raw",
                                                                str(args.raw.resolve()), "--data", str(data),
                                                                "--threads", str(args.threads),
                                                                "--dataset", args.dataset])
                        except RuntimeError as exc:  # e.g. a method without bf16 in an older checkout
                            record = {"model": model, "precision": precision, "harness": str(checkout),
                                      "error": str(exc).splitlines()[-1]}
                        record.update(repeat=repeat, checkout=index, wall_seconds=time.perf_counter() - started)
                        records.append(record)
                        print(f"{model} {precision} checkout {index}: "
                              + (f"{record['seconds_per_batch']:.3f} s/batch, projected epoch "
                                 f"{record['projected_epoch_seconds']:.0f} s" if "error" not in record
                                 else record["error"]), file=sys.stderr)
            for model, (original, folder, dialogues) in originals.items():
                started = time.perf_counter()
                try:
                    record = run_original(folder, dialogues, args.original_epochs, args.threads, original)
                except RuntimeError as exc:
                    record = {"model": "original", "side": "original", "compared_with": model,
                              "checkout": "original", "precision": "float32", "error": str(exc).splitlines()[-1]}
                record.update(repeat=repeat, wall_seconds=time.perf_counter() - started)
                records.append(record)
                print(f"original of {model}, float32: "
                      + (f"{record['train_seconds']:.1f} s for {record['updates_timed']} updates "
                         f"({record['examples_timed']} examples), {record['seconds_per_example'] * 1000:.2f} "
                         f"ms/example, projected epoch {record['projected_epoch_seconds']:.0f} s"
                         if "error" not in record else record["error"]), file=sys.stderr)
    payload = {"what": f"{args.dataset} training epoch per model, config/paper.yaml's recipe (seed 1), "
                       f"seconds per batch over epoch 2 of 2 on the first {args.batches} batches, projected to the "
                       "full training split; checkout 0 is this one, the others --compare"
                       + ("; 'original' records: the original code of a model (`originals`), patched, epoch "
                          f"{args.original_epochs} of {args.original_epochs} on its first training dialogues, no "
                          "test scoring; ratios 'original <precision>': this checkout's seconds per training "
                          "example of that model in that precision over its original's (<1: harness faster)"
                          if originals else ""),
               "checkouts": [{"index": i, "code_version": next((r.get("code_version") for r in records
                                                                if r["checkout"] == i and "code_version" in r), None)}
                             for i in range(len(checkouts))],
               "dataset": args.dataset, "note": args.note, "cpu": cpu_model(cpuinfo()), "threads": args.threads, "bfloat16_unsupported": no_bfloat16,
               "versions": environment_info(), "created": now_iso(), "records": records,
               "originals": {model: {"code": original.code, "files_sha256": original_files(folder, original),
                                     "dialogues": dialogues, "epochs": args.original_epochs}
                             for model, (original, folder, dialogues) in originals.items()},
               "ratios": ratios(records)}
    for record in payload["records"]:
        record.pop("harness", None)  # a machine path
    write_json_atomic(out, payload)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def ratios(records: list[dict]) -> dict:
    """Per model: seconds per batch of every (checkout, precision) over checkout 0's float32 (checkout 0's bfloat16
    where float32 was not timed, `--precisions bfloat16`), medians over repeats (>1 = slower than that); and for
    each model whose original code was timed (records' `compared_with`; before it existed, twr-cvae-dailydialog),
    "original <precision>": checkout 0's seconds per training example in that precision over the original's (<1 =
    faster than the original)."""
    import statistics

    timed = [r for r in records if "seconds_per_batch" in r and r.get("side") != "original"]
    out: dict[str, dict[str, float]] = {}
    for model in sorted({r["model"] for r in timed}):
        def median(checkout, precision):
            values = [r["seconds_per_batch"] for r in timed
                      if r["model"] == model and r["checkout"] == checkout and r["precision"] == precision]
            return statistics.median(values) if values else None
        base = median(0, "float32") or median(0, "bfloat16")
        if base is None:
            continue
        out[model] = {f"checkout{c} {p}": median(c, p) / base
                      for c in sorted({r["checkout"] for r in timed}) for p in ("float32", "bfloat16")
                      if median(c, p) is not None}
    for model in sorted({r.get("compared_with", DEFAULT_ORIGINAL) for r in records if r.get("side") == "original"}):
        original = [r["seconds_per_example"] for r in records if r.get("side") == "original"
                    and r.get("compared_with", DEFAULT_ORIGINAL) == model and "seconds_per_example" in r]
        if not original:
            continue
        for precision in ("float32", "bfloat16"):
            ours = [r.get("seconds_per_example", r["seconds_per_batch"] / r.get("batch_size", math.nan))
                    for r in timed if r["model"] == model and r["checkout"] == 0 and r["precision"] == precision]
            if ours:
                out.setdefault(model, {})[f"original {precision}"] = (statistics.median(ours)
                                                                      / statistics.median(original))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
