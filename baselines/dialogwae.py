"""DialogWAE (Gu et al., ICLR 2019, "DialogWAE: Multimodal Response Generation with Conditional Wasserstein
Auto-Encoder"), with the Gaussian-mixture prior (their DialogWAE-GMP) or a single Gaussian (plain DialogWAE), a
dialogue baseline beside the CVAE.

Following guxd/DialogWAE `models/dialogwae.py` (class DialogWAE), `models/dialogwae_gmp.py` (DialogWAE_GMP),
`modules.py` (Variation, MixVariation), `train.py` (the per-batch schedule) and `configs.py` (sizes):

    c  = ContextEncoder(utterances, floors)               the dialogue context (shared with the CVAE here)
    x  = UtteranceEncoder(response)
    eps  ~ q(eps|x, c)   Gaussian recognition net (`Variation` on [x; c])    z  = G_q(eps)   posterior code
    eps~ ~ p(eps|c)      K-component Gaussian mixture, one component picked
                         by a hard Gumbel-softmax (`MixVariation` on c)      z~ = G_p(eps~)  prior code
    decoder p(x | [z; c]),  critic D([z; c]) -> R (MLP with BatchNorm + LeakyReLU)

Every training batch runs three phases (reference `train_AE`, `train_G`, `train_D`), each one
`optimisation.minimise(..., groups=...)` on a named parameter group:
  1. "ae": -log p(x|z, c) with z from the posterior; updates embedding, encoders, recognition net, G_q, decoder.
  2. "generators": D([z~; c]) - D([z; c]) with x and c detached and D frozen; updates the recognition net, G_q,
     the prior net and G_p, so that the prior codes move towards the posterior codes (Wasserstein distance).
  3. "critic", n_critic times: D([z; c]) - D([z~; c]) + lambda * (||grad_zhat D([zhat; c])|| - 1)^2 (WGAN-GP),
     zhat a random interpolation of z~ and z (both detached); updates D only.
In phases 2 and 3 the context/utterance encoders run in eval mode (no dropout), as the reference does.
Responses are generated greedily from [z~; c], z~ from the prior generator.

`loss()` (used for validation) returns recon = -log p(x|z, c) at a posterior sample and, as `kl`, the critic's
per-example estimate of the Wasserstein distance D([z~; c]) - D([z; c]) (the sign of the reference's costG /
-costD without the penalty); `loss == recon` and `beta == 0` since the autoencoder phase minimises recon only,
so the harness's validation criterion recon + kl is the WAE objective recon + W. `training_step` reports the
AE phase's recon and the generator phase's Wasserstein estimate.

Deviations from the reference (on purpose or forced by the harness):
- Optimisers: the harness gives each group one Adam with `train.lr`; the reference uses SGD lr 1.0 (AE, with
  StepLR 0.6 every 10 epochs), RMSprop 5e-5 (generators) and RMSprop 1e-5 (critic). Clipping is the harness's
  `grad_clip` over the stepped group (the reference clips only context encoder + decoder at 1.0 in phase 1).
- Schedule: the reference draws critic iterations 2..n_iters_d from the *next* training batches and so does
  phases 1-2 on one batch in n_iters_d. Here phases 1-2 run on every batch; critic iterations 2..n_critic use
  `optimisation.random_batch()` when the trainer provides it (`critic_fresh_batches`), else the same batch.
- Reconstruction is summed per response and reduced by the harness (reference: mean token cross-entropy).
- Gradient penalty: per-example gradient of D (WGAN-GP, Gulrajani et al. 2017). The reference differentiates
  the *batch mean* of D, which scales every gradient by 1/B and so enforces norm B rather than 1.
- BatchNorm layers (as the reference's, in the generators, Variation nets and critic) fall back to their
  running statistics for a training batch of one example, where batch statistics are undefined.
- The noise eps has the size of z (the reference's noise size = z_size); encoder noise (`noise_radius`) is
  unused in the reference's training path and omitted. Softmax temperature 1.0 (`temp`) is omitted.
- `kl_warmup_steps` is accepted (the shared tiny-model helper passes it) and ignored: there is no KL term.
- K: the reference config sets n_prior_components = 3 (its comment says "DailyDial 5 SWDA 3"); default 3 here.
  `prior_components: 1` is plain DialogWAE (its prior net is a single-Gaussian `Variation`, as the posterior's),
  the variant whose published numbers the TWR-VAE paper's "WAE" row repeats (config/paper.yaml).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from harness.config import ConfigError
from harness.data.vocab import BOS_ID, EOS_ID, PAD_ID
from harness.dialogue_api import DialogueVAE
from harness.model_api import LossTerms
from harness.registry import register_method
from twrvae.dialogue_modules import ContextEncoder, ResponseDecoder, UtteranceEncoder, reference_initialisation


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
    kl_warmup_steps: int = 0  # accepted for the shared dialogue helpers; ignored (no KL term)

    def __post_init__(self):
        if min(self.emb_dim, self.hidden_dim, self.z_dim) <= 0 or not 0 <= self.dropout < 1:
            raise ConfigError(f"dialogwae: sizes must be > 0 and dropout in [0, 1), got {self}")
        if self.prior_components < 1 or self.n_critic < 1 or self.gumbel_temp <= 0 or self.gp_lambda < 0:
            raise ConfigError(f"dialogwae: prior_components and n_critic must be >= 1, gumbel_temp > 0 and "
                              f"gp_lambda >= 0, got {self}")
        if self.kl_warmup_steps < 0:
            raise ConfigError(f"dialogwae: kl_warmup_steps must be >= 0, got {self}")


class _BatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d (eps 1e-5, momentum 0.1 as the reference) that uses running statistics for a batch of one."""

    def forward(self, x):
        if self.training and x.size(0) == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


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
            layers += [_BatchNorm1d(b), activation()]
    return nn.Sequential(*layers)


class GaussianNoise(nn.Module):
    """modules.py `Variation`: 2x (Linear, BatchNorm, Tanh), then mu and log-variance; returns a sample eps."""

    def __init__(self, input_dim: int, z_dim: int):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(input_dim, z_dim), _BatchNorm1d(z_dim), nn.Tanh(),
                                  nn.Linear(z_dim, z_dim), _BatchNorm1d(z_dim), nn.Tanh())
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
        self.body = nn.Sequential(nn.Linear(input_dim, z_dim), _BatchNorm1d(z_dim), nn.Tanh(),
                                  nn.Linear(z_dim, z_dim), _BatchNorm1d(z_dim), nn.Tanh())
        self.pi_net = nn.Sequential(nn.Linear(z_dim, z_dim), _BatchNorm1d(z_dim), nn.Tanh(),
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
    def _encoders_eval(self):
        was_training = self.context_encoder.training  # covers the utterance encoder and embedding
        self.context_encoder.eval()
        try:
            yield
        finally:
            self.context_encoder.train(was_training)

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
        with self._encoders_eval(), torch.no_grad():
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
