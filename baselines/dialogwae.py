"""DialogWAE (Gu et al., ICLR 2019, "DialogWAE: Multimodal Response Generation with Conditional Wasserstein
Auto-Encoder"), with the Gaussian-mixture prior (their DialogWAE-GMP) or a single Gaussian (plain DialogWAE), a
dialogue baseline beside the CVAE.

Reference code, details and deviations: docs/methods.md, "DialogWAE (baselines/dialogwae.py)".
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from harness.core.contract import ConfigError
from harness.data.vocab import BOS_ID, EOS_ID, PAD_ID
from harness.methods.dialogue_api import DialogueVAE
from harness.methods.model_api import LossTerms
from harness.methods.registry import register_method
from layers.dialogue import (ContextEncoder, ReferenceBatchNorm1d, ResponseDecoder, UtteranceEncoder,
                             reference_initialisation)
from layers.modes import eval_mode


@dataclass(frozen=True)
class DialogWAEOptions:
    emb_dim: int = 200  # configs.py emb_size
    hidden_dim: int = 300  # n_hidden
    z_dim: int = 200  # z_size (also the noise size)
    dropout: float = 0.5
    prior_components: int = 3  # n_prior_components (DialogWAE-GMP); 1: plain DialogWAE's Gaussian prior net
    gumbel_temp: float = 0.1  # gumbel_temp
    n_critic: int = 5  # n_iters_d
    gp_lambda: float = 10.0  # lambda_gp
    critic_fresh_batches: bool = True  # critic iterations after the first on optimisation.random_batch()

    def __post_init__(self):
        if min(self.emb_dim, self.hidden_dim, self.z_dim) <= 0 or not 0 <= self.dropout < 1:
            raise ConfigError(f"dialogwae: sizes must be > 0 and dropout in [0, 1), got {self}")
        if self.prior_components < 1 or self.n_critic < 1 or self.gumbel_temp <= 0 or self.gp_lambda < 0:
            raise ConfigError(f"dialogwae: prior_components and n_critic must be >= 1, gumbel_temp > 0 and "
                              f"gp_lambda >= 0, got {self}")


def _init_uniform(module: nn.Module, bound: float) -> None:
    """The reference's init_weights: Linear weights U(-bound, bound), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)


def _mlp(sizes: list[int], activation) -> nn.Sequential:
    """Linear -> BatchNorm -> activation for every layer but the last, which is a bare Linear."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers += [ReferenceBatchNorm1d(b), activation()]
    return nn.Sequential(*layers)


class GaussianNoise(nn.Module):
    """modules.py `Variation`: 2x (Linear, BatchNorm, Tanh), then mu and log-variance; returns a sample eps."""

    def __init__(self, input_dim: int, z_dim: int):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(input_dim, z_dim), ReferenceBatchNorm1d(z_dim), nn.Tanh(),
                                  nn.Linear(z_dim, z_dim), ReferenceBatchNorm1d(z_dim), nn.Tanh())
        self.to_mu = nn.Linear(z_dim, z_dim)
        self.to_logvar = nn.Linear(z_dim, z_dim)
        _init_uniform(self, 0.02)

    def forward(self, h):
        h = self.body(h)
        mu, logvar = self.to_mu(h), self.to_logvar(h)
        return mu + torch.randn_like(mu) * (0.5 * logvar).exp()


class MixtureNoise(nn.Module):
    """modules.py `MixVariation`: K Gaussian components from c, one chosen per example by a hard (straight-through)
    Gumbel-softmax over the mixture logits pi_net(h); returns that component's sample eps~."""

    def __init__(self, input_dim: int, z_dim: int, components: int, gumbel_temp: float):
        super().__init__()
        self.components, self.z_dim, self.gumbel_temp = components, z_dim, gumbel_temp
        self.body = nn.Sequential(nn.Linear(input_dim, z_dim), ReferenceBatchNorm1d(z_dim), nn.Tanh(),
                                  nn.Linear(z_dim, z_dim), ReferenceBatchNorm1d(z_dim), nn.Tanh())
        self.pi_net = nn.Sequential(nn.Linear(z_dim, z_dim), ReferenceBatchNorm1d(z_dim), nn.Tanh(),
                                    nn.Linear(z_dim, components))
        self.to_mu = nn.Linear(z_dim, components * z_dim)
        self.to_logvar = nn.Linear(z_dim, components * z_dim)
        _init_uniform(self, 0.05)

    def forward(self, h):
        h = self.body(h)
        pi = F.gumbel_softmax(self.pi_net(h), tau=self.gumbel_temp, hard=True)  # [N, K] one-hot
        shape = (h.size(0), self.components, self.z_dim)
        mus, logvars = self.to_mu(h).view(shape), self.to_logvar(h).view(shape)
        samples = mus + torch.randn_like(mus) * (0.5 * logvars).exp()  # [N, K, Z]
        return (pi.unsqueeze(-1) * samples).sum(1)


def gradient_penalty(critic, z_prior: torch.Tensor, z_post: torch.Tensor, c: torch.Tensor, weight: float):
    """WGAN-GP term per example [N]: weight * (||d critic([zhat; c]) / d zhat|| - 1)^2 with zhat = a z~ + (1-a) z,
    a ~ U(0, 1) per example (reference train_D; per-example gradients, see the module docstring). The graph is
    kept (create_graph) so that the penalty trains the critic."""
    alpha = torch.rand(z_prior.size(0), 1, device=z_prior.device, dtype=z_prior.dtype)
    zhat = (alpha * z_prior.detach() + (1 - alpha) * z_post.detach()).requires_grad_(True)
    scores = critic(torch.cat([zhat, c.detach()], dim=-1))
    (grads,) = torch.autograd.grad(scores.sum(), zhat, create_graph=True)
    return weight * (grads.norm(2, dim=1) - 1) ** 2


@register_method("dialogwae")
class DialogWAE(DialogueVAE):
    Options = DialogWAEOptions

    def __init__(self, vocab_size: int, options: DialogWAEOptions):
        super().__init__()
        self.options = o = options
        h, z = o.hidden_dim, o.z_dim
        self.embedding = nn.Embedding(vocab_size, o.emb_dim, padding_idx=PAD_ID)
        self.utterance_encoder = UtteranceEncoder(self.embedding, h, o.dropout)
        self.context_encoder = ContextEncoder(self.utterance_encoder, h)
        self.post_net = GaussianNoise(self.utterance_encoder.output_dim + h, z)  # q(eps | x, c)
        if o.prior_components == 1:  # plain DialogWAE (models/dialogwae.py): prior_net = Variation, as post_net
            self.prior_net = GaussianNoise(h, z)
        else:  # DialogWAE-GMP (models/dialogwae_gmp.py): prior_net = MixVariation
            self.prior_net = MixtureNoise(h, z, o.prior_components, o.gumbel_temp)  # p(eps | c)
        self.post_generator = _mlp([z, z, z, z], nn.ReLU)  # G_q
        self.prior_generator = _mlp([z, z, z, z], nn.ReLU)  # G_p
        _init_uniform(self.post_generator, 0.02)
        _init_uniform(self.prior_generator, 0.02)
        self.decoder = ResponseDecoder(self.embedding, h + z, vocab_size, o.dropout)
        self.critic = _mlp([h + z, 2 * h, 2 * h, 1], lambda: nn.LeakyReLU(0.2))  # the reference's discriminator
        _init_uniform(self.critic, 0.02)
        # the reference's Encoder/ContextEncoder/Decoder init_weights: orthogonal GRUs, output layer U(-0.1, 0.1)
        reference_initialisation([self.utterance_encoder.rnn, self.context_encoder.rnn, self.decoder.rnn], [],
                                 self.decoder.out)

    # ---- parameter groups (reference optimizer_AE, optimizer_G, optimizer_D)
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        def params(*modules):
            seen, out = set(), []
            for m in modules:
                for p in m.parameters():
                    if id(p) not in seen:
                        seen.add(id(p))
                        out.append(p)
            return out

        return {"ae": params(self.context_encoder, self.post_net, self.post_generator, self.decoder),
                "generators": params(self.post_net, self.post_generator, self.prior_net, self.prior_generator),
                "critic": params(self.critic)}

    # ---- codes
    def posterior_code(self, x, c):
        return self.post_generator(self.post_net(torch.cat([x, c], dim=-1)))  # reference sample_code_post

    def prior_code(self, c):
        return self.prior_generator(self.prior_net(c))  # reference sample_code_prior

    def score(self, z, c):
        """Critic score [N] of a code given its context."""
        return self.critic(torch.cat([z, c], dim=-1)).squeeze(-1)

    def reconstruction(self, batch):
        """-log p(x | [z; c]) [B] with z from the posterior generator (reference train_AE)."""
        c = self.encode_context(batch)[0]
        z = self.posterior_code(self.encode_response(batch), c)
        recon = -self.decoder.log_likelihood(batch.response, batch.response_lengths, torch.cat([z, c], dim=-1))
        return recon, z, c

    def loss(self, batch, step: int) -> LossTerms:
        recon, z, c = self.reconstruction(batch)
        with torch.no_grad():
            w = self.score(self.prior_code(c), c) - self.score(z, c)  # critic's Wasserstein estimate
        return LossTerms(loss=recon, recon=recon, kl=w, beta=0.0)

    # ---- training (reference train.py: train_AE, train_G, n_iters_d x train_D per batch)
    @contextlib.contextmanager
    def _critic_frozen(self):
        flags = [p.requires_grad for p in self.critic.parameters()]
        for p in self.critic.parameters():
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p, flag in zip(self.critic.parameters(), flags):
                p.requires_grad_(flag)

    def _detached_context(self, batch):
        with eval_mode(self.context_encoder), torch.no_grad():
            return self.encode_response(batch), self.encode_context(batch)[0]

    def generator_loss(self, batch) -> torch.Tensor:
        """D([z~; c]) - D([z; c]) [B] with x, c detached (reference train_G)."""
        x, c = self._detached_context(batch)
        return self.score(self.prior_code(c), c) - self.score(self.posterior_code(x, c), c)

    def critic_loss(self, batch) -> torch.Tensor:
        """D([z; c]) - D([z~; c]) + gradient penalty [B], codes detached (reference train_D)."""
        x, c = self._detached_context(batch)
        with torch.no_grad():
            z_post, z_prior = self.posterior_code(x, c), self.prior_code(c)
        penalty = gradient_penalty(self.critic, z_prior, z_post, c, self.options.gp_lambda)
        return self.score(z_post, c) - self.score(z_prior, c) + penalty

    def training_step(self, batch, step: int, optimisation) -> LossTerms:
        recon, _, _ = self.reconstruction(batch)
        optimisation.minimise(recon, step, groups=("ae",))
        with self._critic_frozen():
            w = self.generator_loss(batch)
            optimisation.minimise(w, step, groups=("generators",))
        for i in range(self.options.n_critic):
            critic_batch = batch
            if i > 0 and self.options.critic_fresh_batches and optimisation.random_batch is not None:
                critic_batch = optimisation.random_batch()
            optimisation.minimise(self.critic_loss(critic_batch), step, groups=("critic",))
        recon, w = recon.detach(), w.detach()
        return LossTerms(loss=recon, recon=recon, kl=w, beta=0.0)

    @torch.no_grad()
    def generate(self, batch, num_samples: int, max_len: int):
        c = self.encode_context(batch)[0].repeat_interleave(num_samples, dim=0)  # [B * S, H]
        z = self.prior_code(c)
        tokens, lengths = self.decoder.greedy(torch.cat([z, c], dim=-1), max_len, BOS_ID, EOS_ID)
        return tokens.view(-1, num_samples, max_len), lengths.view(-1, num_samples)
