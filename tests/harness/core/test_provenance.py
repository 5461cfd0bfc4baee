"""A method's results record the source they came from, and the workflow retrains a method whose source changed."""
from __future__ import annotations

import subprocess
import sys

from conftest import REPO_ROOT
from harness.methods.lookup import get_method
from harness.core.provenance import method_source_files, source_hashes


def test_a_methods_sources_are_its_classes_and_the_layers_they_import():
    files = source_hashes(method_source_files(get_method("sa-vae")))
    assert {"baselines/sa_vae.py", "baselines/vae_rnn.py", "layers/sequence_vae.py", "layers/recurrent.py"} <= set(files)
    assert not any(path.startswith("harness/") or "twrvae" in path for path in files)  # drivers: code_version
    assert all(len(digest) == 16 for digest in files.values())


def test_a_plugins_sources_are_found_and_hashed(tmp_path, monkeypatch):
    from harness.methods.new_method import write_method
    from harness.methods.registry import METHODS

    write_method("prov-toy", "prov_plugins", root=tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    before = dict(METHODS)
    try:
        __import__("prov_plugins.prov_toy")
        files = source_hashes(method_source_files(get_method("prov-toy"), ("prov_plugins.prov_toy",)))
    finally:
        METHODS.clear()
        METHODS.update(before)
        for name in [name for name in sys.modules if name.startswith("prov_plugins")]:
            del sys.modules[name]
    assert str((tmp_path / "prov_plugins" / "prov_toy.py").resolve()) in files and "baselines/vae_rnn.py" in files


def test_code_version_is_dirty_for_edited_tracked_files_not_for_untracked_ones(tmp_path):
    """In a throwaway clone: a new, untracked file (a plugin folder, say: its modules are hashed in the run's
    method_sources) leaves the code version clean; an edited tracked file makes it dirty."""
    clone = tmp_path / "clone"
    if subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{REPO_ROOT}", str(clone)],
                      capture_output=True).returncode != 0:
        import pytest
        pytest.skip("the repository cannot be cloned here (not a git checkout)")
    from harness.core.io import code_version

    clean = code_version(clone)
    assert not clean.endswith("+dirty")
    (clone / "results" / "benchmarks").mkdir(parents=True, exist_ok=True)
    (clone / "results" / "benchmarks" / "new.json").write_text("{}\n")
    assert code_version(clone) == clean  # a result written under results/ is no code change
    (clone / "my_methods").mkdir()
    (clone / "my_methods" / "free_bits.py").write_text("x = 1\n")
    assert code_version(clone) == clean  # untracked: not part of what the commit computes
    tracked = clone / "harness" / "core" / "io.py"
    tracked.write_text(tracked.read_text() + "# edited\n")
    assert code_version(clone) == clean + "+dirty"
