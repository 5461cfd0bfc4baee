"""iVAE_MI for dialogue response generation (Fang et al., EMNLP 2019, "Implicit Deep Latent Variable Models for Text
Generation", §3 and the dialogue experiments of their §5), a baseline of the TWR-VAE paper's Table 5.

Reference code, details, what keeps the dual KL bounded and deviations: docs/methods.md, "iVAE (baselines/ivae.py)".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn.utils import parametrize

from harness.core.contract import ConfigError
from harness.data.vocab import BOS_ID, EOS_ID, PAD_ID
from harness.methods.dialogue_api import DialogueVAE
from harness.methods.model_api import LossTerms
from harness.methods.registry import register_method
from harness.core.schedules import linear_warmup
from layers.dialogue import (ContextEncoder, ReferenceBatchNorm1d, ResponseDecoder, UtteranceEncoder,
                             reference_initialisation)


@dataclass(frozen=True)
class IVAEOptions:
    emb_dim: int = 200
    hidden_dim: int = 300
    z_dim: int = 200
    noise_dim: int = 0  # size of the noise e fed to the generators; 0 = z_dim (reference)
    dropout: float = 0.5
    kl_warmup_steps: int = 10000
    kl_start: float = 0.0
    critic_steps: int = 5  # reference n_iters_d
    critic_hidden: int = 0  # width of nu's hidden layers; 0 = 2 * hidden_dim (reference)
    critic_layer_norm: bool = True  # per-example LayerNorm after nu's hidden layers (reference: BatchNorm1d)
    # the posterior and prior samplers' hidden layers (ImplicitSampler): batch = BatchNorm1d, as the reference (batch
    # statistics in training, running ones in eval mode); layer = per-example LayerNorm (the default until the prior's
    # draws were found to collapse under it); none
    sampler_norm: Literal["batch", "layer", "none"] = "batch"
    sampler_layer_norm: bool | None = None  # before sampler_norm: true = sampler_norm layer, false = none
    # nu's weights move critic_lr_scale * train.lr per update: the reference trains nu at 1e-5 (RMSprop lr_nu), which
    # is 0.01 of config/dialogue_smoke.yaml's lr (1e-3); 1 = train.lr, as every other parameter
    critic_lr_scale: float = 0.01
    init: str = "reference"  # reference (U(-0.02, 0.02) MLPs, orthogonal GRUs; reference_initialisation) | pytorch

    def __post_init__(self):
        if min(self.emb_dim, self.hidden_dim, self.z_dim) <= 0 or not 0 <= self.dropout < 1:
            raise ConfigError(f"ivae: dialogue sizes must be > 0 and dropout in [0, 1), got {self}")
        if self.noise_dim < 0 or self.critic_hidden < 0:
            raise ConfigError(f"ivae: noise_dim and critic_hidden must be >= 0 (0 = default), got {self}")
        if self.kl_warmup_steps < 0 or not 0 <= self.kl_start <= 1:
            raise ConfigError(f"ivae: kl_warmup_steps must be >= 0 and kl_start in [0, 1], got {self}")
        if self.critic_steps < 1 or not 0 < self.critic_lr_scale <= 1:
            raise ConfigError(f"ivae: critic_steps must be >= 1 and critic_lr_scale in (0, 1], got {self}")
        if self.init not in ("reference", "pytorch"):
            raise ConfigError(f"ivae: init must be 'reference' or 'pytorch', got {self.init!r}")
        if self.sampler_norm not in ("batch", "layer", "none"):
            raise ConfigError(f"ivae: sampler_norm must be 'batch', 'layer' or 'none', got {self.sampler_norm!r}")
        if self.sampler_layer_norm is not None:
            legacy = "layer" if self.sampler_layer_norm else "none"
            if self.sampler_norm not in ("batch", legacy):  # batch: the default, overridden by the older key
                raise ConfigError(f"ivae: sampler_layer_norm {self.sampler_layer_norm} contradicts sampler_norm "
                                  f"{self.sampler_norm!r}; give sampler_norm only")
            object.__setattr__(self, "sampler_norm", legacy)


class ImplicitSampler(nn.Module):
    """z = G(mu(h) + sigma(h) * eps): a Gaussian noise layer conditioned on h, pushed through an MLP G, so that
    samples are cheap and the density is implicit (reference: RecognitionEncoder/Prior + post/prior_generator).

    `norm` normalises every hidden layer (of the noise layer's body and of G) before its activation:
    - batch (reference): BatchNorm1d, each unit over the batch (running statistics in eval mode and for a batch of
      one). A component of G's input that is the same for every example is subtracted; what reaches G's units is
      how the examples differ: their contexts and their noise.
    - layer: LayerNorm, each example over its units. G then sees only the direction of W e, so a component of e
      common to all examples divides the noise's and the context's effect by its size: in the smoke config's
      trained prior it grew to norm 56 against a noise of norm 11 and z no longer depended on eps (docs/methods.md).
    - none: plain layers, whose ReLUs can all die (z one constant whatever eps)."""

    def __init__(self, input_dim: int, noise_dim: int, z_dim: int, norm: str = "batch"):
        super().__init__()
        def normalise(size):
            return {"batch": ReferenceBatchNorm1d, "layer": nn.LayerNorm, "none": lambda _: nn.Identity()}[norm](size)
        self.body = nn.Sequential(nn.Linear(input_dim, noise_dim), normalise(noise_dim), nn.Tanh(),
                                  nn.Linear(noise_dim, noise_dim), normalise(noise_dim), nn.Tanh())
        self.to_mu = nn.Linear(noise_dim, noise_dim)
        self.to_logvar = nn.Linear(noise_dim, noise_dim)
        self.generator = nn.Sequential(nn.Linear(noise_dim, z_dim), normalise(z_dim), nn.ReLU(),
                                       nn.Linear(z_dim, z_dim), normalise(z_dim), nn.ReLU(), nn.Linear(z_dim, z_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        body = self.body(h)
        mu, logvar = self.to_mu(body), self.to_logvar(body)
        return self.generator(mu + torch.randn_like(mu) * (0.5 * logvar).exp())


class DualCritic(nn.Module):
    """nu(z, c) -> [N], an estimate of log q(z|c) / p(z|c) at the optimum (reference: nu_net).

    With layer_norm each hidden layer is normalised per example, as the reference's BatchNorm1d does per batch: nu then
    depends on z only through normalised features, so for fixed weights it is bounded over all z, and a generator
    cannot raise exp(nu) by moving its samples far out; a plain LeakyReLU MLP grows linearly along such a path."""

    def __init__(self, z_dim: int, c_dim: int, hidden: int, layer_norm: bool = True):
        super().__init__()
        norm = (lambda: nn.LayerNorm(hidden)) if layer_norm else nn.Identity
        self.net = nn.Sequential(nn.Linear(z_dim + c_dim, hidden), norm(), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden, hidden), norm(), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, c], dim=-1)).squeeze(-1)


class _Scaled(nn.Module):
    """Parametrisation W = scale * stored (torch.nn.utils.parametrize)."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, stored: torch.Tensor) -> torch.Tensor:
        return stored * self.scale

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        return value / self.scale


def scale_learning_rate(module: nn.Module, scale: float) -> None:
    """Store every parameter W of `module` as W / scale and use scale * stored. Adam moves a stored value by about lr
    per step whatever its gradient's size, so W moves by about scale * lr: a learning-rate multiplier under the
    harness's one learning rate per run (the mechanism of the equalised learning rate, Karras et al., ICLR 2018,
    §4.1). Weight decay, applied to the stored values, acts on W 1 / scale^2 times as strongly."""
    if scale == 1:
        return
    for sub in list(module.modules()):
        for name, _ in list(sub.named_parameters(recurse=False)):
            parametrize.register_parametrization(sub, name, _Scaled(scale))


def dual_kl(nu_q: torch.Tensor, nu_p: torch.Tensor) -> torch.Tensor:
    """Fenchel-dual KL estimate nu(z_q) - exp(nu(z_p)) + 1 per pair (Fang et al. Eq. 6); its mean is a lower bound
    of KL(q || p) for any nu, tight at nu = log q/p. The critic maximises it, the model minimises it."""
    return nu_q - nu_p.exp() + 1.0


@register_method("ivae")
class IVAE(DialogueVAE):
    Options = IVAEOptions

    def __init__(self, vocab_size: int, options: IVAEOptions):
        super().__init__()
        self.options = o = options
        noise_dim = o.noise_dim or o.z_dim
        self.embedding = nn.Embedding(vocab_size, o.emb_dim, padding_idx=PAD_ID)
        self.utterance_encoder = UtteranceEncoder(self.embedding, o.hidden_dim, o.dropout)
        self.context_encoder = ContextEncoder(self.utterance_encoder, o.hidden_dim)
        self.posterior_net = ImplicitSampler(self.utterance_encoder.output_dim + o.hidden_dim, noise_dim, o.z_dim,
                                             o.sampler_norm)
        self.prior_net = ImplicitSampler(o.hidden_dim, noise_dim, o.z_dim, o.sampler_norm)
        self.decoder = ResponseDecoder(self.embedding, o.hidden_dim + o.z_dim, vocab_size, o.dropout)
        self.critic = DualCritic(o.z_dim, o.hidden_dim, o.critic_hidden or 2 * o.hidden_dim, o.critic_layer_norm)
        if o.init == "reference":  # models_dailydial.py: every MLP Linear U(-0.02, 0.02), so nu starts near 0
            reference_initialisation([self.utterance_encoder.rnn, self.context_encoder.rnn, self.decoder.rnn],
                                     [self.posterior_net, self.prior_net, self.critic], self.decoder.out)
        scale_learning_rate(self.critic, o.critic_lr_scale)  # after the initialisation, which writes W

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        critic = {id(p) for p in self.critic.parameters()}
        return {"model": [p for p in self.parameters() if id(p) not in critic],
                "critic": list(self.critic.parameters())}

    def kl_weight(self, step: int) -> float:
        return linear_warmup(step, self.options.kl_warmup_steps, self.options.kl_start)

    def sample_pair(self, x, c):
        """One posterior sample z ~ q(z|x,c) and one prior sample z ~ p(z|c) per example."""
        return self.posterior_net(torch.cat([x, c], dim=-1)), self.prior_net(c)

    def critic_loss(self, x, c) -> torch.Tensor:
        """[B] exp(nu(z_p, c)) - nu(z_q, c) on detached samples: minimising it maximises the dual KL over nu
        (reference train_dailydial.py, "nu update")."""
        with torch.no_grad():
            z_q, z_p = self.sample_pair(x, c)
        return -dual_kl(self.critic(z_q, c), self.critic(z_p, c))

    def loss(self, batch, step: int) -> LossTerms:
        c, _ = self.encode_context(batch)
        x = self.encode_response(batch)
        z = self.posterior_net(torch.cat([x, c], dim=-1))
        recon = -self.decoder.log_likelihood(batch.response, batch.response_lengths, torch.cat([z, c], dim=-1))
        # the dual KL trains the posterior and prior networks, not the encoders (reference "g phase": x, c detached)
        x_kl, c_kl = x.detach(), c.detach()
        z_q, z_p = self.sample_pair(x_kl, c_kl)
        kl = dual_kl(self.critic(z_q, c_kl), self.critic(z_p, c_kl))
        beta = self.kl_weight(step)
        return LossTerms(loss=recon + beta * kl, recon=recon, kl=kl, beta=beta)

    def training_step(self, batch, step: int, optimisation) -> LossTerms:
        with torch.no_grad():
            c, _ = self.encode_context(batch)
            x = self.encode_response(batch)
        for _ in range(self.options.critic_steps):
            optimisation.minimise(self.critic_loss(x, c), step, groups=("critic",))
        terms = self.loss(batch, step)
        optimisation.minimise(terms.loss, step, groups=("model",))
        return terms

    @torch.no_grad()
    def generate(self, batch, num_samples: int, max_len: int):
        c, _ = self.encode_context(batch)
        c = c.repeat_interleave(num_samples, dim=0)  # [B * S, H]
        z = self.prior_net(c)
        tokens, lengths = self.decoder.greedy(torch.cat([z, c], dim=-1), max_len, BOS_ID, EOS_ID)
        return tokens.view(-1, num_samples, max_len), lengths.view(-1, num_samples)
