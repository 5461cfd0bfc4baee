"""BN-VAE: batch-normalised posterior means with a fixed scale keep the KL away from zero (Zhu et al. 2020)."""
import pytest
import torch

from conftest import make_batch, tiny_model
from harness.core.config import TrainConfig
from harness.train.optim import Optimisation

ROWS = [[4, 5, 6], [7, 8], [9, 4, 4, 5], [6], [10, 11, 5], [8, 8, 9, 10, 4]]


@pytest.mark.parametrize("gamma", [0.3, 0.7, 1.5])
def test_batch_average_kl_is_at_least_its_lower_bound_even_when_the_means_collapse(gamma):
    z_dim = 4
    model = tiny_model("bn-vae", z_dim=z_dim, gamma=gamma).double().train()
    model.mu_bn.eps = 1e-30  # the bound is exact for BN without its epsilon (with it: times var / (var + eps))
    with torch.no_grad():  # posterior means that barely depend on x: a plain VAE's KL is ~0 here
        model.encoder.to_mu.weight.mul_(1e-2)
        model.encoder.to_mu.bias.zero_()
        model.encoder.to_logvar.weight.zero_()
        model.encoder.to_logvar.bias.zero_()
        raw_mu, _ = super(type(model), model).posterior(make_batch(ROWS))
        plain_kl = float(0.5 * raw_mu.pow(2).sum(1).mean())
        terms = model.loss(make_batch(ROWS), step=0)
    bound = z_dim * gamma**2 / 2  # n * gamma^2 / 2, with the learned shift beta = 0 at initialisation
    assert plain_kl < 1e-3
    assert float(terms.kl.mean()) >= bound - 1e-7
    assert float(terms.kl.mean()) == pytest.approx(bound, rel=1e-6)  # sigma = 1 and beta = 0: the bound is tight


def test_kl_bound_grows_with_a_learned_shift():
    model = tiny_model("bn-vae", z_dim=4, gamma=0.7).double().train()
    model.mu_bn.eps = 1e-30
    with torch.no_grad():
        model.mu_bn.bias.fill_(0.5)
        terms = model.loss(make_batch(ROWS), step=0)
    assert float(terms.kl.mean()) >= 4 * (0.7**2 + 0.5**2) / 2 - 1e-7  # (1/2) sum_i (gamma^2 + beta_i^2)


def test_gamma_stays_fixed_while_the_shift_is_learned():
    model = tiny_model("bn-vae", gamma=0.7).train()
    optimisation = Optimisation(model.parameter_groups(), TrainConfig(lr=0.01))
    for step in range(3):
        model.training_step(make_batch(ROWS), step, optimisation)
    assert torch.all(model.mu_bn.weight == 0.7)
    assert model.mu_bn.bias.abs().sum() > 0


def test_evaluation_posterior_does_not_depend_on_the_batch():
    model = tiny_model("bn-vae").eval()
    with torch.no_grad():
        alone, _ = model.posterior(make_batch([ROWS[0]]))
        together, _ = model.posterior(make_batch(ROWS))
    torch.testing.assert_close(alone[0], together[0])
