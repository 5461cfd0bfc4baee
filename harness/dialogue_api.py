"""The interface of dialogue response-generation methods (CVAE family, paper §4.2), beside `model_api.TextVAE`.

A dialogue method is registered in the same registry (`@register_method`) and declares `task = "dialogue"`.
It trains on `DialogueBatch`es (harness.data.dialogue) and generates responses for evaluation; the metrics
(BLEU-P/R/F1, BOW embedding, distinct) are computed by the harness from the generated text, so every method is
scored the same way. Layer sizes are method options (the paper's dialogue models use emb 200, hidden 300,
z 200; Appendix F), not the language-model `architecture` block.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Mapping

import torch
from torch import nn

from harness.config import build_options
from harness.model_api import LossTerms, NoOptions


class DialogueVAE(nn.Module):
    task: ClassVar[str] = "dialogue"
    Options: ClassVar[type] = NoOptions
    method_name: ClassVar[str] = "<unregistered>"

    @classmethod
    def parse_options(cls, values: Mapping[str, Any], where: str = "options"):
        return build_options(cls.Options, dict(values), where)

    @classmethod
    def build(cls, vocab_size: int, architecture, options: Mapping[str, Any]) -> "DialogueVAE":
        """`architecture` (the language-model sizes) is ignored: dialogue sizes are options."""
        return cls(vocab_size, cls.parse_options(options))

    def options_dict(self) -> dict:
        return dataclasses.asdict(self.options)

    def loss(self, batch, step: int) -> LossTerms:
        """Per-dialogue terms [B] of the training objective."""
        raise NotImplementedError

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"all": list(self.parameters())}

    def training_step(self, batch, step: int, optimisation) -> LossTerms:
        terms = self.loss(batch, step)
        optimisation.minimise(terms.loss, step)
        return terms

    def on_epoch_end(self, epoch: int, valid_batches) -> None:
        """As TextVAE.on_epoch_end."""

    def generate(self, batch, num_samples: int, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy responses with z drawn from the prior p(z|c): token ids [B, S, max_len] (no <s>; </s> and what
        follows are cut off by `lengths`) and lengths [B, S] (words before </s>)."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device
