"""The interface of dialogue response-generation methods (CVAE family, paper §4.2), beside `model_api.TextVAE`.

A dialogue method is registered in the same registry (`@register_method`) and declares `task = "dialogue"`.
It trains on `DialogueBatch`es (harness.data.dialogue) and generates responses for evaluation; the metrics
(BLEU-P/R/F1, BOW embedding, distinct) are computed by the harness from the generated text, so every method is
scored the same way. Layer sizes are method options (the paper's dialogue models use emb 200, hidden 300,
z 200; Appendix F), not the language-model `architecture` block.
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping

import torch

from harness.model_api import Method


class DialogueVAE(Method):
    task: ClassVar[str] = "dialogue"

    @classmethod
    def build(cls, vocab_size: int, architecture, options: Mapping[str, Any]) -> "DialogueVAE":
        """`architecture` (the language-model sizes) is ignored: dialogue sizes are options."""
        return cls(vocab_size, cls.parse_options(options))

    def generate(self, batch, num_samples: int, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy responses with z drawn from the prior p(z|c): token ids [B, S, max_len] (no <s>; </s> and what
        follows are cut off by `lengths`) and lengths [B, S] (words before </s>)."""
        raise NotImplementedError
