"""Side by side with the original TWR-VAE code: the harness's per-epoch learning curve under the paper protocol.

    python -m fidelity.lm run --seeds 1,2 --epochs 2 --out results/fidelity/harness.jsonl
    python -m fidelity.lm report results/fidelity/harness.jsonl results/fidelity/original.jsonl \
        --out docs/fidelity

`run` trains config/paper.yaml's TWR-VAE (the original code's recipe: Adam 1e-4, batch 64, ascending length-sorted
batches, KL over the padded length) on full PTB for a few epochs and, after every epoch, scores the validation and
test sets as the original code's `reconstruction` does (harness.evaluate.evaluation's paper protocol: recon at the posterior
mean + timestep-averaged KL, PPL over words incl. <s>, batch-wise MI). One JSON line per (seed, epoch), the same
fields as the original side's log (docs/fidelity.md says how that one was made, outside the project).
`report` draws both sides' curves (`fidelity_curves.png`) and writes the table `fidelity_table.md`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from harness.core.config import REPO_ROOT, ExperimentConfig, RunConfig
from harness.data.lm_dataset import LMDataset
from harness.data.vocab import Vocab
from harness.evaluate.lm_evaluate import evaluate_model
from harness.data.preprocess import preprocess_lm
from harness.data.tokenization import TOKENIZATIONS
from harness.core.io import code_version, set_threads
from harness.train.training import train_run

METRICS = ("nll", "ppl", "kl", "mi")


def twr_tokenised_ptb(raw_dir: Path, out: Path) -> Path:
    """PTB's released files preprocessed with `tokenization: twr-vae-code` (as the original code reads them)."""
    raw = out / "raw" / "ptb"
    raw.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        shutil.copyfile(raw_dir / f"ptb.{split}.txt", raw / f"ptb.{split}.txt")
    preprocess_lm("ptb", out / "raw", out / "processed", tokenization="twr-vae-code")
    return out / "processed"


def fidelity_run(seed: int, epochs: int, tokenization: str) -> RunConfig:
    """config/paper.yaml's TWR-VAE on PTB for `epochs` epochs on the CPU; the test scoring (K = 1) is only used for its
    paper-protocol half, which does not sample."""
    experiment = ExperimentConfig.from_file(REPO_ROOT / "config" / "paper.yaml")
    run = experiment.run_config("ptb", "twr-vae", seed)
    return dataclasses.replace(
        run, device="cpu", data=dataclasses.replace(run.data, tokenization=tokenization),
        train=dataclasses.replace(run.train, epochs=epochs, validate_every=1),
        evaluate=dataclasses.replace(run.evaluate, iw_samples=1, iw_chunk=1))


def paper_protocol(model, dataset: LMDataset, run: RunConfig) -> dict:
    """The original's `reconstruction` numbers for `dataset`, leaving the model and random state as they were."""
    with torch.random.fork_rng(devices=[]):
        result = evaluate_model(model, dataset, run, torch.device("cpu"), progress=False)["paper"]
    model.train()
    return {"recon": result["recon"], "kl": result["KL"], "nll": result["NLL"], "ppl": result["PPL"],
            "mi": result["MI"]}


def run_harness_side(seeds: list[int], epochs: int, data_dir: Path, out: Path, tokenization: str) -> None:
    vocab = Vocab.load(data_dir / "vocab.txt")
    splits = {role: LMDataset(data_dir / f"{role}.txt", vocab) for role in ("valid", "test")}
    records = []
    for seed in seeds:
        run = fidelity_run(seed, epochs, tokenization)
        side = "harness" if tokenization == "released" else f"harness, {tokenization} tokens"

        def record(entry: dict, model) -> None:
            records.append({"side": side, "seed": seed, "epoch": entry["epoch"],
                            "train_seconds": entry["train_seconds"],
                            "train": {"recon": entry["train_recon"], "kl": entry["train_kl"],
                                      "nll": entry["train_loss"]},
                            **{role: paper_protocol(model, split, run) for role, split in splits.items()}})
            test = records[-1]["test"]
            print(f"{side} seed {seed} epoch {entry['epoch']}: test NLL {test['nll']:.2f} PPL {test['ppl']:.2f} "
                  f"KL {test['kl']:.2f} MI {test['mi']:.2f} ({entry['train_seconds']:.0f} s)", file=sys.stderr)

        with tempfile.TemporaryDirectory(prefix="textvae-fidelity-") as scratch:
            train_run(run, data_dir, Path(scratch), progress=False, after_epoch=record)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps({**r, "code_version": code_version()}) + "\n" for r in records))


def load_records(paths: list[Path]) -> list[dict]:
    return [json.loads(line) for path in paths for line in path.read_text().splitlines() if line.strip()]


def summary_table(records: list[dict]) -> str:
    """Markdown: per side and epoch, mean ± spread (over seeds) of the test metrics and the epoch's seconds."""
    sides = sorted({r["side"] for r in records})
    epochs = sorted({r["epoch"] for r in records})
    lines = ["| side | epoch | seeds | test NLL | test PPL | test KL | test MI | train s/epoch |",
             "|---|---|---|---|---|---|---|---|"]
    for side in sides:
        for epoch in epochs:
            group = [r for r in records if r["side"] == side and r["epoch"] == epoch]
            if not group:
                continue

            def cell(values):
                mean = statistics.fmean(values)
                return f"{mean:.2f}" + (f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else "")
            lines.append(f"| {side} | {epoch} | {', '.join(str(r['seed']) for r in group)} | "
                         + " | ".join(cell([r["test"][m] for r in group]) for m in METRICS)
                         + f" | {cell([r['train_seconds'] for r in group])} |")
    return "\n".join(lines) + "\n"


def draw_curves(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.2))
    for axis, metric in zip(axes, METRICS):
        for side, style in zip(sorted({r["side"] for r in records}), ("o-", "s--", "^:", "d-.")):
            for seed in sorted({r["seed"] for r in records if r["side"] == side}):
                points = sorted((r["epoch"], r["test"][metric]) for r in records
                                if r["side"] == side and r["seed"] == seed)
                axis.plot(*zip(*points), style, label=f"{side}, seed {seed}", alpha=0.8)
        axis.set_title(f"test {metric.upper()} (paper protocol)")
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train and score the harness side")
    run.add_argument("--seeds", default="1,2")
    run.add_argument("--epochs", type=int, default=2)
    run.add_argument("--data", type=Path, default=REPO_ROOT / "data" / "processed" / "ptb")
    run.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "fidelity" / "harness.jsonl")
    run.add_argument("--threads", type=int, default=1)
    run.add_argument("--tokenization", choices=TOKENIZATIONS, default="released",
                     help="twr-vae-code: PTB read as the original code reads it (preprocessed from --raw)")
    run.add_argument("--raw", type=Path, default=REPO_ROOT / ".." / "shared" / "data" / "ptb",
                     help="PTB's released files (ptb.{train,valid,test}.txt), for --tokenization twr-vae-code")
    report = commands.add_parser("report", help="table and figure from both sides' records")
    report.add_argument("records", nargs="+", type=Path)
    report.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "fidelity")
    args = parser.parse_args(argv)
    if args.command == "run":
        set_threads(args.threads)
        seeds = [int(s) for s in args.seeds.split(",")]
        if args.tokenization == "released":
            run_harness_side(seeds, args.epochs, args.data, args.out, args.tokenization)
            return 0
        with tempfile.TemporaryDirectory(prefix="textvae-fidelity-data-") as scratch:
            run_harness_side(seeds, args.epochs, twr_tokenised_ptb(args.raw, Path(scratch)), args.out,
                             args.tokenization)
        return 0
    records = load_records(args.records)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fidelity_table.md").write_text(summary_table(records))
    draw_curves(records, args.out / "fidelity_curves.png")
    print(summary_table(records), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
