"""CVAE (Zhao et al. 2017): loss terms, padding invariance, prior sampling."""
import torch

from conftest import assert_greedy_generation, make_dialogue_batch, tiny_dialogue_model
from harness.methods.lookup import registered_methods
from metrics.lm import gaussian_kl

DIALOGUES = [([[4, 5], [6, 7, 8], [9]], [10, 4]), ([[5, 6, 7, 8, 9]], [11, 11, 5, 4])]


def test_dialogue_methods_are_registered_separately_from_language_models():
    assert {"cvae", "twr-cvae"} <= set(registered_methods(task="dialogue"))
    assert not {"cvae", "twr-cvae"} & set(registered_methods(task="lm"))


def test_gaussian_kl_matches_torch_distributions():
    mu_q, lv_q, mu_p, lv_p = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3)
    normal = torch.distributions.Normal
    expected = torch.distributions.kl_divergence(normal(mu_q, (0.5 * lv_q).exp()), normal(mu_p, (0.5 * lv_p).exp())).sum(-1)
    torch.testing.assert_close(gaussian_kl(mu_q, lv_q, mu_p, lv_p), expected)


def test_loss_is_recon_plus_annealed_kl_plus_bag_of_words():
    model = tiny_dialogue_model("cvae", kl_warmup_steps=10, bow_weight=1.0).eval()
    batch = make_dialogue_batch(DIALOGUES)
    torch.manual_seed(1)
    terms = model.loss(batch, step=5)
    assert terms.beta == 0.5 and (terms.kl > 0).all() and (terms.recon > 0).all()
    assert (terms.loss > terms.recon + 0.5 * terms.kl).all()  # the bag-of-words loss is positive
    without_bow = tiny_dialogue_model("cvae", kl_warmup_steps=10, bow_weight=0.0).eval()
    torch.manual_seed(1)
    plain = without_bow.loss(batch, step=5)
    torch.testing.assert_close(plain.loss, plain.recon + 0.5 * plain.kl)


def test_a_dialogue_loss_does_not_depend_on_its_batch():
    model = tiny_dialogue_model("cvae").eval()
    with torch.no_grad():
        torch.manual_seed(0)
        alone = model.loss(make_dialogue_batch(DIALOGUES[:1]), 0)
        torch.manual_seed(0)
        together = model.loss(make_dialogue_batch(DIALOGUES), 0)
    torch.testing.assert_close(alone.kl[0], together.kl[0])
    torch.testing.assert_close(alone.recon[0], together.recon[0], rtol=1e-5, atol=1e-5)


def test_generation_gives_num_samples_greedy_responses_per_context():
    model = tiny_dialogue_model("cvae").eval()
    assert_greedy_generation(model, make_dialogue_batch(DIALOGUES))


def test_pretrained_vectors_initialise_the_embedding_of_the_words_they_cover():
    import numpy as np
    from gensim.models import KeyedVectors

    from harness.data.vocab import Vocab

    model = tiny_dialogue_model("cvae")  # emb_dim 8
    vocab = Vocab(["<pad>", "<unk>", "<s>", "</s>", "hello", "world"])
    vectors = KeyedVectors(vector_size=8)
    vectors.add_vectors(["hello", "<pad>"], np.ones((2, 8), dtype=np.float32))
    before = model.embedding.weight.detach().clone()
    report = model.initialise_embeddings(vocab, vectors, "test vectors")
    assert report == {"vectors": "test vectors", "initialised": 1, "vocabulary": 6}
    torch.testing.assert_close(model.embedding.weight[4].detach(), torch.ones(8))
    torch.testing.assert_close(model.embedding.weight[5].detach(), before[5])  # not covered: unchanged
    torch.testing.assert_close(model.embedding.weight[0].detach(), before[0])  # padding stays zero
    small = KeyedVectors(vector_size=3)
    small.add_vectors(["hello"], np.ones((1, 3), dtype=np.float32))
    assert model.initialise_embeddings(vocab, small, "small")["initialised"] == 0


def test_the_reference_initialisation_is_orthogonal_grus_and_small_uniform_heads_and_output():
    model = tiny_dialogue_model("cvae")  # init "reference" by default
    for rnn in (model.utterance_encoder.rnn, model.context_encoder.rnn, model.decoder.rnn):
        for name, weight in rnn.named_parameters():
            if weight.dim() > 1:  # [3H, in]: orthonormal columns (or rows, when wider than tall)
                gram = weight.T @ weight if weight.size(0) >= weight.size(1) else weight @ weight.T
                torch.testing.assert_close(gram, torch.eye(gram.size(0)), atol=1e-5, rtol=0)
    for head in (model.recognition, model.prior):
        for layer in head.modules():
            if isinstance(layer, torch.nn.Linear):
                assert layer.weight.abs().max() <= 0.02 and (layer.bias == 0).all()
    assert model.decoder.out.weight.abs().max() <= 0.1 and (model.decoder.out.bias == 0).all()
    pytorch = tiny_dialogue_model("cvae", init="pytorch")
    assert (pytorch.recognition.to_mu.bias != 0).any() and pytorch.recognition.to_mu.weight.abs().max() > 0.02


def test_embedding_init_random_keeps_the_random_embedding_as_the_released_dialogue_scripts():
    import numpy as np
    from gensim.models import KeyedVectors

    from harness.data.vocab import Vocab

    model = tiny_dialogue_model("cvae", embedding_init="random")
    vocab = Vocab(["<pad>", "<unk>", "<s>", "</s>", "hello", "world"])
    vectors = KeyedVectors(vector_size=8)
    vectors.add_vectors(["hello"], np.ones((1, 8), dtype=np.float32))
    before = model.embedding.weight.clone()
    report = model.initialise_embeddings(vocab, vectors, "test vectors")
    assert report["initialised"] == 0 and "random" in report["note"]
    torch.testing.assert_close(model.embedding.weight, before)


def test_kl_increase_per_epoch_adds_a_share_before_every_batch_as_the_dailydialog_script():
    import pytest

    from harness.core.config import ConfigError

    model = tiny_dialogue_model("twr-cvae", kl_start=0.1, kl_increase_per_epoch=0.1)
    with pytest.raises(RuntimeError, match="batches per epoch"):
        model.kl_weight(0)
    model.on_train_start(5)
    assert model.kl_weight(0) == pytest.approx(0.12) and model.kl_weight(43) == pytest.approx(0.98)
    assert model.kl_weight(44) == 1.0 == model.kl_weight(500)
    with pytest.raises(ConfigError, match="kl_increase_per_epoch"):
        tiny_dialogue_model("twr-cvae", kl_warmup_steps=100, kl_increase_per_epoch=0.1)


def test_context_utterances_are_encoded_without_their_leading_start_token_as_the_reference():
    model = tiny_dialogue_model("cvae").eval()
    batch = make_dialogue_batch(DIALOGUES)
    changed = make_dialogue_batch(DIALOGUES)
    changed.context[:, :, 0] = torch.where(changed.context_lengths > 0, 9, 0)  # another first token: ignored
    with torch.no_grad():
        torch.testing.assert_close(model.encode_context(batch)[0], model.encode_context(changed)[0])
        changed.context[0, 0, 1] = 10  # the first word counts
        assert not torch.allclose(model.encode_context(batch)[0][0], model.encode_context(changed)[0][0])
