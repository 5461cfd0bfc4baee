"""SA-VAE: semi-amortised VAE (Kim et al., ICML 2018, "Semi-Amortized Variational Autoencoders", Algorithm 1).

Reference code, details and deviations: docs/methods.md, "SA-VAE (baselines/sa_vae.py)".
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from harness.core.contract import ConfigError
from harness.methods.model_api import LossTerms, TextVAE
from harness.methods.registry import register_method
from metrics.lm import gaussian_kl_standard_normal

from baselines.vae_rnn import BasicVAE, BasicVAEOptions


@dataclass(frozen=True)
class SAVAEOptions(BasicVAEOptions):
    svi_steps: int = 20  # K, Kim et al.'s default; the cost of a training step grows ~linearly with it
    svi_lr: float = 1.0 / 32  # per-sentence step size (their lr 1 on the mean over a batch of 32)
    svi_momentum: float = 0.5
    svi_max_grad_norm: float = 5.0  # 0 = no clipping
    svi_at_eval: bool = True  # refine the posterior at evaluation too (as Kim et al.)

    def __post_init__(self):
        if self.svi_steps < 0 or self.svi_lr <= 0 or not 0.0 <= self.svi_momentum < 1.0 or self.svi_max_grad_norm < 0:
            raise ConfigError(f"sa-vae needs svi_steps >= 0, svi_lr > 0, svi_momentum in [0, 1) and "
                              f"svi_max_grad_norm >= 0, got {self}")
        super().__post_init__()


def clip_rows(grad: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Scale each row (one sentence's gradient) down to norm <= max_norm (0 = unchanged)."""
    if max_norm <= 0:
        return grad
    norm = grad.norm(dim=-1, keepdim=True)
    return grad * torch.clamp(max_norm / (norm + 1e-6), max=1.0)


@register_method("sa-vae")
class SAVAE(BasicVAE):
    Options = SAVAEOptions

    def negative_elbo(self, batch, mu, logvar):
        """Per-sentence recon (one z sample) and KL of the Gaussian (mu, logvar) [B]."""
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = -self.decoder.token_log_likelihood(batch.tokens, batch.lengths, z)
        return recon, gaussian_kl_standard_normal(mu, logvar)

    def refine(self, batch, mu, logvar, beta: float, differentiable: bool):
        """K SVI steps from (mu, logvar); with `differentiable` the steps stay in the autograd graph."""
        o = self.options
        differentiable = differentiable and mu.requires_grad and logvar.requires_grad
        if not differentiable:
            mu, logvar = mu.detach().requires_grad_(), logvar.detach().requires_grad_()
        momentum_mu, momentum_logvar = torch.zeros_like(mu), torch.zeros_like(logvar)
        # cuDNN's RNN supports neither double backward (training) nor any backward in eval mode (evaluation)
        no_cudnn = torch.backends.cudnn.flags(enabled=False) if mu.is_cuda else contextlib.nullcontext()
        with torch.enable_grad(), no_cudnn:
            for _ in range(o.svi_steps):
                recon, kl = self.negative_elbo(batch, mu, logvar)
                grad_mu, grad_logvar = torch.autograd.grad((recon + beta * kl).sum(), (mu, logvar),
                                                           create_graph=differentiable)
                momentum_mu = o.svi_momentum * momentum_mu - clip_rows(grad_mu, o.svi_max_grad_norm)
                momentum_logvar = o.svi_momentum * momentum_logvar - clip_rows(grad_logvar, o.svi_max_grad_norm)
                mu, logvar = mu + o.svi_lr * momentum_mu, logvar + o.svi_lr * momentum_logvar
                if not differentiable:
                    mu, logvar = mu.detach().requires_grad_(), logvar.detach().requires_grad_()
        return (mu, logvar) if differentiable else (mu.detach(), logvar.detach())

    def loss(self, batch, step: int) -> LossTerms:
        beta = self.kl_weight(step)
        mu0, logvar0 = super().posterior(batch)  # amortised initialisation lambda_0
        no_cudnn = torch.backends.cudnn.flags(enabled=False) if mu0.is_cuda else contextlib.nullcontext()
        with no_cudnn:
            mu, logvar = self.refine(batch, mu0, logvar0, beta, differentiable=True)
            recon, kl = self.negative_elbo(batch, mu, logvar)
        return LossTerms(loss=recon + beta * kl, recon=recon, kl=kl, beta=beta)

    def posterior(self, batch):
        mu0, logvar0 = super().posterior(batch)
        if not self.options.svi_at_eval:
            return mu0, logvar0
        return self.refine(batch, mu0, logvar0, beta=1.0, differentiable=False)

    paper_protocol_terms = TextVAE.paper_protocol_terms  # recon at the refined mean + KL of the refined posterior
