"""iVAE_MI for dialogue (Fang et al. 2019): the dual KL estimator, what keeps it bounded (issue 18), the alternating
updates, prior sampling."""
import math

import pytest
import torch

from conftest import assert_greedy_generation, make_dialogue_batch, recording_optimisation, tiny_dialogue_model
from baselines.ivae import DualCritic, dual_kl
from harness.methods.check_method import DIALOGUES as CONTRACT_DIALOGUES
from harness.core.config import ConfigError, TrainConfig
from harness.train.optim import Optimisation, TrainingDiverged
from harness.methods.lookup import registered_methods

DIALOGUES = [([[4, 5], [6, 7, 8], [9]], [10, 4]), ([[5, 6, 7, 8, 9]], [11, 11, 5, 4])]
# the critic and samplers as before issue 18's fix: plain MLPs, the critic at train.lr, PyTorch's initialisation
BEFORE_FIX = dict(critic_layer_norm=False, sampler_layer_norm=False, critic_lr_scale=1.0, init="pytorch")


@pytest.fixture(autouse=True)
def one_thread():
    """One thread avoids oversubscribing a busy machine. It does not make training traces the same on every machine
    (other CPUs run other kernels, with other rounding), so no assertion below rests on a trace's exact values."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_registered_as_a_dialogue_method():
    assert "ivae" in registered_methods(task="dialogue")
    assert "ivae" not in registered_methods(task="lm")


def test_invalid_options_name_the_method():
    with pytest.raises(ConfigError, match="ivae"):
        tiny_dialogue_model("ivae", critic_steps=0)
    with pytest.raises(ConfigError, match="ivae"):
        tiny_dialogue_model("ivae", dropout=1.0)
    for scale in (0.0, 1.5):
        with pytest.raises(ConfigError, match="critic_lr_scale"):
            tiny_dialogue_model("ivae", critic_lr_scale=scale)
    with pytest.raises(ConfigError, match="init"):
        tiny_dialogue_model("ivae", init="xavier")
    with pytest.raises(ConfigError, match="sampler_norm"):
        tiny_dialogue_model("ivae", sampler_norm="group")
    with pytest.raises(ConfigError, match="sampler_norm"):
        tiny_dialogue_model("ivae", sampler_norm="layer", sampler_layer_norm=False)


def test_sampler_norm_defaults_to_the_references_batch_norm_and_the_older_key_still_works():
    assert tiny_dialogue_model("ivae").options.sampler_norm == "batch"
    assert isinstance(tiny_dialogue_model("ivae").prior_net.generator[1], torch.nn.BatchNorm1d)
    for legacy, norm in ((True, "layer"), (False, "none")):
        assert tiny_dialogue_model("ivae", sampler_layer_norm=legacy).options.sampler_norm == norm
    assert isinstance(tiny_dialogue_model("ivae", sampler_layer_norm=True).prior_net.generator[1], torch.nn.LayerNorm)


def quadrature_gap(critic: DualCritic) -> tuple[float, float]:
    """For q = N(1, 1) and p = N(0, 1), KL(q || p) = 0.5 and nu*(z) = log q/p = z - 0.5: the shortfall of the dual
    estimate E_q[nu] - E_p[exp nu] + 1 from the KL, and E_q[phi(nu - nu*)] with phi(d) = e^d - 1 - d, both by the
    trapezoid rule on [-12, 12] (float64; nu is bounded, so the tails hold nothing)."""
    z = torch.linspace(-12.0, 12.0, 24001, dtype=torch.float64)
    weights = torch.full_like(z, float(z[1] - z[0]))
    weights[0] = weights[-1] = weights[0] / 2
    q, p = (weights * torch.exp(-0.5 * (z - mean).pow(2)) / math.sqrt(2 * math.pi) for mean in (1.0, 0.0))
    with torch.no_grad():
        nu = critic(z.float().unsqueeze(1), torch.zeros(len(z), 1)).double()
    d = nu - (z - 0.5)
    return 0.5 - float((q * nu).sum() - (p * nu.exp()).sum() + 1.0), float((q * (d.exp() - 1.0 - d)).sum())


def test_a_trained_critic_recovers_the_kl_of_two_gaussians():
    """KL(N(1,1) || N(0,1)) = 0.5; the optimal critic is nu*(z) = log q/p = z - 0.5. For any critic the dual estimate
    falls short of the KL by exactly E_q[phi(nu - nu*)], phi(d) = e^d - 1 - d >= 0, zero only at nu*: a lower bound
    whose gap is the critic's error where q puts its mass (checked by quadrature, to its 1e-9). The trained critic's
    gap is what 600 Adam updates on sampled batches leave, which rounding changes from CPU to CPU; asked: below 10 %
    of the KL, where seeds 0-5 give 0.001-0.006 (the gap, not nu at chosen points: its error at z = -1 or 2, where
    samples are few, ranged 0.03-0.16 with the seed and by 0.01 under rounding-sized changes of the start)."""
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
    gap, error = quadrature_gap(critic)
    assert abs(gap - error) < 1e-9 and 0 <= gap < 0.05
    with torch.no_grad():  # the estimate as training forms it, from samples (Monte Carlo error ~0.003)
        c = torch.zeros(200_000, 1)
        estimate = dual_kl(critic(torch.randn(200_000, 1) + 1.0, c), critic(torch.randn(200_000, 1), c)).mean()
    assert abs(float(estimate) - 0.5) < 0.05
    untrained = DualCritic(z_dim=1, c_dim=1, hidden=32)  # any critic gives a lower bound, far off here
    loose, error = quadrature_gap(untrained)
    assert abs(loose - error) < 1e-9 and loose > 0.1
    with torch.no_grad():
        loose = dual_kl(untrained(torch.randn(200_000, 1) + 1.0, c), untrained(torch.randn(200_000, 1), c)).mean()
    assert float(loose) < 0.4


def test_a_layer_normalised_critic_is_bounded_along_any_ray_and_a_plain_one_is_not():
    """A generator that moves its samples far out cannot raise exp(nu) without limit once nu's hidden layers are
    normalised per example: nu(t * d, c) converges as t grows; the plain MLP grows linearly in t."""
    torch.manual_seed(0)
    direction, c = torch.randn(16, 3), torch.randn(16, 6)
    with torch.no_grad():
        normed, plain = DualCritic(3, 6, 24, layer_norm=True), DualCritic(3, 6, 24, layer_norm=False)
        far, farther = (torch.stack([critic(t * direction, c) for t in (1e4, 1e6)]) for critic in (normed, plain))
    torch.testing.assert_close(far[0], far[1], atol=1e-3, rtol=0.0)
    assert far.abs().max() < 10.0
    assert (farther[1].abs() > 50 * farther[0].abs()).all()


def test_the_critic_moves_critic_lr_scale_times_the_learning_rate():
    """The first Adam step moves every stored value by lr (m / sqrt(v) = +-1); the critic's weights then move by
    critic_lr_scale * lr, the other parameters by lr."""
    model = tiny_dialogue_model("ivae", critic_lr_scale=0.01, critic_steps=1).train()
    weight, decoder = (lambda: model.critic.net[0].weight.detach().clone()), model.decoder.out.weight
    before, decoder_before = weight(), decoder.detach().clone()
    optimisation = Optimisation(model.parameter_groups(), TrainConfig(lr=0.1, weight_decay=0.0))
    model.training_step(make_dialogue_batch(DIALOGUES), 0, optimisation)
    critic_step = (weight() - before).abs().max()
    torch.testing.assert_close(critic_step, torch.tensor(0.01 * 0.1), rtol=1e-2, atol=0.0)
    torch.testing.assert_close((decoder.detach() - decoder_before).abs().max(), torch.tensor(0.1), rtol=1e-2, atol=0.0)


def critic_bound(critic: DualCritic) -> float:
    """B with |nu(z, c)| <= B for every z and c, for a critic with layer-normalised hidden layers: the last LayerNorm
    gives gamma * x_hat + beta with ||x_hat||_2 <= sqrt(H) (unit variance; eps only lowers it), LeakyReLU never
    enlarges a magnitude, so |nu - b| <= sqrt(H) ||w * gamma||_2 + sum |w * beta| (Cauchy-Schwarz)."""
    norm, out = critic.net[4], critic.net[6]
    w = out.weight.detach()[0]
    gamma, beta = norm.weight.detach(), norm.bias.detach()
    return float(out.bias.detach().abs().sum() + math.sqrt(len(w)) * (w * gamma).norm() + (w * beta).abs().sum())


def test_a_normalised_critic_bounds_the_dual_estimate_wherever_the_prior_moves_its_samples_and_the_plain_one_not():
    """Issue 18: the model minimises the dual estimate nu(z_q, c) - exp(nu(z_p, c)) + 1, so a prior that moves its
    samples where nu is large lowers it without limit if nu is unbounded. With the critic as before the fix (a plain
    MLP, linear far out along any ray) training ran away (-2.7e4 within 44 updates when found; how soon depends on a
    chaotic trajectory, whose rounding differs from CPU to CPU, so the mechanism is checked here instead): samples
    moved 1e4 out drive the estimate to -inf. With the default critic |nu| <= critic_bound for every z, so the
    estimate stays in [1 - B - e^B, 1 + B] wherever the samples go."""
    batch = make_dialogue_batch(CONTRACT_DIALOGUES)
    directions = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))  # z_dim 3
    for options in (BEFORE_FIX, {}):
        model = tiny_dialogue_model("ivae", **options).eval()
        with torch.no_grad():
            c, _ = model.encode_context(batch)
            z_q, _ = model.sample_pair(model.encode_response(batch), c)
            nu_q = model.critic(z_q, c).repeat(len(directions))
            nu, estimate = {}, {}
            for t in (1.0, 1e2, 1e4, 1e6):  # every context's prior sample moved to t * direction
                nu[t] = model.critic((t * directions).repeat_interleave(len(c), 0), c.repeat(len(directions), 1))
                estimate[t] = dual_kl(nu_q, nu[t]).view(len(directions), len(c)).mean(1)
        if options:
            torch.testing.assert_close(nu[1e6].max(), 100 * nu[1e4].max(), rtol=1e-3, atol=0.0)  # linear far out
            assert float(estimate[1e4].min()) < -1e30  # exp(nu) overflows: -inf
        else:
            bound = critic_bound(model.critic)
            for t in nu:
                assert nu[t].abs().max() <= bound and nu_q.abs().max() <= bound
                assert (estimate[t] >= 1 - bound - math.exp(bound)).all() and (estimate[t] <= 1 + bound).all()


def dual_trace(steps: int, lr: float, **options) -> tuple[list[float], list[float], list[float], list[float]]:
    """The batch-mean dual KL at each model update and the critic loss at each critic update of the tiny model trained
    on one batch, each with the critic_bound of the weights it was computed with; stops early where the NaN guard
    does."""
    model = tiny_dialogue_model("ivae", **options).train()
    batch = make_dialogue_batch(CONTRACT_DIALOGUES)
    duals, critic_losses, dual_bounds, critic_bounds = [], [], [], []

    class Recording(Optimisation):
        def minimise(self, per_example_loss, step, groups=None):
            if groups == ("critic",):
                critic_losses.append(float(per_example_loss.detach().mean()))
                critic_bounds.append(critic_bound(model.critic))
            return super().minimise(per_example_loss, step, groups)

    optimisation = Recording(model.parameter_groups(), TrainConfig(lr=lr))
    try:
        for step in range(steps):
            duals.append(float(model.training_step(batch, step, optimisation).kl.detach().mean()))
            dual_bounds.append(critic_bound(model.critic))  # the model update leaves the critic as the dual saw it
    except TrainingDiverged:
        pass
    return duals, critic_losses, dual_bounds, critic_bounds


def test_training_with_the_default_critic_keeps_the_dual_estimate_near_zero():
    """80 updates (each after 5 of the critic) of the tiny model at lr 1e-2: every update finite, every estimate and
    critic loss within the range its critic's weights allow (critic_bound: true of any trajectory), and near 0: a
    largest magnitude of 0.2-0.6 for seeds 0-3, against 5."""
    duals, critic_losses, dual_bounds, critic_bounds = dual_trace(80, lr=0.01)
    assert len(duals) == 80 and len(critic_losses) == 5 * 80
    for dual, bound in zip(duals, dual_bounds):
        assert 1 - bound - math.exp(bound) <= dual <= 1 + bound
    for critic_loss, bound in zip(critic_losses, critic_bounds):  # the negated estimate
        assert -1 - bound <= critic_loss <= bound + math.exp(bound) - 1
    assert max(abs(value) for value in duals) < 5 and max(abs(value) for value in critic_losses) < 5


def prior_draws(model, batch, shift: float = 0.0, draws: int = 50, train: bool = False) -> torch.Tensor:
    """`draws` samples z ~ p(z|c) per context [contexts, draws, z], always from the same noise, after adding `shift`
    to the bias of the first hidden layer of the prior's generator G (every unit's pre-activation moved alike); in
    eval mode unless `train` (BatchNorm: batch statistics)."""
    model.train(train)
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        model.prior_net.generator[0].bias += shift
        torch.manual_seed(1)  # the same dropout masks in the context encoder (train mode) at every call: the same c
        c, _ = model.encode_context(batch)
        torch.manual_seed(0)
        z = model.prior_net(c.repeat_interleave(draws, dim=0))
        model.prior_net.generator[0].bias -= shift
    return z.view(len(c), draws, -1)


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_normalised_sampler_layers_keep_the_noise_reaching_z_where_every_relu_would_be_dead(norm):
    """Why the samplers normalise their hidden layers (issue 18; the smoke config's iVAE without it: all of G's first
    ReLUs dead, ten identical responses per context). The mechanism, checked exactly rather than along a training
    trajectory whose rounding differs from CPU to CPU: push every pre-activation of G's first hidden layer 10 below
    zero (they are within a few tenths of it here), as training had pushed them when they died. Without normalisation
    every ReLU is then 0 for every noise draw and z ~ p(z|c) is one constant per context. LayerNorm (over a layer's
    units) and BatchNorm in training mode (over the batch, per unit) both subtract the shift, up to float32 rounding
    (~1e-6 of values near 10), and z varies with the noise as in the intact model: the same draws to within 5 % of
    their spread, an error the rounding stays far below on any CPU."""
    batch = make_dialogue_batch(DIALOGUES)
    dead = prior_draws(tiny_dialogue_model("ivae", sampler_norm="none"), batch, shift=-10.0)
    assert (dead == dead[:, :1]).all()  # one constant per context: the noise never reaches z

    normalised, train = tiny_dialogue_model("ivae", sampler_norm=norm), norm == "batch"
    intact, shifted = (prior_draws(normalised, batch, shift, train=train) for shift in (0.0, -10.0))
    spread = intact.std(1)
    assert (spread > 0).all()  # the noise reaches every coordinate of z
    torch.testing.assert_close(shifted, intact, rtol=0.0, atol=0.05 * float(spread.min()))


def offset_prior_draws(model, c: torch.Tensor, offset: torch.Tensor, draws: int = 20) -> torch.Tensor:
    """[contexts, draws, z] samples z = G(mu(c) + offset + sigma(c) * eps) from fixed noise: `offset` added to the
    noise layer's mean, the same vector for every context and draw (to_mu's bias restored afterwards)."""
    bias = model.prior_net.to_mu.bias
    with torch.no_grad():
        saved = bias.clone()
        bias += offset
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            z = model.prior_net(c.repeat_interleave(draws, dim=0))
        bias.copy_(saved)
    return z.view(len(c), draws, -1)


def test_a_mean_common_to_every_example_drowns_the_noise_under_layer_norm_and_is_subtracted_by_batch_norm():
    """Why the samplers use the reference's BatchNorm (sampler_norm: batch), not LayerNorm: the smoke config's trained
    prior with LayerNorm had a noise-layer mean mu(c) whose part common to all contexts had norm 56, against 11 for
    sigma * eps and 0.45 for what varies with c; G's LayerNorm keeps only the direction of W e, so noise and context
    reached z scaled down by that common part (spread of z over eps 0.008, of G's gain 0.005; docs/methods.md). Checked
    exactly, in float64, by adding t * u (u a unit vector) to mu for every example:
    - LayerNorm: for |W t u| >> |W sigma eps| the normalised input is LN(W t u) plus the noise's part divided by
      std(W t u), which is proportional to t, so z's spread over eps falls as 1 / t: t = 1e5 against t = 1e3 gives
      1e-2, up to terms of relative size |sigma eps| / t ~ 3e-3 (asked: within 1 %);
    - BatchNorm in training mode subtracts each unit's batch mean, so the draws do not change at all (float64 rounding
      of pre-activations of size ~1e3: ~1e-13, asked within 1e-6 of the spread); in eval mode, as responses are
      generated, its running mean has followed the offset after 400 training passes (momentum 0.1: 0.9^400 ~ 5e-19
      of it left), and the draws are again those without the offset."""
    batch = make_dialogue_batch(CONTRACT_DIALOGUES)
    u = torch.nn.functional.normalize(torch.randn(8, generator=torch.Generator().manual_seed(0)), dim=0).double()
    spreads = {}
    for norm in ("layer", "batch"):
        model = tiny_dialogue_model("ivae", sampler_norm=norm, z_dim=8).double().train()
        with torch.no_grad():
            c, _ = model.encode_context(batch)
        draws = {t: offset_prior_draws(model, c, t * u) for t in (0.0, 1e3, 1e5)}
        spreads[norm] = {t: float(z.std(1).mean()) for t, z in draws.items()}
        assert spreads[norm][0.0] > 0
        if norm == "layer":
            assert spreads[norm][1e5] / spreads[norm][1e3] == pytest.approx(1e-2, rel=1e-2)
            continue
        for t in (1e3, 1e5):
            torch.testing.assert_close(draws[t], draws[0.0], rtol=0.0, atol=1e-6 * spreads[norm][0.0])
        generated = {}
        for t in (0.0, 1e5):
            copy = tiny_dialogue_model("ivae", sampler_norm=norm, z_dim=8).double().train()
            for _ in range(400):  # training passes: the running statistics follow the batches
                offset_prior_draws(copy, c, t * u)
            generated[t] = offset_prior_draws(copy.eval(), c, t * u)
        assert float(generated[0.0].std(1).mean()) > 0
        torch.testing.assert_close(generated[1e5], generated[0.0], rtol=0.0,
                                   atol=1e-6 * float(generated[0.0].std(1).mean()))


def test_a_fresh_model_starts_with_nu_near_zero():
    """The reference's initialisation (U(-0.02, 0.02) Linear weights) makes exp(nu) ~ 1 at the start."""
    model = tiny_dialogue_model("ivae").eval()
    with torch.no_grad():
        assert model.loss(make_dialogue_batch(DIALOGUES), 0).kl.abs().max() < 0.1


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


def test_a_training_step_updates_the_critic_then_the_model():
    model = tiny_dialogue_model("ivae", critic_steps=3).train()
    groups = model.parameter_groups()
    assert set(groups) == {"model", "critic"}
    critic_ids = {id(p) for p in model.critic.parameters()}
    assert {id(p) for p in groups["critic"]} == critic_ids
    assert not critic_ids & {id(p) for p in groups["model"]}
    assert len(groups["model"]) + len(groups["critic"]) == len(list(model.parameters()))
    optimisation = recording_optimisation(model, TrainConfig(lr=0.01),
                                          label=lambda name: "critic" if name.startswith("critic.") else "model")
    terms = model.training_step(make_dialogue_batch(DIALOGUES), 0, optimisation)
    assert terms.loss.shape == (2,) and torch.isfinite(terms.loss).all()
    assert optimisation.calls == [(0, ("critic",), {"critic"})] * 3 + [(0, ("model",), {"model"})]


def test_generation_gives_num_samples_greedy_responses_per_context():
    model = tiny_dialogue_model("ivae").eval()
    assert_greedy_generation(model, make_dialogue_batch(DIALOGUES))
