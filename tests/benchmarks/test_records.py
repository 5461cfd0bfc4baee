"""docs/performance.md's table of speed records is what results/benchmarks/*.json give."""
from __future__ import annotations

import json

from benchmarks import records


def test_the_committed_performance_page_is_what_the_records_give():
    assert records.PAGE.read_text() == records.generate(), "run `python -m benchmarks.records` and commit the page"


def test_a_record_becomes_one_row_of_same_run_ratios(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({
        "created": "2026-12-05T00:00:00", "torch": "2.13.0+cpu", "machine": {"cpu_model": "Some CPU", "cpu_count": 2},
        "train_tokens_per_second": {"float32": 3000.0, "bfloat16": None, "original_style": 2000.0},
        "train": {"kernel_ceiling": {"float32": {"step_share": 0.5}}},
        "epoch": {"seconds": {"harness": 300.0, "original": 450.0}, "speedup_vs_original": 1.5},
        "iwnll": {"speedup": 1.02}}))
    (tmp_path / "other.json").write_text(json.dumps({"not": "a speed record"}))
    rows = records.table_lines(records.speed_records(tmp_path))
    assert len(rows) == 3
    assert rows[2] == ("| `x.json` | 2026-12-05 | Some CPU (2) | 2.13.0+cpu | 3,000 (1.50x) | not measured | 50%, - "
                       "| 300, - / 450 (1.50x) | 1.02x, - |")
