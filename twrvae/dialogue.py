"""TWR-VAE for dialogue (Li et al. 2020, §4.2 and Eq. 7): the CVAE of Zhao et al. with the KL term applied to
the posterior of *every* context-encoder timestep.

Reference code, details and deviations: docs/methods.md, "TWR-VAE for dialogue (twrvae/dialogue.py)".
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.core.contract import ConfigError
from harness.methods.registry import register_method
from metrics.lm import gaussian_kl

from baselines.cvae import CVAE, CVAEOptions


@dataclass(frozen=True)
class TWRCVAEOptions(CVAEOptions):
    bow_weight: float = 0.0  # the TWR-VAE dialogue code has no bag-of-words loss
    timesteps: str = "own"  # own | padded (the original code's KL over the batch's padded context length)

    def __post_init__(self):
        super().__post_init__()
        if self.timesteps not in ("own", "padded"):
            raise ConfigError(f"timesteps must be 'own' or 'padded', got {self.timesteps!r}")


@register_method("twr-cvae")
class TWRCVAE(CVAE):
    Options = TWRCVAEOptions

    def kl_term(self, x, c, context_states, batch):
        n = context_states.size(1)
        mu_t, logvar_t = self.recognition(torch.cat([x.unsqueeze(1).expand(-1, n, -1), context_states], dim=-1))
        prior_mu_t, prior_logvar_t = self.prior(context_states)
        if self.options.timesteps == "own":
            real = (torch.arange(n, device=c.device).unsqueeze(0) < batch.num_utterances.unsqueeze(1)).to(mu_t.dtype)
        else:  # the original: every slot of the batch's padded context length
            real = torch.ones(mu_t.shape[:2], dtype=mu_t.dtype, device=mu_t.device)
        kl = (gaussian_kl(mu_t, logvar_t, prior_mu_t, prior_logvar_t) * real).sum(1) / real.sum(1)  # Eq. 7
        mu, logvar = self.recognition(torch.cat([x, c], dim=-1))  # z from the last timestep's posterior
        return kl, mu, logvar
