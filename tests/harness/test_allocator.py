"""Importing the harness asks PyTorch for huge pages for its CPU allocations, unless the user chose otherwise."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness.config import REPO_ROOT


@pytest.mark.parametrize("preset, expected", [(None, "1"), ("0", "0")])
def test_importing_the_harness_sets_the_huge_page_allocation_unless_preset(preset, expected):
    env = {key: value for key, value in os.environ.items() if key != "THP_MEM_ALLOC_ENABLE"}
    if preset is not None:
        env["THP_MEM_ALLOC_ENABLE"] = preset
    script = "import harness, os; print(os.environ.get('THP_MEM_ALLOC_ENABLE'))"
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == expected
