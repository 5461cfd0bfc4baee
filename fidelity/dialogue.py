"""Side by side with the original TWR-VAE dialogue code: config/paper.yaml's `twr-cvae-dailydialog`, one epoch on
the first dialogues of DailyDialog, scored as ruizheliUOA/TWR-VAE dialogue_dd/train_dailydial.py's `evaluate` does.

    python -m fidelity.dialogue run --seeds 1,2 --train-dialogues 1536 --test-dialogues 150 \
        --out results/fidelity/dialogue-harness.jsonl
    python -m fidelity.dialogue convert-original /tmp/dialogue-original.raw.jsonl \
        --out results/fidelity/dialogue-original.jsonl    # the patched original script's --record file
    python -m fidelity.dialogue report results/fidelity/dialogue-original.jsonl \
        results/fidelity/dialogue-harness.jsonl --out docs/fidelity

`run` preprocesses DailyDialog's released files (`--raw`, laid out as the fetch step leaves them:
``dailydialog/{train,validation,test}/dialogues_*.txt``) with harness.data.dialogue.preprocess_dialogue -- the
vocabulary from the whole training file, as the original builds it before the cap -- and caps the training and
test splits by examples to exactly the examples of their first `--train-dialogues` / `--test-dialogues` dialogues
(examples are stored dialogue by dialogue, so the cap is the number of examples whose ``dialogue`` index is below
the limit). It trains `twr-cvae-dailydialog` (the original's recipe: batch 96, Adam 1e-4, KL weight from 0.1 plus
0.1 per epoch, KL over the batch's padded context length, random embedding, reference initialisation) for
`--epochs` epochs on the CPU and, after every epoch, decodes 10 greedy responses per test context with z ~ p(z|c)
(at most 40 tokens) and scores BLEU-R/P/F1 under both protocols ("paper": with </s> as the original's
`indexes2sent`; "uniform": words only), intra/inter distinct-1/2 and the mean response length. BOW embedding
metrics are left out: the original side has no GloVe vectors either. One JSON line per (seed, epoch).
`report` writes the table `dialogue_table.md` from both sides' records.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from fidelity.lm import load_records
from harness.core.config import REPO_ROOT, ExperimentConfig, RunConfig
from harness.data.dialogue import preprocess_dialogue
from harness.data.dialogue_dataset import DialogueDataset
from harness.data.vocab import Vocab
from harness.evaluate.dialogue_evaluate import generate_responses, paper_protocol_bleu
from harness.core.io import code_version, set_threads
from harness.train.training import train_run
from metrics.dialogue import corpus_bleu_prf, corpus_distinct

MODEL = "twr-cvae-dailydialog"
DATASET = "dailydialog"


def examples_of_first_dialogues(path: Path, dialogues: int) -> int:
    """How many examples of a processed split (``<split>.jsonl``, stored dialogue by dialogue) belong to its first
    `dialogues` dialogues: the example cap that equals a dialogue cap."""
    count = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                if json.loads(line)["dialogue"] >= dialogues:
                    break
                count += 1
    return count


def fidelity_run(seed: int, epochs: int, train_examples: int, test_examples: int, valid_examples: int) -> RunConfig:
    """config/paper.yaml's `twr-cvae-dailydialog` for `epochs` epochs on the CPU, on the capped splits."""
    experiment = ExperimentConfig.from_file(REPO_ROOT / "config" / "paper.yaml")
    run = experiment.run_config(DATASET, MODEL, seed)
    return dataclasses.replace(
        run, device="cpu",
        data=dataclasses.replace(run.data, max_train_sentences=train_examples, max_test_sentences=test_examples,
                                 max_valid_sentences=valid_examples),
        train=dataclasses.replace(run.train, epochs=epochs, validate_every=1),
        evaluate=dataclasses.replace(run.evaluate, responses_per_context=10, max_response_length=40))


def score_responses(model, test: DialogueDataset, vocab: Vocab, run: RunConfig) -> dict:
    """The original's `evaluate` numbers for the test split (BOW left out), leaving the model and random state as
    they were. z ~ p(z|c) is drawn from a generator seeded with the run's seed, as harness.evaluate.dialogue_evaluate."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(run.seed)
        records = generate_responses(model, test, vocab, run, torch.device("cpu"), progress=False)
    model.train()
    hyps = [r["samples"] for r in records]
    refs = [r["reference"] for r in records]
    precision, recall, f1 = corpus_bleu_prf(hyps, refs)
    intra1, inter1 = corpus_distinct(hyps, 1)
    intra2, inter2 = corpus_distinct(hyps, 2)
    paper = paper_protocol_bleu(records)
    return {
        "bleu_paper": {"recall": paper["BLEU-R"], "precision": paper["BLEU-P"], "f1": paper["BLEU-F1"]},
        "bleu_uniform": {"recall": recall, "precision": precision, "f1": f1},
        "intra_dist1": intra1, "intra_dist2": intra2, "inter_dist1": inter1, "inter_dist2": inter2,
        "avg_len": sum(len(s) for h in hyps for s in h) / max(sum(len(h) for h in hyps), 1),
        "ended_share": sum(e for r in records for e in r["ended"]) / max(sum(len(r["ended"]) for r in records), 1),
        "contexts": len(records),
    }


def run_harness_side(seeds: list[int], epochs: int, raw: Path, train_dialogues: int, test_dialogues: int,
                     valid_examples: int, out: Path, side: str = "harness") -> list[dict]:
    records: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="textvae-fidelity-dialogue-") as scratch:
        data_dir = Path(scratch) / "processed"
        stats = preprocess_dialogue(DATASET, raw, data_dir)
        train_examples = examples_of_first_dialogues(data_dir / "train.jsonl", train_dialogues)
        test_examples = examples_of_first_dialogues(data_dir / "test.jsonl", test_dialogues)
        vocab = Vocab.load(data_dir / "vocab.txt")
        for seed in seeds:
            run = fidelity_run(seed, epochs, train_examples, test_examples, valid_examples)
            test = DialogueDataset(data_dir / "test.jsonl", vocab, max_examples=test_examples)

            def record(entry: dict, model) -> None:
                started = time.perf_counter()
                scores = score_responses(model, test, vocab, run)
                records.append({
                    "side": side, "seed": seed, "epoch": entry["epoch"],
                    "train": {"recon": entry["train_recon"], "kl": entry["train_kl"],
                              "recon_per_word": entry["train_recon"] * train_examples / train_words},
                    "test": scores,
                    "train_seconds": entry["train_seconds"], "eval_seconds": time.perf_counter() - started,
                    "data": {"train_dialogues": min(train_dialogues, stats["splits"]["train"]["dialogues"]),
                             "train_examples": train_examples,
                             "train_batches": math.ceil(train_examples / run.train.batch_size),
                             "test_dialogues": min(test_dialogues, stats["splits"]["test"]["dialogues"]),
                             "test_contexts": test_examples, "vocab_size": len(vocab),
                             "train_words_incl_eos": train_words},
                    "beta_end": model.kl_weight(entry["step"] - 1),
                })
                r = records[-1]
                print(f"{side} seed {seed} epoch {entry['epoch']}: train recon {r['train']['recon']:.2f} KL "
                      f"{r['train']['kl']:.3f} | test BLEU-R/P/F1 (paper) {scores['bleu_paper']['recall']:.4f} / "
                      f"{scores['bleu_paper']['precision']:.4f} / {scores['bleu_paper']['f1']:.4f} "
                      f"({entry['train_seconds']:.0f} s)", file=sys.stderr)

            train_set = DialogueDataset(data_dir / "train.jsonl", vocab, max_examples=train_examples)
            train_words = train_set.num_tokens
            del train_set
            with tempfile.TemporaryDirectory(prefix="textvae-fidelity-dialogue-run-") as run_dir:
                train_run(run, data_dir, Path(run_dir), progress=False, after_epoch=record)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps({**r, "code_version": code_version()}) + "\n" for r in records))
    return records


def convert_original(lines: list[dict], side: str = "original") -> list[dict]:
    """The JSON lines the patched original script writes (docs/fidelity.md lists the patches) -> this module's record
    format. Its BLEU is the paper protocol by construction (`indexes2sent` keeps </s>); it has no words-only BLEU."""
    out = []
    for r in lines:
        out.append({
            "side": side, "seed": r["seed"], "epoch": r["epoch"],
            "train": {"recon": r["train_recon"], "kl": r["train_kl"], "ppl_printed": r["train_ppl_printed"],
                      "recon_per_word": r["train_recon"] * r["train_examples"] / r["train_words_incl_eos"]},
            "test": {"bleu_paper": {"recall": r["recall_bleu"], "precision": r["prec_bleu"], "f1": r["f1"]},
                     **{k: r[k] for k in ("intra_dist1", "intra_dist2", "inter_dist1", "inter_dist2", "avg_len",
                                          "contexts")}},
            "train_seconds": r["train_seconds"], "eval_seconds": r["eval_seconds"],
            "data": {"train_dialogues": r["train_dialogues"], "train_examples": r["train_examples"],
                     "train_batches": r["train_batches"], "test_dialogues": r["test_dialogues"],
                     "test_contexts": r["contexts"], "vocab_size": r["vocab_size"],
                     "train_words_incl_eos": r["train_words_incl_eos"]},
            "beta_end": r["beta_end"],
        })
    return out


# ---------------------------------------------------------------------------------------------- report

COLUMNS = (  # (header, path in a record)
    ("train recon / example", ("train", "recon")),
    ("train KL / example", ("train", "kl")),
    ("train recon / word", ("train", "recon_per_word")),
    ("BLEU-R", ("test", "bleu_paper", "recall")),
    ("BLEU-P", ("test", "bleu_paper", "precision")),
    ("BLEU-F1", ("test", "bleu_paper", "f1")),
    ("BLEU-F1 words only", ("test", "bleu_uniform", "f1")),
    ("intra-dist1", ("test", "intra_dist1")),
    ("intra-dist2", ("test", "intra_dist2")),
    ("inter-dist1", ("test", "inter_dist1")),
    ("inter-dist2", ("test", "inter_dist2")),
    ("avg len", ("test", "avg_len")),
    ("train s/epoch", ("train_seconds",)),
)


def _get(record: dict, path: tuple[str, ...]):
    value = record
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def summary_table(records: list[dict]) -> str:
    """Markdown: per side and epoch, mean ± spread (over seeds), then one row per seed."""
    head = "| side | epoch | seed | " + " | ".join(h for h, _ in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (3 + len(COLUMNS))]

    def cell(values, digits):
        values = [v for v in values if v is not None]
        if not values:
            return "--"
        mean = statistics.fmean(values)
        return f"{mean:.{digits}f}" + (f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else "")

    def digits(header):
        return 4 if header.startswith(("BLEU", "intra", "inter")) else 3 if header.endswith("/ word") else 2

    for side in sorted({r["side"] for r in records}):
        for epoch in sorted({r["epoch"] for r in records}):
            group = sorted((r for r in records if r["side"] == side and r["epoch"] == epoch), key=lambda r: r["seed"])
            if not group:
                continue
            rows = [(", ".join(str(r["seed"]) for r in group), group)] if len(group) > 1 else []
            rows += [(str(r["seed"]), [r]) for r in group]
            for seeds, members in rows:
                label = f"**{seeds}**" if len(members) > 1 else seeds
                lines.append(f"| {side} | {epoch} | {label} | " + " | ".join(
                    cell([_get(r, path) for r in members], digits(h)) for h, path in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def data_table(records: list[dict]) -> str:
    """Markdown: what each side trained and was scored on (the first record of each side)."""
    keys = ("train_dialogues", "train_examples", "train_batches", "train_words_incl_eos", "test_dialogues",
            "test_contexts", "vocab_size")
    lines = ["| side | " + " | ".join(k.replace("_", " ") for k in keys) + " |", "|" + "---|" * (1 + len(keys))]
    for side in sorted({r["side"] for r in records}):
        first = next(r for r in records if r["side"] == side)
        lines.append(f"| {side} | " + " | ".join(str(first.get("data", {}).get(k, "--")) for k in keys) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train and score the harness side")
    run.add_argument("--seeds", default="1,2")
    run.add_argument("--epochs", type=int, default=1)
    run.add_argument("--raw", type=Path, default=REPO_ROOT / ".." / "shared" / "data",
                     help="folder holding dailydialog/{train,validation,test}/dialogues_*.txt (the data mirror)")
    run.add_argument("--train-dialogues", type=int, default=1536, help="train on the first N training dialogues")
    run.add_argument("--test-dialogues", type=int, default=150, help="score the first M test dialogues")
    run.add_argument("--valid-examples", type=int, default=96,
                     help="validation examples (the trainer's model selection only; nothing here reports them)")
    run.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "fidelity" / "dialogue-harness.jsonl")
    run.add_argument("--threads", type=int, default=1)
    run.add_argument("--side", default="harness", help="the records' side label (e.g. for a diagnostic variant)")
    convert = commands.add_parser("convert-original", help="the patched original script's JSON lines -> records")
    convert.add_argument("raw", type=Path)
    convert.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "fidelity" / "dialogue-original.jsonl")
    convert.add_argument("--side", default="original", help="the records' side label (e.g. for a diagnostic variant)")
    report = commands.add_parser("report", help="table from both sides' records")
    report.add_argument("records", nargs="+", type=Path)
    report.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "fidelity")
    args = parser.parse_args(argv)
    if args.command == "run":
        set_threads(args.threads)
        run_harness_side([int(s) for s in args.seeds.split(",")], args.epochs, args.raw, args.train_dialogues,
                         args.test_dialogues, args.valid_examples, args.out, args.side)
        return 0
    if args.command == "convert-original":
        records = convert_original(load_records([args.raw]), args.side)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("".join(json.dumps(r) + "\n" for r in records))
        return 0
    records = load_records(args.records)
    args.out.mkdir(parents=True, exist_ok=True)
    text = summary_table(records) + "\n" + data_table(records)
    (args.out / "dialogue_table.md").write_text(text)
    print(text, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
