"""iVAE_MI for dialogue (Fang et al. 2019): the dual KL estimator, the alternating updates, prior sampling."""
import pytest
import torch

from conftest import assert_greedy_generation, make_dialogue_batch, tiny_dialogue_model
from baselines.ivae import DualCritic, dual_kl
from harness.config import ConfigError, TrainConfig
from harness.optim import Optimisation
from harness.methods import registered_methods

DIALOGUES = [([[4, 5], [6, 7, 8], [9]], [10, 4]), ([[5, 6, 7, 8, 9]], [11, 11, 5, 4])]


def test_registered_as_a_dialogue_method():
    assert "ivae" in registered_methods(task="dialogue")
    assert "ivae" not in registered_methods(task="lm")


def test_invalid_options_name_the_method():
    with pytest.raises(ConfigError, match="ivae"):
        tiny_dialogue_model("ivae", critic_steps=0)
    with pytest.raises(ConfigError, match="ivae"):
        tiny_dialogue_model("ivae", dropout=1.0)


def test_a_trained_critic_recovers_the_kl_of_two_gaussians():
    """KL(N(1,1) || N(0,1)) = 0.5; the optimal critic is nu*(z) = log q/p = z - 0.5."""
    torch.manual_seed(0)
    critic = DualCritic(z_dim=1, c_dim=1, hidden=32)
    optimizer = torch.optim.Adam(critic.parameters(), lr=3e-3)
    c = torch.zeros(512, 1)
    for _ in range(600):
        z_q, z_p = torch.randn(512, 1) + 1.0, torch.randn(512, 1)
        loss = -dual_kl(critic(z_q, c), critic(z_p, c)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        c = torch.zeros(200_000, 1)
        estimate = dual_kl(critic(torch.randn(200_000, 1) + 1.0, c), critic(torch.randn(200_000, 1), c)).mean()
        grid = torch.linspace(-1.0, 2.0, 7).unsqueeze(1)
        nu = critic(grid, torch.zeros(7, 1))
    assert abs(float(estimate) - 0.5) < 0.05
    torch.testing.assert_close(nu, grid[:, 0] - 0.5, atol=0.15, rtol=0.0)
    untrained = DualCritic(z_dim=1, c_dim=1, hidden=32)  # any critic gives a lower bound, far off here
    with torch.no_grad():
        loose = dual_kl(untrained(torch.randn(200_000, 1) + 1.0, c), untrained(torch.randn(200_000, 1), c)).mean()
    assert float(loose) < 0.4


def test_loss_is_recon_plus_annealed_dual_kl_and_the_kl_does_not_train_the_encoders():
    model = tiny_dialogue_model("ivae", kl_warmup_steps=10).eval()
    batch = make_dialogue_batch(DIALOGUES)
    terms = model.loss(batch, step=5)
    assert terms.beta == 0.5 and terms.loss.shape == (2,) and (terms.recon > 0).all()
    torch.testing.assert_close(terms.loss, terms.recon + 0.5 * terms.kl)
    terms.kl.sum().backward()
    assert all(p.grad is None for p in model.context_encoder.parameters())
    assert all(p.grad is not None for p in model.prior_net.parameters())
    assert all(p.grad is not None for p in model.posterior_net.parameters())
    assert model.decoder.out.weight.grad is None


class RecordingOptimisation(Optimisation):
    def __init__(self, model, cfg):
        super().__init__(model.parameter_groups(), cfg)
        self.model = model
        self.calls = []

    def minimise(self, per_sentence_loss, step, groups=None):
        before = {name: [p.detach().clone() for p in params] for name, params in self.groups.items()}
        value = super().minimise(per_sentence_loss, step, groups)
        changed = {name for name, params in self.groups.items()
                   if any(not torch.equal(a, p) for a, p in zip(before[name], params))}
        self.calls.append((groups, changed))
        return value


def test_a_training_step_updates_the_critic_then_the_model():
    model = tiny_dialogue_model("ivae", critic_steps=3).train()
    groups = model.parameter_groups()
    assert set(groups) == {"model", "critic"}
    critic_ids = {id(p) for p in model.critic.parameters()}
    assert {id(p) for p in groups["critic"]} == critic_ids
    assert not critic_ids & {id(p) for p in groups["model"]}
    assert len(groups["model"]) + len(groups["critic"]) == len(list(model.parameters()))
    optimisation = RecordingOptimisation(model, TrainConfig(lr=0.01))
    terms = model.training_step(make_dialogue_batch(DIALOGUES), 0, optimisation)
    assert terms.loss.shape == (2,) and torch.isfinite(terms.loss).all()
    assert optimisation.calls == [(("critic",), {"critic"})] * 3 + [(("model",), {"model"})]


def test_generation_gives_num_samples_greedy_responses_per_context():
    model = tiny_dialogue_model("ivae").eval()
    assert_greedy_generation(model, make_dialogue_batch(DIALOGUES))
