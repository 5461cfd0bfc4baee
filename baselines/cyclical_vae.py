"""Cyclical VAE (Fu et al., NAACL 2019, "Cyclical Annealing Schedule: A Simple Approach to Mitigating KL
Vanishing"): the basic VAE-LSTM (KL on the last encoder state) trained with a cyclical KL weight.

beta(step) repeats M times: a linear rise from 0 to 1 over the first R of each cycle, then 1 (their Eq. 6 with a
linear f; harness.core.schedules.cyclical_beta). The paper uses M = 4, R = 0.5 over the whole training run, so
`cycle_steps` = total updates / 4. Its language-model experiments use no word dropout; the option is kept for
ablations.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.core.contract import ConfigError
from harness.methods.registry import register_method
from harness.core.schedules import cyclical_beta

from baselines.vae_rnn import BasicVAE, BasicVAEOptions


@dataclass(frozen=True)
class CyclicalVAEOptions(BasicVAEOptions):
    cycle_steps: int = 1000  # updates per cycle (T / M)
    cycles: int = 4  # M; beta stays 1 after M cycles (0 = cycle for ever)
    ratio: float = 0.5  # R: fraction of a cycle spent increasing beta

    def __post_init__(self):
        if self.cycle_steps <= 0 or self.cycles < 0 or not 0.0 < self.ratio <= 1.0:
            raise ConfigError(f"cyclical-vae needs cycle_steps > 0, cycles >= 0 and ratio in (0, 1], got {self}")
        if self.kl_warmup_steps or self.kl_start:
            raise ConfigError("cyclical-vae has its own KL schedule: set cycle_steps / cycles / ratio, "
                              "not kl_warmup_steps / kl_start")
        super().__post_init__()


@register_method("cyclical-vae")
class CyclicalVAE(BasicVAE):
    Options = CyclicalVAEOptions

    def kl_weight(self, step: int) -> float:
        o = self.options
        return cyclical_beta(step, o.cycle_steps, o.ratio, o.cycles)
