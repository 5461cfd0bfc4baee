"""Weight schedules beta(step) for the KL term."""
from __future__ import annotations


def linear_warmup(step: int, warmup_steps: int, start: float = 0.0) -> float:
    """beta rises linearly from `start` to 1 over `warmup_steps` updates, then stays 1 (Bowman et al. 2016).

    warmup_steps = 0 means no annealing (beta = 1 from the first step).
    """
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, start + (1.0 - start) * step / warmup_steps)
