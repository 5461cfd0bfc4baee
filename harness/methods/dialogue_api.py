"""The interface of dialogue response-generation methods (CVAE family, paper §4.2), beside `model_api.TextVAE`.

A dialogue method is registered in the same registry (`@register_method`) and declares `task = "dialogue"`.
It trains on `DialogueBatch`es (harness.data.dialogue_dataset) and generates responses for evaluation; the metrics
(BLEU-P/R/F1, BOW embedding, distinct) are computed by the harness from the generated text, so every method is
scored the same way. Layer sizes are method options (the paper's dialogue models use emb 200, hidden 300,
z 200; Appendix F), not the language-model `architecture` block.
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping

import torch

from harness.methods.model_api import Method


class DialogueVAE(Method):
    """Base class of registered dialogue methods: trained on `DialogueBatch`es, evaluated on sampled responses."""

    task: ClassVar[str] = "dialogue"

    @classmethod
    def build(cls, vocab_size: int, architecture, options: Mapping[str, Any]) -> "DialogueVAE":
        """`architecture` (the language-model sizes) is ignored: dialogue sizes are options."""
        return cls(vocab_size, cls.parse_options(options))

    # Encoders shared by the CVAE family (layers/dialogue.py): subclasses define `context_encoder` and
    # `utterance_encoder`.
    def encode_context(self, batch):
        """c [B, H] and the context encoder's states [B, J, H]. The context utterances are encoded without their
        leading <s>, as the reference codes do before their context encoder (`context[:, :, 1:]`, `utt_lens - 1`
        in ruizheliUOA/TWR-VAE's and guxd/DialogWAE's training and evaluation loops); batches keep it."""
        lengths = (batch.context_lengths - 1).clamp(min=0)  # absent slots stay at length 0
        return self.context_encoder(batch.context[:, :, 1:], lengths, batch.num_utterances, batch.floors)

    def encode_response(self, batch):
        """x: the utterance encoder's vector of the response (without <s>, as the reference code)."""
        return self.utterance_encoder(batch.response[:, 1:], batch.response_lengths - 1)

    @torch.no_grad()
    def initialise_embeddings(self, vocab, vectors, name: str) -> dict:
        """Copy pretrained word vectors into `self.embedding` for the words they cover (DialogWAE initialises its
        embedding from GloVe); other rows keep their random initialisation. Returns what was done, for the log."""
        embedding = self.embedding
        if vectors.vector_size != embedding.embedding_dim:
            return {"vectors": name, "initialised": 0,
                    "note": f"not initialised: the vectors have {vectors.vector_size} dimensions, the embedding "
                            f"{embedding.embedding_dim}"}
        rows = [(i, word) for i, word in enumerate(vocab.itos) if word in vectors and i != embedding.padding_idx]
        for i, word in rows:
            embedding.weight[i] = torch.tensor(vectors[word], dtype=embedding.weight.dtype)
        return {"vectors": name, "initialised": len(rows), "vocabulary": len(vocab)}

    def generate(self, batch, num_samples: int, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy responses with z drawn from the prior p(z|c): token ids [B, S, max_len] (no <s>; </s> and what
        follows are cut off by `lengths`) and lengths [B, S] (words before </s>)."""
        raise NotImplementedError
