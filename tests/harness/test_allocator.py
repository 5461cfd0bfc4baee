"""Importing the harness tells glibc's malloc to keep freed blocks (harness/allocator.py), unless the user chose."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from harness.allocator import SETTINGS
from harness.config import REPO_ROOT

# an 8 MB tensor freed, then one the same size: faulted in afresh unless malloc kept the first one's memory
SCRIPT = """
import json, resource
import harness, harness.allocator, torch
x = torch.ones(2_000_000); del x
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
y = torch.ones(2_000_000)
print(json.dumps({"applied": harness.allocator.applied(),
                  "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def run_script(**preset) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}
    env.update(preset)
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout)


def test_importing_the_harness_keeps_freed_blocks_for_reuse():
    result = run_script()
    if result["applied"] is None:
        pytest.skip("this C library has no mallopt (not glibc): the allocator is left as it is")
    assert result["applied"] == SETTINGS
    assert result["faults"] < 200  # 8 MB in 4 KB pages is ~2,000 faults when faulted in afresh


def test_a_threshold_set_in_the_environment_leaves_the_allocator_alone():
    assert run_script(MALLOC_TRIM_THRESHOLD_="131072")["applied"] is None
