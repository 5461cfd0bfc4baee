"""Phase 1 reads pytest's JUnit report: every test by name, with its outcome."""
from __future__ import annotations

import subprocess
import sys

from benchmarks.gpu_campaign.correctness import outcomes


def test_outcomes_name_each_test_and_its_failure(tmp_path):
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n\ndef test_good():\n    assert True\n\n"
        "def test_bad():\n    assert 1 == 2, 'one is not two'\n\n"
        "@pytest.mark.skip(reason='not here')\ndef test_skipped():\n    pass\n")
    junit = tmp_path / "report.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
                    "--rootdir", str(tmp_path), str(tmp_path / "test_sample.py")], cwd=tmp_path, capture_output=True)
    records = {record["test"].split("::")[1]: record for record in outcomes(junit)}
    assert {name: record["outcome"] for name, record in records.items()} == {
        "test_good": "passed", "test_bad": "failed", "test_skipped": "skipped"}
    assert "one is not two" in records["test_bad"]["message"]
    assert records["test_bad"]["test"].endswith("test_sample.py::test_bad")
