"""BN-VAE (Zhu et al., ACL 2020, "A Batch Normalized Inference Network Keeps the KL Vanishing Away").

The basic VAE-LSTM (KL on the last encoder state) whose posterior means pass through batch normalisation with a
*fixed* scale gamma and a learned shift beta_i per dimension:  mu_i = gamma * (mu'_i - mean_B) / std_B + beta_i.
Over a training batch the mean of mu_i^2 is then gamma^2 + beta_i^2, so the batch-averaged KL
(1/2) sum_i E_B[mu_i^2 + sigma_i^2 - log sigma_i^2 - 1] >= (1/2) sum_i (gamma^2 + beta_i^2) >= n * gamma^2 / 2
(their Eq. 5-6; sigma^2 - log sigma^2 - 1 >= 0): the KL cannot vanish. At evaluation, batch norm uses its running
statistics, so each sentence's posterior is independent of the batch. Table 2 of Li et al. uses gamma = 0.7.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from harness.core.contract import ConfigError
from harness.methods.model_api import LossTerms, TextVAE
from harness.methods.registry import register_method
from metrics.lm import gaussian_kl_standard_normal

from baselines.vae_rnn import BasicVAE, BasicVAEOptions


@dataclass(frozen=True)
class BNVAEOptions(BasicVAEOptions):
    gamma: float = 0.7  # the fixed BN scale of the posterior means

    def __post_init__(self):
        if not self.gamma > 0:
            raise ConfigError(f"bn-vae needs gamma > 0, got {self.gamma}")
        super().__post_init__()


@register_method("bn-vae")
class BNVAE(BasicVAE):
    Options = BNVAEOptions

    def __init__(self, vocab_size, arch, options: BNVAEOptions):
        super().__init__(vocab_size, arch, options)
        self.mu_bn = nn.BatchNorm1d(arch.z_dim)
        self.mu_bn.weight.requires_grad_(False)  # gamma is fixed, beta (the bias) is learned
        with torch.no_grad():
            self.mu_bn.weight.fill_(options.gamma)

    def posterior(self, batch):
        mu, logvar = super().posterior(batch)  # q(z_T|x) of the last real encoder state
        return self.mu_bn(mu), logvar

    def loss(self, batch, step: int) -> LossTerms:
        mu, logvar = self.posterior(batch)
        kl = gaussian_kl_standard_normal(mu, logvar)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = -self.decoder.token_log_likelihood(batch.tokens, batch.lengths, z)
        beta = self.kl_weight(step)
        return LossTerms(loss=recon + beta * kl, recon=recon, kl=kl, beta=beta)

    paper_protocol_terms = TextVAE.paper_protocol_terms  # recon at the (normalised) mean + KL of that posterior
