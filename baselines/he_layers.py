"""The encoder and decoder details of He et al.'s code (jxhe/vae-lagging-encoder, at cdc4eb9), which Zhu et al.'s
BN-VAE code (valdersoul/bn-vae) shares but for one: the options `layers: he` and `layers: zhu` of the language-model
baselines (baselines.vae_rnn).

The harness's shared layers (layers.recurrent) follow the TWR-VAE code. He et al.'s differ in four ways, all here:
  * no dropout on the encoder's embeddings (modules/encoders/enc_lstm.py l.58-60);
  * dropout `dropout` (their dec_dropout_out, 0.5) on the decoder's states before the output layer
    (modules/decoders/dec_lstm.py l.106), beside the dropout on its input embeddings both codes have;
  * the decoder's initial state c0 = W z, h0 = tanh(c0) (dec_lstm.py l.100-101), not h0 = c0 = W z;
  * every parameter drawn from uniform(-0.01, 0.01), the embeddings from uniform(-0.1, 0.1) (text.py l.232-236,
    265-266; enc_lstm.py l.42-44, dec_lstm.py l.62-64).
`layers: zhu` is Zhu et al.'s code (valdersoul/bn-vae@b248193): the same, but its GaussianLSTMEncoder leaves
PyTorch's default initialisation in place (modules/encoders/enc_lstm.py l.169-185: the model_init / emb_init loop is
commented out, only the BN scale is filled with gamma); its decoder draws uniformly as He et al.'s (dec_lstm.py
l.51-64). It matters to BN-VAE: from uniform(-0.01, 0.01) weights the posterior means vary across a batch by less
than batch norm's eps (1e-5), so the normalisation cannot lift them to gamma's scale and the KL collapses (measured:
KL 0.004 a sentence at initialisation, against 7.97 from the default initialisation; 0.05 after 4 epochs).
Not reproduced: their bias-free mu / logvar head and output layer (ours keep the biases, starting from the same
uniform draw) and their <pad> row, which is a word of theirs and stays 0 here (padding_idx).
"""
from __future__ import annotations

import torch
from torch import nn

from harness.data.vocab import PAD_ID
from layers.recurrent import Dropout, LatentDecoder, TimestepEncoder

WEIGHT_RANGE = 0.01  # text.py l.265 model_init = uniform_initializer(0.01)
EMBEDDING_RANGE = 0.1  # text.py l.266 emb_init = uniform_initializer(0.1)


class HeLatentDecoder(LatentDecoder):
    """LatentDecoder with dropout on its states before the output layer and h0 = tanh(c0) for an LSTM."""

    def __init__(self, vocab_size, emb_dim, hidden_dim, z_dim, num_layers, dropout, rnn_type, word_dropout=0.0):
        super().__init__(vocab_size, emb_dim, hidden_dim, z_dim, num_layers, dropout, rnn_type, word_dropout)
        self.dropout_out = Dropout(dropout)

    def initial_state(self, z: torch.Tensor):
        if self.rnn_type != "lstm":
            return super().initial_state(z)
        c0 = self.z_to_hidden(z).unsqueeze(0).expand(self.num_layers, -1, -1).contiguous()
        return torch.tanh(c0), c0

    def hidden_states(self, inputs: torch.Tensor, z: torch.Tensor, state=None):
        hidden, state = super().hidden_states(inputs, z, state)
        return self.dropout_out(hidden), state


def he_layers(vocab_size: int, arch, rnn_type: str, word_dropout: float, uniform_encoder: bool = True
              ) -> tuple[TimestepEncoder, HeLatentDecoder]:
    """The encoder (no embedding dropout) and decoder of He et al.'s code, initialised as theirs; with
    `uniform_encoder=False` the encoder keeps PyTorch's default initialisation, as Zhu et al.'s (`layers: zhu`)."""
    encoder = TimestepEncoder(vocab_size, arch.emb_dim, arch.hidden_dim, arch.z_dim, arch.num_layers, 0.0, rnn_type)
    decoder = HeLatentDecoder(vocab_size, arch.emb_dim, arch.hidden_dim, arch.z_dim, arch.num_layers, arch.dropout,
                              rnn_type, word_dropout=word_dropout)
    for module in (encoder, decoder) if uniform_encoder else (decoder,):
        initialise_uniformly(module)
    return encoder, decoder


@torch.no_grad()
def initialise_uniformly(module: nn.Module) -> None:
    """uniform(-0.01, 0.01) on every parameter, then uniform(-0.1, 0.1) on the embedding (its <pad> row kept 0)."""
    for parameter in module.parameters():
        parameter.uniform_(-WEIGHT_RANGE, WEIGHT_RANGE)
    module.embedding.weight.uniform_(-EMBEDDING_RANGE, EMBEDDING_RANGE)
    module.embedding.weight[PAD_ID].zero_()
