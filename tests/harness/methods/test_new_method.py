"""`python -m harness.methods.new_method`: the files it writes run as they are; it never overwrites; option errors name
their key."""
from __future__ import annotations

import sys

import pytest

from harness.core.config import ConfigError, ExperimentConfig
from harness.methods.new_method import main, write_method
from harness.methods.lookup import registered_methods
from harness.methods.registry import METHODS


@pytest.fixture
def plugin_root(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    registered_methods()  # the repository's methods are loaded before the snapshot
    before = dict(METHODS)
    yield tmp_path
    METHODS.clear()
    METHODS.update(before)
    for name in [name for name in sys.modules if name.startswith("gen_methods")]:
        del sys.modules[name]


def test_the_generated_method_config_and_test_run_as_they_are(plugin_root):
    paths = write_method("gen-toy", "gen_methods", root=plugin_root)
    assert {path.name for path in paths.values()} == {"gen_toy.py", "test_gen_toy.py", "gen_toy.yaml", "__init__.py"}
    experiment = ExperimentConfig.from_file(paths["config"])  # imports the plugin, checks its options
    assert experiment.experiment == "gen_toy" and experiment.raw["models"] == ["twr-vae", "gen-toy"]
    assert experiment.raw["significance"]["reference"] == "gen-toy"
    run = experiment.run_config("ptb", "gen-toy", 1)
    assert run.model.options == {"beta": 0.25} and run.data.max_train_sentences == 6000  # the default's budget
    namespace: dict = {}
    exec(compile(paths["test"].read_text(), str(paths["test"]), "exec"), namespace)
    namespace["test_gen_toy_passes_the_method_contract"]()  # the generated test: the method contract


def test_an_option_error_names_its_key(plugin_root):
    paths = write_method("gen-toy", "gen_methods", root=plugin_root)
    bad = paths["config"].with_name("bad.yaml")
    bad.write_text(paths["config"].read_text().replace("options: {beta: 0.25}", "options: {beta: 2}"))
    with pytest.raises(ConfigError, match=r"model_defs\.gen-toy\.options: beta must be in \(0, 1\], got 2"):
        ExperimentConfig.from_file(bad)


def test_nothing_is_overwritten_and_bad_names_are_refused(plugin_root, capsys):
    assert main(["gen-toy", "--package", "gen_methods"]) == 0
    assert main(["gen-toy", "--package", "gen_methods"]) == 2 and "not overwriting" in capsys.readouterr().err
    assert main(["Bad_Name"]) == 2 and "lower-case" in capsys.readouterr().err
    assert main(["twr-vae"]) == 2 and "registered already" in capsys.readouterr().err
