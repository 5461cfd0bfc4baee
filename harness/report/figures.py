"""Figures 2-3 and Tables 4/7 of Li et al. 2020 from `results/` only: interpolation ROUGE curves and examples.

    python -m harness.report.figures --results results/<exp>/<ds>/<model>/seed<k>/interpolation.json ... \
        --out-png results/<experiment>/figures/fig2_<ds>.png --out-pdf results/<experiment>/figures/fig2_<ds>.pdf \
        --out-examples results/<experiment>/tables/table4_<ds>.txt [--examples 3]

The figure has one panel per ROUGE type (1, 2, L); each model draws its F1 against s1 (solid) and against
s2 (dashed) over alpha, the mean over its seeds (shaded: min-max over seeds when there are several). The
title names the experiment, dataset, number of pairs, and any data reduction, so the figure says what it
was computed on.
"""
from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict
from pathlib import Path

from harness.core.io import atomic_write, read_jsonl
from harness.report.results import ResultError
from metrics.rouge import ROUGE_TYPES

ROUGE_LABELS = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L"}


def load_interpolations(paths: list[Path]) -> list[dict]:
    runs = []
    for path in paths:
        try:
            payload = json.loads(Path(path).read_text())
            payload["curves"], payload["settings"]["alphas"]  # noqa: B018 - the keys the figure needs
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ResultError(f"{path}: not a readable interpolation.json ({exc!r})") from None
        payload["path"] = str(path)
        runs.append(payload)
    if len({run["dataset"] for run in runs}) != 1:
        raise ResultError("one figure per dataset: got interpolation results of "
                          f"{sorted({run['dataset'] for run in runs})}")
    return runs


def label(run: dict) -> str:
    return run["paper_name"] or run["model"]


def by_model(runs: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for run in sorted(runs, key=lambda r: (r["model"], r["seed"])):
        grouped[run["model"]].append(run)
    return dict(grouped)


def describe(runs: list[dict]) -> str:
    """One line on what the curves were computed on (experiment, pairs, data reductions)."""
    first = runs[0]
    pairs = sorted({run["settings"]["pairs"] for run in runs})
    notes = sorted({run["data"]["note"] for run in runs if run["data"].get("reduced")})
    text = (f"{first['dataset']} test, experiment {first['experiment']}, {'/'.join(map(str, pairs))} pairs, "
            f"seeds {', '.join(str(s) for s in sorted({run['seed'] for run in runs}))}")
    return text + (f"; reduced data: {'; '.join(notes)}" if notes else "")


def plot_curves(runs: list[dict], out_png: Path, out_pdf: Path) -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(ROUGE_TYPES), figsize=(4.2 * len(ROUGE_TYPES), 3.6), sharey=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for colour, (model, seeds) in zip(colours * 4, by_model(runs).items()):
        alphas = seeds[0]["settings"]["alphas"]
        for axis, rouge in zip(axes, ROUGE_TYPES):
            for reference, style, name in (("source", "-", "s1"), ("target", "--", "s2")):
                values = [run["curves"][rouge][reference] for run in seeds]
                mean = [sum(column) / len(column) for column in zip(*values)]
                axis.plot(alphas, mean, style, color=colour, marker="o", markersize=3,
                          label=f"{label(seeds[0])} vs {name}")
                if len(values) > 1:
                    axis.fill_between(alphas, [min(c) for c in zip(*values)], [max(c) for c in zip(*values)],
                                      color=colour, alpha=0.15, linewidth=0)
    for axis, rouge in zip(axes, ROUGE_TYPES):
        axis.set_title(ROUGE_LABELS[rouge])
        axis.set_xlabel(r"$\alpha$  ($z = (1-\alpha) z_1 + \alpha z_2$)")
        axis.set_ylim(0, 1.02)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("F1 against s1 / s2")
    handles, labels = axes[0].get_legend_handles_labels()
    columns = 4
    rows = -(-len(labels) // columns)
    figure.set_size_inches(4.2 * len(ROUGE_TYPES), 3.6 + 0.22 * rows)
    figure.legend(handles, labels, loc="lower center", ncol=columns, fontsize=7, handlelength=3.5, frameon=False)
    figure.suptitle(f"Latent interpolation: {describe(runs)}", fontsize=9)
    figure.tight_layout(rect=(0, 0.045 * rows + 0.02, 1, 1))
    for path, kind in ((out_png, "png"), (out_pdf, "pdf")):
        atomic_write(path, lambda tmp, kind=kind: figure.savefig(tmp, format=kind, dpi=150))
    plt.close(figure)


def render_examples(runs: list[dict], examples: int) -> str:
    """Table 4/7-style text: the first `examples` pairs, each model's decoded path (first seed of each model)."""
    firsts = [seeds[0] for seeds in by_model(runs).values()]
    samples = {run["model"]: list(read_jsonl(Path(run["path"]).with_suffix(".jsonl"))) for run in firsts}
    lines = [f"=== Latent interpolation examples: {describe(runs)}; the first {examples} pairs (not selected), "
             "greedy decoding ==="]
    reference = samples[firsts[0]["model"]]
    for index in range(min(examples, len(reference))):
        lines += ["", f"--- pair {index + 1}", f"s1: {reference[index]['source']}", f"s2: {reference[index]['target']}"]
        for run in firsts:
            record = samples[run["model"]][index]
            if (record["source"], record["target"]) != (reference[index]["source"], reference[index]["target"]):
                raise ResultError(f"{run['path']}: pair {index + 1} differs from {firsts[0]['path']} "
                                  "(runs interpolated different pairs; use the same seed and test set)")
            lines.append(f"{label(run)}:")
            for alpha, sentence in zip(run["settings"]["alphas"], record["sentences"]):
                lines.append(f"  {alpha:.1f}  {sentence}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", nargs="+", required=True, type=Path, help="interpolation.json files")
    parser.add_argument("--out-png", required=True, type=Path)
    parser.add_argument("--out-pdf", required=True, type=Path)
    parser.add_argument("--out-examples", required=True, type=Path)
    parser.add_argument("--examples", type=int, default=3)
    args = parser.parse_args(argv)
    runs = load_interpolations(args.results)
    text = render_examples(runs, args.examples)
    plot_curves(runs, args.out_png, args.out_pdf)
    atomic_write(args.out_examples, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
