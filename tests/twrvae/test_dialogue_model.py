"""TWR-VAE for dialogue (Eq. 7): the KL is averaged over the real context-encoder timesteps."""
import torch

from conftest import make_dialogue_batch, tiny_dialogue_model
from metrics.lm import gaussian_kl

DIALOGUES = [([[4, 5], [6, 7, 8], [9]], [10, 4]), ([[5, 6, 7, 8, 9]], [11, 11, 5, 4])]


def test_kl_is_the_mean_over_each_dialogues_own_context_timesteps():
    model = tiny_dialogue_model("twr-cvae").eval()
    batch = make_dialogue_batch(DIALOGUES)
    with torch.no_grad():
        c, states = model.encode_context(batch)
        x = model.encode_response(batch)
        kl, mu, logvar = model.kl_term(x, c, states, batch)
        for i, n in enumerate(batch.num_utterances.tolist()):
            per_step = [gaussian_kl(*model.recognition(torch.cat([x[i], states[i, t]])), *model.prior(states[i, t]))
                        for t in range(n)]
            torch.testing.assert_close(kl[i], torch.stack(per_step).mean())
        # z is drawn from the posterior of the last state c_n
        torch.testing.assert_close(mu, model.recognition(torch.cat([x, c], -1))[0])
        torch.testing.assert_close(c[1], states[1, 0])  # one utterance: c is its only state


def test_padding_context_slots_do_not_change_the_kl():
    model = tiny_dialogue_model("twr-cvae").eval()
    with torch.no_grad():
        torch.manual_seed(0)
        alone = model.loss(make_dialogue_batch(DIALOGUES[1:]), 0)
        torch.manual_seed(0)
        padded = model.loss(make_dialogue_batch(DIALOGUES[::-1]), 0)  # now padded to 3 context slots
    torch.testing.assert_close(alone.kl[0], padded.kl[0])


def test_twr_cvae_trains_without_bag_of_words_by_default():
    assert tiny_dialogue_model("twr-cvae").bow is None
    assert tiny_dialogue_model("cvae").bow is not None


def test_padded_timesteps_average_over_every_slot_of_the_batch_as_the_original_kl_loss():
    model = tiny_dialogue_model("twr-cvae", timesteps="padded").eval()
    batch = make_dialogue_batch(DIALOGUES)  # 3 and 1 context utterances: padded to 3 slots
    with torch.no_grad():
        c, states = model.encode_context(batch)
        x = model.encode_response(batch)
        kl, _, _ = model.kl_term(x, c, states, batch)
        assert (states[1, 1:] == 0).all()  # the padding slots' states are zero, as pad_packed_sequence's
        per_slot = [gaussian_kl(*model.recognition(torch.cat([x[1], states[1, t]])), *model.prior(states[1, t]))
                    for t in range(3)]
        torch.testing.assert_close(kl[1], torch.stack(per_slot).sum() / 3)
        own = tiny_dialogue_model("twr-cvae").eval().kl_term(x, c, states, batch)[0]
        torch.testing.assert_close(own[1], per_slot[0])  # one real utterance: its own KL
        torch.testing.assert_close(own[0], kl[0])  # no padding: both agree


def test_an_unknown_timesteps_value_is_a_config_error():
    import pytest

    from harness.core.config import ConfigError

    with pytest.raises(ConfigError, match="timesteps"):
        tiny_dialogue_model("twr-cvae", timesteps="all")
