"""The RNN-VAE of Bowman et al. (2016) that TWR-VAE (twrvae/) and the language-model baselines (baselines/) extend.

An LSTM/GRU/RNN encoder maps every prefix to a Gaussian q(z_t|x) (layers.recurrent.TimestepEncoder); the KL term
is the mean KL of a set of regularised timesteps -- here the last one only, the basic VAE -- and the decoder
(LatentDecoder) reconstructs x from z ~ q(z_T|x). Subclasses choose the regularised timesteps and the decoder's
posterior (TWR-VAE: every timestep, Eq. 3-4; z_mode mean/sum) and set `Options` (a frozen dataclass with at least
rnn_type, kl_warmup_steps, kl_start and word_dropout; an optional `timesteps` "own" | "padded").
"""
from __future__ import annotations

import torch
from torch import nn

from harness.core.contract import ArchitectureConfig, ConfigError
from harness.methods.model_api import LossTerms, PaperProtocolTerms, TextVAE
from harness.core.schedules import linear_warmup
from layers.recurrent import RNN_TYPES, LatentDecoder, TimestepEncoder
from metrics.lm import gaussian_kl_standard_normal


def check_sequence_options(options) -> None:
    """The checks every SequenceVAE options dataclass needs (rnn_type, KL annealing, word dropout)."""
    if options.rnn_type not in RNN_TYPES:
        raise ConfigError(f"rnn_type must be lstm, gru or rnn, got '{options.rnn_type}'")
    if options.kl_warmup_steps < 0 or not 0.0 <= options.kl_start <= 1.0:
        raise ConfigError("kl_warmup_steps must be >= 0 and kl_start in [0, 1]")
    if not 0.0 <= options.word_dropout < 1.0:
        raise ConfigError(f"word_dropout must be in [0, 1), got {options.word_dropout}")


class SequenceVAE(TextVAE):
    """Bowman et al.'s RNN-VAE with per-timestep posteriors; not registered itself (see twrvae/, baselines/)."""

    def __init__(self, vocab_size: int, arch: ArchitectureConfig, options):
        super().__init__()
        self.options = options
        self.encoder, self.decoder = self.build_layers(vocab_size, arch, options)

    def build_layers(self, vocab_size: int, arch: ArchitectureConfig, options) -> tuple[nn.Module, nn.Module]:
        """The encoder (per-timestep posteriors) and the decoder: the shared layers. A method whose recipe needs
        other layers with the same interface overrides this (baselines.vae_rnn's `layers: he`)."""
        sizes = (vocab_size, arch.emb_dim, arch.hidden_dim, arch.z_dim, arch.num_layers, arch.dropout, options.rnn_type)
        return TimestepEncoder(*sizes), LatentDecoder(*sizes, word_dropout=options.word_dropout)

    # ---- q(z_t|x) for every encoder timestep
    def timestep_posteriors(self, batch):
        """mu_t, logvar_t [B, L, Z] and the number of timesteps T [B] each sentence's latent is read over: its own
        length, or the batch's padded length L (option `timesteps: padded`, the original TWR-VAE code)."""
        mu_t, logvar_t = self.encoder(batch.tokens)
        if getattr(self.options, "timesteps", "own") == "padded":
            return mu_t, logvar_t, torch.full_like(batch.lengths, batch.tokens.size(1))
        return mu_t, logvar_t, batch.lengths

    @staticmethod
    def last_timesteps(lengths: torch.Tensor, keep: torch.Tensor, max_len: int) -> torch.Tensor:
        """[B, L] bool: the last `keep` [B] of each row's `lengths` [B] timesteps."""
        positions = torch.arange(max_len, device=lengths.device).unsqueeze(0)
        return (positions < lengths.unsqueeze(1)) & (positions >= (lengths - keep).unsqueeze(1))

    def regularised_timesteps(self, lengths: torch.Tensor, max_len: int) -> torch.Tensor:
        """[B, L] bool: the timesteps whose KL enters the loss; the basic VAE's is the last one."""
        return self.last_timesteps(lengths, torch.ones_like(lengths), max_len)

    def timestep_wise_kl(self, mu_t, logvar_t, lengths) -> torch.Tensor:
        """(1/|S|) sum_{t in S} KL(q(z_t|x) || N(0, I)) per sentence [B], S = the regularised timesteps."""
        selected = self.regularised_timesteps(lengths, mu_t.size(1)).to(mu_t.dtype)
        kl_t = gaussian_kl_standard_normal(mu_t, logvar_t)  # [B, L]
        return (kl_t * selected).sum(1) / selected.sum(1)

    # ---- the latent fed to the decoder
    @staticmethod
    def last_timestep(values, lengths):
        """values [B, L, Z] at each sentence's last timestep T: [B, Z]."""
        return values.gather(1, (lengths - 1).view(-1, 1, 1).expand(-1, 1, values.size(2))).squeeze(1)

    def decoder_posterior(self, mu_t, logvar_t, lengths):
        """Mean and log-variance [B, Z] of the Gaussian the decoder's z is drawn from: q(z_T|x)."""
        return self.last_timestep(mu_t, lengths), self.last_timestep(logvar_t, lengths)

    def kl_weight(self, step: int) -> float:
        return linear_warmup(step, self.options.kl_warmup_steps, self.options.kl_start)

    def loss(self, batch, step: int) -> LossTerms:
        mu_t, logvar_t, steps = self.timestep_posteriors(batch)
        kl = self.timestep_wise_kl(mu_t, logvar_t, steps)
        mu, logvar = self.decoder_posterior(mu_t, logvar_t, steps)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = -self.decoder.token_log_likelihood(batch.tokens, batch.lengths, z)
        beta = self.kl_weight(step)
        return LossTerms(loss=recon + beta * kl, recon=recon, kl=kl, beta=beta)

    # ---- evaluation interface
    def posterior(self, batch):
        return self.decoder_posterior(*self.timestep_posteriors(batch))

    def log_likelihood(self, batch, z: torch.Tensor) -> torch.Tensor:
        samples, size = z.shape[0], z.shape[1]
        tokens = batch.tokens.repeat(samples, 1)
        lengths = batch.lengths.repeat(samples)
        return self.decoder.token_log_likelihood(tokens, lengths, z.reshape(samples * size, -1)).view(samples, size)

    def greedy_decode(self, z: torch.Tensor, max_length: int) -> list[list[int]]:
        return self.decoder.greedy(z, max_length)

    def paper_protocol_terms(self, batch, posterior=None) -> PaperProtocolTerms:
        """As lang_model/main.py `reconstruction`: recon at the posterior mean, the KL term, and MI from the last
        timestep's posterior q(z_T|x). `posterior` is not needed: it is deterministic and computed here anyway."""
        mu_t, logvar_t, steps = self.timestep_posteriors(batch)
        mu, _ = self.decoder_posterior(mu_t, logvar_t, steps)
        recon = -self.decoder.token_log_likelihood(batch.tokens, batch.lengths, mu)
        kl = self.timestep_wise_kl(mu_t, logvar_t, steps)
        return PaperProtocolTerms(recon, kl, self.last_timestep(mu_t, steps), self.last_timestep(logvar_t, steps))
