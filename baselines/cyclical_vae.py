"""Cyclical VAE (Fu et al., NAACL 2019, "Cyclical Annealing Schedule: A Simple Approach to Mitigating KL
Vanishing"): the basic VAE-LSTM (KL on the last encoder state) trained with a cyclical KL weight.

beta(step) repeats M times: a linear rise from 0 to 1 over the first R of each cycle, then 1 (their Eq. 6 with a
linear f; harness.core.schedules.cyclical_beta). The paper uses M = 4, R = 0.5 over the whole training run, so
`cycle_steps` = total updates / 4. With `beta_restart` the schedule is their language-model code's instead
(harness.core.schedules.cyclical_beta_restarting): each cycle restarts beta at 0.1, not 0. That code also restarts
the learning rate with every cycle (the trainer's lr_decay mode cosine-per-cycle, harness.train.lr_schedule). Its
language-model experiments use no word dropout; the option is kept for ablations.

Reference code, details and deviations: docs/methods.md, "Cyclical VAE (baselines/cyclical_vae.py)".
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.core.contract import ConfigError
from harness.methods.registry import register_method
from harness.core.schedules import cyclical_beta, cyclical_beta_restarting

from baselines.vae_rnn import BasicVAE, BasicVAEOptions


@dataclass(frozen=True)
class CyclicalVAEOptions(BasicVAEOptions):
    cycle_steps: int = 1000  # updates per cycle (T / M)
    cycles: int = 4  # M; beta stays 1 after M cycles (0 = cycle for ever)
    ratio: float = 0.5  # R: fraction of a cycle spent increasing beta
    beta_restart: float | None = None  # None: Eq. 6, from 0; Fu et al.'s language-model code: 0.1

    def __post_init__(self):
        if self.cycle_steps <= 0 or self.cycles < 0 or not 0.0 < self.ratio <= 1.0:
            raise ConfigError(f"cyclical-vae needs cycle_steps > 0, cycles >= 0 and ratio in (0, 1], got {self}")
        if self.beta_restart is not None and not 0.0 <= self.beta_restart < 1.0:
            raise ConfigError(f"cyclical-vae needs beta_restart in [0, 1) or null, got {self.beta_restart}")
        if self.kl_warmup_steps or self.kl_start:
            raise ConfigError("cyclical-vae has its own KL schedule: set cycle_steps / cycles / ratio, "
                              "not kl_warmup_steps / kl_start")
        super().__post_init__()


@register_method("cyclical-vae")
class CyclicalVAE(BasicVAE):
    Options = CyclicalVAEOptions

    def kl_weight(self, step: int) -> float:
        o = self.options
        if o.beta_restart is not None:
            return cyclical_beta_restarting(step, o.cycle_steps, o.ratio, o.cycles, o.beta_restart)
        return cyclical_beta(step, o.cycle_steps, o.ratio, o.cycles)
