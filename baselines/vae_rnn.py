"""Basic VAE-RNN/GRU/LSTM (Bowman et al. 2016): the KL of the last encoder state only, optional KL annealing and
word dropout. It is layers.sequence_vae's RNN-VAE as it stands; the language-model baselines extend it."""
from __future__ import annotations

from dataclasses import dataclass

from harness.contract import ConfigError
from harness.registry import register_method
from layers.recurrent import RNN_TYPES
from layers.sequence_vae import SequenceVAE


@dataclass(frozen=True)
class BasicVAEOptions:
    rnn_type: str = "lstm"
    kl_warmup_steps: int = 0  # 0 = no annealing
    kl_start: float = 0.0
    word_dropout: float = 0.0  # 0 = none; VAE-LSTM of Bowman et al. uses annealing + word dropout

    def __post_init__(self):
        if self.rnn_type not in RNN_TYPES:
            raise ConfigError(f"rnn_type must be lstm, gru or rnn, got '{self.rnn_type}'")
        if self.kl_warmup_steps < 0 or not 0.0 <= self.kl_start <= 1.0:
            raise ConfigError("kl_warmup_steps must be >= 0 and kl_start in [0, 1]")
        if not 0.0 <= self.word_dropout < 1.0:
            raise ConfigError(f"word_dropout must be in [0, 1), got {self.word_dropout}")


@register_method("vae-rnn")
class BasicVAE(SequenceVAE):
    """Bowman et al.'s VAE; `options` is a BasicVAEOptions (or a baseline's extension of it)."""

    Options = BasicVAEOptions
