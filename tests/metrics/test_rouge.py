"""ROUGE F1 of interpolated sentences (metrics.rouge): hand-computed values and the curves' shape."""
from __future__ import annotations

import pytest

from metrics.rouge import interpolation_curves, rouge_f1


def test_identical_sentences_score_one_and_disjoint_ones_zero():
    assert rouge_f1("the cat sat down", "the cat sat down") == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    assert rouge_f1("a b c", "d e f") == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}


def test_hand_computed_f1():
    # candidate "the cat sat", reference "the cat sat on the mat": unigram P = 3/3, R = 3/6 -> F1 = 2/3;
    # bigrams P = 2/2, R = 2/5 -> F1 = 4/7; LCS = 3 -> as ROUGE-1
    scores = rouge_f1("the cat sat", "the cat sat on the mat")
    assert scores["rouge1"] == pytest.approx(2 / 3)
    assert scores["rouge2"] == pytest.approx(4 / 7)
    assert scores["rougeL"] == pytest.approx(2 / 3)


def test_tokens_are_compared_as_the_corpus_has_them():
    # rouge-score's default tokenizer would turn "<unk>" into "unk" and match the two
    assert rouge_f1("<unk> rose", "unk rose")["rouge1"] == pytest.approx(0.5)


def test_curves_average_over_pairs_per_step():
    paths = [("a b", "c d", ["a b", "c d"]), ("e f", "g h", ["e f", "e f"])]
    curves = interpolation_curves(paths)
    assert curves["rouge1"]["source"] == [1.0, 0.5]
    assert curves["rouge1"]["target"] == [0.0, 0.5]
    with pytest.raises(ValueError, match="same number"):
        interpolation_curves([("a", "b", ["a"]), ("a", "b", ["a", "b"])])
