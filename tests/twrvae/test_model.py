import pytest
import torch

from conftest import make_batch, tiny_model
from harness.core.config import ConfigError
from metrics.lm import gaussian_kl_standard_normal

SHORT = [5, 6]
LONG = [7, 8, 9, 10, 11, 4, 5]


@pytest.mark.parametrize("options", [
    {}, {"z_mode": "mean"}, {"z_mode": "sum"}, {"kl_timesteps": "last50"}, {"rnn_type": "gru"}, {"rnn_type": "rnn"},
])
def test_a_sentence_scores_the_same_whatever_it_is_batched_with(options):
    model = tiny_model(**options).double().eval()
    alone, padded = make_batch([SHORT]), make_batch([SHORT, LONG])
    with torch.no_grad():
        a, b = model.paper_protocol_terms(alone), model.paper_protocol_terms(padded)
        assert torch.allclose(a.recon[0], b.recon[0], atol=1e-10)
        assert torch.allclose(a.kl[0], b.kl[0], atol=1e-10)
        mu_a, logvar_a = model.posterior(alone)
        mu_b, logvar_b = model.posterior(padded)
        assert torch.allclose(mu_a[0], mu_b[0], atol=1e-10) and torch.allclose(logvar_a[0], logvar_b[0], atol=1e-10)
        z = torch.randn(3, 1, mu_a.size(1), dtype=torch.float64)
        assert torch.allclose(model.log_likelihood(alone, z)[:, 0],
                              model.log_likelihood(padded, z.expand(3, 2, -1))[:, 0], atol=1e-10)


def test_twr_kl_is_the_mean_over_real_timesteps_and_basic_vae_uses_the_last():
    twr = tiny_model().double().eval()
    basic = tiny_model("vae-rnn").double().eval()
    basic.load_state_dict(twr.state_dict())
    batch = make_batch([SHORT, LONG])
    with torch.no_grad():
        mu_t, logvar_t, _ = twr.timestep_posteriors(batch)
        per_step = gaussian_kl_standard_normal(mu_t, logvar_t)
        for row, length in enumerate(batch.lengths.tolist()):
            expected_twr = per_step[row, :length].mean()
            expected_last = per_step[row, length - 1]
            assert torch.allclose(twr.paper_protocol_terms(batch).kl[row], expected_twr)
            assert torch.allclose(basic.paper_protocol_terms(batch).kl[row], expected_last)


@pytest.mark.parametrize("which,kept", [("last25", 1), ("last50", 2), ("last75", 3), ("all", 4), ("last", 1)])
def test_last_p_percent_keeps_the_final_timesteps(which, kept):
    model = tiny_model(kl_timesteps=which)
    mask = model.regularised_timesteps(torch.tensor([4, 2]), 5)
    assert mask[0].tolist() == [False] * (4 - kept) + [True] * kept + [False]
    assert mask[1].sum() >= 1 and not mask[1, 2:].any()


def test_mean_and_sum_modes_feed_the_gaussian_of_averaged_or_summed_samples():
    batch = make_batch([LONG])
    with torch.no_grad():
        normal = tiny_model().double().eval()
        mu_t, logvar_t, _ = normal.timestep_posteriors(batch)
        for mode, scale in (("mean", 1.0 / mu_t.size(1)), ("sum", 1.0)):
            model = tiny_model(z_mode=mode).double().eval()
            model.load_state_dict(normal.state_dict())
            mu, logvar = model.posterior(batch)
            assert torch.allclose(mu[0], mu_t[0].sum(0) * scale)
            assert torch.allclose(logvar[0].exp(), logvar_t[0].exp().sum(0) * scale**2)


def test_unknown_option_values_and_keys_are_rejected_by_name():
    with pytest.raises(ConfigError, match="z_mode"):
        tiny_model(z_mode="median")
    with pytest.raises(ConfigError, match="kl_timestep"):
        tiny_model(kl_timestep="all")


def test_kl_annealing_weight_rises_linearly():
    model = tiny_model("vae-rnn", kl_warmup_steps=10, kl_start=0.2)
    assert model.kl_weight(0) == pytest.approx(0.2)
    assert model.kl_weight(5) == pytest.approx(0.6)
    assert model.kl_weight(50) == 1.0
    assert tiny_model().kl_weight(0) == 1.0


def test_word_dropout_replaces_decoder_inputs_only_in_training():
    model = tiny_model("vae-rnn", word_dropout=0.5).double()
    batch = make_batch([LONG, LONG, LONG, LONG])
    z = torch.zeros(1, 4, 4, dtype=torch.float64)
    model.eval()
    with torch.no_grad():
        clean = model.log_likelihood(batch, z)
        assert torch.equal(clean, model.log_likelihood(batch, z))  # deterministic in eval
        model.train()
        torch.manual_seed(0)
        noisy = model.log_likelihood(batch, z)
    assert not torch.allclose(clean, noisy)
    with pytest.raises(ConfigError, match="word_dropout"):
        tiny_model("vae-rnn", word_dropout=1.5)


def test_padded_timesteps_compute_the_original_codes_loss_on_a_padded_batch():
    # benchmarks/original_style.py re-implements the original step: KL over the padded length, z from the last
    # padded state; `timesteps: padded` must give its loss where the default ("own") does not
    from benchmarks.original_style import OriginalStyleTWRVAE

    batch = make_batch([[4, 5, 6, 7, 8, 9], [8], [5, 6, 4]])
    losses = {}
    for timesteps in ("own", "padded"):
        model = tiny_model(timesteps=timesteps).eval()
        torch.manual_seed(3)
        losses[timesteps] = float(model.loss(batch, 0).loss.sum().detach())
    original = OriginalStyleTWRVAE(12, 8, 16, 4, 0.0).copy_from(tiny_model()).eval()
    torch.manual_seed(3)
    expected = float(original.loss(batch.tokens.t()).detach())
    assert losses["padded"] == pytest.approx(expected, rel=1e-5)
    assert losses["own"] != pytest.approx(expected, rel=1e-4)


def test_padded_timesteps_read_every_sentence_over_the_padded_length():
    batch = make_batch([LONG, SHORT])
    width = batch.tokens.size(1)
    with torch.no_grad():
        for mode in ("normal", "mean"):
            own, padded = tiny_model(z_mode=mode).eval(), tiny_model(z_mode=mode, timesteps="padded").eval()
            mu_t, _, steps = padded.timestep_posteriors(batch)
            assert steps.tolist() == [width, width]
            expected = mu_t[:, -1] if mode == "normal" else mu_t.mean(1)
            torch.testing.assert_close(padded.posterior(batch)[0], expected)
            torch.testing.assert_close(padded.paper_protocol_terms(batch).mi_mu, mu_t[:, -1])
            # the longest sentence fills the batch: the same either way; the short one differs
            torch.testing.assert_close(padded.posterior(batch)[0][0], own.posterior(batch)[0][0])
            assert not torch.allclose(padded.posterior(batch)[0][1], own.posterior(batch)[0][1])


def test_an_unknown_timesteps_value_is_a_config_error():
    with pytest.raises(ConfigError, match="timesteps must be one of"):
        tiny_model(timesteps="ragged")
