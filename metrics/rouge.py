"""ROUGE curves of latent-space interpolation (Li et al. 2020, §4.3, Figures 2-3).

For a pair (s1, s2) the model decodes z_alpha = (1 - alpha) z1 + alpha z2 for alpha = 0, 0.1, ..., 1. Each
decoded sentence is scored with ROUGE-1/2/L F1 (Google's `rouge-score`) against s1 and against s2; averaging
over pairs gives, per ROUGE type, two curves over alpha. A smooth latent space moves from ~1 against s1 at
alpha = 0 to ~1 against s2 at alpha = 1.

Sentences are compared as the harness's own tokens (whitespace-split, unchanged): rouge-score's default
tokenizer would lowercase and drop non-alphanumerics, turning "<unk>" into "unk" and merging punctuation.
"""
from __future__ import annotations

from collections.abc import Sequence

from rouge_score import rouge_scorer, tokenizers

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
REFERENCES = ("source", "target")  # s1, s2


class WhitespaceTokenizer(tokenizers.Tokenizer):
    """Tokens as they are in the preprocessed corpus."""

    def tokenize(self, text):
        return text.split()


def make_scorer() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=False, tokenizer=WhitespaceTokenizer())


def rouge_f1(candidate: str, reference: str, scorer: rouge_scorer.RougeScorer | None = None) -> dict[str, float]:
    """ROUGE-1/2/L F1 of `candidate` against `reference` (0 when either is empty)."""
    scores = (scorer or make_scorer()).score(reference, candidate)  # rouge-score's order: (target, prediction)
    return {name: float(scores[name].fmeasure) for name in ROUGE_TYPES}


def interpolation_curves(paths: Sequence[tuple[str, str, Sequence[str]]]) -> dict[str, dict[str, list[float]]]:
    """Mean ROUGE F1 per interpolation step against the source and the target sentence.

    paths: (source s1, target s2, decoded sentences at alpha_0 ... alpha_n) for every pair; all pairs must
    have the same number of steps. Returns {rouge type: {"source": [n+1 means], "target": [n+1 means]}}.
    """
    if not paths:
        raise ValueError("interpolation_curves needs at least one pair")
    steps = len(paths[0][2])
    if any(len(decoded) != steps for _, _, decoded in paths):
        raise ValueError("every pair must have the same number of interpolation steps")
    scorer = make_scorer()
    sums = {name: {ref: [0.0] * steps for ref in REFERENCES} for name in ROUGE_TYPES}
    for source, target, decoded in paths:
        for step, sentence in enumerate(decoded):
            for ref, reference in zip(REFERENCES, (source, target)):
                for name, value in rouge_f1(sentence, reference, scorer).items():
                    sums[name][ref][step] += value
    return {name: {ref: [value / len(paths) for value in values] for ref, values in by_ref.items()}
            for name, by_ref in sums.items()}
