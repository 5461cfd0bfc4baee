"""Language-modelling metrics for Gaussian-latent VAEs: KL, importance-weighted NLL, MI and active units.

Definitions follow He et al. 2019, "Lagging Inference Networks and Posterior Collapse in Variational
Autoencoders" (jxhe/vae-lagging-encoder: `nll_iw`, `calc_mi`, `calc_au`), re-implemented here; shapes:
B sentences, Z latent dimensions, S samples.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

LOG_2PI = math.log(2 * math.pi)


def gaussian_kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)), summed over the last dimension (Kingma & Welling 2014, App. B)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def gaussian_kl(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_q, diag e^logvar_q) || N(mu_p, diag e^logvar_p)), summed over the last dimension."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p).pow(2)) / logvar_p.exp() - 1.0).sum(-1)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)), summed over the last dimension; broadcasts."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


def standard_normal_log_density(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * (LOG_2PI + z.pow(2)).sum(-1)


def sample_gaussian(mu: torch.Tensor, logvar: torch.Tensor, num_samples: int, generator=None) -> torch.Tensor:
    """[S, B, Z] reparameterised samples z = mu + sigma * eps.

    eps is drawn on the generator's device and moved to mu's: a CPU generator gives the same draws whether the
    model runs on the CPU or a GPU, so a seed means the same Monte-Carlo estimate on every device.
    """
    where = generator.device if generator is not None else mu.device
    eps = torch.randn((num_samples, *mu.shape), generator=generator, device=where, dtype=mu.dtype).to(mu.device)
    return mu.unsqueeze(0) + eps * (0.5 * logvar).exp().unsqueeze(0)


def importance_weighted_log_marginal(
    log_likelihood: Callable[[torch.Tensor], torch.Tensor],
    mu: torch.Tensor,
    logvar: torch.Tensor,
    num_samples: int,
    chunk: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Importance-weighted estimate of log p(x) [B] with K = num_samples draws from q(z|x) (Burda et al. 2016):

        log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K,   z_k ~ q(z|x).

    Its expectation is a lower bound on log p(x) that tightens as K grows, so -estimate is an upper bound on
    the NLL in expectation. `log_likelihood(z)` maps z [S, B, Z] to log p(x|z) [S, B]; samples are decoded
    `chunk` at a time (one decoder pass over chunk x B sequences).
    """
    if num_samples < 1 or chunk < 1:
        raise ValueError(f"importance sampling needs num_samples >= 1 and chunk >= 1, got {num_samples} and {chunk}")
    log_weights = []
    remaining = num_samples
    while remaining > 0:
        s = min(chunk, remaining)
        z = sample_gaussian(mu, logvar, s, generator)
        log_weights.append(
            log_likelihood(z) + standard_normal_log_density(z) - gaussian_log_density(z, mu.unsqueeze(0), logvar.unsqueeze(0))
        )
        remaining -= s
    return torch.logsumexp(torch.cat(log_weights, 0), dim=0) - math.log(num_samples)


def _log_aggregate_posterior(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, block: int) -> torch.Tensor:
    """log q(z) = log (1/N) sum_n q(z | x_n) for each row of z [M, Z], over the N posteriors (mu, logvar)."""
    out = []
    for start in range(0, z.size(0), block):
        density = gaussian_log_density(z[start : start + block].unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))
        out.append(torch.logsumexp(density, dim=1) - math.log(mu.size(0)))
    return torch.cat(out)


def mutual_information(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None,
                       block: int = 1024) -> float:
    """I_q(x; z) under the empirical data distribution, exactly as He et al. 2019 `calc_mi` (Hoffman & Johnson 2016):

        I = E_x E_q(z|x)[log q(z|x)] - E_x E_q(z|x)[log q(z)],   q(z) = 1/N sum_n q(z|x_n),

    with the first term in closed form (negative entropy of a Gaussian) and one sample z ~ q(z|x) per x for the
    second. `mu`, `logvar` are [N, Z] for all N sentences the estimate is over. Its Monte-Carlo noise is about
    sqrt(Z / 2N) nats; `paired_mutual_information` is the low-variance form used by the uniform protocol.
    """
    z_dim = mu.size(1)
    neg_entropy = (-0.5 * z_dim * LOG_2PI - 0.5 * (1.0 + logvar).sum(-1)).mean()
    z = sample_gaussian(mu, logvar, 1, generator)[0]  # [N, Z]
    return float(neg_entropy - _log_aggregate_posterior(z, mu, logvar, block).mean())


def paired_mutual_information(mu: torch.Tensor, logvar: torch.Tensor, samples: int = 1,
                              generator: torch.Generator | None = None, block: int = 1024) -> float:
    """The same quantity as `mutual_information`, estimated as mean_{x, z~q(z|x)} [log q(z|x) - log q(z)].

    Both terms are evaluated at the *same* samples, so their noise largely cancels: the estimate is exactly 0 when
    q(z|x) does not depend on x (where `mutual_information` has noise of ~sqrt(Z/2N)), and it is >= 0 up to
    that residual noise. Same expectation as He et al.'s estimator; `samples` draws per sentence.
    """
    z = sample_gaussian(mu, logvar, samples, generator)  # [S, N, Z]
    log_q_own = gaussian_log_density(z, mu.unsqueeze(0), logvar.unsqueeze(0))  # [S, N]
    log_q_agg = _log_aggregate_posterior(z.reshape(-1, mu.size(1)), mu, logvar, block).view(samples, -1)
    return float((log_q_own - log_q_agg).mean())


def batchwise_mutual_information(
    mu: torch.Tensor, logvar: torch.Tensor, batch_size: int, generator: torch.Generator | None = None
) -> float:
    """The original TWR-VAE code's MI: `mutual_information` per consecutive batch, averaged weighted by size."""
    total, count = 0.0, 0
    for start in range(0, mu.size(0), batch_size):
        m, lv = mu[start : start + batch_size], logvar[start : start + batch_size]
        total += mutual_information(m, lv, generator) * m.size(0)
        count += m.size(0)
    return total / count


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> int:
    """Number of latent dimensions u with Cov_x(E_q(u|x)[u]) > threshold (Burda et al. 2016, §5.2), [N, Z] means."""
    if mu.size(0) < 2:
        raise ValueError("active units need at least two sentences")
    return int((mu.var(dim=0, unbiased=True) > threshold).sum())
