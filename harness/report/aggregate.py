"""CLI: metrics.json files -> tidy CSV + LaTeX table with the paper's values beside ours.

    python -m harness.report.aggregate --results results/*/*/*/seed*/metrics.json \
        --paper ../shared/paper/tables.csv --out-csv results/<experiment>/tables/results.csv \
        --out-tex results/<experiment>/tables/table2.tex --table 2 [--caption-extra TEXT]

The caption says how the runs were trained, from the run configs in the metrics.json files (harness.report.captions).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from harness.report.captions import training_caption
from harness.report.results import ResultError, collect_results, load_paper_values, summarise
from harness.report.significance import compare_to_best_baseline
from harness.core.io import write_text_atomic
from harness.report.tables import latex_escape, write_tidy_csv
from harness.tasks import TASKS


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of the aggregate CLI."""
    parser = argparse.ArgumentParser(prog="python -m harness.report.aggregate", description=__doc__.splitlines()[0])
    parser.add_argument("--results", nargs="+", type=Path, required=True, help="metrics.json files")
    parser.add_argument("--paper", type=Path, default=None, help="paper values CSV (table,dataset,model,metric,value)")
    parser.add_argument("--out-csv", type=Path, required=True, help="tidy CSV of every reported number")
    parser.add_argument("--out-tex", type=Path, required=True, help="LaTeX table")
    parser.add_argument("--table", default="2", help="paper table to compare with (default: 2)")
    parser.add_argument("--out-significance", type=Path, default=None,
                        help="CSV of Welch t-tests of the reference against the best baseline per metric")
    parser.add_argument("--reference", default="TWR-VAE",
                        help="the significance reference: a row label or model key (default: %(default)s)")
    parser.add_argument("--caption-extra", default="", help="text appended to the caption (LaTeX), e.g. provenance")
    return parser


def _task_of_records(records: list[dict]) -> str:
    """The one task of a table's results (metrics.json `task`; files written before it existed are language models)."""
    tasks = {record.get("task", "lm") for record in records}
    if len(tasks) != 1:
        raise ValueError(f"one table mixes tasks {sorted(tasks)}: pass the results of one task")
    return tasks.pop()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (1 on a malformed result file)."""
    args = build_parser().parse_args(argv)
    if args.paper is not None and not args.paper.is_file():
        print(f"warning: paper values file {args.paper} not found; rendering without paper values (n/a)",
              file=sys.stderr)
    try:
        tidy = collect_results(args.results)
        paper = load_paper_values(args.paper)
        records = [json.loads(Path(path).read_text()) for path in args.results]
        caption = " ".join(part for part in (latex_escape(training_caption(records, args.table)), args.caption_extra)
                           if part)
        if args.out_significance is not None:
            caption += (f" Significance of {latex_escape(args.reference)} against the best baseline (Welch t-test over "
                        f"seeds, uniform protocol; difference of means with its 95\\% confidence interval): "
                        f"{latex_escape(args.out_significance.name)}.")
        task = TASKS[_task_of_records(records)]
        tex = task.render_table(summarise(tidy), paper, records, str(args.table), caption)
    except (ResultError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_tidy_csv(tidy, args.out_csv)
    if args.out_significance is not None:
        write_tidy_csv(compare_to_best_baseline(tidy, args.reference), args.out_significance)
    write_text_atomic(args.out_tex, tex)
    print(f"wrote {args.out_csv} ({len(tidy)} rows) and {args.out_tex}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
