"""Estimators of log p(x) for a latent-variable model, to measure how tight an importance-weighted bound is.

Everything here sees the model only through `log_likelihood(z)`: z [S, B, Z] -> log p(x|z) [S, B] for a batch of B
sentences (differentiable in z for the fitted proposal and AIS), with the prior p(z) = N(0, I). Shapes: B sentences,
Z latent dimensions, S samples, C chains or mixture components.

- `importance_weighted`: log p(x) ~= logsumexp_k w_k - log K, w_k = log p(x, z_k) - log r(z_k), z_k ~ r, for any
  proposal r (Burda et al. 2016): the model's q(z|x); q widened (`GaussianProposal.widened`); a defensive mixture of
  q with the prior (Hesterberg 1995, `Mixture`); a Gaussian mixture such as TWR-VAE's timestep posteriors; each with
  its effective sample size (Kong 1992: (sum w)^2 / sum w^2) and a delta-method standard error.
- `fit_gaussian_proposal`: a Gaussian per sentence initialised at q and fitted to that sentence's ELBO with the
  decoder frozen (the local inference step of Cremer et al. 2018, "Inference Suboptimality in Variational
  Autoencoders", and of Kim et al. 2018's SA-VAE), then used as an IW proposal.
- `annealed_importance_sampling`: AIS from the prior to the posterior (Neal 2001) along the geometric path
  p(z) p(x|z)^beta_t with a sigmoid schedule and HMC transitions whose step sizes adapt toward an acceptance rate of
  0.65, as Wu et al. 2017 ("On the Quantitative Analysis of Decoder-Based Generative Models", tonywu95/eval_gen) do;
  a run with adaptation returns its step-size schedule, and a run given a schedule keeps it frozen (a valid AIS
  estimate: the transitions then do not depend on the chains' own states' history; BorealisAI/rate_distortion).
- `reverse_annealed_importance_sampling`: the same chain run backwards, from an exact posterior sample down to the
  prior, with the forward run's frozen transitions (Grosse, Ghahramani & Adams 2015, "Sandwiching the marginal
  likelihood using bidirectional Monte Carlo"). Its weights estimate 1 / p(x) without bias, so the estimate it
  returns, -log of their mean, is in expectation an UPPER bound on log p(x) (a lower bound on the NLL). An exact
  posterior sample exists for data simulated from the model: z* ~ p(z), x ~ p(x|z*) makes z* ~ p(z|x).
- `bdmc`: bidirectional Monte Carlo on such a simulated pair, forward AIS (lower) and reverse AIS (upper) with the
  same frozen step sizes; the gap between the two bounds the error of forward AIS on data like it.

Every estimator but reverse AIS has an expectation of exp(estimate) equal to p(x), so its estimate is, in
expectation, a stochastic lower bound on log p(x) (an upper bound on the NLL); the tightest one is the best available
figure. Reverse AIS's exp(-estimate) has expectation 1 / p(x): a stochastic upper bound on log p(x).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from metrics.lm import gaussian_log_density, sample_gaussian, standard_normal_log_density

LogLikelihood = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Estimate:
    """Per-sentence estimates of log p(x) [B] with their effective sample sizes [B] and standard errors [B]."""

    log_px: torch.Tensor
    ess: torch.Tensor
    stderr: torch.Tensor
    samples: int
    extra: dict | None = None


# ---- proposals: sample(S, generator) -> z [S, B, Z]; log_prob(z) -> [S, B]
class GaussianProposal:
    """N(mu, diag exp(logvar)) per sentence; mu, logvar [B, Z]."""

    def __init__(self, mu: torch.Tensor, logvar: torch.Tensor):
        self.mu, self.logvar = mu, logvar

    def widened(self, factor: float) -> "GaussianProposal":
        """The same Gaussian with its standard deviation multiplied by `factor`."""
        return GaussianProposal(self.mu, self.logvar + 2 * math.log(factor))

    def sample(self, num: int, generator: torch.Generator | None) -> torch.Tensor:
        return sample_gaussian(self.mu, self.logvar, num, generator)

    def transform(self, eps: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma eps of given standard-normal draws eps [S, B, Z] (common random numbers)."""
        return self.mu.unsqueeze(0) + eps.to(self.mu.dtype) * (0.5 * self.logvar).exp().unsqueeze(0)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return gaussian_log_density(z, self.mu.unsqueeze(0), self.logvar.unsqueeze(0))


class GaussianMixtureProposal:
    """sum_c w_c N(mu_c, diag exp(logvar_c)) per sentence; mu, logvar [B, C, Z], log_weights [B, C] (normalised over
    C; -inf for a component that does not exist, e.g. a padding timestep)."""

    def __init__(self, mu: torch.Tensor, logvar: torch.Tensor, log_weights: torch.Tensor):
        self.mu, self.logvar = mu, logvar
        self.log_weights = log_weights - torch.logsumexp(log_weights, dim=1, keepdim=True)

    def sample(self, num: int, generator: torch.Generator | None) -> torch.Tensor:
        batch, _, dims = self.mu.shape
        where = generator.device if generator is not None else self.mu.device
        component = torch.multinomial(self.log_weights.exp().to(where), num, replacement=True, generator=generator)
        component = component.to(self.mu.device).t()  # [S, B]
        index = component.unsqueeze(-1).expand(num, batch, dims)
        mu = self.mu.unsqueeze(0).expand(num, -1, -1, -1).gather(2, index.unsqueeze(2)).squeeze(2)
        logvar = self.logvar.unsqueeze(0).expand(num, -1, -1, -1).gather(2, index.unsqueeze(2)).squeeze(2)
        eps = torch.randn((num, batch, dims), generator=generator, device=where, dtype=mu.dtype).to(mu.device)
        return mu + eps * (0.5 * logvar).exp()

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        per_component = gaussian_log_density(z.unsqueeze(2), self.mu.unsqueeze(0), self.logvar.unsqueeze(0))
        return torch.logsumexp(per_component + self.log_weights.unsqueeze(0), dim=2)


class StandardNormal:
    """The prior N(0, I) as a proposal, for B sentences of Z dimensions."""

    def __init__(self, batch: int, dims: int, dtype=torch.float32, device=None):
        zeros = torch.zeros(batch, dims, dtype=dtype, device=device)
        self.gaussian = GaussianProposal(zeros, zeros)

    def sample(self, num, generator):
        return self.gaussian.sample(num, generator)

    def log_prob(self, z):
        return standard_normal_log_density(z)


class Mixture:
    """(1 - alpha) r1 + alpha r2 of two proposals (defensive importance sampling: r2 the prior, Hesterberg 1995)."""

    def __init__(self, first, second, alpha: float):
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"a mixture weight must lie in (0, 1), got {alpha}")
        self.first, self.second, self.alpha = first, second, alpha

    def sample(self, num: int, generator: torch.Generator | None) -> torch.Tensor:
        a, b = self.first.sample(num, generator), self.second.sample(num, generator)
        where = generator.device if generator is not None else a.device
        pick = (torch.rand(a.shape[:2], generator=generator, device=where) < self.alpha).to(a.device)
        return torch.where(pick.unsqueeze(-1), b, a)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return torch.logaddexp(math.log1p(-self.alpha) + self.first.log_prob(z),
                               math.log(self.alpha) + self.second.log_prob(z))


# ---- importance sampling
def summarise_log_weights(log_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """log-mean-exp [B], effective sample size [B] and the delta-method standard error of the log-mean [B] of log
    weights [S, B]. The standard error, sqrt((1/ESS - 1/S)), understates the error when the ESS is tiny (a few
    draws carry the weight, and the ones that would have mattered were not drawn)."""
    num = log_weights.size(0)
    total = torch.logsumexp(log_weights, dim=0)
    ess = torch.exp(2 * total - torch.logsumexp(2 * log_weights, dim=0))
    stderr = torch.sqrt(torch.clamp(1.0 / ess - 1.0 / num, min=0.0))
    return total - math.log(num), ess, stderr


def draw_log_weights(log_likelihood: LogLikelihood, proposal, num_samples: int, chunk: int,
                     generator: torch.Generator | None = None, eps: torch.Tensor | None = None) -> torch.Tensor:
    """Log importance weights log p(x, z_k) - log r(z_k) [S, B] (float64) of `num_samples` draws z_k ~ `proposal`,
    decoded `chunk` at a time. `eps` [S, B, Z]: given standard-normal draws instead, z_k = proposal.transform(eps_k)
    (a GaussianProposal; common random numbers, so that two proposals' estimates differ by their proposals only)."""
    if num_samples < 1 or chunk < 1:
        raise ValueError(f"importance sampling needs num_samples >= 1 and chunk >= 1, got {num_samples} and {chunk}")
    if eps is not None and eps.size(0) != num_samples:
        raise ValueError(f"eps holds {eps.size(0)} draws, not num_samples = {num_samples}")
    log_weights, remaining = [], num_samples
    while remaining > 0:
        draws = min(chunk, remaining)
        done = num_samples - remaining
        z = proposal.sample(draws, generator) if eps is None else proposal.transform(eps[done:done + draws])
        with torch.no_grad():
            log_weights.append((log_likelihood(z) + standard_normal_log_density(z) - proposal.log_prob(z)).double())
        remaining -= draws
    return torch.cat(log_weights, 0)


def importance_weighted(log_likelihood: LogLikelihood, proposal, num_samples: int, chunk: int,
                        generator: torch.Generator | None = None) -> Estimate:
    """log p(x) by importance sampling with `num_samples` draws from `proposal`, decoded `chunk` at a time."""
    log_px, ess, stderr = summarise_log_weights(draw_log_weights(log_likelihood, proposal, num_samples, chunk,
                                                                 generator))
    return Estimate(log_px, ess, stderr, num_samples)


# ---- a Gaussian fitted to each sentence's posterior (the decoder frozen)
def fit_gaussian_proposal(log_likelihood: LogLikelihood, mu: torch.Tensor, logvar: torch.Tensor, steps: int,
                          lr: float = 0.05, samples: int = 8, generator: torch.Generator | None = None
                          ) -> tuple[GaussianProposal, list[float]]:
    """Maximise each sentence's ELBO E_r[log p(x, z) - log r(z)] over r = N(m, diag exp(s)), from (mu, logvar), with
    Adam and `samples` reparameterised draws a step. Sentences are independent (the summed ELBO's gradient in a
    sentence's (m, s) is its own ELBO's). Returns the fitted proposal and the mean ELBO after each step."""
    m = mu.detach().clone().requires_grad_(True)
    s = logvar.detach().clone().requires_grad_(True)
    optimiser = torch.optim.Adam([m, s], lr=lr)
    trace = []
    for _ in range(steps):
        where = generator.device if generator is not None else mu.device
        eps = torch.randn((samples, *mu.shape), generator=generator, device=where, dtype=mu.dtype).to(mu.device)
        with torch.enable_grad():
            z = m.unsqueeze(0) + eps * (0.5 * s).exp().unsqueeze(0)
            entropy = 0.5 * (s + 1.0 + math.log(2 * math.pi)).sum(-1)  # of N(m, exp(s)), exact
            elbo = (log_likelihood(z) + standard_normal_log_density(z)).mean(0) + entropy  # [B]
            optimiser.zero_grad()
            (-elbo.sum()).backward()
        optimiser.step()
        trace.append(float(elbo.detach().mean()))
    return GaussianProposal(m.detach(), s.detach()), trace


# ---- annealed importance sampling with HMC
def sigmoid_schedule(steps: int, sharpness: float = 4.0) -> torch.Tensor:
    """beta_0 = 0 < ... < beta_T = 1 [T + 1], denser at both ends (Wu et al. 2017, Grosse et al. 2015)."""
    if steps < 1:
        raise ValueError(f"AIS needs at least one intermediate distribution, got {steps}")
    raw = torch.sigmoid(sharpness * torch.linspace(-1.0, 1.0, steps + 1, dtype=torch.float64))
    return (raw - raw[0]) / (raw[-1] - raw[0])


def _log_likelihood_and_grad(log_likelihood: LogLikelihood, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(x|z) [C, B] and its gradient in z [C, B, Z]."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        log_lik = log_likelihood(z)
        (grad,) = torch.autograd.grad(log_lik.sum(), z)
    return log_lik.detach(), grad


def _noise(generator: torch.Generator | None, dtype, device):
    """normal(shape) and uniform(shape) draws from `generator` (on its device), moved to `device`."""
    where = generator.device if generator is not None else device

    def normal(shape):
        return torch.randn(shape, generator=generator, device=where, dtype=dtype).to(device)

    def uniform(shape):
        return torch.rand(shape, generator=generator, device=where, dtype=dtype).to(device)

    return normal, uniform


def hmc_transition(log_likelihood: LogLikelihood, z: torch.Tensor, log_lik: torch.Tensor, grad_lik: torch.Tensor,
                   beta: float, step_size: torch.Tensor, leapfrog: int, normal, uniform
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One HMC transition (`leapfrog` leapfrog steps of size `step_size` [B], one per sentence, and a Metropolis test)
    leaving f_beta(z) = p(z) p(x|z)^beta invariant, for chains z [C, B, Z] whose log p(x|z) [C, B] and gradient
    [C, B, Z] are given. Being reversible with respect to f_beta, it is its own reversal, which is what lets reverse
    AIS reuse the forward run's transitions. Returns the new z, log p(x|z), its gradient and the acceptances [C, B]
    (bool). Draws the momentum (`normal`) before the Metropolis test's uniform (`uniform`)."""
    def log_target(z, log_lik):  # log p(z) + beta log p(x|z), up to a constant that cancels in HMC
        return -0.5 * z.pow(2).sum(-1) + beta * log_lik

    step = step_size.view(1, -1, 1)
    momentum = normal(z.shape)
    current_h = -log_target(z, log_lik) + 0.5 * momentum.pow(2).sum(-1)
    proposed, new_lik, new_grad = z, log_lik, grad_lik
    p = momentum + 0.5 * step * (beta * new_grad - proposed)
    for i in range(leapfrog):
        proposed = proposed + step * p
        new_lik, new_grad = _log_likelihood_and_grad(log_likelihood, proposed)
        p = p + (step if i < leapfrog - 1 else 0.5 * step) * (beta * new_grad - proposed)
    proposed_h = -log_target(proposed, new_lik) + 0.5 * p.pow(2).sum(-1)
    accept = (torch.log(uniform(current_h.shape)) < (current_h - proposed_h)) & torch.isfinite(proposed_h)
    keep = accept.unsqueeze(-1)
    return (torch.where(keep, proposed, z), torch.where(accept, new_lik, log_lik),
            torch.where(keep, new_grad, grad_lik), accept)


def annealed_importance_sampling(log_likelihood: LogLikelihood, batch: int, dims: int, steps: int, chains: int,
                                 leapfrog: int = 10, step_size: float = 0.05, target_acceptance: float = 0.65,
                                 schedule: torch.Tensor | None = None, generator: torch.Generator | None = None,
                                 dtype=torch.float32, device=None, adapt_rate: float = 1.02) -> Estimate:
    """log p(x) [B] by AIS with `chains` chains per sentence from the prior, `steps` intermediate distributions
    f_t(z) = p(z) p(x|z)^beta_t and one HMC transition (`leapfrog` steps) leaving each f_t invariant. Step sizes are
    per sentence: without `schedule` they adapt after every transition (x`adapt_rate` when the sentence's chains
    accepted more often than `target_acceptance`, else / `adapt_rate`; Wu et al.'s 1.02 suits thousands of steps, a
    short tuning pass needs a faster rate to reach the posterior's scale) and the schedule used [steps, B] is
    returned in `extra`; with `schedule` they are that schedule, frozen. `extra` also has the mean acceptance rate
    and the chains' log weights [C, B] (each chain's log w alone is a stochastic lower bound on log p(x), looser
    than their log-mean-exp). Costs `steps` x `leapfrog` gradient evaluations of log p(x|z) over C x B sentences.

    The chain: z_0 ~ p(z); for t = 1..T, log w += (beta_t - beta_{t-1}) log p(x|z_{t-1}), then z_t ~ T_t(z_{t-1}, .)
    (`hmc_transition` at beta_t with the step sizes of row t - 1 of the schedule). E[w] = p(x), so the returned
    log-mean of w is a stochastic lower bound on log p(x); `reverse_annealed_importance_sampling` runs it backwards."""
    betas = sigmoid_schedule(steps)
    normal, uniform = _noise(generator, dtype, device)
    z = normal((chains, batch, dims))
    eps = torch.full((batch,), step_size, dtype=dtype, device=device)
    used, accepted_total = [], 0.0
    log_w = torch.zeros(chains, batch, dtype=torch.float64, device=device)
    log_lik, grad_lik = _log_likelihood_and_grad(log_likelihood, z)
    for t in range(1, steps + 1):
        beta = float(betas[t])
        log_w += (beta - float(betas[t - 1])) * log_lik.double()
        if schedule is not None:
            eps = schedule[t - 1].to(device=device, dtype=dtype)
        used.append(eps.clone())
        z, log_lik, grad_lik, accept = hmc_transition(log_likelihood, z, log_lik, grad_lik, beta, eps, leapfrog,
                                                      normal, uniform)
        rate = accept.to(dtype).mean(0)  # over the chains of each sentence
        accepted_total += float(rate.mean())
        if schedule is None:
            eps = torch.where(rate > target_acceptance, eps * adapt_rate, eps / adapt_rate)
    log_px, ess, stderr = summarise_log_weights(log_w)
    return Estimate(log_px, ess, stderr, chains, extra={
        "schedule": torch.stack(used), "acceptance": accepted_total / steps, "steps": steps, "leapfrog": leapfrog,
        "log_weights": log_w})


def reverse_annealed_importance_sampling(log_likelihood: LogLikelihood, z_start: torch.Tensor, steps: int,
                                         schedule: torch.Tensor, leapfrog: int = 10,
                                         generator: torch.Generator | None = None) -> Estimate:
    """Reverse AIS (Grosse, Ghahramani & Adams 2015, "Sandwiching the marginal likelihood using bidirectional Monte
    Carlo"): an UPPER bound on log p(x) [B] in expectation, from exact posterior samples z_start [C, B, Z]
    (C chains per sentence; copies of one sample per sentence are fine).

    The chain is `annealed_importance_sampling`'s run backwards along the same `steps` intermediate distributions
    f_t(z) = p(z) p(x|z)^beta_t (the same sigmoid betas), from f_T = p(z) p(x|z), whose normaliser is p(x), down to
    f_0 = p(z), whose normaliser is 1: z_T = z_start; for t = T..1, log w~ += (beta_{t-1} - beta_t) log p(x|z_t),
    then (for t > 1) z_{t-1} ~ T_{t-1}(z_t, .), the forward run's HMC transition at beta_{t-1} with its frozen step
    sizes `schedule[t - 2]`. `schedule` [steps, B] is required: reverse AIS must use the transitions of the forward
    run it is paired with (HMC is reversible, so each transition is its own reversal), frozen, not adapted; a
    schedule tuned on x by an independent forward pass keeps z_start an exact posterior sample given x and it.

    Sign conventions. Every reverse log weight log w~ = sum_t (beta_{t-1} - beta_t) log p(x|z_t) is >= 0 when
    log p(x|z) <= 0 (as for text), and E[w~] = Z_0 / Z_T = 1 / p(x) when z_start is exact. The estimate returned
    as `log_px` [B] is -log((1/C) sum_c w~_c), and by Jensen's inequality E[log_px] >= log p(x): a stochastic
    upper bound on log p(x) (a lower bound on the NLL, -log_px), the mirror of forward AIS's lower bound. `ess` and
    `stderr` are those of the reverse weights (the delta-method standard error of the log-mean, unchanged by the
    sign). If z_start is not an exact posterior sample (real data, q(z|x) draws) the estimate is no bound at all.
    `extra` has the mean acceptance rate of the T - 1 transitions, `steps`, `leapfrog`, `direction` and the reverse
    log weights log w~ [C, B] (each chain's -log w~ alone is a stochastic upper bound on log p(x))."""
    chains, batch, _ = z_start.shape
    if schedule.shape[:2] != (steps, batch):
        raise ValueError(f"reverse AIS needs the forward run's frozen step sizes [steps, B] = [{steps}, {batch}], got "
                         f"{tuple(schedule.shape)}")
    dtype, device = z_start.dtype, z_start.device
    betas = sigmoid_schedule(steps)
    normal, uniform = _noise(generator, dtype, device)
    z = z_start.detach().clone()
    log_w = torch.zeros(chains, batch, dtype=torch.float64, device=device)
    log_lik, grad_lik = _log_likelihood_and_grad(log_likelihood, z)
    accepted_total = 0.0
    for t in range(steps, 0, -1):
        log_w -= (float(betas[t]) - float(betas[t - 1])) * log_lik.double()
        if t > 1:
            eps = schedule[t - 2].to(device=device, dtype=dtype)
            z, log_lik, grad_lik, accept = hmc_transition(log_likelihood, z, log_lik, grad_lik, float(betas[t - 1]),
                                                          eps, leapfrog, normal, uniform)
            accepted_total += float(accept.to(dtype).mean())
    log_inverse, ess, stderr = summarise_log_weights(log_w)  # estimates log(1 / p(x))
    return Estimate(-log_inverse, ess, stderr, chains, extra={
        "acceptance": accepted_total / max(steps - 1, 1), "steps": steps, "leapfrog": leapfrog,
        "direction": "reverse", "log_weights": log_w})


@dataclass
class Sandwich:
    """Bidirectional Monte Carlo's two estimates of log p(x) [B] on simulated data: `lower` (forward AIS, a
    stochastic lower bound) and `upper` (reverse AIS, a stochastic upper bound)."""

    lower: Estimate
    upper: Estimate

    @property
    def gap(self) -> torch.Tensor:
        """upper - lower [B] (nats): in expectation >= 0 and >= the error of forward AIS's estimate on the sentence,
        log p(x) - lower (and of reverse AIS's, upper - log p(x))."""
        return self.upper.log_px - self.lower.log_px


def bdmc(log_likelihood: LogLikelihood, z_exact: torch.Tensor, steps: int, schedule: torch.Tensor, chains: int,
         leapfrog: int = 10, generator: torch.Generator | None = None) -> Sandwich:
    """Bidirectional Monte Carlo (Grosse, Ghahramani & Adams 2015) for sentences x simulated from the model together
    with their latents z_exact [B, Z] (z_exact ~ p(z), x ~ p(x|z_exact), so z_exact ~ p(z|x) exactly): forward AIS
    with `chains` chains from the prior and the frozen step sizes `schedule` [steps, B] (tuned beforehand by an
    adaptive forward pass on the same x), and reverse AIS with the same steps and step sizes from `chains` copies of
    z_exact. log p(x) lies between the two in expectation; their gap bounds forward AIS's error on such data."""
    batch, dims = z_exact.shape
    lower = annealed_importance_sampling(log_likelihood, batch, dims, steps, chains, leapfrog, schedule=schedule,
                                         generator=generator, dtype=z_exact.dtype, device=z_exact.device)
    upper = reverse_annealed_importance_sampling(log_likelihood, z_exact.unsqueeze(0).expand(chains, -1, -1), steps,
                                                 schedule, leapfrog, generator)
    return Sandwich(lower, upper)
