"""The likelihood audit's subset and its end-to-end run on a tiny trained model (the estimators themselves are checked
against exact likelihoods in tests/metrics/test_likelihood.py), and its sentences simulated for BDMC."""
from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch

from reproduction import likelihood_audit
from conftest import tiny_model, tiny_run
from harness.train.training import train_run


def test_the_subset_is_stratified_by_length():
    lengths = [5, 1, 9, 3, 7, 2, 8, 4, 6, 10]
    chosen = likelihood_audit.stratified(lengths, 5)
    assert sorted(lengths[i] for i in chosen) == [2, 4, 6, 8, 10]  # quantiles (i + 1/2) / 5 of lengths 1..10
    with pytest.raises(ValueError, match="has 10"):
        likelihood_audit.stratified(lengths, 11)


def test_a_subset_of_another_test_file_is_refused(ptb_sample, tmp_path):
    path = tmp_path / "subset.json"
    likelihood_audit.write_subset(ptb_sample, 4, path)
    assert len(likelihood_audit.load_subset(path, ptb_sample)) == 4
    other = tmp_path / "other"
    other.mkdir()
    (other / "test.txt").write_text((ptb_sample / "test.txt").read_text() + "one more line\n")
    with pytest.raises(ValueError, match="is not the test set"):
        likelihood_audit.load_subset(path, other)


def test_the_audit_scores_every_estimator_on_every_sentence_and_draws_its_figure(ptb_sample, tmp_path):
    work = tmp_path / "run"
    train_run(tiny_run(epochs=1), ptb_sample, work, progress=False)
    subset = tmp_path / "subset.json"
    likelihood_audit.write_subset(ptb_sample, 6, subset)
    out = tmp_path / "likelihood_audit.json"
    assert likelihood_audit.main(["run", "--model-pt", str(work / "model.pt"), "--out", str(out), "--data",
                                  str(ptb_sample), "--subset", str(subset), "--ks", "1,10,40", "--ais-steps", "3,6",
                                  "--ais-chains", "2", "--fit-steps", "3", "--chunk", "16", "--threads", "1",
                                  "--bdmc", "3"]) == 0
    payload = json.loads(out.read_text())
    estimators = payload["estimators"]
    assert sorted(payload["subset"]["sentences"]) == likelihood_audit.load_subset(subset, ptb_sample)
    expected = {f"IW {name}, K={k}" for k in (1, 10, 40) for name in (
        "q", "q widened x1.5", "q widened x2", "defensive mixture (0.9 q x2 + 0.1 prior)",
        "TWR-VAE timestep mixture", "fitted Gaussian")} | {"AIS, 3 steps", "AIS, 6 steps", "paper protocol"}
    assert expected <= set(estimators)
    for name in expected:
        assert len(estimators[name]["nll"]) == 6 and estimators[name]["nll_mean"] > 0, name
    assert estimators["IW q, K=40"]["ess_median"] <= 40 and 0 <= estimators["AIS, 6 steps"]["acceptance"] <= 1
    simulated = payload["bdmc"]["simulated"]  # BDMC at the AIS steps, on the sentences that ended in time
    assert 1 <= simulated <= 3 and payload["settings"]["bdmc_steps"] == [3, 6]
    assert payload["bdmc"]["max_words"] == max(json.loads(subset.read_text())["words"])
    for steps in (3, 6):
        entry = estimators[f"BDMC forward/reverse, {steps} steps"]
        assert len(entry["gap"]) == len(entry["log_px_forward"]) == entry["sentences"] == simulated
        for lower, upper, gap in zip(entry["log_px_forward"], entry["log_px_reverse"], entry["gap"]):
            assert lower < 0 and math.isclose(upper - lower, gap, abs_tol=1e-9) and abs(gap) < 2.0
        assert math.isclose(entry["gap_mean"], sum(entry["gap"]) / simulated)
    assert out.with_suffix(".png").stat().st_size > 0


def test_the_full_test_set_metrics_are_taken_only_when_they_score_the_audited_weights(tmp_path):
    """A metrics.json of an earlier stop of a resumed run (34 epochs) is not the 57-epoch model's: left out."""
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"metrics": {"uniform": {"NLL": 1.0}},
                                "training": {"epochs_completed": 34, "selected_epoch": 34}}))
    assert likelihood_audit.metrics_of_these_weights(path, {"epochs_completed": 57, "selected_epoch": 55}) is None
    assert likelihood_audit.metrics_of_these_weights(path, {"epochs_completed": 34, "selected_epoch": 34}) == {
        "uniform": {"NLL": 1.0}}
    assert likelihood_audit.metrics_of_these_weights(tmp_path / "none.json", {}) is None


def test_simulated_sentences_are_draws_of_the_distribution_the_model_scores():
    """20000 sentences of at most 2 words from one z: each sentence's frequency is its exp(log p(x|z)) (within 4
    binomial standard errors), and the rows that had not ended are the remaining probability."""
    model = tiny_model("twr-vae", vocab_size=6, z_dim=1).eval()
    with torch.no_grad():
        model.decoder.z_to_hidden.weight.mul_(3.0)
    draws = 20000
    z = torch.full((draws, 1), 0.7)
    words, finished = likelihood_audit.sample_sentences(model.decoder, z, 2, torch.Generator().manual_seed(0))
    counts: dict[tuple[int, ...], int] = {}
    for row, done in zip(words, finished.tolist()):
        if done:
            counts[tuple(row)] = counts.get(tuple(row), 0) + 1
    allowed = [token for token in range(6) if token != 3]  # any token but </s> can be a word
    sentences = [()] + [(a,) for a in allowed] + [(a, b) for a in allowed for b in allowed]
    total = 0.0
    for length in (0, 1, 2):
        group = [sentence for sentence in sentences if len(sentence) == length]
        with torch.no_grad():
            probability = model.log_likelihood(likelihood_audit.sentence_batch([list(g) for g in group], "cpu"),
                                               torch.full((1, len(group), 1), 0.7)).exp()[0]
        for sentence, p in zip(group, probability.tolist()):
            total += p
            frequency = counts.get(sentence, 0) / draws
            assert abs(frequency - p) < 4 * math.sqrt(p * (1 - p) / draws) + 1e-3, (sentence, frequency, p)
    unfinished = 1.0 - float(finished.double().mean())
    assert abs(unfinished - (1.0 - total)) < 4 * math.sqrt(max(total * (1 - total), 1e-4) / draws) + 1e-3
    assert sum(counts.values()) == int(finished.sum())


def test_bdmc_audit_sandwiches_simulated_sentences_and_skips_models_without_a_latent_decoder():
    model = tiny_model("twr-vae", vocab_size=12, z_dim=4).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    settings = {"bdmc": 5, "bdmc_steps": [2, 30], "ais_chains": 8, "ais_tune_chains": 2, "leapfrog": 3,
                "step_size": 0.05, "adapt_rate": 1.05}
    entries, record = likelihood_audit.bdmc_audit(model, settings, 6, seed=3, progress=False)
    assert record["simulated"] == 5 and len(record["word_ids"]) == 5 and record["pairs_drawn"] >= 5
    assert all(len(words) <= 6 for words in record["word_ids"])
    for steps in (2, 30):
        entry = entries[f"BDMC forward/reverse, {steps} steps"]
        assert sorted(entry["sentence"]) == list(range(5))
        assert entry["words"] == [len(record["word_ids"][i]) for i in entry["sentence"]]
        for lower, upper, gap in zip(entry["log_px_forward"], entry["log_px_reverse"], entry["gap"]):
            assert math.isclose(upper - lower, gap, abs_tol=1e-9)
        assert math.isclose(entry["gap_total"], sum(entry["gap"])) and entry["gap_max"] == max(entry["gap"])
        assert all(0.0 <= rate <= 1.0 for rate in entry["acceptance_reverse"])
    assert abs(entries["BDMC forward/reverse, 30 steps"]["gap_mean"]) < 0.1
    # a model whose p(x|z) the audit cannot sample is skipped, saying why
    entries, record = likelihood_audit.bdmc_audit(SimpleNamespace(), settings, 6, seed=3, progress=False)
    assert entries == {} and "LatentDecoder" in record["skipped"]
