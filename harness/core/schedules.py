"""Weight schedules beta(step) for the KL term."""
from __future__ import annotations


def linear_warmup(step: int, warmup_steps: int, start: float = 0.0) -> float:
    """beta rises linearly from `start` to 1 over `warmup_steps` updates, then stays 1 (Bowman et al. 2016).

    warmup_steps = 0 means no annealing (beta = 1 from the first step).
    """
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, start + (1.0 - start) * step / warmup_steps)


def per_batch_increase(step: int, start: float, increase_per_epoch: float, batches_per_epoch: int) -> float:
    """beta = min(1, start + (step + 1) * increase_per_epoch / batches_per_epoch): the TWR-VAE DailyDialog script
    (ruizheliUOA/TWR-VAE dialogue_dd/train_dailydial.py) starts from `beta_0` and adds 1 / (warmup * batches per
    epoch) *before* every batch, so its first batch already trains with beta_0 + one increment
    (beta_0 = 0.1, warmup = 10: increase_per_epoch = 0.1, beta = 1 after 9 epochs)."""
    if batches_per_epoch < 1 or increase_per_epoch <= 0:
        raise ValueError(f"batches_per_epoch must be >= 1 and increase_per_epoch > 0, got {batches_per_epoch} and "
                         f"{increase_per_epoch}")
    return min(1.0, start + (step + 1) * increase_per_epoch / batches_per_epoch)


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


def cyclical_beta_restarting(step: int, cycle_steps: int, ratio: float, cycles: int, start: float) -> float:
    """Cyclical annealing as Fu et al.'s language-model code runs it (haofuml/cyclical_annealing
    language_model/train_text_cyc_ptb.py l.121, 172-178), not as their Eq. 6: at the start of each cycle beta is reset
    to `start` (their 0.1), and 1 / (ratio x cycle_steps) -- their 1 / (warmup x batches per epoch), warmup 5 of a
    10-epoch cycle -- is added *before* every update, capped at 1: beta reaches 1 after (1 - start) of the rise.
    After `cycles` cycles (0: never) beta stays 1."""
    if cycle_steps <= 0 or not 0.0 < ratio <= 1.0 or not 0.0 <= start <= 1.0:
        raise ValueError(f"cycle_steps must be > 0, ratio in (0, 1] and start in [0, 1], got {cycle_steps}, {ratio}, "
                         f"{start}")
    if cycles and step >= cycles * cycle_steps:
        return 1.0
    return min(1.0, start + (step % cycle_steps + 1) / (ratio * cycle_steps))
