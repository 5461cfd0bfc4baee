"""The GPU campaign, run end to end in tiny sizes on the CPU, as the GPU image would run it (without the packages
that image lacks): the three phase files, the bundle, and phase 1 stopping the later phases when it fails."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from benchmarks.gpu_campaign import __main__ as campaign
from benchmarks.gpu_campaign.prepare import prepare
from conftest import REPO_ROOT
from harness.core.precision import bfloat16_unsupported

#: what the GPU image lacks (the README of the device tool); a sitecustomize makes every Python process refuse them
MISSING_ON_THE_GPU_IMAGE = ("jsonschema", "nltk", "rouge_score", "gensim", "snakemake")
BLOCKER = f"""
import importlib.abc, sys

class RefuseMissing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {MISSING_ON_THE_GPU_IMAGE!r}:
            raise ImportError(f"{{name}} is not on the GPU image")

sys.meta_path.insert(0, RefuseMissing())
"""


@pytest.fixture(scope="module")
def tiny_campaign(tmp_path_factory):
    root = tmp_path_factory.mktemp("campaign")
    prepare(root / "prepared", tiny=True)  # here, with jsonschema: the configs travel validated
    site = root / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO_ROOT)])}
    refused = subprocess.run([sys.executable, "-c", "import nltk"], env=env, capture_output=True, text=True)
    assert "not on the GPU image" in refused.stderr  # the blocker is in force in child processes
    command = [sys.executable, "-m", "benchmarks.gpu_campaign", "--device", "cpu", "--tiny", "--out",
               str(root / "out"), "--prepared", str(root / "prepared"), "--bundle", str(root / "campaign.tar.gz")]
    completed = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    return root, completed


def phase(root: Path, number: int) -> dict:
    return json.loads((root / "out" / f"phase{number}.json").read_text())


def test_the_tiny_campaign_passes_all_three_phases_without_the_missing_packages(tiny_campaign):
    root, completed = tiny_campaign
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert [phase(root, n)["status"] for n in (1, 2, 3)] == ["passed"] * 3
    assert all(phase(root, n)["device"]["type"] == "cpu" and phase(root, n)["code_version"] for n in (1, 2, 3))


def test_phase_1_ran_the_device_tests_by_name(tiny_campaign):
    root, _ = tiny_campaign
    record = phase(root, 1)
    names = [test["test"] for test in record["tests"]]
    # on a CPU without bf16 kernels the bf16 device tests skip, saying so; everywhere else every test passes
    skipped = [test for test in record["tests"] if test["outcome"] == "skipped"]
    assert all("bfloat16 cannot run on this machine" in test["message"] for test in skipped)
    assert len(skipped) == (2 if bfloat16_unsupported("cpu") else 0)
    assert record["counts"]["passed"] + len(skipped) == len(names) >= 15 and not record["failed"]
    assert "--device cpu" in record["command"]
    assert any("test_a_killed_run_resumes_to_the_same_result" in name for name in names)
    assert any("test_the_iw_estimate_on_the_device_equals_the_cpu_one" in name for name in names)
    assert any(name.startswith("tests/harness/methods/test_model_api.py::") and "sa-vae" in name for name in names)


def test_phase_2_measured_both_precisions_against_the_baselines(tiny_campaign):
    root, _ = tiny_campaign
    summary = phase(root, 2)["summary"]
    # bfloat16 is measured wherever the device computes it (bfloat16_unsupported says why not, on a CPU without it)
    bfloat16 = set() if bfloat16_unsupported("cpu") else {"ours_bfloat16"}
    assert summary["bfloat16_unsupported"] == bfloat16_unsupported("cpu")
    assert set(summary["train_tokens_per_second"]) == {"ours", "original", "original_per_step"} | bfloat16
    assert summary["train_speedup_vs_original"] > 0 and summary["loss_relative_difference_vs_original"] < 1e-4
    assert (summary["train_bfloat16_speedup_vs_original"] is None) == (not bfloat16)
    for chunk, rates in summary["iwnll_sentences_per_second"].items():
        assert set(rates) == {"ours", "he_style", "naive"} | bfloat16 and all(v > 0 for v in rates.values())
    assert summary["iwnll_max_abs_difference_nats"] < 1e-3  # the same draws: the same estimate
    assert str(summary["fastest_iw_chunk"]) in summary["iwnll_sentences_per_second"]


def test_phase_3_trained_every_planned_model_within_its_budget_and_evaluated_it(tiny_campaign):
    root, _ = tiny_campaign
    record = phase(root, 3)
    assert set(record["runs"]) == {"twr-vae", "vae-lstm", "bn-vae", "cyc-vae", "lag-vae", "sa-vae"}
    assert record["budget"]["iw_chunk"] == phase(root, 2)["summary"]["fastest_iw_chunk"]
    for model, run in record["runs"].items():
        assert run["status"] == "ok", (model, run.get("log_tail"))
        # how many epochs fit depends on the machine; what is recorded must add up whatever it was
        assert run["steps"] >= 1 and (run["stopped_early"] is None or run["stopped_early"]["reason"] == "time budget")
        if run["stopped_early"] is None and run["epochs_completed"] < run["epochs_planned"]:  # the baselines' lr decay
            assert run["lr_schedule"]["stopped"]["epoch"] == run["epochs_completed"], model  # ended it (paper.yaml)
        partial = (run["stopped_early"] or {}).get("partial_epoch")
        trained = json.loads((root / "out" / "phase3" / model / "train_log.json").read_text())
        assert len(trained["history"]) == run["epochs_completed"] + (partial is not None)
        assert all(math.isfinite(run["metrics"][protocol][metric]) for protocol in ("uniform", "paper")
                   for metric in ("NLL", "PPL", "KL", "MI"))
        metrics = json.loads((root / "out" / "phase3" / model / "metrics.json").read_text())
        assert metrics["training"]["epochs_completed"] == run["epochs_completed"]
        assert metrics["config"]["evaluate"]["iw_chunk"] == record["budget"]["iw_chunk"]
    if record["runs"]["twr-vae"]["paper"]:  # the paper's numbers travel in the plan when ../shared is there
        assert record["runs"]["twr-vae"]["paper"] == {"NLL": 86.6, "PPL": 40.9, "KL": 5.0, "MI": 4.1}


def test_the_bundle_holds_every_small_file_and_no_checkpoint(tiny_campaign):
    root, _ = tiny_campaign
    with tarfile.open(root / "campaign.tar.gz") as archive:
        names = archive.getnames()
    assert {"out/phase1.json", "out/phase2.json", "out/phase3.json", "out/phase3/twr-vae/metrics.json",
            "out/phase3/twr-vae/train_log.json"} <= set(names)
    assert not any(name.endswith(".pt") for name in names)
    assert (root / "out" / "phase3" / "twr-vae" / "model.pt").exists()  # written, but not bundled


def test_a_failed_phase_1_names_the_test_and_stops_the_later_phases(tmp_path, monkeypatch):
    failed = {"status": "failed", "reason": "failed: tests/x.py::test_y", "failed": ["tests/x.py::test_y"]}
    monkeypatch.setattr(campaign, "run_correctness", lambda *args: failed)
    prepared = tmp_path / "prepared"
    prepare(prepared, tiny=True, models=("twr-vae",))
    code = campaign.main(["--device", "cpu", "--tiny", "--out", str(tmp_path / "out"), "--prepared", str(prepared)])
    assert code == 1
    assert phase(tmp_path, 1)["failed"] == ["tests/x.py::test_y"]
    assert [phase(tmp_path, n)["status"] for n in (2, 3)] == ["skipped", "skipped"]


def test_the_bundle_becomes_reference_results_and_a_table_with_their_provenance(tiny_campaign, tmp_path):
    from benchmarks.gpu_campaign.reference import import_reference

    root, _ = tiny_campaign
    dest = import_reference([root / "campaign.tar.gz"], tmp_path / "reference")
    assert dest.name == "cpu" and {path.name for path in dest.iterdir()} >= {"phase1.json", "phase2.json",
                                                                            "phase3.json", "ptb", "table2.tex"}
    assert sorted(path.parent.parent.name for path in dest.glob("ptb/*/seed1/metrics.json")) == sorted(
        phase(root, 3)["runs"])
    table = (dest / "table2.tex").read_text()
    epochs = phase(root, 3)["runs"]["twr-vae"]["epochs_completed"]
    assert "Reference runs of the GPU campaign on" in table and f"TWR-VAE {epochs}" in table
    assert str(root) not in (dest / "phase1.json").read_text()  # no path of the machine that ran it


def test_a_plan_prepared_from_another_config_or_size_is_refused(tmp_path):
    import json as json_module

    from benchmarks.gpu_campaign.plan import Plan, PlanError

    prepared = tmp_path / "prepared"
    with pytest.raises(PlanError, match="does not exist: prepare it first"):
        Plan.load(prepared, tiny=True)
    prepare(prepared, tiny=True, models=("twr-vae",))
    assert Plan.load(prepared, tiny=True).models == ["twr-vae"]
    with pytest.raises(PlanError, match="was prepared with --tiny"):
        Plan.load(prepared, tiny=False)
    plan = json_module.loads((prepared / "plan.json").read_text())
    (prepared / "plan.json").write_text(json_module.dumps({**plan, "config_sha256": "0" * 64}))
    with pytest.raises(PlanError, match="changed since"):
        Plan.load(prepared, tiny=True)


def test_an_unknown_model_is_a_clear_error_before_any_phase(tmp_path, capsys):
    prepared = tmp_path / "prepared"
    prepare(prepared, tiny=True, models=("twr-vae",))
    code = campaign.main(["--device", "cpu", "--tiny", "--out", str(tmp_path / "out"), "--prepared", str(prepared),
                          "--models", "twr-vae,no-such-model"])
    assert code == 2 and "model 'no-such-model' is not in the plan" in capsys.readouterr().err
    assert not (tmp_path / "out" / "phase1.json").exists()
