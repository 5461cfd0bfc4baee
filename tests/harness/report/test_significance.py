import math

import pandas as pd
import pytest

from harness.report.significance import compare_to_best_baseline


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


def test_the_reference_is_chosen_and_the_difference_has_its_confidence_interval():
    """A user's method as the reference: TWR-VAE becomes a baseline; the interval is Welch's and contains the
    difference of the means; the reference's own variants stay out."""
    frame = tidy({"free-bits": [95.0, 95.5, 94.8], "free-bits (beta 0.1)": [80.0, 80.2, 80.1],
                  "TWR-VAE": [90.0, 90.5, 89.8], "VAE-LSTM": [101.0, 101.3, 100.9]})
    row = compare_to_best_baseline(frame, reference="free-bits").iloc[0]
    assert row["reference"] == "free-bits" and row["baseline"] == "TWR-VAE"
    assert row["difference"] == pytest.approx(95.1 - 90.1)
    assert row["difference_ci95_low"] < row["difference"] < row["difference_ci95_high"]
    assert row["difference_ci95_low"] > 0  # significantly worse: the whole interval above zero, p < 0.05
    assert row["p_value"] < 0.05
    by_key = compare_to_best_baseline(frame, reference="twr-vae").iloc[0]  # a model key works as well
    assert by_key["reference"] == "TWR-VAE" and by_key["baseline"] == "free-bits (beta 0.1)"


def test_a_significance_reference_that_is_no_model_is_refused():
    from harness.core.config import ConfigError, ExperimentConfig, load_config_file
    from conftest import REPO_ROOT

    raw = load_config_file(REPO_ROOT / "config" / "config.yaml")
    raw["significance"] = {"reference": "free-bits"}
    with pytest.raises(ConfigError, match="significance.reference: 'free-bits' is no model"):
        ExperimentConfig.from_mapping(raw)
    raw["significance"] = {"reference": "vae-lstm-noanneal"}
    ExperimentConfig.from_mapping(raw)
