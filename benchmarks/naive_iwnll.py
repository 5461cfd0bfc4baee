"""The naive importance-weighted log p(x), for benchmarking only: one decoder pass per importance sample.

This is the straightforward loop over the K samples (He et al. 2019's `nll_iw` loops over chunks of `ns`
samples; here the chunk is one sample, the naive end of that loop). Each pass decodes the B sentences of the
batch once. `eps` [K, B, Z] are the standard-normal draws, given so that the harness's batched estimator can
be compared on exactly the same draws.
"""
from __future__ import annotations

import math

import torch

from metrics.lm import gaussian_log_density, standard_normal_log_density


@torch.no_grad()
def naive_iw_log_marginal(model, batch, mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """log p(x) [B] ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K, one sample at a time."""
    log_weights = []
    std = (0.5 * logvar).exp()
    for k in range(eps.shape[0]):
        z = (mu + eps[k] * std).unsqueeze(0)  # [1, B, Z]
        log_weights.append(model.log_likelihood(batch, z)[0] + standard_normal_log_density(z[0])
                           - gaussian_log_density(z[0], mu, logvar))
    return torch.logsumexp(torch.stack(log_weights), dim=0) - math.log(eps.shape[0])
