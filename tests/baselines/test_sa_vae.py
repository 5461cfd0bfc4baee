"""SA-VAE: SVI refines the amortised posterior, and training differentiates through the refinement."""
import pytest
import torch

from conftest import make_batch, tiny_model
from harness.core.config import ConfigError
from metrics.lm import gaussian_kl_standard_normal, sample_gaussian

BATCH = make_batch([[4, 5, 6], [7, 8], [9, 4, 4, 5]])


def expected_negative_elbo(model, mu, logvar, samples=4000):
    generator = torch.Generator().manual_seed(0)
    z = sample_gaussian(mu, logvar, samples, generator)
    recon = -model.log_likelihood(BATCH, z).mean(0)
    return recon + gaussian_kl_standard_normal(mu, logvar)


def test_svi_refinement_improves_the_elbo_of_each_sentence():
    model = tiny_model("sa-vae", svi_steps=30, svi_lr=0.05).double().eval()
    with torch.no_grad():
        model.decoder.z_to_hidden.weight.mul_(3.0)  # a decoder that uses z, so the posterior matters
        initial = tiny_model("vae-rnn").double().eval()
        initial.load_state_dict({k: v for k, v in model.state_dict().items()}, strict=True)
        mu0, logvar0 = initial.posterior(BATCH)
        mu, logvar = model.posterior(BATCH)
        before = expected_negative_elbo(model, mu0, logvar0)
        after = expected_negative_elbo(model, mu, logvar)
    assert (after < before - 0.01).all()


def test_without_svi_steps_it_is_the_basic_vae():
    model, basic = tiny_model("sa-vae", svi_steps=0), tiny_model("vae-rnn")
    with torch.no_grad():
        for ours, theirs in zip(model.posterior(BATCH), basic.posterior(BATCH)):
            torch.testing.assert_close(ours, theirs)


def test_training_gradient_reaches_the_encoder_through_the_refinement():
    model = tiny_model("sa-vae", svi_steps=3).train()
    model.loss(BATCH, step=0).loss.sum().backward()
    encoder_grad = sum(float(p.grad.abs().sum()) for p in model.encoder.parameters() if p.grad is not None)
    assert encoder_grad > 0  # lambda_0 = encoder(x) only enters the loss through the SVI steps


def test_unrolled_gradient_matches_finite_differences():
    """d loss / d lambda_0 through K momentum-SGD steps, checked against central differences (same noise)."""
    model = tiny_model("sa-vae", svi_steps=3, svi_lr=0.1, svi_max_grad_norm=0.0).double().eval()
    mu0 = torch.zeros(BATCH.size, 4, dtype=torch.float64, requires_grad=True)
    logvar0 = torch.zeros(BATCH.size, 4, dtype=torch.float64, requires_grad=True)

    def final_loss(mu_start):
        torch.manual_seed(0)
        mu, logvar = model.refine(BATCH, mu_start, logvar0, beta=1.0, differentiable=True)
        recon, kl = model.negative_elbo(BATCH, mu, logvar)
        return (recon + kl).sum()

    (grad,) = torch.autograd.grad(final_loss(mu0), mu0)
    eps = 1e-5
    for index in [(0, 0), (1, 2), (2, 3)]:
        shift = torch.zeros_like(mu0)
        shift[index] = eps
        numeric = (final_loss((mu0 + shift).detach()) - final_loss((mu0 - shift).detach())) / (2 * eps)
        assert float(grad[index].detach()) == pytest.approx(float(numeric.detach()), rel=1e-4, abs=1e-6)


def test_bad_svi_options_are_config_errors():
    with pytest.raises(ConfigError, match="sa-vae"):
        tiny_model("sa-vae", svi_lr=0.0)
