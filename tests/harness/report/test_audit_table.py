"""The likelihood audit's verdict table: generated from the audits, its words follow IW-with-q's distance to AIS, and
the committed block in docs/protocols.md is what the committed audits give."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.report import audit_table, status


def run(model="bn-vae", paper=110.0, uniform=107.7):
    values = {("paper", "NLL"): paper, ("uniform", "NLL"): uniform}
    return SimpleNamespace(model=model, dataset="ptb", seed=1, epochs=70, stop_reason="lr decayed 5 times", provenance={
        "selected_epoch": 57, "cpu": "Test CPU", "precision": "bfloat16"},
        value=lambda protocol, metric: values.get((protocol, metric)))


def audit(iw_1000, ais, iw_error=0.1, ais_error=0.03, fitted=None):
    estimators = {"IW q, K=1": {"nll_mean": iw_1000 + 3.0, "ess_median": 1.0},
                  "IW q, K=1000": {"nll_mean": iw_1000, "stderr_of_mean": iw_error, "ess_median": 38.0},
                  "AIS, 500 steps": {"nll_mean": ais, "stderr_of_mean": ais_error, "acceptance": 0.745},
                  "AIS, 100 steps": {"nll_mean": ais + 0.2, "stderr_of_mean": ais_error, "acceptance": 0.8},
                  # a widened proposal with a tiny ESS that lands low by chance: not the reference
                  "IW q widened x2, K=1000": {"nll_mean": ais - 0.5, "stderr_of_mean": 0.01, "ess_median": 1.2}}
    if fitted is not None:
        estimators["IW fitted Gaussian, K=1000"] = {"nll_mean": fitted, "stderr_of_mean": 0.03, "ess_median": 194.0}
    return {"settings": {"ks": [1, 1000], "ais_steps": [100, 500], "ais_chains": 4}, "estimators": estimators,
            "subset": {"sentences": list(range(8))}}


def test_the_words_follow_iw_with_qs_distance_to_ais():
    assert audit_table.bound_verdict(audit(119.92, 119.91)).startswith("tight: IW with q at K=1000 +0.01 nat from AIS")
    near = audit_table.bound_verdict(audit(123.75, 123.52, fitted=123.56))
    assert near.startswith("near-tight: IW with q at K=1000 0.23 nat above AIS (500 steps) (combined standard error 0.10)")
    assert near.endswith("; fitted Gaussian (K=1000) +0.04 nat from it")
    # AIS with too few steps for a sharp posterior stays above the fitted Gaussian: the lower one is the reference
    sharp = audit_table.bound_verdict(audit(148.79, 115.59, fitted=113.96))
    assert sharp == ("loose: IW with q at K=1000 34.83 nat above fitted Gaussian (K=1000) (combined standard error "
                     "0.10); AIS (500 steps) +1.63 nat from it")
    assert audit_table.bound_verdict(audit(143.2, 120.0)).startswith("loose: IW with q at K=1000 23.20 nat above AIS")
    # within twice the combined standard error is tight, however large the gap in nats
    assert audit_table.bound_verdict(audit(121.0, 120.0, iw_error=0.6, ais_error=0.6)).startswith("tight")
    without_ais = audit(120.0, 120.0)
    del without_ais["estimators"]["AIS, 500 steps"]
    assert audit_table.bound_verdict(without_ais) == \
        "no IW-with-q estimate, or neither AIS nor a fitted Gaussian, in the audit"


def test_a_row_names_the_run_and_the_k_sweep():
    (header, rule, row) = audit_table.audit_lines([(run(), audit(123.75, 123.52, fitted=123.5))])
    assert header.startswith("| model (run) | paper protocol, full test |") and rule.startswith("|---|")
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[0] == ("bn-vae (seed 1, 70 epochs, lr decayed 5 times, kept epoch 57; Test CPU, bfloat16 training; "
                        "8 subset sentences)")
    assert cells[1:3] == ["110.00", "107.70"]
    assert cells[3] == "126.75 / 123.75 (K = 1, 1000; median ESS 38 of 1000)"
    assert cells[5] == "123.52 ± 0.03 (500 steps, 4 chains, HMC acceptance 0.74)"
    assert audit_table.audit_lines([]) == ["No reference run has a likelihood audit yet."]


def test_the_committed_block_is_what_the_committed_audits_give():
    text = status.PROTOCOLS.read_text()
    block = text.split(audit_table.BEGIN, 1)[1].split(audit_table.END, 1)[0]
    assert block.strip("\n").splitlines() == audit_table.block_lines(status.audited_runs(status.REFERENCE)), \
        "docs/protocols.md's likelihood-audit block is stale: run `python -m harness.report.status` and commit it"


def test_a_protocols_page_without_the_block_is_refused(tmp_path):
    if not status.PAPER_VALUES.is_file():
        pytest.skip(f"{status.PAPER_VALUES} (the paper's numbers) is absent: the board cannot be regenerated")
    page = tmp_path / "protocols.md"
    page.write_text("no markers\n")
    with pytest.raises(ValueError, match="likelihood-audit block"):
        status.generate(protocols=page)


def test_each_audit_file_of_a_run_is_a_row_of_its_own(tmp_path):
    """An audit on another subset (likelihood_audit_<subset>.json) sits beside the first one, not in its place."""
    import json
    import shutil
    committed = sorted(status.REFERENCE.glob("cpu-*/ptb/vae-lstm/seed1/likelihood_audit.json"))
    if not committed:
        pytest.skip("no committed VAE-LSTM audit to copy")
    folder = tmp_path / "cpu-test" / "ptb" / "vae-lstm" / "seed1"
    shutil.copytree(committed[0].parent, folder)
    wider = json.loads((folder / "likelihood_audit.json").read_text())
    wider["subset"]["sentences"] = list(range(40))
    (folder / "likelihood_audit_subset40.json").write_text(json.dumps(wider))
    (folder / "likelihood_audit.png").write_bytes(b"")  # the figure is not an audit
    rows = audit_table.audit_lines(status.audited_runs(tmp_path))[2:]
    assert len(rows) == 2 and "; 8 subset sentences)" in rows[0] and "; 40 subset sentences)" in rows[1]


def per_sentence_audit(ais: list[float], iw: list[float], paper: list[float], sentences=(3, 1, 2)):
    """An audit that kept per-sentence values (in the audit's own sentence order)."""
    def entry(values):
        return {"nll": values, "nll_mean": sum(values) / len(values), "stderr_of_mean": 0.01, "acceptance": 0.8}
    return {"settings": {"ks": [1000], "ais_steps": [100]}, "subset": {"file": "subset.json",
                                                                     "sentences": list(sentences)},
            "estimators": {"AIS, 100 steps": entry(ais), "IW q, K=1000": entry(iw), "paper protocol": entry(paper)}}


def test_models_on_the_same_sentences_are_compared_sentence_by_sentence_and_a_reversal_shows():
    # TWR-like: the lowest AIS by 1 nat a sentence, but IW with q 30 nats looser; its paper protocol lowest too
    twr = per_sentence_audit(ais=[99.0, 49.0, 79.0], iw=[131.0, 80.0, 109.0], paper=[90.0, 40.0, 70.0])
    # the same sentences listed in another order: pairing follows the sentence index, not the position
    lstm = per_sentence_audit(ais=[50.0, 80.0, 100.0], iw=[50.0, 80.0, 100.0], paper=[50.0, 80.0, 100.0],
                              sentences=(1, 2, 3))
    elsewhere = per_sentence_audit(ais=[1.0, 1.0, 1.0], iw=[1.0, 1.0, 1.0], paper=[1.0, 1.0, 1.0],
                                   sentences=(7, 8, 9))
    lines = audit_table.paired_lines([(run("vae-lstm"), lstm), (run("twr-vae"), twr), (run("lonely"), elsewhere)])
    assert lines[0].startswith("3 test sentences (subset.json); the best under the tightest estimates (the lowest of "
                               "AIS, which every model here has): twr-vae (seed 1")
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if line.startswith("| ")][1:]
    assert [row[0].split(" ")[0] for row in rows] == ["twr-vae", "vae-lstm"]  # ranked by AIS; the lonely one left out
    assert rows[0][2:] == ["(reference)"] * 3
    # vae-lstm minus twr-vae per sentence (1, 2, 3): AIS +1 each; IW q -30, -29, -31; paper protocol +10 each
    assert rows[1][2] == "+1.00 ± 0.00"
    assert rows[1][3] == "-30.00 ± 0.58"  # under IW with q the ranking reverses
    assert rows[1][4] == "+10.00 ± 0.00"
    assert audit_table.paired_lines([(run(), lstm)]) == ["No subset has been audited on two models yet."]
    sentence = audit_table.summary_sentence([(run("vae-lstm"), lstm), (run("twr-vae"), twr)])
    assert sentence.startswith("**Likelihood audit** (3 test sentences, the tightest of AIS, paired by sentence): "
                               "twr-vae seed 1 lowest at 75.67 nats; vae-lstm seed 1 +1.00 ± 0.00 (IW with q: "
                               "-30.00 ± 0.58) nats from it.")
    assert audit_table.summary_sentence([(run(), lstm)]) is None


def test_the_widened_fitted_gaussian_is_a_candidate_for_the_reference_and_q_widened_is_not():
    sharp = audit(148.79, 115.59, fitted=113.96)
    sharp["estimators"]["IW fitted Gaussian widened x1.5, K=1000"] = {"nll_mean": 113.2, "stderr_of_mean": 0.05}
    label, name, entry = audit_table.reference_estimate(sharp)
    assert (label, name) == ("fitted Gaussian widened x1.5 (K=1000)", "IW fitted Gaussian widened x1.5, K=1000")
    assert audit_table.bound_verdict(sharp).endswith(
        "; AIS (500 steps) +2.39 nat from it; fitted Gaussian (K=1000) +0.76 nat from it")
    # the fixture's "q widened x2" lands below AIS by chance: a check on q, never the reference
    assert audit_table.reference_estimate(audit(119.92, 119.91))[0] == "AIS (500 steps)"


def test_models_side_by_side_are_read_under_the_tight_estimators_they_all_have():
    """A model audited with one more candidate (the widened fitted Gaussian) gains nothing from it beside one
    without."""
    twr = per_sentence_audit(ais=[99.0, 49.0, 79.0], iw=[131.0, 80.0, 109.0], paper=[90.0, 40.0, 70.0])
    twr["estimators"]["IW fitted Gaussian widened x1.5, K=1000"] = {  # 10 nats lower on every sentence
        "nll": [89.0, 39.0, 69.0], "nll_mean": 65.67, "stderr_of_mean": 0.01}
    lstm = per_sentence_audit(ais=[50.0, 80.0, 100.0], iw=[50.0, 80.0, 100.0], paper=[50.0, 80.0, 100.0],
                              sentences=(1, 2, 3))
    assert audit_table.reference_estimate(twr)[0] == "fitted Gaussian widened x1.5 (K=1000)"  # its own verdict
    lines = audit_table.paired_lines([(run("vae-lstm"), lstm), (run("twr-vae"), twr)])
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if line.startswith("| ")][1:]
    assert rows[0][1] == "75.67 ± 0.01, AIS (100 steps)" and rows[1][2] == "+1.00 ± 0.00"  # AIS for both


def test_the_board_note_takes_the_label_from_the_audit_it_measured():
    """Two audits on as many sentences, the first without a reference estimate: the second one speaks."""
    empty = per_sentence_audit(ais=[1.0, 1.0, 1.0], iw=[1.0, 1.0, 1.0], paper=[1.0, 1.0, 1.0])
    del empty["estimators"]["AIS, 100 steps"]
    loose = per_sentence_audit(ais=[99.0, 49.0, 79.0], iw=[131.0, 80.0, 109.0], paper=[90.0, 40.0, 70.0])
    assert audit_table.bound_note([empty, loose]) == "loose: IW q +31.00 nat from AIS (100 steps) (3 sentences)"
    assert audit_table.bound_note([empty]) == "not audited"


def test_the_best_proposal_is_the_one_closest_to_the_posterior_not_the_luckiest():
    lucky = audit(123.75, 123.52, fitted=123.5)  # its "q widened x2" lands 0.5 below AIS from a median ESS of 1.2
    assert audit_table.best_proposal(lucky)[0] == "fitted Gaussian"  # median ESS 194
    cells = [cell.strip() for cell in audit_table.audit_lines([(run(), lucky)])[2].strip("|").split("|")]
    assert cells[4] == "fitted Gaussian: 123.50 ± 0.03 (K=1000, median ESS 194)"
    assert cells[6] == "not run"


def test_bdmc_is_summarised_at_its_most_steps():
    with_bdmc = audit(121.0, 121.26)
    with_bdmc["estimators"] |= {
        "BDMC forward/reverse, 100 steps": {"gap_mean": 1.14, "gap_max": 4.21, "sentences": 8, "steps": 100},
        "BDMC forward/reverse, 500 steps": {"gap_mean": 0.274, "gap_max": 1.069, "sentences": 8, "steps": 500}}
    assert audit_table.bdmc_summary(with_bdmc) == "gap 0.27 nat a sentence, 1.07 at most (8 sentences, 500 steps)"
