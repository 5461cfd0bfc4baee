"""Straightforward importance-weighted log p(x) loops, for benchmarking only, on given standard-normal draws.

`naive_iw_log_marginal`: one decoder pass per importance sample over the B sentences of the batch (He et al. 2019's
`nll_iw` loops over chunks of `ns` samples; here the chunk is one sample, the naive end of that loop).
`he_style_iw_log_marginal`: what He et al.'s evaluation does (jxhe/vae-lagging-encoder, `calc_iwnll` with test
batches of one sentence and `ns=100` samples per decoder pass): each sentence alone, encoded and then decoded
`samples_per_pass` samples at a time.
Both take `eps` [K, B, Z], the standard-normal draws, so that the harness's batched estimator can be compared on
exactly the same draws.
"""
from __future__ import annotations

import math

import torch

from harness.data.lm_dataset import Batch
from metrics.lm import gaussian_log_density, standard_normal_log_density


def log_weights(model, batch, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log p(x|z) + log p(z) - log q(z|x) [S, B] for z [S, B, Z]."""
    return model.log_likelihood(batch, z) + standard_normal_log_density(z) - gaussian_log_density(z, mu, logvar)


@torch.no_grad()
def naive_iw_log_marginal(model, batch, mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """log p(x) [B] ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K, one sample at a time."""
    std = (0.5 * logvar).exp()
    weights = [log_weights(model, batch, (mu + eps[k] * std).unsqueeze(0), mu, logvar)[0] for k in range(eps.shape[0])]
    return torch.logsumexp(torch.stack(weights), dim=0) - math.log(eps.shape[0])


@torch.no_grad()
def he_style_iw_log_marginal(model, batch, eps: torch.Tensor, samples_per_pass: int = 100) -> torch.Tensor:
    """The same estimate [B], sentence by sentence (a batch of one), `samples_per_pass` samples per decoder pass."""
    estimates = []
    for i in range(batch.size):
        length = int(batch.lengths[i])
        sentence = Batch(batch.tokens[i : i + 1, :length], batch.lengths[i : i + 1])
        mu, logvar = model.posterior(sentence)  # [1, Z]
        std = (0.5 * logvar).exp()
        weights = [log_weights(model, sentence, mu + eps[start : start + samples_per_pass, i : i + 1] * std, mu,
                               logvar)[:, 0]
                   for start in range(0, eps.shape[0], samples_per_pass)]
        estimates.append(torch.logsumexp(torch.cat(weights), dim=0) - math.log(eps.shape[0]))
    return torch.stack(estimates)
