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


def test_a_file_that_is_no_subset_is_refused_naming_it_and_what_it_lacks(ptb_sample, tmp_path):
    path = tmp_path / "subset.json"
    path.write_text('{"indices": [1, 2], "test_file": "test.txt"}')
    with pytest.raises(ValueError, match=r"subset.json is not a subset file: it lacks test_sha256"):
        likelihood_audit.load_subset(path, ptb_sample)
    path.write_text('{"indices": [1, "two"], "test_file": "test.txt", "test_sha256": "0"}')
    with pytest.raises(ValueError, match=r"subset.json: `indices` must be a non-empty list"):
        likelihood_audit.load_subset(path, ptb_sample)
    path.write_text('{"indices": [1, 2')  # truncated
    with pytest.raises(ValueError, match=r"subset.json is not a subset file \(invalid JSON"):
        likelihood_audit.load_subset(path, ptb_sample)


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
        "TWR-VAE timestep mixture", "fitted Gaussian", "fitted Gaussian widened x1.5")} | {
        "AIS, 3 steps", "AIS, 6 steps", "paper protocol"}
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


# ---- the padding audit: how much the batching changes the numbers
@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_test_set(ptb_sample, sentences=24):
    from harness.data.lm_dataset import LMDataset
    from harness.data.vocab import Vocab

    vocab = Vocab.load(ptb_sample / "vocab.txt")
    return LMDataset(ptb_sample / "test.txt", vocab, max_sentences=sentences), len(vocab)


def test_with_padded_timesteps_the_batched_scheme_differs_exactly_for_the_padded_sentences(ptb_sample, one_thread):
    from harness.data.lm_dataset import batches

    test, vocab_size = small_test_set(ptb_sample)
    model = tiny_model("twr-vae", vocab_size=vocab_size, timesteps="padded").eval()
    schemes = likelihood_audit.padding_audit(model, test, [8], 8, 4, 4, seed=0, progress=False)
    assert list(schemes) == ["one length", "length-sorted, batch 8"]
    alone, batched = schemes["one length"], schemes["length-sorted, batch 8"]
    assert alone["padded_fraction"] == 0.0 and set(alone["per_sentence"]["pads"]) == {0}
    pads = batched["per_sentence"]["pads"]
    assert 0 < sum(p > 0 for p in pads) < len(pads)  # some padded, some the longest of their batch
    for key in ("log_px", "kl", "recon_at_mean"):
        for pad, mine, reference in zip(pads, batched["per_sentence"][key], alone["per_sentence"][key]):
            assert (mine != reference) == (pad > 0), (key, pad, mine, reference)
    vs = batched["vs_one_length"]
    assert vs["posterior_mean_differs_fraction"] == vs["padded_fraction"] == batched["padded_fraction"] > 0
    assert vs["differs_but_unpadded"] == vs["padded_but_equal"] == 0 and vs["KL"]["max_abs"] > 0
    assert math.isclose(batched["NLL"], -sum(batched["per_sentence"]["log_px"]) / len(test))
    assert math.isclose(vs["NLL"]["mean"], batched["NLL"] - alone["NLL"], abs_tol=1e-9)
    # the batched scheme is the paper protocol's: its recon at the mean is paper_protocol_terms' on lm_dataset.batches
    order = torch.sort(test.lengths, stable=True).indices.tolist()
    with torch.no_grad():
        paper = torch.cat([model.paper_protocol_terms(batch).recon for batch in batches(test, 8, False, None)])
    for place, recon in zip(order, paper.tolist()):
        assert math.isclose(batched["per_sentence"]["recon_at_mean"][place], recon, abs_tol=1e-3)
    # a limited audit scores its sentences in their batches of the whole test set: the same numbers
    chosen = likelihood_audit.stratified([int(n) for n in test.lengths], 6)
    limited = likelihood_audit.padding_audit(model, test, [8], 8, 4, 4, seed=0, selected=chosen, progress=False)
    part = limited["length-sorted, batch 8"]["per_sentence"]
    assert part["pads"] == [pads[i] for i in chosen]
    assert part["kl"] == [batched["per_sentence"]["kl"][i] for i in chosen]


@pytest.mark.parametrize("method", ["twr-vae", "vae-rnn"])
def test_a_posterior_that_ignores_padding_gives_zero_differences(ptb_sample, one_thread, method):
    test, vocab_size = small_test_set(ptb_sample)
    model = tiny_model(method, vocab_size=vocab_size).eval()  # timesteps: own, or the basic VAE
    schemes = likelihood_audit.padding_audit(model, test, [8, 5], 8, 4, 4, seed=0, progress=False)
    for name in ("length-sorted, batch 8", "length-sorted, batch 5"):
        vs = schemes[name]["vs_one_length"]
        assert schemes[name]["padded_fraction"] > 0 and vs["posterior_mean_differs_fraction"] == 0.0
        assert vs["posterior_mean_max_abs_diff"] == vs["posterior_logvar_max_abs_diff"] == 0.0
        for key in ("NLL", "KL", "recon_at_mean"):
            assert vs[key] == {"mean": 0.0, "mean_abs": 0.0, "max_abs": 0.0}, key
        assert schemes[name]["per_sentence"]["log_px"] == schemes["one length"]["per_sentence"]["log_px"]


def test_the_padding_command_records_the_model_and_prints_its_table(ptb_sample, tmp_path, capsys):
    from harness.core.config import ExperimentConfig
    from conftest import tiny_config

    config = tiny_config(epochs=1)
    config["model_defs"]["twr-vae"]["options"] = {"timesteps": "padded"}
    work = tmp_path / "run"
    train_run(ExperimentConfig.from_mapping(config).runs()[0], ptb_sample, work, progress=False)
    out = tmp_path / "padding.json"
    assert likelihood_audit.main(["padding", "--model-pt", str(work / "model.pt"), "--out", str(out), "--data",
                                  str(ptb_sample), "--batch-sizes", "16,7", "--iw-samples", "3", "--limit", "8",
                                  "--threads", "1"]) == 0
    payload = json.loads(out.read_text())
    assert payload["timesteps"] == "padded" and payload["options"]["timesteps"] == "padded"
    assert payload["epochs_completed"] == 1 and payload["threads"] == 1 and payload["cpu"] and payload["code_version"]
    assert payload["test"]["scored"] == 8 == len(payload["test"]["sentences"])
    assert payload["test"]["sentences_in_test_set"] == 30  # the evaluation's test set: max_test_sentences applied
    assert payload["settings"]["iw_samples"] == 3 and payload["settings"]["batch_sizes"] == [16, 7]
    assert set(payload["schemes"]) == {"one length", "length-sorted, batch 16", "length-sorted, batch 7"}
    for entry in payload["schemes"].values():
        assert len(entry["per_sentence"]["log_px"]) == 8 and entry["NLL"] > 0
    assert payload["schemes"]["length-sorted, batch 16"]["vs_one_length"]["posterior_mean_differs_fraction"] > 0
    printed = capsys.readouterr().out
    assert "timesteps: padded" in printed and "length-sorted, batch 7" in printed
