"""TWR-VAE: Timestep-Wise Regularisation VAE (Li et al., COLING 2020, §3.2-3.3), on layers.sequence_vae's RNN-VAE.

Reads top to bottom like the paper:
  Eq. 3    every encoder state h_t defines q(z_t|x) = N(mu_t, diag sigma_t^2)  (SequenceVAE.timestep_posteriors);
  Eq. 3-4  the KL term is (1/T) sum_t KL(q(z_t|x) || p(z)) over every timestep (`regularised_timesteps` below)
           instead of the last one only, and the decoder reconstructs x from z_T ~ q(z_T|x) (`decoder_posterior`).
Variants (Tables 2-3): z = mean / sum of the timestep samples, the KL on the last 25/50/75 % or the last timestep
only (the basic VAE), LSTM/GRU/RNN; `timesteps: padded` reads every sentence over its batch's padded length, as the
original code. How and why this differs from ruizheliUOA/TWR-VAE: docs/methods.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.core.contract import ConfigError
from harness.methods.registry import register_method
from layers.recurrent import length_mask
from layers.sequence_vae import SequenceVAE, check_sequence_options

KL_TIMESTEPS = {"all": None, "last": 0, "last25": 25, "last50": 50, "last75": 75}
Z_MODES = ("normal", "mean", "sum")
TIMESTEPS = ("own", "padded")


@dataclass(frozen=True)
class TWRVAEOptions:
    rnn_type: str = "lstm"  # lstm | gru | rnn
    z_mode: str = "normal"  # normal: z = z_T; mean / sum: z = mean / sum of the timestep samples
    kl_timesteps: str = "all"  # all (TWR-VAE) | last (basic VAE) | last25 | last50 | last75
    kl_warmup_steps: int = 0  # linear KL annealing over this many updates; 0 = none
    kl_start: float = 0.0  # beta at step 0 when annealing
    word_dropout: float = 0.0  # decoder input words replaced by <unk> with this rate (Bowman et al. 2016)
    timesteps: str = "own"  # own: each sentence's real timesteps | padded: the batch's padded length (the original)

    def __post_init__(self):
        check_sequence_options(self)
        if self.z_mode not in Z_MODES:
            raise ConfigError(f"z_mode must be one of {Z_MODES}, got '{self.z_mode}'")
        if self.kl_timesteps not in KL_TIMESTEPS:
            raise ConfigError(f"kl_timesteps must be one of {sorted(KL_TIMESTEPS)}, got '{self.kl_timesteps}'")
        if self.timesteps not in TIMESTEPS:
            raise ConfigError(f"timesteps must be one of {TIMESTEPS}, got '{self.timesteps}'")


@register_method("twr-vae")
class TWRVAE(SequenceVAE):
    """Li et al. 2020: the KL of every encoder timestep's posterior (or the last P %), z from q(z_T|x) (z_mode)."""

    Options = TWRVAEOptions

    # ---- Eq. 3-4: the KL term averages over every timestep (SequenceVAE.timestep_wise_kl over these)
    def regularised_timesteps(self, lengths: torch.Tensor, max_len: int) -> torch.Tensor:
        """[B, L] bool: all T timesteps (TWR-VAE), the last round(T P / 100) >= 1 (lastP), or the last (basic)."""
        percent = KL_TIMESTEPS[self.options.kl_timesteps]
        if percent is None:
            keep = lengths
        elif percent == 0:
            keep = torch.ones_like(lengths)
        else:
            keep = torch.clamp(torch.round(lengths.double() * percent / 100.0).long(), min=1)
        return self.last_timesteps(lengths, keep, max_len)

    # ---- the latent fed to the decoder: z_T, or the mean / sum of the timestep samples
    def decoder_posterior(self, mu_t, logvar_t, lengths):
        """Mean and log-variance [B, Z] of the Gaussian the decoder's z is drawn from (z_mode), over T = lengths."""
        if self.options.z_mode == "normal":  # z = z_T
            return super().decoder_posterior(mu_t, logvar_t, lengths)
        weight = length_mask(lengths, mu_t.size(1)).to(mu_t.dtype).unsqueeze(2)
        mu_sum = (mu_t * weight).sum(1)
        var_sum = (logvar_t.exp() * weight).sum(1)
        if self.options.z_mode == "sum":
            return mu_sum, var_sum.log()
        count = lengths.to(mu_t.dtype).unsqueeze(1)
        return mu_sum / count, (var_sum / count.pow(2)).log()
