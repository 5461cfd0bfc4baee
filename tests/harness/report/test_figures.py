"""Figures 2-3 and Tables 4/7 from interpolation results only (harness.report.figures)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.report.figures import main as figures_main
from harness.report.results import ResultError

ALPHAS = [0.0, 0.5, 1.0]


def write_run(root: Path, model: str, seed: int, paper_name=None, dataset="ptb", source_start=1.0) -> Path:
    folder = root / dataset / model / f"seed{seed}"
    folder.mkdir(parents=True)
    curve = {"source": [source_start, 0.5, 0.1], "target": [0.1, 0.5, 1.0]}
    payload = {"experiment": "tiny", "dataset": dataset, "model": model, "paper_name": paper_name, "seed": seed,
               "settings": {"pairs": 2, "alphas": ALPHAS, "max_length": 5},
               "curves": {name: curve for name in ("rouge1", "rouge2", "rougeL")},
               "data": {"reduced": True, "note": "test capped at 4 of 3761 sentences"}}
    (folder / "interpolation.json").write_text(json.dumps(payload))
    records = [{"source": f"s1 number {i}", "target": f"s2 number {i}",
                "sentences": [f"{model} at {a} pair {i}" for a in ALPHAS]} for i in range(2)]
    (folder / "interpolation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder / "interpolation.json"


def test_figure_and_examples_are_drawn_from_the_result_files(tmp_path):
    results = [write_run(tmp_path, "twr-vae", 1, "TWR-VAE"), write_run(tmp_path, "twr-vae", 2, "TWR-VAE", source_start=0.8),
               write_run(tmp_path, "bn-vae", 1, "BN-VAE (0.7)")]
    out = tmp_path / "out"
    figures_main(["--results", *map(str, results), "--out-png", str(out / "fig.png"), "--out-pdf", str(out / "fig.pdf"),
                  "--out-examples", str(out / "table4.txt"), "--examples", "1"])
    assert (out / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "fig.pdf").read_bytes()[:5] == b"%PDF-"
    text = (out / "table4.txt").read_text()
    assert "test capped at 4 of 3761 sentences" in text and "seeds 1, 2" in text
    assert "s1: s1 number 0" in text and "TWR-VAE:" in text and "BN-VAE (0.7):" in text
    assert "0.5  twr-vae at 0.5 pair 0" in text and "number 1" not in text and "--- pair 2" not in text
    assert not list(out.glob(".*.tmp"))


def test_results_of_two_datasets_in_one_figure_are_refused(tmp_path):
    results = [write_run(tmp_path, "twr-vae", 1), write_run(tmp_path, "twr-vae", 1, dataset="yahoo")]
    with pytest.raises(ResultError, match="one figure per dataset"):
        figures_main(["--results", *map(str, results), "--out-png", str(tmp_path / "f.png"),
                      "--out-pdf", str(tmp_path / "f.pdf"), "--out-examples", str(tmp_path / "t.txt")])
    assert not (tmp_path / "f.png").exists()


def test_an_unreadable_result_names_the_file(tmp_path):
    bad = tmp_path / "interpolation.json"
    bad.write_text('{"curves": ')
    with pytest.raises(ResultError, match=str(bad)):
        figures_main(["--results", str(bad), "--out-png", str(tmp_path / "f.png"), "--out-pdf", str(tmp_path / "f.pdf"),
                      "--out-examples", str(tmp_path / "t.txt")])
