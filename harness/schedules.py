"""Weight schedules beta(step) for the KL term."""
from __future__ import annotations


def linear_warmup(step: int, warmup_steps: int, start: float = 0.0) -> float:
    """beta rises linearly from `start` to 1 over `warmup_steps` updates, then stays 1 (Bowman et al. 2016).

    warmup_steps = 0 means no annealing (beta = 1 from the first step).
    """
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, start + (1.0 - start) * step / warmup_steps)


def cyclical_beta(step: int, cycle_steps: int, ratio: float = 0.5, cycles: int = 0) -> float:
    """Cyclical annealing (Fu et al. 2019, Eq. 6 with a linear f): within each cycle of `cycle_steps` updates beta
    rises linearly from 0 to 1 over the first `ratio` of the cycle, then stays 1 for the rest of it.

    As their `frange_cycle_linear`, the schedule spans `cycles` cycles (M) and beta stays 1 afterwards;
    cycles = 0 repeats the cycle for ever.
    """
    if cycle_steps <= 0 or not 0.0 < ratio <= 1.0:
        raise ValueError(f"cycle_steps must be > 0 and ratio in (0, 1], got {cycle_steps} and {ratio}")
    if cycles and step >= cycles * cycle_steps:
        return 1.0
    position = (step % cycle_steps) / cycle_steps  # tau in [0, 1)
    return min(1.0, position / ratio)
