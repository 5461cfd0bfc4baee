"""Phase 3's budget: training gets what evaluation, estimated from phase 2, leaves of the allowance."""
from __future__ import annotations

import pytest

from benchmarks.gpu_campaign.paper_runs import PaperRunSizes, plan_budget

SIZES = PaperRunSizes(total_seconds=400, startup_seconds=30, eval_safety=2.0, unmeasured_eval_share=0.3,
                      kill_after_seconds=460)


def speed(rate: float) -> dict:
    return {"summary": {"fastest_iw_chunk": 500, "iwnll_sentences_per_second": {"500": {"ours": rate}}}}


def test_the_evaluation_estimate_comes_from_phase_2():
    budget = plan_budget(SIZES, models=6, test_sentences=3761, speed=speed(1000.0))
    assert budget["evaluation_estimate_seconds"] == pytest.approx(2.0 * 6 * 3761 / 1000.0, abs=0.1)
    assert budget["train_seconds"] == pytest.approx(400 - 30 - 2.0 * 6 * 3.761, abs=0.1)
    assert budget["iw_chunk"] == 500 and "phase 2" in budget["basis"]


def test_without_phase_2_a_share_is_kept_for_evaluation():
    budget = plan_budget(SIZES, models=6, test_sentences=3761, speed=None)
    assert budget["train_seconds"] == pytest.approx(400 - 30 - 120) and budget["iw_chunk"] is None


def test_slow_evaluation_still_leaves_a_quarter_for_training():
    budget = plan_budget(SIZES, models=6, test_sentences=3761, speed=speed(10.0))
    assert budget["train_seconds"] == 100 and "raised to a quarter" in budget["basis"]
