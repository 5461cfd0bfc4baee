"""Is the reference method (config `significance.reference`, default TWR-VAE) better than the best baseline?
Welch's t-test over seeds per metric, with the difference of the means and its 95 % confidence interval.

Only uniform-protocol numbers are compared: they are the ones every model is evaluated with alike.
"""
from __future__ import annotations

import math

import pandas as pd
from scipy import stats

from metrics.catalogue import better

COLUMNS = ["experiment", "dataset", "metric", "better", "reference", "baseline", "reference_mean", "baseline_mean",
           "difference", "difference_ci95_low", "difference_ci95_high", "reference_seeds", "baseline_seeds",
           "t_statistic", "p_value", "note"]


def _label(row) -> str:
    return row["paper_name"] if isinstance(row["paper_name"], str) and row["paper_name"] else row["model"]


def compare_to_best_baseline(tidy: pd.DataFrame, reference: str = "TWR-VAE", protocol: str = "uniform") -> pd.DataFrame:
    """One row per (experiment, dataset, metric): `reference` against the baseline with the best mean.

    `reference` is a row label (the paper's name, a config `label`, else the model key) or a model key. Baselines
    are the other rows whose label does not start with the reference's label (its variants, e.g. "TWR-VAE (GRU)",
    are not baselines). The test is Welch's two-sided t-test (scipy.stats.ttest_ind, equal_var=False) over the
    per-seed values; `difference` is reference mean - baseline mean, with Welch's 95 % confidence interval. With
    fewer than two seeds on either side no test is possible and the row says so instead of giving a p-value.
    """
    rows = []
    data = tidy[tidy["protocol"] == protocol].copy()
    if data.empty:
        return pd.DataFrame(columns=COLUMNS)
    data["label"] = data.apply(_label, axis=1)
    for (experiment, dataset, metric), group in data.groupby(["experiment", "dataset", "metric"], sort=True):
        if better(metric) is None:
            continue
        is_reference = (group["label"] == reference) | (group["model"] == reference)
        ref = group[is_reference]["value"]
        if ref.empty:
            continue
        reference_label = group[is_reference]["label"].iloc[0]
        baselines = group[~is_reference & ~group["label"].str.startswith(reference_label)]
        if baselines.empty:
            continue
        means = baselines.groupby("label")["value"].mean()
        best = means.idxmin() if better(metric) == "lower" else means.idxmax()
        base = baselines[baselines["label"] == best]["value"]
        t, p, low, high, note = math.nan, math.nan, math.nan, math.nan, ""
        if len(ref) < 2 or len(base) < 2:
            note = "no test: needs at least two seeds per model"
        else:
            result = stats.ttest_ind(ref.to_numpy(), base.to_numpy(), equal_var=False)
            t, p = float(result.statistic), float(result.pvalue)
            if math.isnan(p):
                note = "no test: both samples have zero variance"
            else:
                low, high = (float(bound) for bound in result.confidence_interval(0.95))
        rows.append([experiment, dataset, metric, better(metric), reference_label, best, float(ref.mean()),
                     float(base.mean()), float(ref.mean() - base.mean()), low, high, len(ref), len(base), t, p, note])
    return pd.DataFrame(rows, columns=COLUMNS)
