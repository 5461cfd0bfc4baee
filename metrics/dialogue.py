"""Dialogue response-generation metrics of the paper's Table 5 (Li et al. 2020, after Gu et al. 2019), as small
pure functions. Tokens are lists of str; for each test context there are S sampled responses (hypotheses, S = 10)
and one reference response or several.

Reference code, details and deviations: docs/methods.md, "Dialogue metrics (metrics/dialogue.py)".
"""
from __future__ import annotations

from typing import NamedTuple, Protocol, Sequence

import numpy as np
from gensim.matutils import unitvec
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from nltk.util import ngrams

Tokens = Sequence[str]


class WordVectors(Protocol):
    """What the BOW metrics need of word vectors; gensim's KeyedVectors (and a dict of arrays) satisfy it."""

    def __contains__(self, word: str) -> bool: ...
    def __getitem__(self, word: str) -> np.ndarray: ...


def _token_list(tokens: Tokens, what: str) -> list[str]:
    """`tokens` as a list; a plain string is refused (it would be scored character by character)."""
    if isinstance(tokens, str):
        raise TypeError(f"{what} must be a list of tokens, not the string {tokens[:40]!r} (split it first)")
    return list(tokens)


def _reference_set(references: Tokens | Sequence[Tokens]) -> list[list[str]]:
    """One reference (a token list) or several (a list of token lists), as a list of token lists. `[]` is read as
    one empty reference (datasets have empty utterances): it scores BLEU 0 and no BOW value."""
    refs = _token_list(references, "references")
    if all(isinstance(token, str) for token in refs):
        return [list(refs)]
    if any(isinstance(ref, str) for ref in refs):
        raise TypeError("references mix tokens and token lists")
    return [list(ref) for ref in refs]


def _hypotheses(hypotheses: Sequence[Tokens]) -> list[list[str]]:
    hyps = [list(h) for h in hypotheses]
    if not hyps or any(isinstance(h, str) for h in hypotheses):
        raise ValueError("a context needs a non-empty list of tokenised hypotheses")
    return hyps


# ---- BLEU (Zhao et al. 2017, §5.2)
def smoothed_sentence_bleu(hypothesis: Tokens, reference: Tokens, max_n: int = 3, smoothing: bool = True) -> float:
    """NLTK sentence BLEU of one hypothesis against one reference, uniform weights over n = 1..max_n, smoothed with
    method 7 as DialogWAE (`smoothing=False`: plain BLEU, for cross-checks). An empty hypothesis scores 0."""
    smoothing_function = SmoothingFunction().method7 if smoothing else None
    return float(sentence_bleu([_token_list(reference, "a reference")], _token_list(hypothesis, "a hypothesis"),
                               weights=(1.0 / max_n,) * max_n,
                               smoothing_function=smoothing_function))


def bleu_precision_recall(hypotheses: Sequence[Tokens], references: Tokens | Sequence[Tokens],
                          max_n: int = 3) -> tuple[float, float]:
    """(precision, recall) for one context: precision = mean over hypotheses of their best BLEU over the references,
    recall = mean over references of their best BLEU over the hypotheses (Zhao et al. 2017). `references` is one
    token list or a list of them; with one reference: (mean, max) of the hypotheses' BLEU, as DialogWAE."""
    hyps, refs = _hypotheses(hypotheses), _reference_set(references)
    scores = np.array([[smoothed_sentence_bleu(h, r, max_n) for r in refs] for h in hyps])  # [H, R]
    return float(scores.max(axis=1).mean()), float(scores.max(axis=0).mean())


def corpus_bleu_prf(per_context_hyps: Sequence[Sequence[Tokens]], per_context_refs: Sequence[Tokens | Sequence[Tokens]],
                    max_n: int = 3) -> tuple[float, float, float]:
    """(P, R, F1): P and R are the means over contexts of `bleu_precision_recall`, F1 = 2PR / (P + R) of those
    means (0 when both are 0), as DialogWAE's `sample.py`."""
    pairs = [bleu_precision_recall(h, r, max_n) for h, r in zip(per_context_hyps, per_context_refs, strict=True)]
    if not pairs:
        raise ValueError("no contexts")
    precision, recall = (float(v) for v in np.mean(pairs, axis=0))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


# ---- BOW embedding (Liu et al. 2016; extrema: Forgues et al. 2014)
def _known(tokens: Tokens, vectors: WordVectors) -> np.ndarray | None:
    """[k, d] vectors of the tokens that have one (repeats kept), or None when none has."""
    rows = [np.asarray(vectors[w], dtype=np.float64) for w in _token_list(tokens, "a response") if w in vectors]
    return np.stack(rows) if rows else None


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity; 0 when either vector is zero (gensim's unitvec leaves zero vectors unchanged)."""
    return float(unitvec(a) @ unitvec(b))


def _extrema(matrix: np.ndarray) -> np.ndarray:
    """Per dimension the value farthest from zero, keeping its sign; ties go to the positive value (DialogWAE)."""
    high, low = matrix.max(axis=0), matrix.min(axis=0)
    return np.where(high >= np.abs(low), high, low)


def embedding_average(hypothesis: Tokens, reference: Tokens, vectors: WordVectors) -> float | None:
    """Cosine of the two sentences' mean word vectors (Liu et al. 2016, Embedding Average); None if either sentence
    has no word with a vector."""
    h, r = _known(hypothesis, vectors), _known(reference, vectors)
    return None if h is None or r is None else _cosine(h.mean(axis=0), r.mean(axis=0))


def embedding_extrema(hypothesis: Tokens, reference: Tokens, vectors: WordVectors) -> float | None:
    """Cosine of the sentences' extrema vectors (Forgues et al. 2014: per dimension the signed value of largest
    magnitude); None if either sentence has no word with a vector."""
    h, r = _known(hypothesis, vectors), _known(reference, vectors)
    return None if h is None or r is None else _cosine(_extrema(h), _extrema(r))


def embedding_greedy(hypothesis: Tokens, reference: Tokens, vectors: WordVectors) -> float | None:
    """Greedy matching (Rus & Lintean 2012 via Liu et al. 2016): (G(h, r) + G(r, h)) / 2 with G(a, b) the mean over
    the words of a of their best cosine with a word of b; symmetric. None if either sentence has no known word."""
    h, r = _known(hypothesis, vectors), _known(reference, vectors)
    if h is None or r is None:
        return None
    cos = np.stack([unitvec(v) for v in h]) @ np.stack([unitvec(v) for v in r]).T  # [|h|, |r|]
    return float((cos.max(axis=1).mean() + cos.max(axis=0).mean()) / 2)


class BowScores(NamedTuple):
    average: float | None
    extrema: float | None
    greedy: float | None


def bow_embedding_per_context(per_context_hyps: Sequence[Sequence[Tokens]],
                              per_context_refs: Sequence[Tokens | Sequence[Tokens]],
                              vectors: WordVectors) -> list[BowScores | None]:
    """For each context the max of each score over its hypothesis x reference pairs (DialogWAE `sim_bow`), pairs
    without a known word on one side left out; None for a context where no pair can be scored."""
    out: list[BowScores | None] = []
    for hyps, refs in zip(per_context_hyps, per_context_refs, strict=True):
        pairs = [(h, r) for h in _hypotheses(hyps) for r in _reference_set(refs)]
        maxima = []
        for score in (embedding_average, embedding_extrema, embedding_greedy):
            values = [v for v in (score(h, r, vectors) for h, r in pairs) if v is not None]
            maxima.append(max(values) if values else None)
        out.append(None if maxima[0] is None else BowScores(*maxima))
    return out


def bow_embedding_scores(per_context_hyps: Sequence[Sequence[Tokens]],
                         per_context_refs: Sequence[Tokens | Sequence[Tokens]], vectors: WordVectors) -> BowScores:
    """(Average, Extrema, Greedy): means over the contexts that `bow_embedding_per_context` could score (all None
    if it could score none); how many were skipped is the number of None in that function's result."""
    scored = [s for s in bow_embedding_per_context(per_context_hyps, per_context_refs, vectors) if s is not None]
    if not scored:
        return BowScores(None, None, None)
    return BowScores(*(float(v) for v in np.mean(scored, axis=0)))


# ---- distinct-n (Li et al. 2016)
def _ngram_list(tokens: Tokens, n: int) -> list[tuple[str, ...]]:
    if n < 1:
        raise ValueError(f"n must be >= 1, not {n}")
    return list(ngrams(_token_list(tokens, "a response"), n))


def intra_distinct(responses: Sequence[Tokens], n: int) -> float:
    """Mean over the responses of #distinct n-grams / #n-grams within each response; a response with no n-gram
    (empty or shorter than n) scores 0 and counts in the mean (as DialogWAE)."""
    if not responses:
        raise ValueError("no responses")
    shares = []
    for response in responses:
        grams = _ngram_list(response, n)
        shares.append(len(set(grams)) / len(grams) if grams else 0.0)
    return float(np.mean(shares))


def inter_distinct(responses: Sequence[Tokens], n: int) -> float:
    """#distinct n-grams over all the responses / their total number of n-grams; 0 if they have no n-gram."""
    if not responses:
        raise ValueError("no responses")
    grams = [g for response in responses for g in _ngram_list(response, n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def corpus_distinct(per_context_responses: Sequence[Sequence[Tokens]], n: int) -> tuple[float, float]:
    """(intra-dist-n, inter-dist-n): each computed over one context's responses, then averaged over contexts
    (DialogWAE `sample.py`; inter-dist is thus not pooled over the whole corpus)."""
    if not per_context_responses:
        raise ValueError("no contexts")
    intra = [intra_distinct(r, n) for r in per_context_responses]
    inter = [inter_distinct(r, n) for r in per_context_responses]
    return float(np.mean(intra)), float(np.mean(inter))


def distinct_responses(per_context_responses: Sequence[Sequence[Tokens]]) -> float:
    """Mean over contexts of how many different responses (exact token sequences) each context's samples hold: 1
    when every sample repeats one response, S when all S differ. Not a metric of the paper's: it says whether the
    latent variable varies the responses, which inter-dist mixes with the words' variety (ten copies of one
    response score inter-dist-n = intra-dist-n / 10 exactly)."""
    if not per_context_responses:
        raise ValueError("no contexts")
    counts = []
    for responses in per_context_responses:
        if not responses:
            raise ValueError("a context has no responses")
        counts.append(len({tuple(_token_list(r, "a response")) for r in responses}))
    return float(np.mean(counts))
