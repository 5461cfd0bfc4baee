"""Tests of harness.evaluate.dialogue_evaluate's scoring: the two protocols (words only; BLEU with </s> as the original code)."""
from __future__ import annotations

import pytest

from harness.evaluate.dialogue_evaluate import paper_protocol_bleu, score, with_end_token
from metrics.dialogue import smoothed_sentence_bleu

VECTORS = {"yeah": [1.0, 0.0], "uh": [0.0, 1.0], "huh": [0.5, 0.5]}


def record(samples, reference, ended):
    return {"example": 0, "context": [["hi"]], "reference": reference, "samples": samples, "ended": ended}


def test_the_end_token_is_kept_only_on_sentences_that_produced_it():
    assert with_end_token(["yeah"]) == ["yeah", "</s>"]
    assert with_end_token(["yeah"], ended=False) == ["yeah"]


def test_yeah_against_uh_huh_scores_zero_on_words_and_the_original_codes_0_097_with_end_tokens():
    # the original code's indexes2sent keeps </s>: "yeah </s>" against "uh - huh </s>" shares the unigram </s>
    records = [record([["yeah"]], ["uh", "-", "huh"], [True])]
    metrics = score(records, VECTORS)
    assert metrics["uniform"]["BLEU-R"] == 0.0 and metrics["uniform"]["BLEU-P"] == 0.0
    assert metrics["paper"]["BLEU-R"] == pytest.approx(0.0968, abs=1e-4)
    assert metrics["paper"]["BLEU-R"] == smoothed_sentence_bleu(["yeah", "</s>"], ["uh", "-", "huh", "</s>"])
    assert set(metrics["paper"]) == {"BLEU-R", "BLEU-P", "BLEU-F1"}  # the other metrics count words in both codes


def test_a_response_cut_at_the_length_limit_has_no_end_token_in_the_paper_protocol():
    ended = paper_protocol_bleu([record([["yeah"]], ["uh", "-", "huh"], [True])])
    cut = paper_protocol_bleu([record([["yeah"]], ["uh", "-", "huh"], [False])])
    assert cut["BLEU-R"] == smoothed_sentence_bleu(["yeah"], ["uh", "-", "huh", "</s>"]) < ended["BLEU-R"]


def test_paper_protocol_recall_is_the_max_and_precision_the_mean_over_samples():
    records = [record([["yeah"], ["uh", "-", "huh"]], ["uh", "-", "huh"], [True, True])]
    paper = score(records, VECTORS)["paper"]
    exact = smoothed_sentence_bleu(["uh", "-", "huh", "</s>"], ["uh", "-", "huh", "</s>"])
    partial = smoothed_sentence_bleu(["yeah", "</s>"], ["uh", "-", "huh", "</s>"])
    assert paper["BLEU-R"] == pytest.approx(exact) and paper["BLEU-P"] == pytest.approx((exact + partial) / 2)


def test_the_uniform_protocol_counts_the_different_responses_per_context():
    records = [record([["yeah"], ["yeah"], ["uh", "-", "huh"]], ["yeah"], [True] * 3),
               record([["huh"]] * 3, ["yeah"], [True] * 3)]
    assert score(records, VECTORS)["uniform"]["distinct_responses"] == pytest.approx((2 + 1) / 2)
