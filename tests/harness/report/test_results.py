"""Tests of harness.report.results: metrics.json -> tidy frame -> per-group summary."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conftest import write_metrics
from harness.report.results import (
    PAPER_COLUMNS, PAPER_DATASET_NAMES, TIDY_COLUMNS, ResultError, collect_results, load_paper_values, summarise,
)


def write_run(tmp: Path, model: str, seed: int, uniform: dict, paper: dict | None = None, **fields) -> Path:
    return write_metrics(tmp, model, seed, {"uniform": uniform, **({"paper": paper} if paper is not None else {})},
                         **fields)


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    return [
        write_run(tmp_path, "twr-vae", 1, {"NLL": 90.0, "PPL": 50.0, "MI": 4.0, "KL": 5.0, "iw_samples": 500},
                  {"NLL": 85.0, "PPL": 40.0}, paper_name="TWR-VAE"),
        write_run(tmp_path, "twr-vae", 2, {"NLL": 92.0, "PPL": 52.0, "MI": 3.0, "KL": 6.0, "iw_samples": 500},
                  {"NLL": 87.0, "PPL": 42.0}, paper_name="TWR-VAE"),
        write_run(tmp_path, "vae", 1, {"NLL": 100.0, "PPL": 100.0, "KL": 0.1, "iw_samples": 500},
                  paper_name="VAE-LSTM", reduced=True, note="train capped at 5000 sentences"),
    ]


def test_tidy_frame_contents(runs: list[Path]) -> None:
    df = collect_results(runs)
    assert list(df.columns) == TIDY_COLUMNS
    assert len(df) == 5 + 2 + 5 + 2 + 4
    row = df[(df.model == "twr-vae") & (df.seed == 2) & (df.protocol == "paper") & (df.metric == "NLL")]
    assert row["value"].tolist() == [87.0]
    assert row["paper_name"].tolist() == ["TWR-VAE"]
    assert set(df.protocol) == {"uniform", "paper"}
    vae = df[df.model == "vae"]
    assert vae["reduced"].all() and set(vae["data_note"]) == {"train capped at 5000 sentences"}
    assert not df[df.model == "twr-vae"]["reduced"].any()


def test_missing_metrics_are_not_filled(runs: list[Path]) -> None:
    df = collect_results(runs)
    vae = df[df.model == "vae"]
    assert "MI" not in set(vae.metric)              # absent in the file -> absent in the frame
    assert "paper" not in set(vae.protocol)
    assert not df["value"].isna().any()


def test_null_metric_is_skipped(tmp_path: Path) -> None:
    path = write_run(tmp_path, "m", 1, {"NLL": 1.0, "MI": None})
    df = collect_results([path])
    assert df.metric.tolist() == ["NLL"]


def test_summary_mean_std(runs: list[Path]) -> None:
    s = summarise(collect_results(runs))
    nll = s[(s.model == "twr-vae") & (s.protocol == "uniform") & (s.metric == "NLL")].iloc[0]
    assert nll["mean"] == pytest.approx(91.0)
    assert nll["std"] == pytest.approx(math.sqrt(2.0))  # ddof=1 of 90, 92
    assert nll["n_seeds"] == 2
    single = s[(s.model == "vae") & (s.metric == "NLL")].iloc[0]
    assert single["n_seeds"] == 1 and math.isnan(single["std"])
    assert bool(single["reduced"]) and single["data_note"] == "train capped at 5000 sentences"


def test_summary_keeps_null_paper_name(tmp_path: Path) -> None:
    s = summarise(collect_results([write_run(tmp_path, "new", 1, {"NLL": 1.0})]))
    assert len(s) == 1 and s.iloc[0]["paper_name"] is None


def test_invalid_json_names_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken" / "metrics.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    with pytest.raises(ResultError, match="broken/metrics.json.*not valid JSON"):
        collect_results([bad])


@pytest.mark.parametrize("key", ["experiment", "seed", "metrics", "data"])
def test_missing_key_names_file_and_key(tmp_path: Path, key: str) -> None:
    path = write_run(tmp_path, "m", 1, {"NLL": 1.0})
    record = json.loads(path.read_text())
    del record[key]
    path.write_text(json.dumps(record))
    with pytest.raises(ResultError) as info:
        collect_results([path])
    assert str(path) in str(info.value) and f"'{key}'" in str(info.value)


def test_missing_reduced_flag(tmp_path: Path) -> None:
    path = write_run(tmp_path, "m", 1, {"NLL": 1.0})
    record = json.loads(path.read_text())
    del record["data"]["reduced"]
    path.write_text(json.dumps(record))
    with pytest.raises(ResultError, match=r"metrics\.json: missing key 'data\.reduced'"):
        collect_results([path])


def test_non_numeric_metric_and_unknown_protocol(tmp_path: Path) -> None:
    path = write_run(tmp_path, "m", 1, {"NLL": "high"})
    with pytest.raises(ResultError, match=r"metrics\.uniform\.NLL"):
        collect_results([path])
    record = json.loads(path.read_text())
    record["metrics"] = {"other": {"NLL": 1.0}}
    path.write_text(json.dumps(record))
    with pytest.raises(ResultError, match="unknown protocol"):
        collect_results([path])


def test_duplicate_run_rejected(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", "m", 1, {"NLL": 1.0})
    b = write_run(tmp_path / "b", "m", 1, {"NLL": 2.0})
    with pytest.raises(ResultError, match="already read"):
        collect_results([a, b])


def test_load_paper_values(tmp_path: Path) -> None:
    assert list(load_paper_values(None).columns) == PAPER_COLUMNS
    assert load_paper_values(tmp_path / "absent.csv").empty
    csv = tmp_path / "tables.csv"
    csv.write_text("table,dataset,model,metric,value\n2,PTB,TWR-VAE,NLL,86.6\n")
    paper = load_paper_values(csv)
    assert paper.iloc[0].to_dict() == {"table": "2", "dataset": "PTB", "model": "TWR-VAE", "metric": "NLL", "value": 86.6}


def test_dataset_names() -> None:
    assert PAPER_DATASET_NAMES == {"ptb": "PTB", "yelp15": "Yelp15", "yahoo": "Yahoo",
                                   "swda": "Switchboard", "dailydialog": "DailyDialog"}
