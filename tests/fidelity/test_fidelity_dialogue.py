"""The dialogue side-by-side runner: the harness side on the tiny DailyDialog fixture, and the table."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from fidelity.dialogue import examples_of_first_dialogues, run_harness_side, summary_table
from harness.data.dialogue import preprocess_dialogue

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "dialogue_tiny"


def test_the_example_cap_is_the_examples_of_the_first_dialogues(tmp_path):
    preprocess_dialogue("dailydialog", FIXTURE, tmp_path)
    examples = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    cap = examples_of_first_dialogues(tmp_path / "train.jsonl", 2)
    assert 0 < cap < len(examples)
    assert {e["dialogue"] for e in examples[:cap]} == {0, 1} and examples[cap]["dialogue"] == 2
    assert examples_of_first_dialogues(tmp_path / "train.jsonl", 10**6) == len(examples)


def test_the_harness_side_records_one_line_per_seed_and_epoch(tmp_path):
    out = tmp_path / "dialogue-harness.jsonl"
    run_harness_side([1], 1, FIXTURE, train_dialogues=4, test_dialogues=2, valid_examples=4, out=out)
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["side"] == "harness" and record["seed"] == 1 and record["epoch"] == 1
    assert record["train"]["recon"] > 0 and record["train"]["kl"] >= 0
    for protocol in ("bleu_paper", "bleu_uniform"):
        assert set(record["test"][protocol]) == {"recall", "precision", "f1"}
        assert 0 <= record["test"][protocol]["precision"] <= record["test"][protocol]["recall"] <= 1
    for key in ("intra_dist1", "intra_dist2", "inter_dist1", "inter_dist2"):
        assert 0 <= record["test"][key] <= 1
    assert 0 <= record["test"]["avg_len"] <= 40
    data = record["data"]
    assert data["train_dialogues"] == 4 and data["test_dialogues"] == 2
    assert data["test_contexts"] == record["test"]["contexts"] > 0
    assert data["train_batches"] == 1 and data["train_examples"] > 0 and data["vocab_size"] > 4
    assert record["train_seconds"] > 0 and record["beta_end"] == pytest.approx(0.2)
    assert "code_version" in record


def test_the_table_gives_mean_and_spread_over_seeds_then_each_seed():
    def record(side, seed, recon):
        return {"side": side, "seed": seed, "epoch": 1, "train_seconds": 10.0, "train": {"recon": recon, "kl": 1.0},
                "test": {"bleu_paper": {"recall": 0.2, "precision": 0.1, "f1": 0.13}}}

    lines = summary_table([record("original", 1, 100.0), record("original", 2, 102.0)]).splitlines()
    assert lines[2].startswith("| original | 1 | **1, 2** | 101.00 ± 1.41 | 1.00 ± 0.00 | -- | 0.2000 ± 0.0000 |")
    assert lines[3].startswith("| original | 1 | 1 | 100.00 | 1.00 | -- | 0.2000 |")  # -- : a metric the record lacks
