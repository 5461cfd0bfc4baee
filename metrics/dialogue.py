"""Dialogue response-generation metrics of the paper's Table 5, as small pure functions.

Definitions follow guxd/DialogWAE experiments/metrics.py (Gu et al. 2019), which the TWR-VAE dialogue code uses
unchanged (read, not copied):
  * BLEU (Zhao et al. 2017, §5.2): for one context with hypotheses h_1..h_S (S = 10 sampled responses) and its
    reference r, b_s = smoothed sentence BLEU(h_s, r) with uniform weights up to n = 3 and NLTK's smoothing
    method 7; recall = max_s b_s, precision = mean_s b_s (`sim_bleu`). Corpus P and R are means over contexts
    and F1 = 2PR / (P + R) of those means.
  * BOW embedding (Liu et al. 2016; extrema: Forgues et al. 2014): per hypothesis the cosine similarity with the
    reference of the mean word vector (Average), of the per-dimension signed extreme (Extrema) and the greedy
    matching score (Greedy: mean over the words of one side of their best cosine with the other side, averaged
    over both directions); per context the max over hypotheses (`sim_bow`), per corpus the mean over contexts.
    Differences, on purpose: DialogWAE's greedy score also averages over padding positions and its vectors cover
    every vocabulary id; here only real words with a vector count, and a sentence without any is left out
    (`None`) instead of scoring a zero vector.
  * distinct (Li et al. 2016; `div_distinct`): intra-dist-n = mean over a context's responses of the share of
    distinct n-grams within each response; inter-dist-n = distinct n-grams over all the context's responses
    divided by their total number of n-grams. Per corpus: the mean over contexts.
"""
from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

Tokens = Sequence[str]


class WordVectors(Protocol):  # gensim KeyedVectors satisfies it
    def __contains__(self, word: str) -> bool: ...
    def __getitem__(self, word: str) -> np.ndarray: ...


# ---- BLEU (Zhao et al. 2017)
def sentence_bleu3(hypothesis: Tokens, reference: Tokens, smoothing: bool = True) -> float:
    """Sentence BLEU up to trigrams (uniform weights), with NLTK's smoothing method 7 as DialogWAE; 0 for an empty
    hypothesis. Caveat of that smoothing (Chen & Cherry's method 5 inside it, as NLTK implements it): the unigram
    precision is averaged with (p_1 + 1), so near-identical sentences score above 1 (identical 8-word sentences:
    (4/3 * 10/9 * 28/27)^(1/3) = 1.154). Kept for comparability with the paper's numbers."""
    if not hypothesis or not reference:
        return 0.0
    smoothing_function = SmoothingFunction().method7 if smoothing else None
    return float(sentence_bleu([list(reference)], list(hypothesis), weights=(1 / 3, 1 / 3, 1 / 3),
                               smoothing_function=smoothing_function))


def bleu_precision_recall(hypotheses: Sequence[Tokens], reference: Tokens) -> tuple[float, float]:
    """(precision, recall) for one context: mean and max of the hypotheses' BLEU against the reference."""
    scores = [sentence_bleu3(h, reference) for h in hypotheses]
    return float(np.mean(scores)), float(np.max(scores))


def corpus_bleu_prf(hypotheses: Sequence[Sequence[Tokens]], references: Sequence[Tokens]) -> tuple[float, float, float]:
    """(P, R, F1) over contexts: P and R are means over contexts, F1 = 2PR / (P + R)."""
    pairs = [bleu_precision_recall(h, r) for h, r in zip(hypotheses, references, strict=True)]
    precision = float(np.mean([p for p, _ in pairs]))
    recall = float(np.mean([r for _, r in pairs]))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


# ---- BOW embedding (Liu et al. 2016)
def _vectors(tokens: Tokens, vectors: WordVectors) -> np.ndarray | None:
    known = [np.asarray(vectors[w], dtype=np.float64) for w in tokens if w in vectors]
    return np.stack(known) if known else None


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / norm) if norm > 0 else 0.0


def _extrema(matrix: np.ndarray) -> np.ndarray:
    """Per dimension the value farthest from zero, keeping its sign (ties go to the maximum, as DialogWAE)."""
    high, low = matrix.max(0), matrix.min(0)
    return np.where(high >= np.abs(low), high, low)


def embedding_average(hypothesis: Tokens, reference: Tokens, vectors: WordVectors) -> float | None:
    h, r = _vectors(hypothesis, vectors), _vectors(reference, vectors)
    return None if h is None or r is None else _cosine(h.mean(0), r.mean(0))


def embedding_extrema(hypothesis: Tokens, reference: Tokens, vectors: WordVectors) -> float | None:
    h, r = _vectors(hypothesis, vectors), _vectors(reference, vectors)
    return None if h is None or r is None else _cosine(_extrema(h), _extrema(r))


def embedding_greedy(hypothesis: Tokens, reference: Tokens, vectors: WordVectors) -> float | None:
    h, r = _vectors(hypothesis, vectors), _vectors(reference, vectors)
    if h is None or r is None:
        return None
    hn = h / np.maximum(np.linalg.norm(h, axis=1, keepdims=True), 1e-12)
    rn = r / np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-12)
    cos = hn @ rn.T  # [|h|, |r|]
    return float((cos.max(0).mean() + cos.max(1).mean()) / 2)


def bow_embedding_scores(hypotheses: Sequence[Sequence[Tokens]], references: Sequence[Tokens],
                         vectors: WordVectors) -> tuple[float | None, float | None, float | None]:
    """(Average, Extrema, Greedy) over contexts: per context the max over its hypotheses, then the mean over
    contexts where at least one hypothesis and the reference have a known word (None if there is none)."""
    results = []
    for score in (embedding_average, embedding_extrema, embedding_greedy):
        per_context = []
        for hyps, ref in zip(hypotheses, references, strict=True):
            values = [v for v in (score(h, ref, vectors) for h in hyps) if v is not None]
            if values:
                per_context.append(max(values))
        results.append(float(np.mean(per_context)) if per_context else None)
    return results[0], results[1], results[2]


# ---- distinct-n (Li et al. 2016)
def _ngrams(tokens: Tokens, n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def intra_distinct(responses: Sequence[Tokens], n: int) -> float:
    """Mean over responses of (#distinct n-grams / #n-grams) within each; a response with no n-gram scores 0."""
    scores = []
    for response in responses:
        grams = _ngrams(response, n)
        scores.append(len(set(grams)) / len(grams) if grams else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def inter_distinct(responses: Sequence[Tokens], n: int) -> float:
    """#distinct n-grams over all responses / their total number of n-grams (0 when there is none)."""
    grams = [g for response in responses for g in _ngrams(response, n)]
    return len(set(grams)) / len(grams) if grams else 0.0
