"""A paper-recipe reference run on the CPU: config/paper.yaml's model on full PTB (or DailyDialog) for a wall-clock budget.

    python -m reproduction.cpu_reference run --model twr-vae --budget-minutes 85 --precision bfloat16
    python -m reproduction.cpu_reference run --dataset dailydialog --model cvae --budget-minutes 85 --evaluate final
    python -m reproduction.cpu_reference render          # Table 2 + learning curve from what `run` committed

`run` trains `--model` of config/paper.yaml on the processed full PTB (`data/processed/ptb`, as the default
workflow writes it) with the paper recipe unchanged except for the device (cpu) and `--precision` (train and
evaluation), for the config's epochs or until `--budget-minutes` of wall clock (harness.train.training's time budget:
stopped at an epoch boundary, or mid-epoch, and that last epoch validated), resuming from the work folder's
checkpoint if one is there (a budget stop keeps it, so a second call with another budget continues the run;
`--warm-start model.pt` continues a run whose checkpoint is gone from its kept last-epoch weights, the optimizer
state restarted: harness.train.training.warm_start_checkpoint). After every epoch it scores the test set under the paper protocol
(harness.evaluate.evaluation; as the original code's `reconstruction`), one JSON line per epoch in `learning_curve.jsonl`.
Then the kept model is evaluated under both protocols (IW-NLL with the config's K) and `metrics.json`,
`train_log.json` and `learning_curve.jsonl` are copied to `results/reference/cpu-<cpu model>/ptb/<model>/seed<N>/`
(small JSON; the checkpoint stays in the work folder, which is ignored by git), with `reference_run.json`: every call
that trained the run (command, budget, code version, CPU, precision, threads, epochs and steps from/to, note). The
folder is that of the CPU the run started on: a checkpoint continued on another CPU type carries its run's record
(`reference_calls.json`, in the work folder) and adds its call, naming that CPU, to the same folder.
A dialogue run (`--dataset dailydialog`, issue 35's Table 5 pilots) trains the same way from `data/processed/dailydialog`
(harness.data.dialogue's JSONL; the word vectors of `--vectors`, default `<data>/word2vec.kv` as the workflow's
`word_vectors` rule trains them, initialise the embedding where the recipe asks and score the BOW metrics). Its
learning curve holds the training and validation losses only: Table 5's scores sample 10 responses per test context,
which is no per-epoch probe. Its final evaluation is Table 5's (harness.evaluate.dialogue_evaluate); the sampled
responses stay in the work folder (`samples.jsonl`), metrics.json is committed under `.../dailydialog/<model>/seed<N>/`.
`render` writes `table2.{tex,csv}` (harness.report.aggregate, the paper's numbers beside ours, a caption naming the CPU,
precision, budget and epochs reached) and `learning_curve.png` (paper-protocol test NLL by epoch beside the
paper's value) for every run committed under that folder.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from pathlib import Path

import torch

from harness.report import aggregate
from harness.report import status
from harness.core.config import REPO_ROOT, ExperimentConfig, RunConfig
from harness.data.lm_dataset import LMDataset
from harness.data.registry import DATASETS
from harness.data.vocab import Vocab
from harness.evaluate.evaluation import evaluate_run
from harness.evaluate.lm_evaluate import evaluate_model
from harness.core.io import code_version, now_iso, set_threads, write_json_atomic
from harness.core.machine import cpu_model, cpuinfo
from harness.report.tables import latex_escape
from harness.core.runs import CHECKPOINT, MODEL
from harness.train.training import ON_CODE_CHANGE, TRAIN_LOG, train_run, warm_start_checkpoint
from reproduction.run_record import (PROVENANCE, RECORD, earlier_calls, evaluation_resumes, finished_unevaluated,
                                     replaced_runs, run_record, unrecorded_training)

PAPER_CONFIG = REPO_ROOT / "config" / "paper.yaml"
PAPER_VALUES = status.PAPER_VALUES
REFERENCE = status.REFERENCE
CURVE = "learning_curve.jsonl"
EVALUATE_WHEN = ("always", "final")  # `run --evaluate`: after every call, or only the call that ends the recipe
REFERENCE_DATASETS = ("ptb", "dailydialog")  # NOT_OFFLINE (status) names the others


def cpu_slug() -> str:
    """'cpu-amd-epyc', 'cpu-intel-r-xeon-r-processor': the folder of this machine's reference runs."""
    name = cpu_model(cpuinfo()).lower()
    return "cpu-" + "-".join("".join(c if c.isalnum() else " " for c in name).split())


def reference_run_config(model: str, seed: int, precision: str, dataset: str = "ptb") -> RunConfig:
    run = ExperimentConfig.from_file(PAPER_CONFIG).run_config(dataset, model, seed)
    return dataclasses.replace(run, device="cpu", train=dataclasses.replace(run.train, precision=precision),
                               evaluate=dataclasses.replace(run.evaluate, precision=precision))


def paper_protocol(model, dataset: LMDataset, run: RunConfig) -> dict:
    """The paper-protocol metrics of `dataset` (IW-NLL off), leaving the model and the random state as they were."""
    with torch.random.fork_rng(devices=[]):
        result = evaluate_model(model, dataset, run, torch.device("cpu"), progress=False, protocols=("paper",))["paper"]
    model.train()
    return {key: result[key] for key in ("NLL", "PPL", "KL", "MI", "recon")}


def default_vectors(dataset: str, data_dir: Path) -> Path | None:
    """A dialogue dataset's word vectors as the workflow's `word_vectors` rule writes them; None for a language model."""
    return data_dir / "word2vec.kv" if DATASETS[dataset].kind == "dialogue" else None


def check_inputs(dataset: str, data_dir: Path, vectors: Path | None) -> None:
    """Refuse, naming the file and how to make it, before any training: the processed data and a dialogue's vectors."""
    if dataset not in REFERENCE_DATASETS:
        raise ValueError(f"--dataset {dataset!r}: reference runs are made on {', '.join(REFERENCE_DATASETS)} (the "
                         "datasets whose training split is offline)")
    train = data_dir / ("train.jsonl" if DATASETS[dataset].kind == "dialogue" else "train.txt")
    if not train.is_file():
        raise ValueError(f"{train} not found: preprocess full {dataset} first (`python -m harness.data.fetch --dataset "
                         f"{dataset} ...` then `python -m harness.data.preprocess --dataset {dataset} ...`, or "
                         "`snakemake --cores 2`)")
    if vectors is not None and not vectors.is_file():
        raise ValueError(f"{vectors} not found: a dialogue run needs word vectors (`python -m harness.data.word_vectors "
                         f"--train {train} --out {vectors}`, as the workflow's word_vectors rule)")


def run(model_name: str, seed: int, precision: str, budget_minutes: float, data_dir: Path, work: Path,
        into: Path, warm_start: Path | None = None, on_code_change: str = "refuse", evaluate: str = "always",
        dataset: str = "ptb", vectors: Path | None = None, max_epochs: int | None = None,
        note: str | None = None, max_train_hours: float | None = None) -> Path:
    """Train for the budget and commit the run's small JSON under `into`. `evaluate`: "always" scores the kept model
    on the test set (both protocols, IW-NLL) after every call; "final" only once the recipe has ended, so that a call
    stopped by its budget mid-recipe spends no time on an evaluation the next call supersedes (its folder then holds
    no metrics.json -- an earlier call's, which scored other weights, is removed -- and `evaluated: false`).
    `max_epochs`: end this run after that many epochs, short of the recipe's (harness.train.training's epoch cap: the
    last epoch validated, the checkpoint kept): a second seed matched to the first one's length. The cap ends the
    run, so `final` evaluates it; the board reads its stop ("epoch cap") as short of the recipe's end.
    `max_train_hours`: end this run before an epoch that would take its training time over all calls past that many
    hours (harness.train.training's hours cap): a row whose recipe costs more than a declared machine-hour budget
    (issue 35: about 8 h) is run to that budget, evaluated there under `final`, and read by the board as short of the
    recipe's end ("training-hours cap"). `note`: what
    this call's figures need said beside them (say, timings contended by a foreground job), kept with the call."""
    if evaluate not in EVALUATE_WHEN:
        raise ValueError(f"evaluate must be one of {EVALUATE_WHEN}, not {evaluate!r}")
    run_config = reference_run_config(model_name, seed, precision, dataset)
    dialogue = DATASETS[dataset].kind == "dialogue"
    work.mkdir(parents=True, exist_ok=True)
    if warm_start is not None:
        if (work / CHECKPOINT).exists():
            raise ValueError(f"{work / CHECKPOINT} exists: the run resumes from it exactly; drop --warm-start")
        warm_start_checkpoint(run_config, warm_start, work)
    # the paper-protocol test scores of a language model, ~6 s an epoch (the trainer validates); none for dialogue
    splits = {} if dialogue else {"test": LMDataset(data_dir / "test.txt", Vocab.load(data_dir / "vocab.txt"))}
    curve_path = work / CURVE

    trained: list[int] = []  # the epochs this call trains (after those of a checkpoint it resumes from)

    def record(entry: dict, model) -> None:
        trained.append(entry["epoch"])
        line = {"epoch": entry["epoch"], "step": entry["step"], "partial": entry.get("partial"),
                "train_seconds": entry["train_seconds"], "train_loss": entry["train_loss"],
                "valid_loss": entry["valid_loss"],
                **({"method_state": entry["method_state"]} if "method_state" in entry else {}),
                **{role: paper_protocol(model, split, run_config) for role, split in splits.items()}}
        with curve_path.open("a") as handle:  # resumed runs append; `render` keeps the last line per epoch
            handle.write(json.dumps(line) + "\n")
        if "test" in line:
            print(f"epoch {entry['epoch']}: paper-protocol test NLL {line['test']['NLL']:.2f} PPL "
                  f"{line['test']['PPL']:.2f} KL {line['test']['KL']:.2f} MI {line['test']['MI']:.2f}", file=sys.stderr)
        else:
            valid = "not validated" if entry["valid_loss"] is None else f"validation loss {entry['valid_loss']:.3f}"
            print(f"epoch {entry['epoch']}: train loss {entry['train_loss']:.3f}, {valid}", file=sys.stderr)

    summary = finished = finished_unevaluated(work, run_config)
    if finished is not None:  # its last call died in the evaluation: evaluate, never train over the finished run
        print(f"{work} holds {model_name} seed {seed} at its recipe's end ({finished['epochs_completed']} epochs, "
              f"{MODEL}, no checkpoint) without the results of the call that ended it: evaluating it, no training",
              file=sys.stderr)
        note = ("evaluation only: the call that ended the recipe left no results (killed during its evaluation?)"
                + (f"; {note}" if note else ""))
    else:  # the progress bar goes to the log (refreshed every 15 s off a terminal): an epoch can take hours (Lag-VAE)
        summary = train_run(run_config, data_dir, work, progress=True, time_budget_s=budget_minutes * 60,
                            after_epoch=record, on_code_change=on_code_change, vectors_path=vectors,
                            max_epochs=max_epochs, max_train_hours=max_train_hours)
    budget_stopped = (summary["stopped_early"] or {}).get("reason") == "time budget"
    evaluated = evaluate == "always" or not budget_stopped
    metrics = (evaluate_run(work / "model.pt", data_dir, work / "metrics.json", run_config, progress=False,
                            samples_path=work / "samples.jsonl" if dialogue else None, vectors_path=vectors)
               if evaluated else None)
    resumed_from = summary["resumed_from"] if finished is None else evaluation_resumes(finished)
    record = run_record(work, into, f"{cpu_slug()}/{dataset}/{model_name}/seed{seed}", resumed_from)
    dest = into / record["folder"]
    dest.mkdir(parents=True, exist_ok=True)
    replaces = replaced_runs(dest, summary["run_id"], resumed_from)  # before this run's files overwrite another's
    if not evaluated:
        (dest / "metrics.json").unlink(missing_ok=True)  # an earlier call's: it scored other weights
    epochs_before = trained[0] - 1 if trained else summary["epochs_completed"]
    threads = torch.get_num_threads()
    call = {"command": "python -m reproduction.cpu_reference run"
                       + (f" --dataset {dataset}" if dataset != "ptb" else "")
                       + f" --model {model_name} --seed {seed} --precision "
                       f"{precision} --budget-minutes {budget_minutes:g} --threads {threads}"
                       + (f" --warm-start {warm_start.name}" if warm_start is not None else "")
                       + (f" --on-code-change {on_code_change}" if on_code_change != "refuse" else "")
                       + (f" --evaluate {evaluate}" if evaluate != "always" else "")
                       + (f" --max-epochs {max_epochs}" if max_epochs is not None else "")
                       + (f" --max-train-hours {max_train_hours:g}" if max_train_hours is not None else ""),
            # the code this call trained with (train_run's, taken as it started), not the checkout's when it ends
            # (an evaluation-only call trained nothing: the code it evaluated with)
            "budget_minutes": budget_minutes, "created": now_iso(),
            "code_version": summary["code_version"] if finished is None else code_version(),
            **({"evaluation_only": True} if finished is not None else {}),
            "cpu": cpu_model(cpuinfo()), "precision": precision, "threads": threads,
            "epochs_from": epochs_before, "epochs_to": summary["epochs_completed"],
            "steps_from": resumed_from["step"] if resumed_from else 0, "steps_to": summary["steps"],
            **({"note": note} if note else {})}
    calls = earlier_calls(record, resumed_from)
    calls += unrecorded_training(calls, resumed_from) + [call]
    write_json_atomic(work / RECORD, {"folder": record["folder"], "run_id": summary["run_id"], "calls": calls})
    cpus = list(dict.fromkeys(c["cpu"] for c in calls if c.get("cpu")))
    thread_counts = list(dict.fromkeys(c["threads"] for c in calls if c.get("threads")))
    for name in (("metrics.json",) if evaluated else ()) + (TRAIN_LOG, CURVE):
        shutil.copyfile(work / name, dest / name)
    write_json_atomic(dest / PROVENANCE, {
        **call, "calls": calls, "budget_minutes": sum(c["budget_minutes"] or 0.0 for c in calls),
        "config_file": "config/paper.yaml", "dataset": dataset, "model": model_name, "seed": seed,
        "precision": precision, "word_vectors": vectors.name if vectors is not None else None,
        "run_id": summary["run_id"], "replaces": replaces,
        # the CPUs and thread counts its calls trained with, in the order they did
        "threads": thread_counts[0] if len(thread_counts) == 1 else " + ".join(map(str, thread_counts)),
        "cpu": " + ".join(cpus),
        "epochs_planned": run_config.train.epochs, "max_epochs": max_epochs, "max_train_hours": max_train_hours,
        "epochs_completed": summary["epochs_completed"],
        "stopped_early": summary["stopped_early"], "selected_epoch": summary["selected_epoch"],
        "warm_start": summary["warm_start"], "train_tokens_per_second": summary["train_tokens_per_second"],
        "evaluated": evaluated, "eval_seconds": metrics["timing"]["eval_seconds"] if evaluated else None})
    if not evaluated:
        print(f"{model_name}: {summary['epochs_completed']} epochs, stopped by the budget; evaluation deferred to the "
              f"call that ends the recipe (--evaluate final) -> {dest}", file=sys.stderr)
        return dest
    if dialogue:
        scores = metrics["metrics"]["uniform"]
        print(f"{model_name}: {summary['epochs_completed']} epochs; " + ", ".join(
            f"{name} {value:.3f}" for name, value in scores.items() if isinstance(value, float)) + f" -> {dest}",
              file=sys.stderr)
        return dest
    u, p = metrics["metrics"]["uniform"], metrics["metrics"]["paper"]
    print(f"{model_name}: {summary['epochs_completed']} epochs; uniform NLL {u['NLL']:.2f} PPL {u['PPL']:.2f} "
          f"KL {u['KL']:.2f} MI {u['MI']:.2f} | paper NLL {p['NLL']:.2f} PPL {p['PPL']:.2f} KL {p['KL']:.2f} "
          f"MI {p['MI']:.2f} -> {dest}", file=sys.stderr)
    return dest


def caption(runs: list[status.ReferenceRun], dataset: str = "ptb") -> str:
    """The table's note on its runs: per run its seed, epochs, the budget of every call, why it stopped (the board's
    stop reason: a time budget, an epoch cap, the recipe's own rule) and the kept epoch; the CPU, threads and precision
    once, or each value where the runs differ."""
    def each(key: str) -> str:
        return ", ".join(sorted({latex_escape(str(run.provenance[key])) for run in runs}))

    described = "; ".join(
        f"{latex_escape(run.model)} seed {run.seed}: {run.epochs} of {run.provenance['epochs_planned']} epochs"
        + (" (+ part of one)" if (run.provenance.get("stopped_early") or {}).get("partial_epoch") else "")
        + " over calls budgeted " + status.call_budgets(run.provenance.get("calls") or [run.provenance])
        + (f" (continued from epoch {run.provenance['warm_start']['epoch']} with the optimizer state restarted)"
           if run.provenance.get("warm_start") else "")
        + f", stopped by {latex_escape(run.stop_reason)}, kept epoch {run.provenance['selected_epoch']}"
        for run in runs)
    threads = each("threads")
    return (f"CPU reference runs ({each('cpu')}, {threads} thread{'' if threads == '1' else 's'}, "
            f"{', '.join(sorted({run.provenance['created'][:10] for run in runs}))}): config/paper.yaml's recipe on "
            f"full {DATASETS[dataset].paper_name or dataset}, compute in {each('precision')}: {described}.")


def paper_nll(paper: Path, model_name: str) -> float | None:
    """The paper's Table 2 PTB NLL of the model (tables.csv), if there."""
    import pandas as pd

    if not paper.is_file():
        return None
    run_config = reference_run_config(model_name, 1, "float32")
    table = pd.read_csv(paper)
    rows = table[(table.astype(str).apply(lambda column: column.str.strip()) == run_config.model.paper_name).any(axis=1)]
    for _, row in rows.iterrows():
        values = {str(k).lower(): v for k, v in row.items()}
        if str(values.get("dataset", "")).lower() == "ptb" and str(values.get("metric", "")).upper() == "NLL":
            return float(values["value"])
    return None


def draw_curve(curves: dict[tuple[str, int], list[dict]], paper: dict[str, float | None], path: Path) -> None:
    """Paper-protocol test NLL by epoch of each (model, seed), the paper's value of the model dashed (once)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.6))
    dashed = set()
    for (model, seed), points in sorted(curves.items()):
        line, = axis.plot([p["epoch"] for p in points], [p["test"]["NLL"] for p in points],
                          label=f"{model} seed {seed} (ours)")
        if paper.get(model) is not None and model not in dashed:
            dashed.add(model)
            axis.axhline(paper[model], color=line.get_color(), linestyle="--", label=f"{model}: paper {paper[model]}")
    axis.set_xlabel("epoch")
    axis.set_ylabel("test NLL, paper protocol")
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=150)
    plt.close(figure)


#: the paper table of each dataset's reference runs, as `render` writes it (table2.tex, table5.tex)
PAPER_TABLES = {"ptb": "2", "dailydialog": "5"}


def render(folder: Path, paper: Path) -> None:
    """Each dataset's table of the scored runs under the CPU folder `folder`, and the PTB runs' learning curves."""
    runs_by_dataset = {dataset: sorted(folder.glob(f"{dataset}/*/seed*/" + PROVENANCE)) for dataset in PAPER_TABLES}
    if not any(runs_by_dataset.values()):
        raise ValueError(f"no reference run under {folder} (run `python -m reproduction.cpu_reference run` first)")
    for dataset, runs in runs_by_dataset.items():
        provenances = [json.loads(path.read_text()) for path in runs]
        scored = [status.read_run(path.parent) for path in runs if (path.parent / "metrics.json").is_file()]
        table = PAPER_TABLES[dataset]
        if scored:  # a run still in training (`--evaluate final`) has only its learning curve
            arguments = ["--results", *[str(run.folder / "metrics.json") for run in scored], "--out-csv",
                         str(folder / f"table{table}.csv"), "--out-tex", str(folder / f"table{table}.tex"),
                         "--table", table, "--caption-extra", caption(scored, dataset)]
            if paper.is_file():
                arguments += ["--paper", str(paper)]
            if aggregate.main(arguments) != 0:
                raise ValueError(f"Table {table} could not be rendered from {folder}")
        if dataset == "ptb" and runs:
            curves = {(p["model"], p["seed"]): status.read_curve(path.parent / CURVE) for p, path in zip(provenances, runs)}
            draw_curve(curves, {model: paper_nll(paper, model) for model, _ in curves}, folder / "learning_curve.png")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run")
    run_parser.add_argument("--dataset", default="ptb", choices=REFERENCE_DATASETS)
    run_parser.add_argument("--model", default="twr-vae")
    run_parser.add_argument("--seed", type=int, default=1)
    run_parser.add_argument("--precision", default="bfloat16", choices=("float32", "bfloat16"))
    run_parser.add_argument("--budget-minutes", type=float, default=85.0)
    run_parser.add_argument("--data", type=Path, default=None, help="processed data (default data/processed/<dataset>)")
    run_parser.add_argument("--vectors", type=Path, default=None,
                            help="dialogue: word vectors of the embedding and the BOW metrics (default "
                                 "<data>/word2vec.kv)")
    run_parser.add_argument("--work", type=Path, default=None, help="checkpoint folder (default runs/cpu-reference/<model>/seed<N>)")
    run_parser.add_argument("--threads", type=int, default=2)
    run_parser.add_argument("--warm-start", type=Path, default=None, metavar="MODEL_PT",
                            help="continue a budget-stopped run whose checkpoint is gone from its model.pt")
    run_parser.add_argument("--evaluate", choices=EVALUATE_WHEN, default="always",
                            help="score the kept model on the test set after every call (always), or only after "
                                 "the call that ends the recipe (final: a budget stop mid-recipe commits its "
                                 "learning curve and train log, no metrics.json)")
    run_parser.add_argument("--max-epochs", type=int, default=None, metavar="N",
                            help="end the run after N epochs, short of the recipe's (a second seed matched to the "
                                 "first one's length; the last epoch is validated, the checkpoint kept)")
    run_parser.add_argument("--max-train-hours", type=float, default=None, metavar="H",
                            help="end the run before an epoch that would take its training time over all calls "
                                 "past H hours (a recipe costing more than a declared machine-hour budget; the "
                                 "last epoch is validated, the checkpoint kept, and `final` evaluates it)")
    run_parser.add_argument("--on-code-change", choices=ON_CODE_CHANGE, default="refuse",
                            help="when the checkpoint was written by other method code: refuse (default), restart "
                                 "or continue (recorded in train_log.json); as harness.train.training")
    run_parser.add_argument("--note", default=None, metavar="TEXT",
                            help="kept with this call in reference_run.json: what its figures need said beside them "
                                 "(e.g. 'timings contended: 1 thread beside a foreground job')")
    render_parser = sub.add_parser("render")
    render_parser.add_argument("--cpu", action="append", default=None, metavar="FOLDER",
                               help="a CPU folder under --into to render (repeatable; default: this machine's, "
                                    "e.g. cpu-amd-epyc); `--cpu all` renders every one")
    for sub_parser in (run_parser, render_parser):
        sub_parser.add_argument("--into", type=Path, default=REFERENCE)
        sub_parser.add_argument("--paper", type=Path, default=PAPER_VALUES)
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            set_threads(args.threads)
            data = args.data or REPO_ROOT / "data" / "processed" / args.dataset
            vectors = args.vectors or default_vectors(args.dataset, data)
            check_inputs(args.dataset, data, vectors)
            work = args.work or REPO_ROOT / "runs" / "cpu-reference" / (
                args.model if args.dataset == "ptb" else f"{args.dataset}-{args.model}") / f"seed{args.seed}"
            dest = run(args.model, args.seed, args.precision, args.budget_minutes, data, work, args.into,
                       args.warm_start, args.on_code_change, args.evaluate, args.dataset, vectors, args.max_epochs,
                       args.note, args.max_train_hours)
            render(dest.parents[2], args.paper)
            if args.into == REFERENCE:  # the committed campaign: its progress shows on the status board at once
                status.main(["--paper", str(args.paper)])
        else:
            folders = args.cpu or [cpu_slug()]
            if folders == ["all"]:
                folders = sorted(p.name for p in args.into.glob("cpu-*") if p.is_dir())
            for folder in folders:
                if not (args.into / folder).is_dir():
                    raise ValueError(f"{args.into / folder} is not a CPU folder of reference runs")
                render(args.into / folder, args.paper)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
