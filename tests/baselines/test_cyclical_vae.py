"""Cyclical VAE trains the basic VAE with the cyclical KL weight."""
import pytest
import torch

from conftest import make_batch, tiny_model
from harness.core.config import ConfigError
from harness.core.schedules import cyclical_beta


def test_loss_uses_the_cyclical_weight_and_the_last_state_kl():
    model = tiny_model("cyclical-vae", cycle_steps=10, cycles=2, ratio=0.5)
    basic = tiny_model("vae-rnn")  # same seed, same architecture: same parameters
    batch = make_batch([[4, 5, 6], [7, 8]])
    for step in (0, 3, 5, 12, 25):
        torch.manual_seed(step)
        terms = model.loss(batch, step)
        torch.manual_seed(step)
        reference = basic.loss(batch, step)
        assert terms.beta == pytest.approx(cyclical_beta(step, 10, 0.5, 2))
        torch.testing.assert_close(terms.kl, reference.kl)
        torch.testing.assert_close(terms.loss, terms.recon + terms.beta * terms.kl)


def test_bad_cycle_options_are_config_errors():
    with pytest.raises(ConfigError, match="cyclical-vae"):
        tiny_model("cyclical-vae", ratio=0.0)


def test_beta_restart_follows_their_language_model_code_from_point_one():
    model = tiny_model("cyclical-vae", cycle_steps=10, cycles=2, ratio=0.5, beta_restart=0.1)
    batch = make_batch([[4, 5, 6], [7, 8]])
    for step, beta in ((0, 0.3), (3, 0.9), (4, 1.0), (9, 1.0), (10, 0.3), (25, 1.0)):
        assert model.loss(batch, step).beta == pytest.approx(beta)  # 0.1 + (step in cycle + 1) / 5, capped at 1
    with pytest.raises(ConfigError, match="beta_restart"):
        tiny_model("cyclical-vae", beta_restart=1.0)
