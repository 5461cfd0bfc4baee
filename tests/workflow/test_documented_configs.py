"""Every YAML config snippet the README and the docs show loads as it is written (as an overlay file of its own),
so that a user never copies a config that fails on its own."""
from __future__ import annotations

import re
import sys

import pytest

from conftest import REPO_ROOT
from harness.core.config import ExperimentConfig
from harness.methods.lookup import registered_methods
from harness.methods.registry import METHODS

SOURCES = ["README.md", *sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "docs").glob("*.md"))]
SNIPPETS = [(source, index, block) for source in SOURCES
            for index, block in enumerate(re.findall(r"```yaml\n(.*?)```", (REPO_ROOT / source).read_text(), re.S))]


def test_the_snippets_are_found():
    assert {source for source, _, _ in SNIPPETS} >= {"README.md", "docs/adding_a_method.md"}


@pytest.mark.parametrize("source, index, block", SNIPPETS, ids=[f"{s}#{i}" for s, i, _ in SNIPPETS])
def test_a_documented_config_snippet_loads(tmp_path, monkeypatch, source, index, block):
    from harness.methods.new_method import write_method

    monkeypatch.chdir(REPO_ROOT)  # a user types the commands at the repository root
    registered_methods()
    before = dict(METHODS)
    try:
        if "my_methods" in block:  # the docs' method, as `python -m harness.methods.new_method free-bits` writes it
            write_method("free-bits", "my_methods", root=tmp_path)
            monkeypatch.syspath_prepend(str(tmp_path))
        path = tmp_path / f"snippet{index}.yaml"
        path.write_text(block)
        experiment = ExperimentConfig.from_file(path)
        assert experiment.runs(), f"{source} snippet {index} plans no run"
    finally:
        METHODS.clear()
        METHODS.update(before)
        for name in [name for name in sys.modules if name.startswith("my_methods")]:
            del sys.modules[name]
