"""The likelihood audit's subset and its end-to-end run on a tiny trained model (the estimators themselves are checked
against exact likelihoods in tests/metrics/test_likelihood.py)."""
from __future__ import annotations

import json

import pytest

from reproduction import likelihood_audit
from conftest import tiny_run
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
                                  "--ais-chains", "2", "--fit-steps", "3", "--chunk", "16", "--threads", "1"]) == 0
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
