import math

import pandas as pd
import pytest

from harness.significance import compare_to_best_baseline


def tidy(values: dict[str, list[float]], metric="NLL") -> pd.DataFrame:
    rows = []
    for label, seeds in values.items():
        for seed, value in enumerate(seeds):
            rows.append({"experiment": "e", "dataset": "ptb", "model": label.lower(), "paper_name": label,
                         "seed": seed, "protocol": "uniform", "metric": metric, "value": value})
    rows.append({**rows[0], "protocol": "paper", "value": -1.0})  # other protocols are ignored
    return pd.DataFrame(rows)


def test_picks_the_best_baseline_and_tests_against_it():
    frame = tidy({"TWR-VAE": [90.0, 90.5, 89.8], "VAE-LSTM": [101.0, 101.3, 100.9], "BN-VAE (0.7)": [95.0, 95.4, 94.7],
                  "TWR-VAE-mean": [80.0, 80.1, 80.2]})
    row = compare_to_best_baseline(frame).iloc[0]
    assert row["baseline"] == "BN-VAE (0.7)"  # lowest NLL among baselines; TWR variants are not baselines
    assert row["p_value"] < 1e-3 and row["t_statistic"] < 0


def test_higher_is_better_for_mi_and_similar_samples_are_not_significant():
    frame = tidy({"TWR-VAE": [3.0, 3.4, 2.8], "Lag-VAE": [2.9, 3.3, 3.1], "VAE-LSTM": [0.0, 0.1, 0.0]}, metric="MI")
    row = compare_to_best_baseline(frame).iloc[0]
    assert row["baseline"] == "Lag-VAE" and row["p_value"] > 0.3


def test_one_seed_gives_no_p_value_and_says_why():
    row = compare_to_best_baseline(tidy({"TWR-VAE": [90.0], "VAE-LSTM": [100.0]})).iloc[0]
    assert math.isnan(row["p_value"]) and "two seeds" in row["note"]


def test_without_the_reference_there_is_nothing_to_compare():
    assert compare_to_best_baseline(tidy({"VAE-LSTM": [1.0, 2.0]})).empty
