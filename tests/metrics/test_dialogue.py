"""Dialogue metrics against hand-computed cases (BLEU P/R, BOW embedding A/E/G, distinct-n)."""
import math

import numpy as np
import pytest
from gensim.models import KeyedVectors
from sacrebleu.metrics import BLEU

from metrics.dialogue import (bleu_precision_recall, bow_embedding_scores, corpus_bleu_prf, embedding_average,
                              embedding_extrema, embedding_greedy, inter_distinct, intra_distinct, sentence_bleu3)

REF = "i would like a cup of coffee please".split()


def vectors(table):
    kv = KeyedVectors(vector_size=2)
    kv.add_vectors(list(table), np.array(list(table.values()), dtype=np.float32))
    return kv


def test_identical_hypothesis_scores_one_without_smoothing_and_above_one_with_dialogwaes_smoothing():
    assert sentence_bleu3(REF, REF, smoothing=False) == pytest.approx(1.0)
    # method 7 = method 4 + method 5; method 5 averages p_1 with (p_1 + 1): p = 4/3, 10/9, 28/27 by hand
    assert sentence_bleu3(REF, REF) == pytest.approx((4 / 3 * 10 / 9 * 28 / 27) ** (1 / 3))
    precision, recall = bleu_precision_recall([REF], REF)
    assert precision == recall == pytest.approx(sentence_bleu3(REF, REF))


def test_recall_exceeds_precision_when_one_of_several_samples_matches():
    hyps = [REF, "no".split(), "hello there friend".split()]
    precision, recall = bleu_precision_recall(hyps, REF)
    assert recall == pytest.approx(sentence_bleu3(REF, REF))  # the max
    assert precision < 0.5 and recall > precision  # the mean
    assert precision == pytest.approx(np.mean([sentence_bleu3(h, REF) for h in hyps]))


def test_unsmoothed_bleu3_agrees_with_sacrebleu_and_by_hand():
    hyp = "i would like a cup of tea please".split()
    ours = sentence_bleu3(hyp, REF, smoothing=False)
    # by hand: p1 = 7/8, p2 = 5/7, p3 = 4/6, equal lengths (no brevity penalty)
    assert ours == pytest.approx(math.exp((math.log(7 / 8) + math.log(5 / 7) + math.log(4 / 6)) / 3))
    bleu = BLEU(max_ngram_order=3, smooth_method="none", tokenize="none", effective_order=False)
    assert ours == pytest.approx(bleu.sentence_score(" ".join(hyp), [" ".join(REF)]).score / 100)
    short = "a cup of tea".split()  # brevity penalty exp(1 - 8/4) as well
    assert sentence_bleu3(short, REF, smoothing=False) == pytest.approx(
        bleu.sentence_score(" ".join(short), [" ".join(REF)]).score / 100)


def test_corpus_f1_is_computed_from_the_averaged_precision_and_recall():
    hyps = [[REF, ["no"]], [["x"], ["y"]]]
    refs = [REF, "a b c".split()]
    precision, recall, f1 = corpus_bleu_prf(hyps, refs)
    p1, r1 = bleu_precision_recall(hyps[0], refs[0])
    p2, r2 = bleu_precision_recall(hyps[1], refs[1])
    assert (precision, recall) == pytest.approx(((p1 + p2) / 2, (r1 + r2) / 2))
    assert f1 == pytest.approx(2 * precision * recall / (precision + recall))


def test_extrema_keeps_the_signed_value_farthest_from_zero():
    kv = vectors({"a": [0.5, -3.0], "b": [-2.0, 1.0], "c": [-2.0, -3.0], "d": [0.5, 1.0]})
    # extrema(a b) = (-2, -3) = vector of c; extrema(d) = (0.5, 1)
    assert embedding_extrema(["a", "b"], ["c"], kv) == pytest.approx(1.0)
    assert embedding_extrema(["a", "b"], ["d"], kv) == pytest.approx((-2 * 0.5 - 3 * 1) / (math.sqrt(13) * math.sqrt(1.25)))


def test_average_and_greedy_by_hand_and_greedy_is_symmetric():
    kv = vectors({"x": [1.0, 0.0], "y": [0.0, 1.0], "z": [1.0, 1.0]})
    assert embedding_average(["x", "y"], ["z"], kv) == pytest.approx(1.0)  # mean (0.5, 0.5) is parallel to z
    # greedy: x->z and y->z have cos 1/sqrt2, z->max(x, y) = 1/sqrt2, so (1/sqrt2 + 1/sqrt2) / 2
    assert embedding_greedy(["x", "y"], ["z"], kv) == pytest.approx(1 / math.sqrt(2))
    assert embedding_greedy(["x", "z"], ["y"], kv) == pytest.approx(embedding_greedy(["y"], ["x", "z"], kv))
    assert embedding_greedy(["x", "y"], ["x", "y"], kv) == pytest.approx(1.0)


def test_unknown_words_are_skipped_and_all_unknown_is_none():
    kv = vectors({"x": [1.0, 0.0], "y": [0.0, 1.0]})
    assert embedding_average(["x", "unknown"], ["x"], kv) == pytest.approx(1.0)
    assert embedding_average(["unknown"], ["x"], kv) is None
    average, extrema, greedy = bow_embedding_scores([[["unknown"], ["y"]], [["unknown"]]], [["x"], ["x"]], kv)
    assert average == pytest.approx(0.0)  # context 1: only "y" counts (cos 0); context 2 has nothing to score


def test_bow_scores_take_the_best_hypothesis_per_context():
    kv = vectors({"x": [1.0, 0.0], "y": [0.0, 1.0]})
    average, extrema, greedy = bow_embedding_scores([[["y"], ["x"]]], [["x"]], kv)
    assert (average, extrema, greedy) == pytest.approx((1.0, 1.0, 1.0))


def test_distinct_of_repeated_responses_is_low_and_of_distinct_ones_is_one():
    same = ["i don't know".split()] * 10
    assert inter_distinct(same, 1) == pytest.approx(0.1) and inter_distinct(same, 2) == pytest.approx(0.1)
    assert intra_distinct(same, 1) == 1.0  # each response on its own has no repeats
    different = [["a", "b"], ["c", "d"], ["e", "f"]]
    assert inter_distinct(different, 1) == 1.0 and inter_distinct(different, 2) == 1.0
    assert intra_distinct([["a", "a", "a", "a"]], 1) == pytest.approx(0.25)
    assert intra_distinct([["a", "a", "a"]], 2) == pytest.approx(0.5)


def test_distinct_of_empty_or_too_short_responses_is_zero():
    assert intra_distinct([[], ["a"]], 2) == 0.0 and inter_distinct([[], ["a"]], 2) == 0.0
    assert intra_distinct([[], ["a"]], 1) == pytest.approx(0.5)
