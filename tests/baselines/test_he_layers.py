"""`layers: he` / `zhu`: the language-model baselines on He et al.'s (Zhu et al.'s) encoder / decoder details
(baselines.he_layers)."""
import pytest
import torch

from conftest import make_batch, tiny_model
from baselines.he_layers import EMBEDDING_RANGE, WEIGHT_RANGE, HeLatentDecoder
from harness.core.config import ConfigError
from harness.core.contract import ArchitectureConfig
from harness.methods.lookup import get_method
from harness.data.vocab import PAD_ID

BATCH = make_batch([[4, 5, 6], [7, 8], [9, 4, 4, 5]])


@pytest.mark.parametrize("method", ["vae-rnn", "bn-vae", "lagging-vae"])
def test_every_parameter_starts_uniform_as_theirs(method):
    model = tiny_model(method, layers="he")
    assert isinstance(model.decoder, HeLatentDecoder)
    for part in (model.encoder, model.decoder):
        for name, parameter in part.named_parameters():
            bound = EMBEDDING_RANGE if name == "embedding.weight" else WEIGHT_RANGE
            assert parameter.abs().max() <= bound, name
        assert part.embedding.weight.abs().max() > WEIGHT_RANGE  # the embeddings' own, wider range
        assert torch.count_nonzero(part.embedding.weight[PAD_ID]) == 0


def with_dropout(layers: str):
    torch.manual_seed(0)
    arch = ArchitectureConfig(emb_dim=8, hidden_dim=16, z_dim=4, num_layers=1, dropout=0.5)
    return get_method("vae-rnn").build(12, arch, {"layers": layers}).train()


def test_the_encoder_has_no_dropout_and_the_decoder_drops_its_states_before_the_output_layer():
    model, shared = with_dropout("he"), with_dropout("twr")
    assert not torch.equal(shared.encoder(BATCH.tokens)[0], shared.encoder(BATCH.tokens)[0])  # the shared: dropout
    torch.testing.assert_close(model.encoder(BATCH.tokens)[0], model.encoder(BATCH.tokens)[0])  # theirs: none
    z, inputs = torch.zeros(BATCH.size, 4), BATCH.tokens[:, :-1]
    model.decoder.dropout.eval()  # the input dropout off: what drops states now is the output dropout alone
    dropped = (model.decoder.hidden_states(inputs, z)[0] == 0).float().mean()
    assert 0.3 < dropped < 0.7  # p = 0.5
    shared.decoder.dropout.eval()
    assert (shared.decoder.hidden_states(inputs, z)[0] == 0).float().mean() == 0  # the shared layers: none
    model.eval()
    assert (model.decoder.hidden_states(inputs, z)[0] == 0).float().mean() == 0  # and none in evaluation


def test_the_initial_cell_is_the_projection_of_z_and_the_state_its_tanh():
    model = tiny_model("vae-rnn", layers="he")
    z = torch.randn(3, 4)
    h0, c0 = model.decoder.initial_state(z)
    torch.testing.assert_close(c0[0], model.decoder.z_to_hidden(z))
    torch.testing.assert_close(h0, torch.tanh(c0))


def test_the_default_layers_are_the_shared_ones_and_an_unknown_name_is_a_config_error():
    assert type(tiny_model("vae-rnn").decoder).__name__ == "LatentDecoder"
    with pytest.raises(ConfigError, match="layers must be one of twr, he"):
        tiny_model("vae-rnn", layers="kim")


def test_he_layers_are_built_in_place_of_the_shared_ones_not_after_them(monkeypatch):
    """The method builds its own layers through SequenceVAE.build_layers: the shared ones are never made and
    discarded (no wasted construction, no random draws spent on weights that are thrown away)."""
    import layers.sequence_vae as sequence_vae

    def refuse(*args, **kwargs):
        raise AssertionError("the shared layers were built")

    monkeypatch.setattr(sequence_vae, "TimestepEncoder", refuse)
    monkeypatch.setattr(sequence_vae, "LatentDecoder", refuse)
    assert type(tiny_model("vae-rnn", layers="he").decoder) is HeLatentDecoder
    with pytest.raises(AssertionError, match="shared layers were built"):
        tiny_model("vae-rnn")


def test_zhu_layers_are_he_layers_with_the_encoder_at_pytorchs_default_initialisation():
    """Zhu et al.'s BN-VAE code draws its decoder as He et al.'s but leaves its encoder at PyTorch's defaults."""
    model = tiny_model("bn-vae", layers="zhu")
    assert isinstance(model.decoder, HeLatentDecoder)
    for name, parameter in model.decoder.named_parameters():
        assert parameter.abs().max() <= (EMBEDDING_RANGE if name == "embedding.weight" else WEIGHT_RANGE), name
    assert model.encoder.embedding.weight.abs().max() > 1.0  # nn.Embedding's N(0, 1)
    assert max(p.abs().max() for n, p in model.encoder.named_parameters() if n != "embedding.weight") > WEIGHT_RANGE


def test_bn_vae_keeps_its_kl_floor_on_zhu_layers_and_loses_it_on_uniform_small_encoder_weights():
    """BN-VAE's floor: over a training batch, KL >= n gamma^2 / 2 (Zhu et al. Eq. 5-6), n = z_dim. It holds only where
    the posterior means vary across the batch by more than batch norm's eps, which uniform(-0.01, 0.01) encoder weights
    (He et al.'s draw, `layers: he`) do not give: why bn-vae-own trains on `layers: zhu`, as Zhu et al.'s code."""
    rows = [[4 + (i * 7 + k * 3) % 8 for k in range(3 + i % 4)] for i in range(16)]
    batch = make_batch(rows)
    floor = 4 * 0.7 ** 2 / 2
    kls = {}
    for layers in ("zhu", "he"):
        model = tiny_model("bn-vae", layers=layers, gamma=0.7).train()
        kls[layers] = float(model.loss(batch, 10 ** 6).kl.detach().mean())
    assert kls["zhu"] >= 0.95 * floor
    assert kls["he"] < 0.5 * floor
