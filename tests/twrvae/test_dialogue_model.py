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
