"""Table 1 (harness.report.dataset_table): the datasets an experiment uses, with caps and substitute splits flagged."""
from __future__ import annotations

import shutil

import pytest

from conftest import compile_on_article_page
from harness.report.dataset_table import dataset_rows, main, render_dataset_table


def split(count, mean=20.0, top=70, unit="sentences"):
    return {unit: count, "mean_length": mean, "max_length": top}


STATS = {
    "yahoo": {"vocab_size": 20001, "splits": {"train": split(10000, 78.0, 200), "valid": split(10000), "test": split(10000)}},
    "ptb": {"vocab_size": 10002, "splits": {"train": split(42068), "valid": split(3370), "test": split(3761)}},
}
OPTIONS = {"ptb": {"max_train_sentences": 6000},
           "yahoo": {"source_splits": {"train": "valid", "valid": "valid", "test": "test"}}}


def test_rows_follow_the_papers_order_and_flag_caps_and_substitute_splits():
    rows = dataset_rows(STATS, OPTIONS)
    assert list(rows["dataset"].unique()) == ["PTB", "Yahoo"]
    ptb_train = rows[(rows["dataset"] == "PTB") & (rows["split"] == "train")].iloc[0]
    assert (ptb_train["used"], ptb_train["released"], ptb_train["flag"]) == (6000, 42068, "capped at 6000 of 42068")
    yahoo_train = rows[(rows["dataset"] == "Yahoo") & (rows["split"] == "train")].iloc[0]
    assert yahoo_train["flag"] == "built from the released valid file"
    assert rows[(rows["dataset"] == "PTB") & (rows["split"] == "test")].iloc[0]["flag"] == ""


def test_the_table_compiles_on_an_article_page_without_overfull_boxes(tmp_path):
    assert main(["--stats", *[f"{name}={tmp_path / name}.json" for name in STATS], "--experiment", "unit_test",
                 "--out-tex", str(tmp_path / "table1.tex"), "--out-csv", str(tmp_path / "table1.csv")]) == 2  # no files
    for name, stats in STATS.items():
        (tmp_path / f"{name}.json").write_text(__import__("json").dumps(stats))
    assert main(["--stats", *[f"{name}={tmp_path / name}.json" for name in STATS], "--experiment", "unit_test",
                 "--data-options", __import__("json").dumps(OPTIONS), "--out-tex", str(tmp_path / "table1.tex"),
                 "--out-csv", str(tmp_path / "table1.csv")]) == 0
    tex = (tmp_path / "table1.tex").read_text()
    assert tex == render_dataset_table(dataset_rows(STATS, OPTIONS), "unit_test") and r"unit\_test" in tex
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed: Table 1's LaTeX was not compiled")
    assert "Overfull" not in compile_on_article_page(tmp_path, "table1.tex")
