"""KL weight schedules: linear warm-up (Bowman et al. 2016) and cyclical annealing (Fu et al. 2019)."""
import pytest

from harness.core.schedules import cyclical_beta, linear_warmup


def test_linear_warmup_rises_from_start_to_one_and_stays():
    assert linear_warmup(0, 100, start=0.1) == pytest.approx(0.1)
    assert linear_warmup(50, 100, start=0.1) == pytest.approx(0.55)
    assert linear_warmup(100, 100, start=0.1) == 1.0
    assert linear_warmup(10_000, 100, start=0.1) == 1.0
    values = [linear_warmup(step, 100) for step in range(101)]
    assert values == sorted(values) and values[0] == 0.0


def test_no_warmup_means_full_weight_from_the_start():
    assert linear_warmup(0, 0) == 1.0


def test_cyclical_schedule_matches_fu_et_al_within_each_cycle():
    # cycles of 100 updates, R = 0.5: beta = tau / R for tau < R, then 1
    assert cyclical_beta(0, 100, 0.5) == 0.0
    assert cyclical_beta(25, 100, 0.5) == pytest.approx(0.5)
    assert cyclical_beta(50, 100, 0.5) == 1.0
    assert cyclical_beta(99, 100, 0.5) == 1.0
    assert cyclical_beta(100, 100, 0.5) == 0.0  # the next cycle starts again from 0
    assert cyclical_beta(110, 100, 0.5) == pytest.approx(0.2)
    assert cyclical_beta(30, 100, 0.25) == 1.0 and cyclical_beta(20, 100, 0.25) == pytest.approx(0.8)


def test_cyclical_schedule_stays_at_one_after_m_cycles():
    assert cyclical_beta(399, 100, 0.5, cycles=4) == 1.0
    assert cyclical_beta(400, 100, 0.5, cycles=4) == 1.0  # would restart from 0 without the cycle limit
    assert cyclical_beta(400, 100, 0.5, cycles=0) == 0.0
    restarts = [step for step in range(1, 1000) if cyclical_beta(step, 100, 0.5, cycles=4) < cyclical_beta(step - 1, 100, 0.5, cycles=4)]
    assert restarts == [100, 200, 300]


@pytest.mark.parametrize("cycle_steps, ratio", [(0, 0.5), (100, 0.0), (100, 1.5)])
def test_cyclical_schedule_rejects_bad_settings(cycle_steps, ratio):
    with pytest.raises(ValueError):
        cyclical_beta(0, cycle_steps, ratio)


def test_per_batch_increase_is_the_dailydialog_scripts_loop():
    from harness.core.schedules import per_batch_increase

    batches, warmup, beta = 7, 10, 0.1  # train_dailydial.py: beta = args.beta_0; per batch, before the update:
    for step in range(100):
        beta = min(1.0, beta + 1.0 / (warmup * batches))
        assert per_batch_increase(step, 0.1, 1.0 / warmup, batches) == pytest.approx(beta, abs=1e-12)
    assert per_batch_increase(9 * batches - 1, 0.1, 0.1, batches) == pytest.approx(1.0)


def test_the_language_model_codes_cyclical_schedule_restarts_at_its_start_and_adds_before_each_update():
    """Fu et al. train_text_cyc_ptb.py: beta = 0.1 at a cycle's start, += 1 / (warmup x batches) before each update."""
    from harness.core.schedules import cyclical_beta_restarting
    assert cyclical_beta_restarting(0, 100, 0.5, 4, 0.1) == pytest.approx(0.12)  # the first update: one increment
    assert cyclical_beta_restarting(43, 100, 0.5, 4, 0.1) == pytest.approx(0.98)
    assert cyclical_beta_restarting(44, 100, 0.5, 4, 0.1) == 1.0  # 1 after 0.9 of the rise, not after all of it
    assert cyclical_beta_restarting(99, 100, 0.5, 4, 0.1) == 1.0
    assert cyclical_beta_restarting(100, 100, 0.5, 4, 0.1) == pytest.approx(0.12)  # the next cycle: back to 0.1
    assert cyclical_beta_restarting(400, 100, 0.5, 4, 0.1) == 1.0  # after M cycles
    with pytest.raises(ValueError, match="start"):
        cyclical_beta_restarting(0, 100, 0.5, 4, 1.5)
