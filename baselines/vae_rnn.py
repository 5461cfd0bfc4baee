"""Basic VAE-RNN/GRU/LSTM (Bowman et al. 2016): the KL of the last encoder state only, optional KL annealing and
word dropout. It is layers.sequence_vae's RNN-VAE as it stands; the language-model baselines extend it."""
from __future__ import annotations

from dataclasses import dataclass

from harness.methods.registry import register_method
from layers.sequence_vae import SequenceVAE, check_sequence_options


@dataclass(frozen=True)
class BasicVAEOptions:
    rnn_type: str = "lstm"
    kl_warmup_steps: int = 0  # 0 = no annealing
    kl_start: float = 0.0
    word_dropout: float = 0.0  # 0 = none; VAE-LSTM of Bowman et al. uses annealing + word dropout

    def __post_init__(self):
        check_sequence_options(self)


@register_method("vae-rnn")
class BasicVAE(SequenceVAE):
    """Bowman et al.'s VAE; `options` is a BasicVAEOptions (or a baseline's extension of it)."""

    Options = BasicVAEOptions
