"""LaTeX (booktabs) tables and CSV output from `harness.report.results.summarise` frames.

`render_lm_table` lays out the paper's language-modelling table (Table 2; also usable for Table 3): one row per
model, per dataset the metrics NLL, PPL, MI, KL, and per metric three columns: our number under the uniform
protocol (importance-weighted NLL), our number under the original code's protocol, and the paper's number.
No number is ever invented: a missing value prints as "--" (or "n/a" when no paper file was given).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from harness.core.io import write_text_atomic
from metrics.catalogue import LM_TABLE_METRICS, better
from harness.report.results import NOTE_SEP, PAPER_DATASET_NAMES, paper_dataset_name

LM_METRICS = LM_TABLE_METRICS  # KL is reported, never bolded (metrics.catalogue)
MISSING = "--"
NO_PAPER = "n/a"

_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters (%, _, &, #, $, {, }, ~, ^, backslash) in plain text."""
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in str(text))


def format_value(mean: float, std: float, n_seeds: int, bold: bool = False, digits: int = 1) -> str:
    """`12.3` or `12.3 $\\pm$ 0.4` (when n_seeds > 1), optionally in bold, with `digits` decimals."""
    text = f"{mean + 0.0:.{digits}f}"
    if n_seeds > 1 and std is not None and not math.isnan(std):
        text += f" $\\pm$ {std + 0.0:.{digits}f}"
    return f"\\textbf{{{text}}}" if bold else text


def _ordered_datasets(keys: list[str]) -> list[str]:
    order = list(PAPER_DATASET_NAMES)
    return sorted(set(keys), key=lambda k: (order.index(k) if k in order else len(order), k))


def _ordered_rows(lm: pd.DataFrame, paper: pd.DataFrame, table: str) -> list[tuple[str, str, str | None]]:
    """(experiment, model, paper_name, row name) per table row, in the paper's row order, unknown models after; the
    row name is the paper's name, else the config's `label`, else the model key."""
    runs = lm[["experiment", "model", "paper_name", "label"]].drop_duplicates()
    paper_order = list(dict.fromkeys(paper.loc[paper["table"] == table, "model"])) if not paper.empty else []

    def key(row: tuple[str, str, str | None, str]) -> tuple[int, str, str]:
        exp, model, name, _ = row
        rank = paper_order.index(name) if name in paper_order else len(paper_order)
        return rank, model, exp

    rows = [(r.experiment, r.model, r.paper_name if isinstance(r.paper_name, str) else None,
             next(name for name in (r.paper_name, r.label, r.model) if isinstance(name, str) and name))
            for r in runs.itertuples()]
    return sorted(rows, key=key)


MIN_SEEDS_FOR_BOLD = 2


def clear_best(frame: pd.DataFrame) -> dict[tuple[str, str, str], tuple[str, str]]:
    """(experiment, model) of the row to bold per (dataset, metric, protocol): the best mean, only where it is better
    than the runner-up's by more than the seed spread -- both ran at least MIN_SEEDS_FOR_BOLD seeds and their means
    differ by more than the larger of their two stds. One seed on either side, a tie or a gap within the spread:
    no bold (a 0.1-nat lead of one seed says nothing about which method is better). Table 2 and Table 5 alike."""
    best: dict[tuple[str, str, str], tuple[str, str]] = {}
    for (dataset, metric, protocol), group in frame.groupby(["dataset", "metric", "protocol"]):
        direction = better(metric)
        group = group[group["mean"].notna()]
        if direction is None or len(group) < 2:
            continue
        ranked = group.sort_values("mean", ascending=direction == "lower", kind="stable")
        first, second = ranked.iloc[0], ranked.iloc[1]
        if min(int(first["n_seeds"]), int(second["n_seeds"])) < MIN_SEEDS_FOR_BOLD:
            continue
        spread = max(float(first["std"]), float(second["std"]))
        if not math.isnan(spread) and abs(float(first["mean"]) - float(second["mean"])) > spread:
            best[(dataset, metric, protocol)] = (first["experiment"], first["model"])
    return best


def _caption_common(lm: pd.DataFrame, caption_extra: str) -> list[str]:
    """What both protocol tables' captions say: the experiment, the seeds and missing / bold conventions, the data."""
    experiments = ", ".join(latex_escape(e) for e in sorted(lm["experiment"].unique()))
    seeds = sorted(set(int(n) for n in lm["n_seeds"]))
    parts = [
        f"Experiment: {experiments}.",
        f"Values are the mean with the std (ddof=1) over seeds below it when more than one seed ran (seeds per "
        f"cell: {', '.join(map(str, seeds))}); {MISSING}: no value. Bold: the best of our values per dataset and "
        f"metric (lower NLL and PPL, higher MI), only where it and the runner-up each ran at least {MIN_SEEDS_FOR_BOLD} "
        "seeds and their means differ by more than the larger of their two stds; KL is not bolded, since neither a "
        "larger nor a smaller KL is better in itself.",
    ]
    noted = lm["data_note"].fillna("").astype(str) != ""
    for heading, rows in (("Reduced data", lm[lm["reduced"]]), ("Data", lm[~lm["reduced"] & noted])):
        if rows.empty:  # "Data": notes of runs on the full data, e.g. another tokenization
            continue
        notes: dict[str, set[str]] = {}
        for r in rows.itertuples():
            notes.setdefault(r.dataset, set()).update(n for n in str(r.data_note or "").split(NOTE_SEP) if n)
        listed = "; ".join(
            f"({latex_escape(paper_dataset_name(ds))}) " + ("; ".join(latex_escape(n) for n in sorted(notes[ds]))
                                                           or "no note recorded")
            for ds in _ordered_datasets(list(notes)))
        parts.append(f"{heading}: {listed}.")
    if caption_extra:
        parts.append(caption_extra)
    return parts


def _uniform_caption(lm: pd.DataFrame, summary: pd.DataFrame, table: str, caption_extra: str) -> str:
    iw = summary[(summary["metric"] == "iw_samples") & (summary["protocol"] == "uniform")
                 & summary["experiment"].isin(lm["experiment"].unique())]["mean"]
    ks = sorted({int(round(k)) for k in iw})
    if not ks:
        k_text = "$K$ samples ($K$ not recorded in the result files)"
    elif len(ks) == 1:
        k_text = f"$K={ks[0]}$ samples"
    else:
        k_text = f"$K \\in \\{{{', '.join(map(str, ks))}\\}}$ samples (varies by run)"
    return " ".join([
        f"Table {latex_escape(table)} of Li et al. (2020) reproduced, ours under this suite's uniform protocol (IW), "
        f"the same for every model: NLL is the importance-weighted estimate of $-\\log p(x)$ per sentence (nats) "
        f"with {k_text}; PPL $=\\exp(\\sum_x \\mathrm{{NLL}}(x) / N)$ with $N$ the number of predicted test tokens "
        "(words and end-of-sentence); the prior is $\\mathcal{N}(0, I)$ for every model, also for TWR-VAE-sum/mean, "
        "whose latent sums or averages $T$ timestep samples: there it is this protocol's choice, not a prior their "
        "training sets. The paper's published values are in the next table (original code's protocol).",
        *_caption_common(lm, caption_extra)])


def _paper_caption(lm: pd.DataFrame, table: str, have_paper: bool, caption_extra: str) -> str:
    parts = [f"Table {latex_escape(table)}, the original TWR-VAE code's protocol. Ours (paper prot.): the same "
             "trained models evaluated as the original TWR-VAE code does (NLL = reconstruction at the posterior mean "
             "plus the timestep-averaged KL; PPL over a word count including the start token; MI estimated per "
             "batch)."]
    if not have_paper:
        parts.append(f"Paper: no file of published values was given ({NO_PAPER}).")
    elif table == "2":
        parts.append("Published: the values of Table 2 of Li et al. (2020), which itself mixes protocols: the "
                     "baseline rows are importance-weighted NLL (He et al. 2019), the TWR-VAE rows follow the "
                     "original code's protocol.")
    else:
        parts.append(f"Published: the values of Table {latex_escape(table)} of Li et al. (2020), computed with the "
                     "original code's protocol.")
    return " ".join(parts + _caption_common(lm, caption_extra))


def _cell(mean: float, std: float, n_seeds: int, bold: bool) -> str:
    """`91.0`, or (n_seeds > 1) `91.0` above a tiny `+-1.4` in one cell, so that three datasets fit a page."""
    text = f"{mean + 0.0:.1f}"
    text = f"\\textbf{{{text}}}" if bold else text
    if n_seeds > 1 and std is not None and not math.isnan(std):
        text = f"\\begin{{tabular}}[c]{{@{{}}r@{{}}}}{text}\\\\[-2pt]{{\\tiny$\\pm${std + 0.0:.1f}}}\\end{{tabular}}"
    return text


def _tabular_head(datasets: list[str]) -> list[str]:
    """Datasets as column groups, NLL / PPL / MI / KL under each (the paper's Table 2 layout)."""
    width = len(LM_METRICS)
    lines = [r"\begin{tabular}{l" + "r" * width * len(datasets) + "}", r"\toprule",
             " & ".join([""] + [f"\\multicolumn{{{width}}}{{c}}{{{latex_escape(paper_dataset_name(d))}}}"
                                for d in datasets]) + r" \\",
             " ".join(f"\\cmidrule(lr){{{2 + i * width}-{1 + (i + 1) * width}}}" for i in range(len(datasets))),
             " & ".join(["Model"] + list(LM_METRICS) * len(datasets)) + r" \\", r"\midrule"]
    return lines


def _block_title(text: str, columns: int) -> str:
    return f"\\multicolumn{{{columns}}}{{l}}{{\\textit{{{text}}}}} \\\\"


def render_lm_table(summary: pd.DataFrame, paper: pd.DataFrame, table: str = "2", caption_extra: str = "") -> str:
    """Two booktabs `table*`s shaped like the paper's Table 2/3 (datasets as column groups, NLL/PPL/MI/KL under each):
    ours under the uniform protocol; then ours under the original code's protocol above the paper's published rows.

    `summary` comes from `harness.report.results.summarise`, `paper` from `harness.report.results.load_paper_values`
    (an empty `paper` frame prints "n/a" for the published block). `caption_extra` is appended verbatim (LaTeX).
    """
    table = str(table)
    lm = summary[summary["metric"].isin(LM_METRICS)].copy()
    if lm.empty:
        raise ValueError("no NLL/PPL/MI/KL values in the results: nothing to tabulate")
    have_paper = not paper.empty
    published = paper[paper["table"].astype(str) == table] if have_paper else paper
    paper_lookup = {(r.dataset, r.model, r.metric): float(r.value) for r in published.itertuples()}
    cells = {(r.experiment, r.dataset, r.model, r.protocol, r.metric): r for r in lm.itertuples()}
    datasets = _ordered_datasets(list(lm["dataset"]))
    rows = _ordered_rows(lm, paper, table)
    several_experiments = lm["experiment"].nunique() > 1
    best = clear_best(lm)
    columns = 1 + len(LM_METRICS) * len(datasets)

    def our_rows(protocol: str) -> list[str]:
        lines = []
        for experiment, model, _, name in rows:
            label = latex_escape(name) + (f" [{latex_escape(experiment)}]" if several_experiments else "")
            out = [label]
            for dataset in datasets:
                for metric in LM_METRICS:
                    cell = cells.get((experiment, dataset, model, protocol, metric))
                    if cell is None:
                        out.append(MISSING)
                        continue
                    out.append(_cell(cell.mean, cell.std, int(cell.n_seeds),
                                     best.get((dataset, metric, protocol)) == (experiment, model)))
            lines.append(" & ".join(out) + r" \\")
        return lines

    def published_rows() -> list[str]:
        if not have_paper:
            return [" & ".join(["paper"] + [NO_PAPER] * (columns - 1)) + r" \\"]
        names = list(dict.fromkeys(published["model"]))
        lines = []
        for name in names:
            values = [paper_lookup.get((paper_dataset_name(d), name, m)) for d in datasets for m in LM_METRICS]
            if all(value is None for value in values):
                continue  # a published row of datasets this experiment does not have
            lines.append(" & ".join([latex_escape(name)] + [MISSING if v is None else f"{v:.1f}" for v in values])
                         + r" \\")
        return lines or [" & ".join(["paper"] + [MISSING] * (columns - 1)) + r" \\"]

    key = re.sub(r"[^A-Za-z0-9]+", "-", "-".join(sorted(lm["experiment"].unique())))
    number = re.sub(r"[^A-Za-z0-9]+", "", table)
    setup = [r"\centering", r"\footnotesize", r"\setlength{\tabcolsep}{2pt}"]
    uniform = [r"\begin{table*}[t]", *setup, *_tabular_head(datasets), *our_rows("uniform"), r"\bottomrule",
               r"\end{tabular}", f"\\caption{{{_uniform_caption(lm, summary, table, caption_extra)}}}",
               f"\\label{{tab:{key}-table{number}-uniform}}", r"\end{table*}"]
    original = [r"\begin{table*}[t]", *setup, *_tabular_head(datasets),
                _block_title("ours, the original code's protocol", columns), *our_rows("paper"), r"\midrule",
                _block_title("published (Li et al. 2020)", columns), *published_rows(), r"\bottomrule",
                r"\end{tabular}", f"\\caption{{{_paper_caption(lm, table, have_paper, caption_extra)}}}",
                f"\\label{{tab:{key}-table{number}-paper}}", r"\end{table*}"]
    return "\n".join(uniform) + "\n\n" + "\n".join(original) + "\n"


def write_tidy_csv(df: pd.DataFrame, path: Path) -> None:
    """Write a (tidy) frame as CSV, atomically."""
    write_text_atomic(path, df.to_csv(index=False))
