"""LaTeX (booktabs) tables and CSV output from `harness.results.summarise` frames.

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

from harness.io import write_text_atomic
from metrics.catalogue import LM_TABLE_METRICS, better
from harness.results import NOTE_SEP, PAPER_DATASET_NAMES, paper_dataset_name

LM_METRICS = LM_TABLE_METRICS  # KL is reported, never bolded (metrics.catalogue)
#: (protocol key in the summary, header text); the third column of each metric group is the paper's value.
OUR_COLUMNS: tuple[tuple[str, str], ...] = (("uniform", "ours (IW)"), ("paper", "ours (paper prot.)"))
PAPER_HEADER = "paper"
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
    """(experiment, model, paper_name) per table row, in the paper's row order, unknown models after."""
    runs = lm[["experiment", "model", "paper_name"]].drop_duplicates()
    paper_order = list(dict.fromkeys(paper.loc[paper["table"] == table, "model"])) if not paper.empty else []

    def key(row: tuple[str, str, str | None]) -> tuple[int, str, str]:
        exp, model, name = row
        rank = paper_order.index(name) if name in paper_order else len(paper_order)
        return rank, model, exp

    rows = [(r.experiment, r.model, r.paper_name if isinstance(r.paper_name, str) else None) for r in runs.itertuples()]
    return sorted(rows, key=key)


def _best(lm: pd.DataFrame) -> dict[tuple[str, str, str], float]:
    """Best rounded mean per (dataset, metric, protocol), only where at least two rows compete."""
    best: dict[tuple[str, str, str], float] = {}
    for (dataset, metric, protocol), group in lm.groupby(["dataset", "metric", "protocol"]):
        if better(metric) is None or len(group) < 2:
            continue
        rounded = group["mean"].round(1)
        best[(dataset, metric, protocol)] = rounded.max() if better(metric) == "higher" else rounded.min()
    return best


def _caption(lm: pd.DataFrame, summary: pd.DataFrame, table: str, have_paper: bool, caption_extra: str) -> str:
    experiments = ", ".join(latex_escape(e) for e in sorted(lm["experiment"].unique()))
    iw = summary[(summary["metric"] == "iw_samples") & (summary["protocol"] == "uniform")
                 & summary["experiment"].isin(lm["experiment"].unique())]["mean"]
    ks = sorted({int(round(k)) for k in iw})
    if not ks:
        k_text = "$K$ samples ($K$ not recorded in the result files)"
    elif len(ks) == 1:
        k_text = f"$K={ks[0]}$ samples"
    else:
        k_text = f"$K \\in \\{{{', '.join(map(str, ks))}\\}}$ samples (varies by run)"
    seeds = sorted(set(int(n) for n in lm["n_seeds"]))
    parts = [
        f"Experiment: {experiments}.",
        f"Ours (IW): this suite's uniform protocol, the same for every model: NLL is the importance-weighted "
        f"estimate of $-\\log p(x)$ per sentence (nats) with {k_text}; "
        f"PPL $=\\exp(\\sum_x \\mathrm{{NLL}}(x) / N)$ with $N$ the number of predicted test tokens (words and end-of-sentence); "
        "the prior is $\\mathcal{N}(0, I)$ for every model, also for TWR-VAE-sum/mean, whose latent sums or averages "
        "$T$ timestep samples: there it is this protocol's choice, not a prior their training sets.",
        "Ours (paper prot.): the same trained model evaluated as the original TWR-VAE code does (NLL = "
        "reconstruction at the posterior mean plus the timestep-averaged KL; PPL over a word count including "
        "the start token; MI estimated per batch).",
    ]
    if not have_paper:
        parts.append(f"Paper: no file of published values was given ({NO_PAPER}).")
    elif table == "2":
        parts.append("Paper: published values of Table 2 of Li et al. (2020), which itself mixes protocols: "
                     "the baseline rows are importance-weighted NLL (He et al. 2019), the TWR-VAE rows follow "
                     "the original code's protocol.")
    else:
        parts.append(f"Paper: published values of Table {latex_escape(table)} of Li et al. (2020), computed "
                     "with the original code's protocol.")
    parts.append(
        f"Values are the mean $\\pm$ std (ddof=1) over seeds when more than one seed ran (seeds per cell: "
        f"{', '.join(map(str, seeds))}); {MISSING}: no value. Bold: best of our values per dataset, metric and "
        "protocol (lower NLL and PPL, higher MI); KL is not bolded, since neither a larger nor a smaller KL "
        "is better in itself."
    )
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
    return " ".join(parts)


def render_lm_table(summary: pd.DataFrame, paper: pd.DataFrame, table: str = "2", caption_extra: str = "") -> str:
    """A booktabs `table*` with our NLL/PPL/MI/KL (both protocols) beside the paper's published values.

    `summary` comes from `harness.results.summarise`, `paper` from `harness.results.load_paper_values`
    (an empty `paper` frame prints "n/a" in the paper columns). `caption_extra` is appended verbatim (LaTeX).
    """
    table = str(table)
    lm = summary[summary["metric"].isin(LM_METRICS)].copy()
    if lm.empty:
        raise ValueError("no NLL/PPL/MI/KL values in the results: nothing to tabulate")
    have_paper = not paper.empty
    paper_lookup: dict[tuple[str, str, str], float] = {}
    if have_paper:
        sel = paper[paper["table"].astype(str) == table]
        paper_lookup = {(r.dataset, r.model, r.metric): float(r.value) for r in sel.itertuples()}
    cells = {(r.experiment, r.dataset, r.model, r.protocol, r.metric): r for r in lm.itertuples()}
    datasets = _ordered_datasets(list(lm["dataset"]))
    rows = _ordered_rows(lm, paper, table)
    several_experiments = lm["experiment"].nunique() > 1
    best = _best(lm)
    per_ds = len(LM_METRICS) * (len(OUR_COLUMNS) + 1)

    lines = [r"\begin{table*}[t]", r"\centering", r"\small", r"\setlength{\tabcolsep}{3pt}",
             r"\begin{tabular}{l" + "r" * per_ds * len(datasets) + "}", r"\toprule"]
    lines.append(" & ".join([""] + [f"\\multicolumn{{{per_ds}}}{{c}}{{{latex_escape(paper_dataset_name(d))}}}"
                                    for d in datasets]) + r" \\")
    lines.append(" ".join(f"\\cmidrule(lr){{{2 + i * per_ds}-{1 + (i + 1) * per_ds}}}" for i in range(len(datasets))))
    group = len(OUR_COLUMNS) + 1
    lines.append(" & ".join([""] + [f"\\multicolumn{{{group}}}{{c}}{{{m}}}" for _ in datasets for m in LM_METRICS]) + r" \\")
    n_groups = len(datasets) * len(LM_METRICS)
    lines.append(" ".join(f"\\cmidrule(lr){{{2 + i * group}-{1 + (i + 1) * group}}}" for i in range(n_groups)))
    sub = [h for _, h in OUR_COLUMNS] + [PAPER_HEADER]
    lines.append(" & ".join(["Model"] + sub * n_groups) + r" \\")
    lines.append(r"\midrule")

    for experiment, model, paper_name in rows:
        label = latex_escape(paper_name or model)
        if several_experiments:
            label += f" [{latex_escape(experiment)}]"
        out = [label]
        for dataset in datasets:
            for metric in LM_METRICS:
                for protocol, _ in OUR_COLUMNS:
                    cell = cells.get((experiment, dataset, model, protocol, metric))
                    if cell is None:
                        out.append(MISSING)
                        continue
                    target = best.get((dataset, metric, protocol))
                    bold = target is not None and round(cell.mean, 1) == target
                    out.append(format_value(cell.mean, cell.std, int(cell.n_seeds), bold))
                if not have_paper:
                    out.append(NO_PAPER)
                else:
                    value = paper_lookup.get((paper_dataset_name(dataset), paper_name, metric)) if paper_name else None
                    out.append(MISSING if value is None else f"{value:.1f}")
        lines.append(" & ".join(out) + r" \\")

    label_key = re.sub(r"[^A-Za-z0-9]+", "-", "-".join(sorted(lm["experiment"].unique())))
    lines += [r"\bottomrule", r"\end{tabular}",
              f"\\caption{{{_caption(lm, summary, table, have_paper, caption_extra)}}}",
              f"\\label{{tab:{label_key}-table{re.sub(r'[^A-Za-z0-9]+', '', table)}}}", r"\end{table*}"]
    return "\n".join(lines) + "\n"


def write_tidy_csv(df: pd.DataFrame, path: Path) -> None:
    """Write a (tidy) frame as CSV, atomically."""
    write_text_atomic(path, df.to_csv(index=False))
