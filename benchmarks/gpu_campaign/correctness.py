"""Phase 1: the tests that take the `device` fixture, run on the campaign's device (`pytest -m device --device D`).

They compare that device with the CPU: the output layer's values and gradients (float32, and bf16 operands), the
IW-NLL on the same draws, bf16 autocast in training, every language-modelling method's evaluation and training
update, a resume from checkpoint and same seed -> same metrics. pytest runs in its own process (the GPU settings
the tests make stay there); its JUnit XML gives each test's outcome, so a failure is reported by name.
"""
from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from harness.core.config import REPO_ROOT

#: the test files holding device tests (only these are collected: the others may import what the GPU image lacks)
DEVICE_TEST_FILES = (
    "tests/layers/test_output_layer.py",
    "tests/metrics/test_lm.py",
    "tests/harness/core/test_precision.py",
    "tests/harness/methods/test_model_api.py",
    "tests/harness/train/test_train_evaluate.py",
)


def outcomes(junit_xml: Path) -> list[dict]:
    """One record per test case of a JUnit XML report: name, outcome, seconds and, if it failed, the message."""
    records = []
    for case in ElementTree.parse(junit_xml).getroot().iter("testcase"):
        outcome, message = "passed", None
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (element.get("message") or "")[:2000]
                break
        name = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
        records.append({"test": name, "outcome": outcome, "seconds": float(case.get("time", 0.0)),
                        "message": message})
    return records


def run_correctness(device: str, out: Path, timeout_s: float) -> dict:
    """Run the device tests on `device`; the phase record (status passed / failed)."""
    junit = out / "phase1-junit.xml"
    log = out / "phase1-pytest.log"
    command = [sys.executable, "-m", "pytest", "-m", "device", "--device", device, "-p", "no:cacheprovider", "-q",
               f"--junitxml={junit}", *DEVICE_TEST_FILES]
    started = time.perf_counter()
    try:
        # `python -m` from the repository root imports this checkout (the root is first on its path)
        completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout_s)
        log.write_text(completed.stdout + completed.stderr)
        returncode, timed_out = completed.returncode, False
    except subprocess.TimeoutExpired as expired:
        log.write_text(f"{expired.stdout or ''}{expired.stderr or ''}\n(timed out after {timeout_s} s)\n")
        returncode, timed_out = None, True
    tests = outcomes(junit) if junit.is_file() else []
    failed = [t["test"] for t in tests if t["outcome"] in ("failed", "error")]
    counts = {outcome: sum(t["outcome"] == outcome for t in tests)
              for outcome in ("passed", "failed", "error", "skipped")}
    ok = returncode == 0 and not failed and counts["passed"] > 0
    reason = None
    if not ok:
        reason = (f"timed out after {timeout_s} s" if timed_out else
                  f"failed: {', '.join(failed)}" if failed else
                  f"pytest exited with {returncode} and no failed test (see {log.name}): "
                  + (log.read_text()[-1000:] if log.is_file() else ""))
    return {"status": "passed" if ok else "failed", "reason": reason, "counts": counts, "failed": failed,
            "tests": tests, "command": " ".join(command[1:]).replace(str(out), "<out>"),
            "seconds": time.perf_counter() - started,
            "log": log.name}
