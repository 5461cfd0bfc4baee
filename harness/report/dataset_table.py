"""Table 1: the datasets an experiment uses, from their processed `stats.json` and the experiment's data options.

    python -m harness.report.dataset_table --stats ptb=data/processed/ptb/stats.json [...] --data-options '<json>' \
        --experiment smoke --out-tex results/smoke/tables/table1.tex --out-csv results/smoke/tables/table1.csv

Per dataset and split: the sentences (dialogue: examples) the runs use and the released split's count, where it
comes from, the vocabulary, and the mean / max length in words of the processed split. A split capped by the config
or built from another released file is flagged in the table. The paper's own Table 1 is not in
`../shared/paper/tables.csv`, so its values are not shown beside ours (the caption says so).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from harness.data.registry import DATASETS
from harness.data.sources import describe_source
from harness.core.io import write_text_atomic
from harness.report.tables import latex_escape, write_tidy_csv

SPLITS = ("train", "valid", "test")


def dataset_rows(stats: dict[str, dict], data_options: dict[str, dict]) -> pd.DataFrame:
    """One row per (dataset, split) in the paper's dataset order."""
    rows = []
    for dataset in sorted(stats, key=list(DATASETS).index):
        info, options = stats[dataset], data_options.get(dataset, {})
        sources = options.get("source_splits") or {}
        for split in SPLITS:
            split_info = info["splits"][split]
            released = split_info.get("sentences", split_info.get("examples"))
            cap = options.get(f"max_{split}_sentences")
            used = min(released, cap) if cap else released
            flags = []
            if sources.get(split, split) != split:
                flags.append(f"built from {describe_source(sources[split])}")
            if used < released:
                flags.append(f"capped at {used} of {released}")
            rows.append({"dataset": DATASETS[dataset].paper_name or dataset, "split": split,
                         "unit": "examples" if "examples" in split_info else "sentences", "used": used,
                         "released": released, "vocab": info["vocab_size"],
                         "mean_length": split_info.get("mean_length"), "max_length": split_info.get("max_length"),
                         "flag": "; ".join(flags)})
    return pd.DataFrame(rows)


def render_dataset_table(rows: pd.DataFrame, experiment: str) -> str:
    lines = [r"\begin{table}[t]", r"\centering", r"\footnotesize", r"\begin{tabular}{llrrrr>{\raggedright\arraybackslash}p{3.2cm}}",
             r"\toprule", r"dataset & split & used & released & vocab & length & note \\", r"\midrule"]
    for dataset, group in rows.groupby("dataset", sort=False):
        for index, (_, row) in enumerate(group.iterrows()):
            length = ("--" if row["mean_length"] is None or pd.isna(row["mean_length"])
                      else f"{row['mean_length']:.1f} / {int(row['max_length'])}")
            lines.append(" & ".join([latex_escape(dataset) if index == 0 else "", row["split"], f"{row['used']:,}",
                                     f"{row['released']:,}", f"{row['vocab']:,}" if index == 0 else "", length,
                                     latex_escape(row["flag"]) or "--"]) + r" \\")
        lines.append(r"\midrule")
    lines[-1] = r"\bottomrule"
    units = sorted(set(rows["unit"]))
    caption = (f"Datasets of experiment {latex_escape(experiment)} (cf.\\ the paper's Table 1): {' / '.join(units)} per "
               "split that the runs use and that the released split has, vocabulary size (specials included) and "
               "length in words (mean / max) of the processed split. Notes flag splits capped by the config or built from another "
               "released file. The paper's Table 1 values are not among its numbers in the shared paper values file, so "
               "none are shown beside ours.")
    lines += [r"\end{tabular}", rf"\caption{{{caption}}}", r"\label{tab:datasets}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _stats_argument(text: str) -> tuple[str, Path]:
    dataset, _, path = text.partition("=")
    if not path or dataset not in DATASETS:
        raise argparse.ArgumentTypeError(f"expected DATASET=PATH with DATASET one of {list(DATASETS)}, got {text!r}")
    return dataset, Path(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stats", nargs="+", type=_stats_argument, required=True, metavar="DATASET=PATH")
    parser.add_argument("--data-options", default="{}", help="JSON: the config's data_options")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--out-tex", type=Path, required=True)
    parser.add_argument("--out-csv", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        stats = {dataset: json.loads(path.read_text()) for dataset, path in args.stats}
        rows = dataset_rows(stats, json.loads(args.data_options))
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_tidy_csv(rows, args.out_csv)
    write_text_atomic(args.out_tex, render_dataset_table(rows, args.experiment))
    print(f"wrote {args.out_tex} ({len(rows)} rows)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
