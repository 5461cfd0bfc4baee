import math

import pytest
import torch

from metrics.lm import (active_units, batchwise_mutual_information, paired_mutual_information, gaussian_kl_standard_normal,
                        gaussian_log_density, importance_weighted_log_marginal, mutual_information)


def test_kl_matches_torch_distributions():
    torch.manual_seed(1)
    mu, logvar = torch.randn(7, 5), torch.randn(7, 5)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros(5), torch.ones(5))
    expected = torch.distributions.kl_divergence(q, p).sum(-1)
    assert torch.allclose(gaussian_kl_standard_normal(mu, logvar), expected, atol=1e-5)


def test_kl_is_zero_only_at_the_prior():
    assert gaussian_kl_standard_normal(torch.zeros(3), torch.zeros(3)).item() == 0.0
    assert gaussian_kl_standard_normal(torch.tensor([0.1, 0, 0]), torch.zeros(3)).item() > 0


def test_log_density_matches_torch():
    torch.manual_seed(2)
    z, mu, logvar = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3)
    expected = torch.distributions.Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(-1)
    assert torch.allclose(gaussian_log_density(z, mu, logvar), expected, atol=1e-5)


def test_iw_estimate_is_exact_when_the_proposal_is_the_true_posterior():
    # Linear-Gaussian model: z ~ N(0,1), x|z ~ N(z, 1) => p(x) = N(x; 0, 2), p(z|x) = N(x/2, 1/2).
    # With q = p(z|x) every importance weight equals p(x): the estimate is exact for any K.
    x = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    mu, logvar = (x / 2).unsqueeze(1), torch.full((3, 1), math.log(0.5), dtype=torch.float64)
    loglik = lambda z: -0.5 * (math.log(2 * math.pi) + (x - z[..., 0]).pow(2))  # noqa: E731
    estimate = importance_weighted_log_marginal(loglik, mu, logvar, num_samples=7, chunk=3)
    exact = -0.5 * (math.log(2 * math.pi * 2) + x.pow(2) / 2)
    assert torch.allclose(estimate, exact, atol=1e-9)


def test_mi_is_about_zero_when_the_posterior_ignores_x():
    n, z = 2000, 4
    mu = torch.full((n, z), 0.3, dtype=torch.float64)
    logvar = torch.full((n, z), -0.5, dtype=torch.float64)
    assert abs(mutual_information(mu, logvar, torch.Generator().manual_seed(0))) < 0.05
    assert abs(paired_mutual_information(mu, logvar, 3, torch.Generator().manual_seed(0))) < 1e-9


def test_the_paired_and_he_et_al_mi_estimators_agree_on_an_informative_posterior():
    torch.manual_seed(4)
    mu, logvar = torch.randn(3000, 2, dtype=torch.float64), torch.full((3000, 2), -1.0, dtype=torch.float64)
    he = mutual_information(mu, logvar, torch.Generator().manual_seed(0))
    paired = paired_mutual_information(mu, logvar, 5, torch.Generator().manual_seed(0))
    # two Gaussians per dimension: I = 0.5 log(1 + var(mu) / var) ~= 0.5 log(1 + e) per dimension
    assert paired == pytest.approx(2 * 0.5 * math.log(1 + math.e), abs=0.08)
    assert he == pytest.approx(paired, abs=0.08)


def test_mi_approaches_log_n_for_separated_posteriors():
    # one-sample Monte Carlo for the cross term: noise ~ 0.7 / sqrt(n) nats
    n = 4096
    mu = torch.arange(n, dtype=torch.float64).unsqueeze(1) * 50.0
    logvar = torch.zeros(n, 1, dtype=torch.float64)
    mi = mutual_information(mu, logvar, torch.Generator().manual_seed(0))
    assert mi == pytest.approx(math.log(n), abs=0.05)
    assert paired_mutual_information(mu, logvar, 2, torch.Generator().manual_seed(0)) == pytest.approx(math.log(n), abs=1e-6)
    # the batch-wise estimate of the original code is bounded by log(batch size) instead
    batchwise = batchwise_mutual_information(mu, logvar, 64, torch.Generator().manual_seed(0))
    assert batchwise == pytest.approx(math.log(64), abs=0.05)


def test_active_units_counts_dimensions_whose_mean_varies():
    torch.manual_seed(3)
    mu = torch.zeros(500, 3)
    mu[:, 0] = torch.randn(500)  # variance ~1: active
    mu[:, 1] = 0.01 * torch.randn(500)  # variance ~1e-4: inactive
    assert active_units(mu, threshold=0.01) == 1


def test_the_iw_estimate_on_the_device_equals_the_cpu_one_on_the_same_draws(device):
    # a CPU generator draws the same samples whatever device the model is on (metrics.lm.sample_gaussian); then
    # only float32 arithmetic separates the devices: within 1e-4 nats per sentence
    import copy

    from conftest import make_batch, tiny_model

    model = tiny_model("twr-vae", vocab_size=30, z_dim=4).eval()
    batch = make_batch([[4, 5, 6, 7, 8], [9, 10, 29], [11, 12, 13, 14, 15, 16, 17, 18], [20]])

    def estimate(model, batch, seed):
        with torch.no_grad():
            mu, logvar = model.posterior(batch)
            return importance_weighted_log_marginal(lambda z: model.log_likelihood(batch, z), mu, logvar, 200, 64,
                                                    torch.Generator().manual_seed(seed)).cpu()

    on_cpu = estimate(model, batch, 0)
    on_device = estimate(copy.deepcopy(model).to(device), batch.to(device), 0)
    torch.testing.assert_close(on_device, on_cpu, rtol=0, atol=1e-4)
    assert (estimate(model, batch, 1) - on_cpu).abs().max() > 1e-3  # other draws: a difference the check would see


@pytest.mark.parametrize("samples, chunk", [(10, 0), (0, 5), (10, -1)])
def test_importance_sampling_refuses_an_empty_chunk_or_sample_count(samples, chunk):
    """chunk = 0 used to loop forever."""
    mu = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="num_samples >= 1 and chunk >= 1"):
        importance_weighted_log_marginal(lambda z: z.sum(-1), mu, mu, samples, chunk)
