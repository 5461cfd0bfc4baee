"""Lagging VAE (He et al., ICLR 2019, "Lagging Inference Networks and Posterior Collapse in VAEs", Algorithm 1).

Reference code, details and deviations: docs/methods.md, "Lagging VAE (baselines/lagging_vae.py)".
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import torch

from harness.core.contract import ConfigError
from harness.methods.model_api import LossTerms
from harness.methods.registry import register_method
from metrics.lm import mutual_information

from baselines.vae_rnn import BasicVAE, BasicVAEOptions


@dataclass(frozen=True)
class LaggingVAEOptions(BasicVAEOptions):
    kl_start: float = 1.0  # He et al.: 10 epochs of warm-up from kl_start = 0.1 (or 1.0: no warm-up)
    inner_max_steps: int = 99  # their `sub_iter` counts from 1 while `< 100`: 99 encoder updates (text.py l.366, 371)
    inner_check_every: int = 15  # their `sub_iter % 15 == 0`

    def __post_init__(self):
        if self.inner_max_steps < 1 or self.inner_check_every < 1:
            raise ConfigError(f"lagging-vae needs inner_max_steps >= 1 and inner_check_every >= 1, got {self}")
        super().__post_init__()


@register_method("lagging-vae")
class LaggingVAE(BasicVAE):
    Options = LaggingVAEOptions

    def __init__(self, vocab_size, arch, options: LaggingVAEOptions):
        super().__init__(vocab_size, arch, options)
        self.register_buffer("aggressive", torch.tensor(True))
        self.register_buffer("previous_mi", torch.tensor(0.0, dtype=torch.float64))  # text.py l.332: pre_mi = 0
        # encoder-only updates in the current epoch (reported): a buffer, so that an epoch continued from a mid-epoch
        # checkpoint (harness.train.training) counts them all
        self.register_buffer("inner_steps_taken", torch.tensor(0, dtype=torch.int64))

    def reload_weights(self, state_dict: dict) -> None:
        """He et al. reload their best model at an lr decay (text.py l.489) while `aggressive_flag` and `pre_mi` are
        plain variables (l.333, l.455-464): the reload brings back weights, never the aggressive phase."""
        phase = {name: getattr(self, name).clone() for name in ("aggressive", "previous_mi", "inner_steps_taken")}
        super().reload_weights(state_dict)
        for name, value in phase.items():
            getattr(self, name).copy_(value)

    def parameter_groups(self):
        return {"encoder": list(self.encoder.parameters()), "decoder": list(self.decoder.parameters())}

    def aggressive_encoder_updates(self, batch, step: int, optimisation) -> int:
        """Algorithm 1, inner loop: encoder-only updates until the loss stops improving; returns how many."""
        o = self.options
        window_loss, window_words, previous = 0.0, 0, float("inf")
        current = batch
        for inner in range(1, o.inner_max_steps + 1):
            terms = self.loss(current, step)
            window_loss += optimisation.minimise(terms.loss, step, groups=("encoder",), clip_all=True) * (
                current.size if optimisation.cfg.loss_reduction == "mean" else 1)
            window_words += int(current.num_predicted_tokens())
            if inner % o.inner_check_every == 0:
                per_word = window_loss / window_words
                if per_word > previous:
                    break
                previous, window_loss, window_words = per_word, 0.0, 0
            if inner < o.inner_max_steps:
                current = optimisation.random_batch()
        return inner

    def training_step(self, batch, step: int, optimisation) -> LossTerms:
        aggressive = bool(self.aggressive)
        if aggressive:
            self.inner_steps_taken += self.aggressive_encoder_updates(batch, step, optimisation)  # in place
        terms = self.loss(batch, step)
        optimisation.minimise(terms.loss, step, groups=("decoder",) if aggressive else None, clip_all=True)
        return terms

    @torch.no_grad()
    def validation_mi(self, valid_batches, epoch: int) -> float:
        """He et al.'s `calc_mi` on the validation set: per-batch MI, averaged weighted by batch size."""
        was_training = self.training
        self.eval()
        generator = torch.Generator().manual_seed(epoch)  # CPU draws: the same samples on every device
        total, count = 0.0, 0
        for batch in valid_batches():
            mu, logvar = self.posterior(batch)
            total += mutual_information(mu.double(), logvar.double(), generator) * batch.size
            count += batch.size
        self.train(was_training)
        return total / max(count, 1)

    def on_epoch_end(self, epoch: int, valid_batches) -> None:
        if not bool(self.aggressive):
            return
        mi = self.validation_mi(valid_batches, epoch)
        if mi < float(self.previous_mi):
            self.aggressive.fill_(False)  # for good: the encoder no longer lags
        print(f"lagging-vae epoch {epoch}: {int(self.inner_steps_taken)} aggressive encoder updates, validation MI {mi:.3f}"
              f"{'' if bool(self.aggressive) else ' (lower than before: aggressive training stops)'}", file=sys.stderr)
        self.previous_mi.fill_(mi)
        self.inner_steps_taken.zero_()
