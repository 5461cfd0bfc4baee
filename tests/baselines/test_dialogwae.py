"""DialogWAE (Gu et al. 2019): registration, options, the three training phases, generation, gradient penalty."""
import pytest
import torch
from torch import nn

from conftest import assert_greedy_generation, make_dialogue_batch, recording_optimisation, tiny_dialogue_model
from harness.core.config import ConfigError, TrainConfig
from harness.train.optim import Optimisation
from harness.methods.lookup import registered_methods

DIALOGUES = [([[4, 5], [6, 7, 8], [9]], [10, 4]), ([[5, 6, 7, 8, 9]], [11, 11, 5, 4]),
             ([[7, 7], [8]], [6, 9, 10]), ([[4], [5], [6], [7]], [8])]


def test_registered_as_a_dialogue_method():
    assert "dialogwae" in registered_methods(task="dialogue")
    assert "dialogwae" not in registered_methods(task="lm")


@pytest.mark.parametrize("bad", [dict(prior_components=0), dict(n_critic=0), dict(gp_lambda=-1.0),
                                 dict(z_dim=0), dict(gumbel_temp=0.0)])
def test_invalid_options_name_the_method(bad):
    with pytest.raises(ConfigError, match="dialogwae"):
        tiny_dialogue_model("dialogwae", **bad)


def test_a_training_step_runs_the_three_phases_on_their_groups():
    model = tiny_dialogue_model("dialogwae", n_critic=2).train()
    optimisation = recording_optimisation(model, TrainConfig(lr=0.01))
    terms = model.training_step(make_dialogue_batch(DIALOGUES), 0, optimisation)
    assert [groups for _, groups, _ in optimisation.calls] == [("ae",), ("generators",), ("critic",), ("critic",)]
    (*_, ae), (*_, gen), (*_, critic1), (*_, critic2) = optimisation.calls
    assert {"embedding", "context_encoder", "post_net", "post_generator", "decoder"} <= ae
    assert not ae & {"prior_net", "prior_generator", "critic"}
    assert {"post_net", "post_generator", "prior_net", "prior_generator"} <= gen
    assert not gen & {"embedding", "context_encoder", "decoder", "critic"}
    assert critic1 == critic2 == {"critic"}  # the critic steps leave the decoder (and all else) unchanged
    assert terms.recon.shape == terms.kl.shape == (4,) and terms.beta == 0.0
    assert torch.equal(terms.loss, terms.recon) and (terms.recon > 0).all()
    assert all(p.requires_grad for p in model.critic.parameters())  # unfrozen after the generator phase


def test_critic_iterations_use_fresh_batches_when_the_trainer_offers_them():
    model = tiny_dialogue_model("dialogwae", n_critic=3).train()
    optimisation = Optimisation(model.parameter_groups(), TrainConfig(lr=0.01))
    drawn = []
    optimisation.random_batch = lambda: drawn.append(1) or make_dialogue_batch(DIALOGUES[1:])
    model.training_step(make_dialogue_batch(DIALOGUES), 0, optimisation)
    assert len(drawn) == 2


def test_a_batch_of_one_trains():
    model = tiny_dialogue_model("dialogwae", n_critic=1).train()
    optimisation = Optimisation(model.parameter_groups(), TrainConfig(lr=0.01))
    terms = model.training_step(make_dialogue_batch(DIALOGUES[:1]), 0, optimisation)
    assert torch.isfinite(terms.recon).all() and torch.isfinite(terms.kl).all()


def test_training_on_a_fixed_batch_reduces_reconstruction():
    model = tiny_dialogue_model("dialogwae", n_critic=1).train()
    optimisation = Optimisation(model.parameter_groups(), TrainConfig(lr=0.01, loss_reduction="mean"))
    batch = make_dialogue_batch(DIALOGUES)
    recons = [float(model.training_step(batch, step, optimisation).recon.mean()) for step in range(15)]
    assert recons[-1] < 0.85 * recons[0]


def test_loss_reports_the_critic_wasserstein_estimate_as_kl():
    model = tiny_dialogue_model("dialogwae").eval()
    batch = make_dialogue_batch(DIALOGUES)
    terms = model.loss(batch, step=0)
    assert terms.beta == 0.0 and torch.equal(terms.loss, terms.recon) and (terms.recon > 0).all()
    assert terms.kl.shape == (4,) and terms.kl.abs().sum() > 0
    with torch.no_grad():
        model.critic[-1].weight.zero_()  # a constant critic cannot tell prior from posterior codes
        model.critic[-1].bias.fill_(3.0)
    assert torch.equal(model.loss(batch, step=0).kl, torch.zeros(4))


def test_generation_gives_num_samples_greedy_responses_per_context():
    model = tiny_dialogue_model("dialogwae").eval()
    assert_greedy_generation(model, make_dialogue_batch(DIALOGUES[:2]))


def test_gradient_penalty_is_zero_for_a_unit_norm_linear_critic_and_trains_the_critic():
    from baselines.dialogwae import gradient_penalty

    z_dim, c_dim = 5, 4
    critic = nn.Linear(z_dim + c_dim, 1)
    z_prior, z_post, c = torch.randn(6, z_dim), torch.randn(6, z_dim), torch.randn(6, c_dim)
    with torch.no_grad():
        w = torch.randn(z_dim)
        critic.weight[0, :z_dim] = w / w.norm()
        critic.weight[0, z_dim:] = 7.0  # the context part does not enter the penalty
    torch.testing.assert_close(gradient_penalty(critic, z_prior, z_post, c, 10.0), torch.zeros(6))
    with torch.no_grad():
        critic.weight[0, :z_dim] *= 2.0
    penalty = gradient_penalty(critic, z_prior, z_post, c, 10.0)
    torch.testing.assert_close(penalty, torch.full((6,), 10.0))  # 10 * (2 - 1)^2
    penalty.sum().backward()
    assert critic.weight.grad[0, :z_dim].abs().sum() > 0  # create_graph: the penalty reaches the weights


def test_mixture_prior_picks_one_component_per_example():
    from baselines.dialogwae import MixtureNoise

    torch.manual_seed(0)
    net = MixtureNoise(4, 3, components=5, gumbel_temp=0.1).train()
    with torch.no_grad():
        net.to_logvar.bias.fill_(-60.0)  # components collapse to their means
        net.to_mu.bias.copy_(torch.arange(15, dtype=torch.float).mul(10))
    eps = net(torch.randn(8, 4))
    means = torch.arange(15, dtype=torch.float).mul(10).view(5, 3)  # weights are U(-0.05, 0.05): bias dominates
    assert eps.shape == (8, 3) and (torch.cdist(eps, means).min(1).values < 1.0).all()


def test_grus_and_output_layer_start_as_the_reference_code_initialises_them():
    model = tiny_dialogue_model("dialogwae")
    weight = model.decoder.rnn.weight_hh_l0  # [3H, H]: orthonormal columns
    torch.testing.assert_close(weight.T @ weight, torch.eye(weight.size(1)), atol=1e-5, rtol=0)
    assert model.decoder.out.weight.abs().max() <= 0.1 and (model.decoder.out.bias == 0).all()


def test_one_prior_component_is_plain_dialogwaes_gaussian_prior_net_and_more_are_the_mixture():
    from baselines.dialogwae import GaussianNoise, MixtureNoise

    assert isinstance(tiny_dialogue_model("dialogwae", prior_components=1).prior_net, GaussianNoise)
    assert isinstance(tiny_dialogue_model("dialogwae", prior_components=3).prior_net, MixtureNoise)
    model = tiny_dialogue_model("dialogwae", prior_components=1).eval()
    assert_greedy_generation(model, make_dialogue_batch([([[4, 5], [6]], [7, 8])]))
