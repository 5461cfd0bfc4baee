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


def test_the_users_own_command_finds_the_slurm_profile_by_name_and_plans_the_paper():
    # `snakemake --cores 8 --profile slurm`, typed as is at the repository root (here with -n): Snakemake resolves a
    # profile name relative to where it runs, so the root holds `slurm` -> profiles/slurm, whose `configfile` is
    # config/paper.yaml: every Table 2/3/5 row (and the baselines' own recipes) x 3 seeds, one GPU per train/evaluate job
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="snakemake-executor-plugin-slurm not installed")
    from harness.core.config import ExperimentConfig

    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "8", "--profile", "slurm"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "config/paper.yaml" in out
    runs = ExperimentConfig.from_file(REPO_ROOT / "config" / "paper.yaml").runs()
    resources = planned_resources(out)
    assert len(resources["train"]) == len(resources["evaluate"]) == len(runs) > 150  # every row x 3 seeds
    assert all("gpu=1" in line for line in resources["train"] + resources["evaluate"])


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
