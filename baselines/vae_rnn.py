"""Basic VAE-RNN/GRU/LSTM (Bowman et al. 2016): the KL of the last encoder state only, optional KL annealing and
word dropout. It is layers.sequence_vae's RNN-VAE as it stands; the language-model baselines extend it."""
from __future__ import annotations

from dataclasses import dataclass

from harness.core.contract import ConfigError
from harness.methods.registry import register_method
from layers.sequence_vae import SequenceVAE, check_sequence_options

from baselines.he_layers import he_layers

LAYERS = ("twr", "he", "zhu")


@dataclass(frozen=True)
class BasicVAEOptions:
    rnn_type: str = "lstm"
    kl_warmup_steps: int = 0  # 0 = no annealing
    kl_start: float = 0.0
    word_dropout: float = 0.0  # 0 = none; VAE-LSTM of Bowman et al. uses annealing + word dropout
    layers: str = "twr"  # twr: the shared layers (the TWR-VAE code's); he: He et al.'s code's (baselines.he_layers);
    # zhu: Zhu et al.'s BN-VAE code's, He et al.'s with the encoder at PyTorch's default initialisation

    def __post_init__(self):
        check_sequence_options(self)
        if self.layers not in LAYERS:
            raise ConfigError(f"layers must be one of {', '.join(LAYERS)}, got '{self.layers}'")


@register_method("vae-rnn")
class BasicVAE(SequenceVAE):
    """Bowman et al.'s VAE; `options` is a BasicVAEOptions (or a baseline's extension of it)."""

    Options = BasicVAEOptions

    def build_layers(self, vocab_size, arch, options: BasicVAEOptions):
        if options.layers in ("he", "zhu"):
            return he_layers(vocab_size, arch, options.rnn_type, options.word_dropout,
                             uniform_encoder=options.layers == "he")
        return super().build_layers(vocab_size, arch, options)
