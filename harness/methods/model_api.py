"""The small interface every text-VAE method implements, so the harness never needs to know which one it runs.

Shapes: B sentences, L padded length (incl. <s> and </s>), Z latent size, S latent samples per sentence.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import torch
from torch import nn

from harness.core.contract import ArchitectureConfig, build_dataclass
from metrics.lm import gaussian_kl_standard_normal


@dataclass
class LossTerms:
    """Per-sentence terms of one training step; the harness reduces `loss` over the batch."""

    loss: torch.Tensor  # [B] objective minimised: recon + beta * kl (+ method-specific terms)
    recon: torch.Tensor  # [B] -log p(x|z) at the sampled z
    kl: torch.Tensor  # [B] the KL regulariser as trained (before beta)
    beta: float = 1.0


@dataclass
class PaperProtocolTerms:
    """What the original TWR-VAE evaluation code computes per sentence (see ../shared/paper/README.md)."""

    recon: torch.Tensor  # [B] -log p(x|z) with z = posterior mean
    kl: torch.Tensor  # [B] the KL term the method trains with
    mi_mu: torch.Tensor  # [B, Z] posterior the original code estimates MI from
    mi_logvar: torch.Tensor  # [B, Z]


@dataclass(frozen=True)
class NoOptions:
    """A method without options."""


class Method(nn.Module):
    """What every registered method shares, whatever its task: typed options, parameter groups, the training
    step hooks. `TextVAE` (language modelling) and `harness.methods.dialogue_api.DialogueVAE` build on it."""

    task: ClassVar[str] = "<abstract>"
    Options: ClassVar[type] = NoOptions
    method_name: ClassVar[str] = "<unregistered>"

    @classmethod
    def parse_options(cls, values: Mapping[str, Any], where: str = "options"):
        return build_dataclass(cls.Options, dict(values), where)

    def options_dict(self) -> dict:
        return dataclasses.asdict(self.options)

    def loss(self, batch, step: int) -> LossTerms:
        """Per-example terms [B] of the training objective."""
        raise NotImplementedError

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Named parameter groups; the harness gives each its own optimiser."""
        return {"all": list(self.parameters())}

    def training_step(self, batch, step: int, optimisation) -> LossTerms:
        """One training update (harness.train.optim.Optimisation does the reduction, NaN guard and steps).

        Override for methods with their own update schedule; the default is one step on the whole loss.
        """
        terms = self.loss(batch, step)
        optimisation.minimise(terms.loss, step)
        return terms

    def on_train_start(self, batches_per_epoch: int) -> None:
        """Called before training starts or resumes with the number of training batches per epoch, for schedules
        counted in epochs (e.g. the TWR-VAE DailyDialog KL schedule, baselines/cvae.py)."""

    def on_epoch_end(self, epoch: int, valid_batches) -> None:
        """Called after each epoch with `valid_batches()` -> iterator over validation batches (on the model's
        device). State a method changes here must live in buffers so that checkpoints carry it."""

    def reload_weights(self, state_dict: dict) -> None:
        """Load earlier weights in the middle of training (an lr decay's reload of the best epoch). The default loads
        the whole state; a method whose buffers record where training is, not what was learned, keeps them (e.g.
        Lagging VAE's aggressive phase: the original code's flag is no part of the weights it reloads)."""
        self.load_state_dict(state_dict)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device


class TextVAE(Method):
    """Base class of registered language-modelling methods: set `Options` and implement the abstract methods."""

    task: ClassVar[str] = "lm"

    @classmethod
    def build(cls, vocab_size: int, architecture: ArchitectureConfig, options: Mapping[str, Any]) -> "TextVAE":
        return cls(vocab_size, architecture, cls.parse_options(options))

    # ---- evaluation
    def posterior(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance [B, Z] of the Gaussian q(z|x) of the latent the decoder is fed."""
        raise NotImplementedError

    def log_likelihood(self, batch, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) [S, B] summed over predicted tokens (words and </s>) for z of shape [S, B, Z]."""
        raise NotImplementedError

    def greedy_decode(self, z: torch.Tensor, max_length: int) -> list[list[int]]:
        """Word ids of the greedy decoding (argmax at every step, without <s> and </s>) of latents [N, Z]; used
        by the latent-space interpolation (harness.evaluate.interpolate). Optional: methods without it are skipped there."""
        raise NotImplementedError

    def prior_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) under the standard normal prior, summed over the last dimension."""
        return torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)

    def paper_protocol_terms(self, batch, posterior: tuple[torch.Tensor, torch.Tensor] | None = None) -> PaperProtocolTerms:
        """Default: reconstruction at the posterior mean, KL of the fed latent, MI from the same posterior.

        `posterior`: (mu, logvar) of `self.posterior(batch)` when the caller has it already: evaluation passes the
        one it scores the uniform protocol with, so that a stochastic posterior (SA-VAE's SVI refinement) is the
        same under both protocols."""
        mu, logvar = self.posterior(batch) if posterior is None else posterior
        recon = -self.log_likelihood(batch, mu.unsqueeze(0))[0]
        return PaperProtocolTerms(recon, gaussian_kl_standard_normal(mu, logvar), mu, logvar)
