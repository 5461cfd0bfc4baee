"""A training process killed with SIGKILL mid-epoch resumes from its last checkpoint to the same result."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import torch

from conftest import FIXTURES, REPO_ROOT
from harness.core.config import ExperimentConfig
from harness.data.preprocess import preprocess_lm
from harness.train.training import CHECKPOINT, MODEL


def run_config_json() -> str:
    config = {"device": "cpu", "models": ["twr-vae"],
              "data_options": {"ptb": {"max_train_sentences": 200, "max_valid_sentences": 20}},
              "architecture": {"emb_dim": 64, "hidden_dim": 64, "z_dim": 8},
              "train": {"epochs": 3, "batch_size": 2, "lr": 0.001},
              "model_defs": {"twr-vae": {"method": "twr-vae"}}}
    return json.dumps(ExperimentConfig.from_mapping(config).runs()[0].to_dict())


# The killed process SIGKILLs itself in the middle of its second epoch (200 sentences / batch 2 = 100 updates per
# epoch): deterministic, unlike a kill sent after some sleep, and still a real SIGKILL that no handler can catch.
KILL_AT_UPDATE = 150
SELF_KILLING_TRAINER = f"""
import os, signal, sys
from harness.train import optim
from harness.train import training as train
real_minimise = optim.Optimisation.minimise
def minimise(self, loss, step, groups=None):
    if step == {KILL_AT_UPDATE}:
        os.kill(os.getpid(), signal.SIGKILL)
    return real_minimise(self, loss, step, groups)
optim.Optimisation.minimise = minimise
sys.exit(train.main(sys.argv[1:]))
"""


def train_process(data: Path, out: Path, kill_mid_epoch: bool = False) -> subprocess.Popen:
    program = ["-c", SELF_KILLING_TRAINER] if kill_mid_epoch else ["-m", "harness.train"]
    return subprocess.Popen([sys.executable, *program, "--run-config", run_config_json(), "--data",
                             str(data), "--out", str(out), "--threads", "1", "--no-progress"],
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


def test_sigkill_mid_epoch_then_rerun_gives_the_uninterrupted_result(tmp_path):
    shutil.copytree(FIXTURES / "ptb_tiny", tmp_path / "raw" / "ptb")
    preprocess_lm("ptb", tmp_path / "raw", tmp_path / "processed")
    data = tmp_path / "processed"

    straight = train_process(data, tmp_path / "straight")
    assert straight.wait(timeout=600) == 0, straight.stdout.read()

    killed = tmp_path / "killed"
    process = train_process(data, killed, kill_mid_epoch=True)
    process.wait(timeout=600)
    assert process.returncode == -signal.SIGKILL, process.stdout.read()
    checkpoint = torch.load(killed / CHECKPOINT, weights_only=False)
    assert checkpoint["state"]["epoch"] == 1 and checkpoint["state"]["step"] == 100  # the kill landed in epoch 2
    assert not (killed / MODEL).exists() and not (killed / "train_log.json").exists()

    resumed = train_process(data, killed)
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output
    assert "resuming" in output and "from epoch 1" in output
    a = torch.load(tmp_path / "straight" / MODEL, weights_only=False)
    b = torch.load(killed / MODEL, weights_only=False)
    assert all(torch.equal(a["state_dict"][key], b["state_dict"][key]) for key in a["state_dict"])
    assert [h["valid_loss"] for h in a["summary"]["history"]] == [h["valid_loss"] for h in b["summary"]["history"]]
