"""CVAE for dialogue response generation (Zhao et al., ACL 2017, "Learning Discourse-level Diversity for Neural
Dialog Models using Conditional Variational Autoencoders", §3.1-3.2), the baseline of the paper's Table 5.

    c = ContextEncoder(utterances, floors)                 the dialogue context
    q(z|x, c) = N(mu, sigma^2) from [x; c]                  recognition network, x = UtteranceEncoder(response)
    p(z|c)    = N(mu', sigma'^2) from c                     prior network
    loss      = -log p(x|z, c) + beta * KL(q(z|x,c) || p(z|c)) + bow * -log p_bow(x|z, c)
with beta annealed linearly from 0 to 1 (Zhao et al.: over 10,000 updates) and the bag-of-words loss (their §3.2)
that keeps the decoder from ignoring z. Encoders and sizes follow the TWR-VAE dialogue code (after DialogWAE):
shared embedding 200, hidden 300, z 200, decoder state [z; c]. Responses are generated greedily with z ~ p(z|c).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from harness.core.contract import ConfigError
from harness.data.vocab import BOS_ID, EOS_ID, PAD_ID
from harness.methods.dialogue_api import DialogueVAE
from harness.methods.model_api import LossTerms
from harness.methods.registry import register_method
from harness.core.schedules import linear_warmup, per_batch_increase
from metrics.lm import gaussian_kl
from layers.dialogue import (BagOfWordsHead, ContextEncoder, GaussianHead, ResponseDecoder,
                                     UtteranceEncoder, reference_initialisation)


@dataclass(frozen=True)
class CVAEOptions:
    emb_dim: int = 200
    hidden_dim: int = 300
    z_dim: int = 200
    dropout: float = 0.5
    kl_warmup_steps: int = 10000  # Zhao et al. full_kl_step; 0 = beta 1 throughout (TWR-VAE Switchboard script)
    kl_start: float = 0.0
    # beta rises from kl_start by this much per epoch, a share before every batch (TWR-VAE DailyDialog script: 0.1,
    # i.e. --warmup 10); None = the kl_warmup_steps schedule
    kl_increase_per_epoch: float | None = None
    bow_weight: float = 1.0  # 0 = no bag-of-words loss
    init: str = "reference"  # reference (the TWR-VAE / DialogWAE code's; reference_initialisation) | pytorch
    embedding_init: str = "vectors"  # vectors (pretrained word vectors, when the harness passes some) | random

    def __post_init__(self):
        if min(self.emb_dim, self.hidden_dim, self.z_dim) <= 0 or not 0 <= self.dropout < 1:
            raise ConfigError(f"dialogue sizes must be > 0 and dropout in [0, 1), got {self}")
        if self.kl_warmup_steps < 0 or self.bow_weight < 0 or not 0 <= self.kl_start <= 1:
            raise ConfigError(f"kl_warmup_steps and bow_weight must be >= 0, kl_start in [0, 1], got {self}")
        if self.kl_increase_per_epoch is not None and (self.kl_increase_per_epoch <= 0 or self.kl_warmup_steps):
            raise ConfigError(f"kl_increase_per_epoch must be > 0 and replaces kl_warmup_steps (set it to 0), got "
                              f"kl_increase_per_epoch {self.kl_increase_per_epoch}, kl_warmup_steps "
                              f"{self.kl_warmup_steps}")
        if self.init not in ("reference", "pytorch") or self.embedding_init not in ("vectors", "random"):
            raise ConfigError(f"init must be 'reference' or 'pytorch' and embedding_init 'vectors' or 'random', got "
                              f"{self.init!r} and {self.embedding_init!r}")


@register_method("cvae")
class CVAE(DialogueVAE):
    Options = CVAEOptions

    def __init__(self, vocab_size: int, options: CVAEOptions):
        super().__init__()
        self.options = o = options
        self.embedding = nn.Embedding(vocab_size, o.emb_dim, padding_idx=PAD_ID)
        self.utterance_encoder = UtteranceEncoder(self.embedding, o.hidden_dim, o.dropout)
        self.context_encoder = ContextEncoder(self.utterance_encoder, o.hidden_dim)
        self.recognition = GaussianHead(self.utterance_encoder.output_dim + o.hidden_dim, o.z_dim)
        self.prior = GaussianHead(o.hidden_dim, o.z_dim, hidden=True)
        self.decoder = ResponseDecoder(self.embedding, o.hidden_dim + o.z_dim, vocab_size, o.dropout)
        self.bow = BagOfWordsHead(o.hidden_dim + o.z_dim, vocab_size) if o.bow_weight > 0 else None
        if o.init == "reference":
            reference_initialisation([self.utterance_encoder.rnn, self.context_encoder.rnn, self.decoder.rnn],
                                     [self.recognition, self.prior], self.decoder.out)
        self.batches_per_epoch: int | None = None

    def on_train_start(self, batches_per_epoch: int) -> None:
        self.batches_per_epoch = batches_per_epoch

    def initialise_embeddings(self, vocab, vectors, name: str) -> dict:
        if self.options.embedding_init == "random":
            return {"vectors": name, "initialised": 0, "note": "embedding_init random: not initialised from vectors "
                                                               "(as the TWR-VAE dialogue scripts as released)"}
        return super().initialise_embeddings(vocab, vectors, name)

    def kl_weight(self, step: int) -> float:
        o = self.options
        if o.kl_increase_per_epoch is None:
            return linear_warmup(step, o.kl_warmup_steps, o.kl_start)
        if self.batches_per_epoch is None:
            raise RuntimeError("kl_increase_per_epoch needs the number of batches per epoch: the trainer passes it "
                               "through on_train_start before the first step")
        return per_batch_increase(step, o.kl_start, o.kl_increase_per_epoch, self.batches_per_epoch)

    def kl_term(self, x, c, context_states, batch):
        """The regulariser and the recognition posterior z is drawn from: KL(q(z|x,c) || p(z|c)) [B]."""
        mu, logvar = self.recognition(torch.cat([x, c], dim=-1))
        prior_mu, prior_logvar = self.prior(c)
        return gaussian_kl(mu, logvar, prior_mu, prior_logvar), mu, logvar

    def loss(self, batch, step: int) -> LossTerms:
        c, context_states = self.encode_context(batch)
        x = self.encode_response(batch)
        kl, mu, logvar = self.kl_term(x, c, context_states, batch)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        state = torch.cat([z, c], dim=-1)
        recon = -self.decoder.log_likelihood(batch.response, batch.response_lengths, state)
        beta = self.kl_weight(step)
        loss = recon + beta * kl
        if self.bow is not None:
            loss = loss + self.options.bow_weight * self.bow.negative_log_likelihood(
                state, batch.response, batch.response_lengths)
        return LossTerms(loss=loss, recon=recon, kl=kl, beta=beta)

    @torch.no_grad()
    def generate(self, batch, num_samples: int, max_len: int):
        c, _ = self.encode_context(batch)
        c = c.repeat_interleave(num_samples, dim=0)  # [B * S, H]
        prior_mu, prior_logvar = self.prior(c)
        z = prior_mu + torch.randn_like(prior_mu) * (0.5 * prior_logvar).exp()
        tokens, lengths = self.decoder.greedy(torch.cat([z, c], dim=-1), max_len, BOS_ID, EOS_ID)
        return tokens.view(-1, num_samples, max_len), lengths.view(-1, num_samples)
