"""The execution profiles: the Slurm profile plans GPU jobs the plugin's way; an opt-in test runs a real Slurm."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, SHARED_DATA

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO_ROOT / "workflow" / "Snakefile")]


def dry_run(tmp_path, *args) -> str:
    result = subprocess.run([*SNAKEMAKE, "--directory", str(tmp_path), "-n", *args], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def planned_resources(out: str) -> dict[str, list[str]]:
    """rule name -> the `resources:` lines of its planned jobs."""
    by_rule: dict[str, list[str]] = {}
    for block in re.split(r"\n(?=rule \w+:)", out):
        match = re.match(r"rule (\w+):", block)
        resources = re.search(r"^\s+resources: (.*)$", block, flags=re.MULTILINE)
        if match and resources:
            by_rule.setdefault(match.group(1), []).append(resources.group(1))
    return by_rule


def test_the_slurm_profile_requests_a_gpu_for_training_and_none_for_tables(tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="snakemake-executor-plugin-slurm not installed")
    out = dry_run(tmp_path, "--profile", str(REPO_ROOT / "profiles" / "slurm"),
                  "--configfile", str(REPO_ROOT / "config" / "paper.yaml"))
    resources = planned_resources(out)
    for rule in ("train", "evaluate", "interpolate"):
        assert resources[rule] and all("gpu=1" in line for line in resources[rule]), (rule, resources.get(rule))
    assert all("runtime=1440" in line for line in resources["train"])
    for rule in ("fetch_dataset", "preprocess", "table"):
        assert resources[rule] and not any("gpu=" in line for line in resources[rule]), (rule, resources[rule])


def test_the_users_own_command_finds_the_slurm_profile_by_name(tmp_path):
    # `snakemake --cores 8 --profile slurm`, typed at the repository root: Snakemake resolves a profile name as a
    # path relative to where it runs (or in ~/.config/snakemake), so the root holds `slurm` -> profiles/slurm
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="snakemake-executor-plugin-slurm not installed")
    result = subprocess.run([*SNAKEMAKE, "--directory", str(tmp_path), "-n", "--cores", "8", "--profile", "slurm",
                             "--configfile", str(REPO_ROOT / "config" / "paper.yaml")],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert all("gpu=1" in line for line in planned_resources(result.stdout + result.stderr)["train"])


def test_the_local_profile_runs_one_gpu_job_at_a_time(tmp_path):
    out = dry_run(tmp_path, "--profile", str(REPO_ROOT / "profiles" / "local"),
                  "--configfile", str(REPO_ROOT / "config" / "config.yaml"))
    assert planned_resources(out)["train"] and "Nothing to be done" not in out


@pytest.mark.skipif(os.environ.get("TEXTVAE_SLURM_TEST") != "1",
                    reason="opt-in: starts a real single-node Slurm (root, apt); run with TEXTVAE_SLURM_TEST=1 "
                           "or directly: sudo tests/slurm/run_local_slurm.sh")
def test_the_workflow_runs_through_a_real_slurm():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the dataset mirror at {SHARED_DATA} (or network access for the script's download)")
    result = subprocess.run(["bash", str(REPO_ROOT / "tests" / "slurm" / "run_local_slurm.sh")], capture_output=True,
                            text=True, timeout=1800, env={**os.environ, "PYTHON": sys.executable})
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-5000:]
    assert "PASSED" in out
    for rule in ("train", "evaluate"):
        assert re.search(rf"submitted with SLURM jobid \d+ \(log: .*/rule_{rule}/", out), rule


def test_an_experiment_wide_lr_decay_is_named_in_its_table_caption(tmp_path):
    import yaml

    config = yaml.safe_load((REPO_ROOT / "config" / "config.yaml").read_text())
    config.setdefault("train", {})["lr_decay"] = {"mode": "plateau", "factor": 0.5, "patience": 2, "max_decays": 3}
    path = tmp_path / "decay.yaml"
    path.write_text(yaml.safe_dump(config))
    out = dry_run(tmp_path, "--printshellcmds", "--configfile", str(path))
    table_command = next(line for line in out.splitlines() if "harness.aggregate" in line)
    assert "with decay (x0.5 after 2 epochs in a row without improvement; stop after 3 decays)" in table_command
    assert "decay" not in next(line for line in dry_run(tmp_path, "--printshellcmds", "--configfile",
                                                        str(REPO_ROOT / "config" / "config.yaml")).splitlines()
                               if "harness.aggregate" in line)


def test_a_reduced_precision_experiment_says_so_in_its_table_caption(tmp_path):
    import yaml

    config = yaml.safe_load((REPO_ROOT / "config" / "config.yaml").read_text())
    config.setdefault("train", {})["precision"] = "bfloat16"
    path = tmp_path / "bf16.yaml"
    path.write_text(yaml.safe_dump(config))
    out = dry_run(tmp_path, "--printshellcmds", "--configfile", str(path))
    table_command = next(line for line in out.splitlines() if "harness.aggregate" in line)
    assert "Training precision: bfloat16" in table_command and "Evaluation precision" not in table_command
    assert "precision" not in next(line for line in dry_run(tmp_path, "--printshellcmds", "--configfile",
                                                            str(REPO_ROOT / "config" / "config.yaml")).splitlines()
                                   if "harness.aggregate" in line)
