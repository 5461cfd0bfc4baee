"""Basic VAE-RNN/GRU/LSTM (Bowman et al. 2016): KL on the last encoder state only, optional KL annealing.

It is TWR-VAE with `kl_timesteps="last"` and z = z_T, so it reuses that implementation; only the options it
accepts differ (no timestep or z choice).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from harness.registry import register_method
from twrvae.model import TWRVAE, TWRVAEOptions


@dataclass(frozen=True)
class BasicVAEOptions:
    rnn_type: str = "lstm"
    kl_warmup_steps: int = 0  # 0 = no annealing
    kl_start: float = 0.0
    word_dropout: float = 0.0  # 0 = none; VAE-LSTM of Bowman et al. uses annealing + word dropout

    def __post_init__(self):
        self.as_twr_options()  # validates the values

    def as_twr_options(self) -> TWRVAEOptions:
        return TWRVAEOptions(rnn_type=self.rnn_type, z_mode="normal", kl_timesteps="last",
                             kl_warmup_steps=self.kl_warmup_steps, kl_start=self.kl_start,
                             word_dropout=self.word_dropout)


@register_method("vae-rnn")
class BasicVAE(TWRVAE):
    Options = BasicVAEOptions

    def __init__(self, vocab_size, arch, options: BasicVAEOptions):
        super().__init__(vocab_size, arch, options.as_twr_options())
        self.basic_options = options

    def options_dict(self) -> dict:
        return asdict(self.basic_options)
