"""Table 5 (dialogue response generation): our metrics beside the paper's, one block of rows per dataset.

Rendered from `results.summarise` of dialogue `metrics.json` files only. The caption names the word vectors the
BOW embedding metrics used (the paper: GloVe Twitter 200d) and every data reduction.
"""
from __future__ import annotations

import re

import pandas as pd

from harness.results import paper_dataset_name
from harness.significance import DIALOGUE_METRICS
from harness.tables import MISSING, NO_PAPER, format_value, latex_escape

PAPER_ROW_ORDER = ("SeqGAN", "CVAE", "WAE", "iVAE", "TWR-VAE")


def _rows(frame: pd.DataFrame, paper: pd.DataFrame, dataset: str) -> list[tuple[str | None, str]]:
    """(our model or None, row label): the paper's rows in its order (also those we did not run), then ours."""
    ours = frame[frame["dataset"] == dataset][["model", "paper_name"]].drop_duplicates()
    by_label = {(r.paper_name or r.model): r.model for r in ours.itertuples()}
    labels = [name for name in PAPER_ROW_ORDER
              if name in by_label or not paper[(paper["dataset"] == paper_dataset_name(dataset))
                                               & (paper["model"] == name)].empty]
    labels += sorted(label for label in by_label if label not in labels)
    return [(by_label.get(label), label) for label in labels]


def render_dialogue_table(summary: pd.DataFrame, paper: pd.DataFrame, word_vectors: list[str],
                          caption_extra: str = "") -> str:
    frame = summary[(summary["protocol"] == "uniform") & summary["metric"].isin(DIALOGUE_METRICS)].copy()
    if frame.empty:
        raise ValueError("no dialogue metrics (BLEU/BOW/dist) in the results: nothing to tabulate")
    paper = paper[paper["table"].astype(str) == "5"] if not paper.empty else paper
    have_paper = not paper.empty
    lookup = {(r.dataset, r.model, r.metric): float(r.value) for r in paper.itertuples()} if have_paper else {}
    cells = {(r.dataset, r.model, r.metric): r for r in frame.itertuples()}
    best = frame.groupby(["dataset", "metric"])["mean"].max().round(3).to_dict()
    columns = len(DIALOGUE_METRICS) * 2
    lines = [r"\begin{table*}[t]", r"\centering", r"\scriptsize", r"\setlength{\tabcolsep}{2pt}",
             r"\begin{tabular}{l" + "r" * columns + "}", r"\toprule",
             " & ".join([""] + [f"\\multicolumn{{2}}{{c}}{{{m}}}" for m in DIALOGUE_METRICS]) + r" \\",
             " ".join(f"\\cmidrule(lr){{{2 + 2 * i}-{3 + 2 * i}}}" for i in range(len(DIALOGUE_METRICS))),
             " & ".join(["Model"] + ["ours", "paper"] * len(DIALOGUE_METRICS)) + r" \\"]
    for dataset in sorted(frame["dataset"].unique()):
        lines += [r"\midrule", f"\\multicolumn{{{columns + 1}}}{{l}}{{\\textit{{{latex_escape(paper_dataset_name(dataset))}}}}} \\\\"]
        for model, label in _rows(frame, paper, dataset):
            out = [latex_escape(label) + ("" if model else " (not run)")]
            for metric in DIALOGUE_METRICS:
                cell = cells.get((dataset, model, metric)) if model else None
                if cell is None:
                    out.append(MISSING)
                else:
                    bold = round(cell.mean, 3) == best.get((dataset, metric))
                    out.append(format_value(cell.mean, cell.std, int(cell.n_seeds), bold, digits=3))
                value = lookup.get((paper_dataset_name(dataset), label, metric))
                out.append(NO_PAPER if not have_paper else (MISSING if value is None else f"{value:.3f}"))
            lines.append(" & ".join(out) + r" \\")
    notes = sorted({note for note in frame["data_note"].dropna() if note})
    caption = ["Dialogue response generation (Table 5 of Li et al. 2020): ours (mean $\\pm$ std over seeds when "
               "there are several; 10 greedy responses per context with $z \\sim p(z|c)$) beside the paper's value."]
    caption.append("BLEU uses NLTK's smoothing 7 as DialogWAE; its values depend on the NLTK version (the smoothing "
                   "was rewritten since) and exceed 1 for near-identical responses.")
    caption.append("BOW embedding metrics use " + latex_escape("; ".join(sorted(set(word_vectors))))
                   + " (the paper: GloVe Twitter 200d), so they are not comparable with the paper's column.")
    if notes:
        caption.append("Reduced data: " + latex_escape(" | ".join(notes)) + ".")
    if caption_extra:
        caption.append(caption_extra)
    key = re.sub(r"[^A-Za-z0-9]+", "-", "-".join(sorted(frame["experiment"].unique())))
    lines += [r"\bottomrule", r"\end{tabular}", f"\\caption{{{' '.join(caption)}}}", f"\\label{{tab:{key}-table5}}",
              r"\end{table*}"]
    return "\n".join(lines) + "\n"
