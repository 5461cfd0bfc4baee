"""Importing the harness tells glibc's malloc to keep freed blocks (harness/core/allocator.py), unless the user chose."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from harness.core.allocator import SETTINGS
from harness.core.config import REPO_ROOT

# an 8 MB block malloc'd, written, freed, then one the same size: faulted in afresh (2,048 pages) unless malloc kept
# the first one's memory. Raw malloc, as the setting is glibc's: PyTorch's own large allocations (posix_memalign) land
# where the heap's layout puts them, which varies from process to process; the training step's page faults are
# measured by the benchmark instead (docs/performance.md).
SCRIPT = """
import ctypes, json, resource
import harness, harness.core.allocator
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, (ctypes.c_size_t,), (ctypes.c_void_p,)
size = 8 * 1024 * 1024
first = libc.malloc(size); ctypes.memset(first, 1, size); libc.free(first)
second = libc.malloc(size)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
ctypes.memset(second, 1, size)
print(json.dumps({"applied": harness.core.allocator.applied(),
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
    assert result["faults"] < 100  # 8 MB in 4 KB pages is 2,048 faults when faulted in afresh


def test_a_threshold_set_in_the_environment_leaves_the_allocator_alone():
    if run_script()["applied"] is None:
        pytest.skip("this C library has no mallopt (not glibc): the allocator is left as it is")
    result = run_script(MALLOC_TRIM_THRESHOLD_="131072")  # glibc's default trim threshold
    assert result["applied"] is None
    assert result["faults"] > 1000  # the freed block went back to the OS: the comparison above can fail
