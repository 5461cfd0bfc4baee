"""Dialogue metrics (Table 5) against hand-computed cases: BLEU P/R/F1, BOW embedding A/E/G, distinct-n."""
import math

import numpy as np
import pytest
from gensim.models import KeyedVectors
from nltk.translate.bleu_score import corpus_bleu
from sacrebleu.metrics import BLEU

from metrics.dialogue import (BowScores, bleu_precision_recall, bow_embedding_per_context, bow_embedding_scores,
                              corpus_bleu_prf, corpus_distinct, distinct_responses, embedding_average,
                              embedding_extrema, embedding_greedy, inter_distinct, intra_distinct,
                              smoothed_sentence_bleu)

REF = "i would like a cup of coffee please".split()
POOR = ["no", "thanks"]
SQRT2 = math.sqrt(2)


def vectors(table: dict[str, list[float]]) -> KeyedVectors:
    kv = KeyedVectors(vector_size=2)
    kv.add_vectors(list(table), np.array(list(table.values()), dtype=np.float32))
    return kv


# ---- BLEU
def test_identical_sentences_score_one_unsmoothed_and_1154_with_nltk_method7():
    assert smoothed_sentence_bleu(REF, REF, smoothing=False) == pytest.approx(1.0)
    # method 5 (inside 7) averages p_1 with p_1 + 1: p_1..3 = (2+1+1)/3, (4/3+1+1)/3, (10/9+1+1)/3
    assert smoothed_sentence_bleu(REF, REF) == pytest.approx((4 / 3 * 10 / 9 * 28 / 27) ** (1 / 3))
    precision, recall = bleu_precision_recall([REF], REF)
    assert precision == recall == pytest.approx(1.1538875781891342)


def test_method7_by_hand_on_a_case_with_a_zero_trigram_count():
    hyp = "a cup tea please".split()  # p1 = 3/4, p2 = 1/3, p3 = 0/2, p5 = 0; brevity penalty exp(1 - 8/4)
    p3 = math.log(4) / 10 / 2  # method 4: 1 / (2 * k / ln|h|) / denominator, k = 5
    p1s = (7 / 4 + 3 / 4 + 1 / 3) / 3  # method 5: (m_{n-1} + p_n + p_{n+1}) / 3 with m_0 = p_1 + 1
    p2s = (p1s + 1 / 3 + p3) / 3
    p3s = (p2s + p3 + 0) / 3
    assert smoothed_sentence_bleu(hyp, REF) == pytest.approx(math.exp(-1) * (p1s * p2s * p3s) ** (1 / 3))
    assert smoothed_sentence_bleu([], REF) == 0.0


def test_unsmoothed_bleu_agrees_with_sacrebleu_nltk_corpus_bleu_and_by_hand():
    # no zero n-gram counts and the same max order (3), so the smoothing question does not arise
    sacre = BLEU(max_ngram_order=3, smooth_method="none", tokenize="none", effective_order=False)
    for hyp, by_hand in [("i would like a cup of tea please".split(), (7 / 8 * 5 / 7 * 4 / 6) ** (1 / 3)),
                         ("a cup of tea".split(), math.exp(1 - 8 / 4) * (3 / 4 * 2 / 3 * 1 / 2) ** (1 / 3))]:
        ours = smoothed_sentence_bleu(hyp, REF, smoothing=False)
        assert ours == pytest.approx(by_hand)
        assert ours == pytest.approx(sacre.sentence_score(" ".join(hyp), [" ".join(REF)]).score / 100)
        assert ours == pytest.approx(corpus_bleu([[REF]], [hyp], weights=(1 / 3,) * 3))
    assert smoothed_sentence_bleu("a cup".split(), REF, max_n=2, smoothing=False) == pytest.approx(math.exp(1 - 4))


def test_one_reference_recall_is_the_max_and_precision_the_mean_so_recall_exceeds_precision():
    hyps = [REF, POOR, "hello there friend".split()]
    scores = [smoothed_sentence_bleu(h, REF) for h in hyps]
    assert scores[1] < 0.05 and scores[2] < 0.05
    precision, recall = bleu_precision_recall(hyps, REF)
    assert recall == pytest.approx(max(scores)) and precision == pytest.approx(sum(scores) / 3)
    assert recall > 2 * precision
    assert bleu_precision_recall(hyps, [REF]) == (precision, recall)  # one token list == a list of one reference


def test_several_references_precision_maxes_over_references_recall_averages_over_them():
    good, bad = smoothed_sentence_bleu(REF, REF), smoothed_sentence_bleu(REF, POOR)
    precision, recall = bleu_precision_recall([REF], [REF, POOR])
    assert precision == pytest.approx(good)  # the one hypothesis, at its best reference
    assert recall == pytest.approx((good + bad) / 2)  # each reference at its best hypothesis
    assert precision > recall


def test_corpus_f1_comes_from_the_averaged_precision_and_recall():
    hyps = [[REF, POOR, POOR, POOR], ["a cup of tea".split()]]
    refs = [REF, REF]
    (p1, r1), (p2, r2) = (bleu_precision_recall(h, r) for h, r in zip(hyps, refs))
    precision, recall, f1 = corpus_bleu_prf(hyps, refs)
    assert (precision, recall) == pytest.approx(((p1 + p2) / 2, (r1 + r2) / 2))
    assert f1 == pytest.approx(2 * precision * recall / (precision + recall))
    mean_of_f1s = (2 * p1 * r1 / (p1 + r1) + 2 * p2 * r2 / (p2 + r2)) / 2
    assert abs(f1 - mean_of_f1s) > 1e-3  # the two orders of averaging differ on this case
    assert corpus_bleu_prf([[[]]], [REF]) == (0.0, 0.0, 0.0)


def test_bleu_rejects_malformed_contexts_and_scores_an_empty_reference_zero():
    with pytest.raises(ValueError):
        bleu_precision_recall([], REF)
    with pytest.raises(ValueError):
        bleu_precision_recall(REF, REF)  # a token list instead of a list of hypotheses
    assert bleu_precision_recall([REF], []) == (0.0, 0.0)  # an empty reference (empty utterances exist)


# ---- BOW embedding
def test_extrema_keeps_the_signed_value_of_largest_magnitude():
    kv = vectors({"a": [0.5, -3.0], "b": [-2.0, 1.0], "c": [-2.0, -3.0], "d": [0.5, 1.0],
                  "e": [2.0, 0.0], "f": [-2.0, 1.0], "g": [2.0, 1.0]})
    assert embedding_extrema(["a", "b"], ["c"], kv) == pytest.approx(1.0)  # extrema(a, b) = (-2, -3) = c
    by_hand = (-2 * 0.5 - 3 * 1) / (math.sqrt(13) * math.sqrt(1.25))  # cos((-2, -3), (0.5, 1))
    assert embedding_extrema(["a", "b"], ["d"], kv) == pytest.approx(by_hand)
    assert embedding_extrema(["e", "f"], ["g"], kv) == pytest.approx(1.0)  # tie 2 vs -2 -> +2 (DialogWAE)


def test_average_and_greedy_by_hand_and_greedy_is_symmetric():
    kv = vectors({"x": [1.0, 0.0], "y": [0.0, 1.0], "z": [1.0, 1.0]})
    assert embedding_average(["x", "y"], ["z"], kv) == pytest.approx(1.0)  # mean (0.5, 0.5) is parallel to z
    assert embedding_average(["x", "x", "y"], ["x"], kv) == pytest.approx(2 / math.sqrt(5))  # repeats count
    assert embedding_greedy(["x", "y"], ["z"], kv) == pytest.approx(1 / SQRT2)
    # x -> y: 0, z -> y: 1/sqrt2, mean 1/(2 sqrt2); y -> best of (x, z): 1/sqrt2; average of the two directions
    assert embedding_greedy(["x", "z"], ["y"], kv) == pytest.approx((1 / (2 * SQRT2) + 1 / SQRT2) / 2)
    assert embedding_greedy(["y"], ["x", "z"], kv) == pytest.approx(embedding_greedy(["x", "z"], ["y"], kv))
    for score in (embedding_average, embedding_extrema, embedding_greedy):
        assert score(["x", "y", "z"], ["x", "y", "z"], kv) == pytest.approx(1.0)
        assert score(["x"], ["x"], {"x": np.array([3.0, 4.0])}) == pytest.approx(1.0)  # any mapping of arrays


def test_unknown_words_are_skipped_and_a_sentence_without_known_words_gives_none():
    kv = vectors({"x": [1.0, 0.0], "y": [0.0, 1.0], "z": [1.0, 1.0]})
    for score in (embedding_average, embedding_extrema, embedding_greedy):
        assert score(["x", "unknown"], ["x", "other"], kv) == pytest.approx(1.0)
        assert score(["unknown"], ["x"], kv) is None and score(["x"], [], kv) is None
    hyps = [[["unknown"], ["y"], ["z"]], [["unknown"]], [["x"]]]
    per_context = bow_embedding_per_context(hyps, [["x"], ["x"], ["x"]], kv)
    assert per_context[1] is None
    assert per_context[0].average == pytest.approx(1 / SQRT2)  # the best hypothesis, z
    average, extrema, greedy = bow_embedding_scores(hyps, [["x"], ["x"], ["x"]], kv)
    assert average == pytest.approx((1 / SQRT2 + 1) / 2)  # the unscorable context is left out, not scored 0
    assert bow_embedding_scores([[["unknown"]]], [["x"]], kv) == BowScores(None, None, None)
    assert bow_embedding_per_context([[["x"]]], [[]], kv) == [None]  # an empty reference


def test_bow_scores_take_the_best_pair_per_context_and_average_over_contexts():
    kv = vectors({"x": [1.0, 0.0], "y": [0.0, 1.0], "z": [1.0, 1.0]})
    scores = bow_embedding_scores([[["y"], ["z"]], [["y"]]], [["x"], ["x"]], kv)
    assert scores == pytest.approx((1 / SQRT2 / 2, 1 / SQRT2 / 2, 1 / SQRT2 / 2))
    assert bow_embedding_scores([[["y"]]], [[["x"], ["y"]]], kv) == pytest.approx((1.0, 1.0, 1.0))  # 2 references


# ---- distinct-n
def test_distinct_of_repeated_responses_is_low_and_of_different_ones_is_one():
    one = "i don't know".split()
    assert inter_distinct([one], 1) == 1.0 and inter_distinct([one], 2) == 1.0
    same = [one] * 10
    assert inter_distinct(same, 1) == pytest.approx(0.1) and inter_distinct(same, 2) == pytest.approx(0.1)
    assert intra_distinct(same, 1) == 1.0 and intra_distinct(same, 2) == 1.0  # no repeats within a response
    different = [["a", "b"], ["c", "d"], ["e", "f"]]
    assert inter_distinct(different, 1) == 1.0 and inter_distinct(different, 2) == 1.0
    assert intra_distinct([["a", "a", "a", "a"]], 1) == pytest.approx(0.25)
    assert intra_distinct([["a", "a", "a"]], 2) == pytest.approx(0.5)  # (a, a) twice
    assert intra_distinct([["a", "b", "a", "b"], ["c"]], 2) == pytest.approx((2 / 3 + 0) / 2)


def test_distinct_of_empty_or_too_short_responses_is_zero_and_they_count_in_the_intra_mean():
    assert intra_distinct([[], ["a"]], 2) == 0.0 and inter_distinct([[], ["a"]], 2) == 0.0
    assert intra_distinct([[], ["a"]], 1) == pytest.approx(0.5)
    assert inter_distinct([[], ["a", "b"], ["a"]], 1) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        intra_distinct([], 1)
    with pytest.raises(ValueError):
        inter_distinct([["a"]], 0)


def test_corpus_distinct_averages_per_context_values_instead_of_pooling():
    intra, inter = corpus_distinct([[["a"], ["a"]], [["a"], ["b"]]], 1)
    assert intra == 1.0
    assert inter == pytest.approx((1 / 2 + 2 / 2) / 2)  # pooled over the corpus it would be 2/4


def test_distinct_responses_counts_different_samples_per_context_and_copies_score_inter_dist_intra_over_ten():
    one, other = ["i", "don't", "know"], ["i", "know"]
    assert distinct_responses([[one] * 10]) == 1.0
    assert distinct_responses([[one] * 9 + [other], [one, other, ["yes"]]]) == pytest.approx((2 + 3) / 2)
    assert distinct_responses([[[], [], ["a"]]]) == 2.0  # an empty response is one response
    copies = [["a", "b", "a", "c"]] * 10  # the identity the cause of docs/reproduction_causes.yaml rests on
    assert inter_distinct(copies, 1) == pytest.approx(intra_distinct(copies, 1) / 10)
    with pytest.raises(ValueError):
        distinct_responses([])
    with pytest.raises(ValueError):
        distinct_responses([[one], []])
    with pytest.raises(TypeError, match="list of tokens, not the string"):
        distinct_responses([["i know", "i know"]])


@pytest.mark.parametrize("call", [
    lambda: smoothed_sentence_bleu("yeah right", ["yeah", "right"]),
    lambda: smoothed_sentence_bleu(["yeah"], "yeah"),
    lambda: intra_distinct(["a b c"], 1),
    lambda: inter_distinct(["a b c", "a b"], 2),
])
def test_a_plain_string_is_refused_not_scored_as_characters(call):
    with pytest.raises(TypeError, match="list of tokens, not the string"):
        call()
