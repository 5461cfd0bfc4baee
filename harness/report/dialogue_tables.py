"""Table 5 (dialogue response generation): our metrics beside the paper's, one block of rows per dataset.

Rendered from `results.summarise` of dialogue `metrics.json` files only. The caption names the word vectors the
BOW embedding metrics used (the paper: GloVe Twitter 200d) and every data reduction.
"""
from __future__ import annotations

import math
import re

import pandas as pd

from harness.report.results import paper_dataset_name
from metrics.catalogue import DIALOGUE_METRICS
from harness.report.tables import MIN_SEEDS_FOR_BOLD, MISSING, NO_PAPER, clear_best, latex_escape

PAPER_ROW_ORDER = ("SeqGAN", "CVAE", "WAE", "iVAE", "TWR-VAE")


def _rows(frame: pd.DataFrame, paper: pd.DataFrame, dataset: str) -> list[tuple[str | None, str]]:
    """(our model or None, row label): the paper's rows in its order (also those we did not run), then ours."""
    ours = frame[frame["dataset"] == dataset][["model", "paper_name", "label"]].drop_duplicates()
    by_label = {(r.paper_name or r.label or r.model): r.model for r in ours.itertuples()}
    labels = [name for name in PAPER_ROW_ORDER
              if name in by_label or not paper[(paper["dataset"] == paper_dataset_name(dataset))
                                               & (paper["model"] == name)].empty]
    labels += sorted(label for label in by_label if label not in labels)
    return [(by_label.get(label), label) for label in labels]


#: our protocols, one row each under a model (label, protocol); the paper protocol (dagger) has BLEU only (BLEU with
#: </s> as the original code; harness.evaluate.dialogue_evaluate): its other cells would repeat the uniform ones, left empty
OUR_ROWS = (("ours", "uniform"), ("ours$^\\dagger$", "paper"))
PAPER_PROTOCOL_METRICS = ("BLEU-R", "BLEU-P", "BLEU-F1")


def _compact(mean: float, std: float, n_seeds: int, bold: bool) -> str:
    """`0.310`, or (n_seeds > 1) `0.310` above a tiny `+-.012` in one cell, so that ten metrics fit a page."""
    text = f"{mean + 0.0:.3f}"
    text = f"\\textbf{{{text}}}" if bold else text
    if n_seeds > 1 and not math.isnan(std):
        spread = f"{std + 0.0:.3f}".removeprefix("0")
        text = f"\\begin{{tabular}}[c]{{@{{}}r@{{}}}}{text}\\\\[-2pt]{{\\tiny$\\pm${spread}}}\\end{{tabular}}"
    return text


def _header() -> list[str]:
    """Two header rows as the paper's Table 5: BLEU (R, P, F1), BOW (A, E, G), Intra-dist (1, 2), Inter-dist (1, 2)."""
    groups: dict[str, list[str]] = {}
    for metric in DIALOGUE_METRICS:  # "BLEU-R" -> ("BLEU", "R"), "Intra-dist1" -> ("Intra-dist", "1")
        group, short = (metric.split("-", 1) if metric[:4] in ("BLEU", "BOW-") else (metric[:-1], metric[-1]))
        groups.setdefault(group, []).append(short)
    top, rules, start = ["", ""], [], 3
    for group, shorts in groups.items():
        top.append(f"\\multicolumn{{{len(shorts)}}}{{c}}{{{group}}}")
        rules.append(f"\\cmidrule(lr){{{start}-{start + len(shorts) - 1}}}")
        start += len(shorts)
    bottom = ["Model", ""] + [short for shorts in groups.values() for short in shorts]
    return [" & ".join(top) + r" \\", " ".join(rules), " & ".join(bottom) + r" \\"]


def render_dialogue_table(summary: pd.DataFrame, paper: pd.DataFrame, word_vectors: list[str],
                          caption_extra: str = "") -> str:
    """One block per dataset; per model up to three rows: ours (uniform protocol), ours under the original code's
    BLEU protocol (BLEU columns only), and the paper's values; a metric per column, as the paper's Table 5."""
    frame = summary[summary["protocol"].isin(("uniform", "paper")) & summary["metric"].isin(DIALOGUE_METRICS)].copy()
    if frame[frame["protocol"] == "uniform"].empty:
        raise ValueError("no dialogue metrics (BLEU/BOW/dist) in the results: nothing to tabulate")
    paper = paper[paper["table"].astype(str) == "5"] if not paper.empty else paper
    have_paper = not paper.empty
    lookup = {(r.dataset, r.model, r.metric): float(r.value) for r in paper.itertuples()} if have_paper else {}
    cells = {(r.dataset, r.model, r.metric, r.protocol): r for r in frame.itertuples()}
    best = clear_best(frame)
    columns = len(DIALOGUE_METRICS) + 2
    lines = [r"\begin{table*}[t]", r"\centering", r"\scriptsize", r"\setlength{\tabcolsep}{2.5pt}",
             r"\begin{tabular}{ll" + "r" * len(DIALOGUE_METRICS) + "}", r"\toprule", *_header()]
    for dataset in sorted(frame["dataset"].unique()):
        lines += [r"\midrule", f"\\multicolumn{{{columns}}}{{l}}{{\\textit{{{latex_escape(paper_dataset_name(dataset))}}}}} \\\\"]
        for model, label in _rows(frame, paper, dataset):
            name = latex_escape(label) + ("" if model else "$^\\ast$")  # not run by this suite
            for row_label, protocol in (OUR_ROWS if model else ()):
                if protocol != "uniform" and not any((dataset, model, m, protocol) in cells for m in DIALOGUE_METRICS):
                    continue  # a run evaluated before the paper protocol existed
                out = [name, row_label]
                name = ""
                for metric in DIALOGUE_METRICS:
                    cell = cells.get((dataset, model, metric, protocol))
                    if protocol != "uniform" and metric not in PAPER_PROTOCOL_METRICS:
                        out.append("")
                    elif cell is None:
                        out.append(MISSING)
                    else:
                        bold = best.get((dataset, metric, protocol)) == (cell.experiment, model)
                        out.append(_compact(cell.mean, cell.std, int(cell.n_seeds), bold))
                lines.append(" & ".join(out) + r" \\")
            if have_paper or not model:
                values = [lookup.get((paper_dataset_name(dataset), label, metric)) for metric in DIALOGUE_METRICS]
                cells_paper = [NO_PAPER if not have_paper else (MISSING if v is None else f"{v:.3f}") for v in values]
                lines.append(" & ".join([name, "paper"] + cells_paper) + r" \\")
    notes = sorted({note for note in frame["data_note"].dropna() if note})
    counts = sorted({int(v) for v in summary.loc[summary["metric"] == "responses_per_context", "mean"]})
    responses = "/".join(str(c) for c in counts) if counts else "10"
    caption = ["Dialogue response generation (Table 5 of Li et al. 2020): ours (mean $\\pm$ std over seeds when "
               f"there are several; {responses} greedy responses per context, each with its own $z \\sim p(z|c)$ in "
               "the latent-variable models) above the paper's value. Bold: the best of our values per metric, only "
               f"where it and the runner-up each ran at least {MIN_SEEDS_FOR_BOLD} seeds and their means differ by "
               "more than the larger of their two stds (one seed cannot tell two methods apart)."]
    if "SeqGAN" in set(frame["paper_name"].dropna()):
        caption.append("SeqGAN has no latent variable: its responses to a context are one greedy response repeated "
                       "(so its BLEU precision equals its recall, as in the paper's row).")
    caption.append("BLEU uses NLTK's smoothing 7 as DialogWAE; its values depend on the NLTK version (the smoothing "
                   "was rewritten since) and exceed 1 for near-identical responses. Ours: BLEU on the words alone; "
                   "ours$^\\dagger$: the same responses' BLEU as the TWR-VAE dialogue code computes it, with the end "
                   "token \\texttt{</s>} kept on the reference and on every response that produced it, which raises the "
                   "scores of short responses (the other metrics count words in both codes).")
    if any(model is None for dataset in frame["dataset"].unique() for model, _ in _rows(frame, paper, dataset)):
        caption.append("$^\\ast$: not run by this suite (the paper's values only).")
    caption.append("BOW embedding metrics use " + latex_escape("; ".join(sorted(set(word_vectors))))
                   + " (the paper: GloVe Twitter 200d), so they are not comparable with the paper's rows.")
    if notes:
        caption.append("Reduced data: " + latex_escape(" | ".join(notes)) + ".")
    if caption_extra:
        caption.append(caption_extra)
    key = re.sub(r"[^A-Za-z0-9]+", "-", "-".join(sorted(frame["experiment"].unique())))
    lines += [r"\bottomrule", r"\end{tabular}", f"\\caption{{{' '.join(caption)}}}", f"\\label{{tab:{key}-table5}}",
              r"\end{table*}"]
    return "\n".join(lines) + "\n"
