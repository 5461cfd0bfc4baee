"""Every estimator of metrics.likelihood against an exact log p(x): a one-dimensional latent makes
log p(x) = log int p(x|z) N(z; 0, 1) dz computable by quadrature (harness.methods.check_method's trapezoid rule on a grid,
checked here by refining it).

Two models: an *easy* one (an untrained TWR-VAE whose posterior is close to the prior and to q) and a *hard* one (a
TWR-VAE trained on twelve sentences until q(z|x) is much narrower than the true posterior p(z|x), as the paper-length
TWR-VAE's is: its timestep-averaged KL lets the last timestep's q, the one the decoder reads, move far from the prior).
Where q is narrower than the posterior by more than sqrt(2), the importance weights of q have infinite variance and an
IW estimate with q converges slowly however large K is; the wider, mixture, fitted proposals and AIS do not suffer so.
Tolerances: the issue's 0.1 nat where the estimate's Monte Carlo error is far below it; elsewhere a multiple of the
estimate's own standard error. Every draw comes from a seeded generator.

The hard model's weights are a committed fixture (tests/fixtures/likelihood/hard_twr_vae.json), not trained here: its
1500 float64 training steps are chaotic, so each CPU type's kernels train a different model (weights 0.4 apart,
log p(x) up to 0.5 nat, under AVX2 against AVX512 kernels), and every check on a freshly trained one was a new draw per
CPU (one failed on an AMD EPYC Zen 5). With the fixture the estimators meet the same model everywhere; one test trains
a fresh model and checks only that training gives the pathology. Regenerate the fixture with
`PYTHONPATH=tests python tests/metrics/test_likelihood.py` (it records the CPU and torch version)."""
from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest
import torch
from scipy.stats import mannwhitneyu

from conftest import make_batch, tiny_model
from harness.methods.check_method import _exact_log_marginal, _train_steps
from metrics.likelihood import (GaussianMixtureProposal, GaussianProposal, Mixture, StandardNormal,
                                annealed_importance_sampling, bdmc, fit_gaussian_proposal, importance_weighted,
                                reverse_annealed_importance_sampling, sigmoid_schedule, summarise_log_weights)

HARD_MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "likelihood" / "hard_twr_vae.json"
HARD_ROWS = [[10, 8, 6, 11, 8, 11], [6, 7, 9], [4, 11, 4, 8, 10, 10, 4], [5, 8], [7, 7, 11, 5, 9], [9, 4, 4, 6],
             [11, 10, 6], [8, 5, 5, 7, 4, 9, 6, 10], [4, 6], [6, 9, 9, 7, 11], [10, 4, 5], [5, 11, 7, 8, 6, 4]]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Case:
    def __init__(self, model, batch):
        self.model, self.batch = model.eval(), batch
        with torch.no_grad():
            self.exact = _exact_log_marginal(model, batch, grid=8001, bound=12.0)
            self.mu, self.logvar = model.posterior(batch)
        self.q = GaussianProposal(self.mu, self.logvar)

    def log_likelihood(self, z):
        return self.model.log_likelihood(self.batch, z)

    def posterior_sd(self) -> torch.Tensor:
        """The true posterior's standard deviation per sentence, by quadrature."""
        z = torch.linspace(-12.0, 12.0, 8001, dtype=torch.float64)
        with torch.no_grad():
            log_joint = self.log_likelihood(z.view(-1, 1, 1).expand(-1, self.batch.size, 1)) - 0.5 * z.pow(2).unsqueeze(1)
        weights = torch.softmax(log_joint, dim=0)
        mean = (weights * z.unsqueeze(1)).sum(0)
        return (weights * (z.unsqueeze(1) - mean).pow(2)).sum(0).sqrt()

    def timestep_mixture(self) -> GaussianMixtureProposal:
        with torch.no_grad():
            mu_t, logvar_t, steps = self.model.timestep_posteriors(self.batch)
        exists = torch.arange(mu_t.size(1)).unsqueeze(0) < steps.unsqueeze(1)
        return GaussianMixtureProposal(mu_t, logvar_t, torch.where(exists, 0.0, float("-inf")).to(mu_t.dtype))


@pytest.fixture(scope="module")
def easy() -> Case:
    model = tiny_model("twr-vae", vocab_size=6, z_dim=1).double()
    with torch.no_grad():  # make p(x|z) depend on z, so that there is something to estimate
        model.decoder.z_to_hidden.weight.mul_(3.0)
    return Case(model, make_batch([[4], [5, 4], [4, 5, 5]]))


def trained_hard_model():
    """A TWR-VAE trained on the twelve sentences until q(z|x) is much narrower than p(z|x) (chaotic: CPU-dependent)."""
    model = tiny_model("twr-vae", vocab_size=12, z_dim=1).double()
    _train_steps(model, make_batch(HARD_ROWS), 1500, lr=0.01)
    return model


def committed_hard_model():
    """The hard model of the committed fixture: float64 weights written with repr, read back exactly."""
    saved = json.loads(HARD_MODEL.read_text())
    model = tiny_model("twr-vae", vocab_size=12, z_dim=1).double()
    model.load_state_dict({name: torch.tensor(entry["values"], dtype=torch.float64).view(entry["shape"])
                           for name, entry in saved["state_dict"].items()})
    return model


def write_hard_model_fixture() -> None:
    torch.set_num_threads(1)
    from harness.core.machine import cpu_model, cpuinfo, native_bf16

    state = trained_hard_model().state_dict()
    HARD_MODEL.parent.mkdir(parents=True, exist_ok=True)
    HARD_MODEL.write_text(json.dumps({
        "what": "tests/metrics/test_likelihood.py's hard model: tiny_model('twr-vae', vocab_size=12, z_dim=1) in "
                "float64, 1500 steps of _train_steps(lr=0.01) on HARD_ROWS, 1 thread",
        "written_by": "PYTHONPATH=tests python tests/metrics/test_likelihood.py", "cpu": cpu_model(cpuinfo()),
        "cpu_multiplies_bf16": native_bf16(cpuinfo()), "machine": platform.machine(),
        "torch": torch.__version__,
        "state_dict": {name: {"shape": list(value.shape), "values": value.flatten().tolist()}
                       for name, value in state.items()}}) + "\n")


@pytest.fixture(scope="module")
def hard() -> Case:
    torch.set_num_threads(1)
    return Case(committed_hard_model(), make_batch(HARD_ROWS))


def test_the_quadrature_is_converged(hard):
    finer = _exact_log_marginal(hard.model.eval(), hard.batch, grid=12001, bound=14.0)
    assert (finer - hard.exact).abs().max() < 1e-6


def test_the_hard_model_has_the_pathology_the_audit_is_about(hard):
    """q(z|x) is much narrower than p(z|x): below 1/sqrt(2) of its width (IW weights of infinite variance) for most
    sentences, as the paper-length TWR-VAE's q is (KL of the latent it decodes 70 nats)."""
    ratio = hard.logvar.exp().sqrt().squeeze(1) / hard.posterior_sd()
    assert (ratio < 0.707).float().mean() >= 0.75, f"q / posterior widths {ratio.tolist()}"


def test_training_gives_the_pathology_on_this_cpu():
    """The fixture is no accident of one CPU: training afresh here (another model on every CPU type) also leaves q
    narrower than the posterior by more than sqrt(2) for a majority of the sentences (a median, not a count near the
    edge: 10 to 12 of the 12 sentences on the models seen, under AVX512, AVX2 and perturbed initial weights)."""
    case = Case(trained_hard_model(), make_batch(HARD_ROWS))
    ratio = case.logvar.exp().sqrt().squeeze(1) / case.posterior_sd()
    assert float(ratio.median()) < 0.707, f"q / posterior widths {ratio.tolist()}"


def test_summaries_of_log_weights():
    equal = torch.zeros(100, 2, dtype=torch.float64)
    log_px, ess, stderr = summarise_log_weights(equal)
    assert torch.allclose(log_px, torch.zeros(2, dtype=torch.float64)) and torch.allclose(ess, torch.full((2,), 100.0, dtype=torch.float64))
    assert torch.allclose(stderr, torch.zeros(2, dtype=torch.float64))
    one = torch.full((100, 1), -1000.0, dtype=torch.float64)
    one[7] = 0.0  # one draw carries all the weight
    assert torch.allclose(summarise_log_weights(one)[1], torch.ones(1, dtype=torch.float64))


def test_proposals_are_normalised_densities_that_sample_what_they_score():
    """Monte Carlo E_r[1 / r(z) * N(z; 0, 1)] = 1 for every proposal: its log_prob is the density it samples."""
    generator = torch.Generator().manual_seed(0)
    mu, logvar = torch.tensor([[0.5], [-1.0]], dtype=torch.float64), torch.tensor([[-1.0], [0.5]], dtype=torch.float64)
    q = GaussianProposal(mu, logvar)
    mixture = GaussianMixtureProposal(torch.stack([mu, -mu], 1), torch.stack([logvar, logvar + 1], 1),
                                      torch.log(torch.tensor([[0.3, 0.7], [0.5, 0.5]], dtype=torch.float64)))
    for proposal in (q, q.widened(2.0), Mixture(q, StandardNormal(2, 1, torch.float64), 0.3), mixture):
        estimate = importance_weighted(lambda z: torch.zeros(z.shape[:2], dtype=z.dtype), proposal, 200000, 50000,
                                       generator)
        assert estimate.log_px.abs().max() < 0.02  # log E[p(z) / r(z)] = log 1


def test_given_draws_are_common_random_numbers_mapped_through_the_gaussian_proposal():
    """`draw_log_weights(..., eps=)`: z_k = mu + sigma eps_k for every chunking, so two proposals (or two batchings)
    given the same eps differ by their proposal only; a wrong number of draws is refused."""
    from metrics.likelihood import draw_log_weights

    mu, logvar = torch.tensor([[0.5, 0.0], [-1.0, 2.0]], dtype=torch.float64), torch.full((2, 2), -0.5, dtype=torch.float64)
    eps = torch.randn((7, 2, 2), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    seen = []
    log_likelihood = lambda z: seen.append(z) or -z.pow(2).sum(-1)  # noqa: E731
    q = GaussianProposal(mu, logvar)
    whole = draw_log_weights(log_likelihood, q, 7, 7, eps=eps)
    assert torch.equal(seen[0], mu + eps * (0.5 * logvar).exp())
    assert torch.allclose(draw_log_weights(log_likelihood, q, 7, 3, eps=eps), whole, atol=0, rtol=0)
    expected = -seen[0].pow(2).sum(-1) - 0.5 * seen[0].pow(2).sum(-1) - 0.9189385332046727 * 2 - q.log_prob(seen[0])
    assert torch.allclose(whole, expected)
    with pytest.raises(ValueError, match="eps holds 7 draws, not num_samples = 5"):
        draw_log_weights(log_likelihood, q, 5, 5, eps=eps)


def elbo(case: Case, proposal, generator, draws: int = 4000) -> float:
    """E_r[log p(x, z) - log r(z)], averaged over the sentences (the mean log weight of the IW estimate's draws)."""
    z = proposal.sample(draws, generator)
    with torch.no_grad():
        log_weights = case.log_likelihood(z) - 0.5 * z.pow(2).sum(-1) - 0.9189385332046727 - proposal.log_prob(z)
    return float(log_weights.mean())


@pytest.mark.parametrize("name", ["q", "q widened x2", "defensive mixture", "timestep mixture", "fitted",
                                  "fitted widened"])
def test_importance_sampling_with_every_proposal_converges_to_the_exact_value(easy, hard, name):
    generator = torch.Generator().manual_seed(1)
    for case, widen in ((easy, 2.0), (hard, 3.0)):
        proposals = {
            "q": case.q,
            "q widened x2": case.q.widened(widen),
            "defensive mixture": Mixture(case.q.widened(widen), StandardNormal(case.batch.size, 1, torch.float64), 0.2),
            "timestep mixture": case.timestep_mixture(),
        }
        if name.startswith("fitted"):
            proposal, trace = fit_gaussian_proposal(case.log_likelihood, case.mu, case.logvar, 300, 0.05, 8, generator)
            if case is hard:  # the fit raised the ELBO (on the easy model q is already near the posterior)
                assert elbo(case, proposal, generator) > elbo(case, case.q, generator) + 0.05
            proposals["fitted"], proposals["fitted widened"] = proposal, proposal.widened(1.5)
        estimate = importance_weighted(case.log_likelihood, proposals[name], 20000, 5000, generator)
        error = estimate.log_px - case.exact
        assert (error < 3 * estimate.stderr + 0.01).all(), f"{name}: an estimate above log p(x) beyond its error"
        if case is hard and name in ("q", "timestep mixture"):
            continue  # weights of infinite variance (q narrower than the posterior): see the test below
        assert error.abs().max() < 0.1, f"{name}: {error.tolist()}"


def test_on_the_hard_model_iw_with_q_is_measurably_looser_than_a_fitted_proposal(hard):
    """The audit's claim, on a model where it can be checked: at K = 100, IW with q is looser than IW with the fitted
    Gaussian -- over 100 repeats, the gap to the exact value (mean over the sentences) is larger with q by a one-sided
    rank test at p < 1e-3 -- and the fitted proposal's mean gap is near 0; q's effective sample size at K = 20000 is a
    fraction of the fitted proposal's.

    A rank test, not mean +- standard error: q's weights have infinite variance here, so the mean of its gaps is
    heavy-tailed and its standard error unreliable. With 10 repeats and a 3-standard-error margin the claim failed on
    an AMD EPYC Zen 5 (its 1500 training steps in float64 land on a slightly different model than on an Intel Xeon);
    on that CPU, seeds 2 to 11 of this test give p between 7e-19 and 9e-6."""
    generator = torch.Generator().manual_seed(2)
    fitted, _ = fit_gaussian_proposal(hard.log_likelihood, hard.mu, hard.logvar, 300, 0.05, 8, generator)
    gaps = {name: torch.stack([(hard.exact - importance_weighted(hard.log_likelihood, proposal, 100, 100,
                                                                 generator).log_px).mean() for _ in range(100)])
            for name, proposal in (("q", hard.q), ("fitted", fitted))}
    p_value = mannwhitneyu(gaps["q"].numpy(), gaps["fitted"].numpy(), alternative="greater").pvalue
    assert p_value < 1e-3, (p_value, gaps["q"].median(), gaps["fitted"].median())
    assert float(gaps["fitted"].mean()) < 0.05, gaps["fitted"].mean()
    ess = {name: importance_weighted(hard.log_likelihood, proposal, 20000, 5000, generator).ess.median()
           for name, proposal in (("q", hard.q), ("fitted", fitted))}
    assert ess["q"] < 0.5 * ess["fitted"], ess


def test_sigmoid_schedule_runs_from_0_to_1_and_is_denser_at_the_ends():
    betas = sigmoid_schedule(100)
    assert betas[0] == 0.0 and betas[-1] == 1.0 and (betas[1:] > betas[:-1]).all()
    steps = betas[1:] - betas[:-1]
    assert steps[0] < steps[50] and steps[-1] < steps[50]
    with pytest.raises(ValueError):
        sigmoid_schedule(0)


def test_ais_converges_to_the_exact_value_with_frozen_step_sizes(easy, hard):
    """AIS as the audit runs it: step sizes adapted on one pass (few chains), then frozen for the estimate (a new seed,
    more chains). Each estimate within 4 of its standard errors (+0.02) of the exact value, none above it beyond that,
    the mean over sentences within 0.1 nat, an acceptance rate near the 0.65 aimed at."""
    for case, sentences in ((easy, 3), (hard, 6)):
        batch = make_batch(HARD_ROWS[:sentences]) if case is hard else case.batch
        exact = case.exact[:sentences]

        def log_likelihood(z, batch=batch):
            return case.model.log_likelihood(batch, z)

        tuned = annealed_importance_sampling(log_likelihood, sentences, 1, 1000, 4, 5, 0.1,
                                             generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        assert tuned.extra["schedule"].shape == (1000, sentences)
        estimate = annealed_importance_sampling(log_likelihood, sentences, 1, 1000, 32, 5,
                                                schedule=tuned.extra["schedule"],
                                                generator=torch.Generator().manual_seed(4), dtype=torch.float64)
        error = estimate.log_px - exact
        assert (error.abs() < 4 * estimate.stderr + 0.02).all(), (error.tolist(), estimate.stderr.tolist())
        assert abs(float(error.mean())) < 0.1
        assert 0.5 < estimate.extra["acceptance"] < 0.85


# ---- bidirectional Monte Carlo (Grosse, Ghahramani & Adams 2015): reverse AIS from exact posterior samples
def exact_posterior_samples(log_likelihood, sentences: int, num: int, generator) -> torch.Tensor:
    """`num` draws per sentence [num, B, 1] from the exact posterior p(z|x) by sampling the quadrature grid (8001
    points on [-12, 12]) and jittering uniformly within a cell: exact up to the grid's 0.003 spacing. Reverse AIS
    needs nothing more than exact posterior samples; drawing z* ~ p(z), x ~ p(x|z*) is another way to get them."""
    z = torch.linspace(-12.0, 12.0, 8001, dtype=torch.float64)
    with torch.no_grad():
        log_joint = log_likelihood(z.view(-1, 1, 1).expand(-1, sentences, 1)) - 0.5 * z.pow(2).unsqueeze(1)
    index = torch.multinomial(torch.softmax(log_joint, dim=0).t(), num, replacement=True, generator=generator).t()
    jitter = (torch.rand(index.shape, generator=generator, dtype=torch.float64) - 0.5) * float(z[1] - z[0])
    return (z[index] + jitter).unsqueeze(-1)


def tuned_schedule(log_likelihood, sentences: int, steps: int, leapfrog: int) -> torch.Tensor:
    """Step sizes [steps, B] adapted on one forward pass with 4 chains (as the audit tunes them), to be frozen."""
    return annealed_importance_sampling(log_likelihood, sentences, 1, steps, 4, leapfrog, 0.1, adapt_rate=1.05,
                                        generator=torch.Generator().manual_seed(5), dtype=torch.float64
                                        ).extra["schedule"]


def test_reverse_ais_sign_conventions_on_a_likelihood_that_ignores_z():
    """log p(x|z) = c for every z: every forward log weight is c, every reverse one -c, and both estimates are c."""
    def constant(z):
        return torch.full(z.shape[:2], -3.5, dtype=z.dtype) + 0.0 * z.sum(-1)

    schedule = torch.full((7, 2), 0.3, dtype=torch.float64)
    start = torch.randn(5, 2, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    reverse = reverse_annealed_importance_sampling(constant, start, 7, schedule, 2, torch.Generator().manual_seed(1))
    assert torch.allclose(reverse.extra["log_weights"], torch.full((5, 2), 3.5, dtype=torch.float64))
    assert torch.allclose(reverse.log_px, torch.full((2,), -3.5, dtype=torch.float64))
    sandwich = bdmc(constant, start[0], 7, schedule, 5, 2, torch.Generator().manual_seed(2))
    assert torch.allclose(sandwich.lower.log_px, sandwich.upper.log_px) and sandwich.gap.abs().max() < 1e-12
    with pytest.raises(ValueError, match="frozen step sizes"):
        reverse_annealed_importance_sampling(constant, start, 8, schedule, 2)


def test_forward_and_reverse_ais_sandwich_the_exact_value_and_the_gap_shrinks_with_more_steps(hard):
    """On the hard model (q far narrower than the posterior, which itself is narrow against the prior: few steps
    anneal badly), per sentence and at T = 10, 30, 100 steps: each chain's forward log w is a stochastic lower bound
    and each chain's reverse -log w~ a stochastic upper bound, so their means over 64 chains lie below / above the
    exact log p(x) within 3 standard errors of the mean; so do the log-mean-exp estimates (within 3 of their
    delta-method standard errors + 0.02). The gap between the two (mean over sentences) falls as T grows."""
    sentences = 4
    batch = make_batch(HARD_ROWS[:sentences])
    exact = hard.exact[:sentences]

    def log_likelihood(z):
        return hard.model.log_likelihood(batch, z)

    chain_gaps, gaps = [], []
    for steps in (10, 30, 100):
        schedule = tuned_schedule(log_likelihood, sentences, steps, 3)
        generator = torch.Generator().manual_seed(6)
        forward = annealed_importance_sampling(log_likelihood, sentences, 1, steps, 64, 3, schedule=schedule,
                                               generator=generator, dtype=torch.float64)
        reverse = reverse_annealed_importance_sampling(
            log_likelihood, exact_posterior_samples(log_likelihood, sentences, 64, generator), steps, schedule, 3,
            generator)
        lower, upper = forward.extra["log_weights"], -reverse.extra["log_weights"]  # [C, B] single-chain bounds
        assert (lower.mean(0) < exact + 3 * lower.std(0) / 8).all(), (steps, (lower.mean(0) - exact).tolist())
        assert (upper.mean(0) > exact - 3 * upper.std(0) / 8).all(), (steps, (upper.mean(0) - exact).tolist())
        if steps < 100:  # too few steps: the single-chain sandwich is strict, beyond its Monte Carlo error
            assert (lower.mean(0) < exact - 3 * lower.std(0) / 8).all(), (steps, (lower.mean(0) - exact).tolist())
            assert (upper.mean(0) > exact + 3 * upper.std(0) / 8).all(), (steps, (upper.mean(0) - exact).tolist())
        assert (forward.log_px < exact + 3 * forward.stderr + 0.02).all(), (steps, (forward.log_px - exact).tolist())
        assert (reverse.log_px > exact - 3 * reverse.stderr - 0.02).all(), (steps, (reverse.log_px - exact).tolist())
        chain_gaps.append(float((upper.mean(0) - lower.mean(0)).mean()))
        gaps.append(float((reverse.log_px - forward.log_px).mean()))
    assert chain_gaps[0] > chain_gaps[1] > chain_gaps[2] > 0, chain_gaps
    assert gaps[0] > gaps[1] > gaps[2], gaps
    assert gaps[0] > 0.3, gaps  # ten steps are visibly too few: the sandwich is open


def test_bdmc_converges_to_the_exact_value_with_enough_steps(easy):
    """`bdmc` as the audit pairs it (a tuned forward pass's step sizes frozen for both directions; one exact posterior
    sample per sentence, copied to every reverse chain): with 100 steps both bounds, and even each direction's
    single-chain mean, lie within 0.1 nat of the exact log p(x)."""
    sentences = easy.batch.size
    generator = torch.Generator().manual_seed(7)
    schedule = tuned_schedule(easy.log_likelihood, sentences, 100, 3)
    z_exact = exact_posterior_samples(easy.log_likelihood, sentences, 1, generator)[0]  # [B, 1]
    sandwich = bdmc(easy.log_likelihood, z_exact, 100, schedule, 32, 3, generator)
    for name, estimate in (("forward", sandwich.lower), ("reverse", sandwich.upper)):
        assert (estimate.log_px - easy.exact).abs().max() < 0.1, (name, (estimate.log_px - easy.exact).tolist())
    assert ((sandwich.lower.extra["log_weights"].mean(0) - easy.exact).abs() < 0.1).all()
    assert ((-sandwich.upper.extra["log_weights"].mean(0) - easy.exact).abs() < 0.1).all()
    assert sandwich.gap.abs().max() < 0.1 and 0.5 < sandwich.upper.extra["acceptance"] <= 1.0


if __name__ == "__main__":  # regenerate the committed hard model: PYTHONPATH=tests python tests/metrics/test_likelihood.py
    write_hard_model_fixture()
    print(f"wrote {HARD_MODEL}")
