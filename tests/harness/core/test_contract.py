"""harness.core.contract.build_dataclass: every config value is checked against its field's annotation before the
dataclass is built, and a mismatch is a ConfigError naming the full key, the expected type and the value."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

import pytest
import yaml

from harness.core.contract import ConfigError, build_dataclass, check_defaults, checked_values, config_error_line

WHERE = "model_defs.skip.options"


@dataclass(frozen=True)
class Inner:
    size: int = 1


@dataclass(frozen=True)
class Widths:
    widths: tuple[int, ...] = ()


@dataclass(frozen=True)
class SkipOptions:
    """An options dataclass with one field of every kind a method or config section uses."""

    kl_warmup_steps: int = 0
    kl_start: float = 0.0
    skip_output: bool = False
    rnn_type: Literal["lstm", "gru"] = "lstm"
    name: str = "skip"
    cap: int | None = None
    widths: tuple[int, ...] = (1, 2)
    tags: list[str] = field(default_factory=list)
    pair: tuple[int, str] = (1, "a")
    extra: Mapping[str, Any] = field(default_factory=dict)
    anything: Any = None
    inner: Inner | None = None

    def __post_init__(self):
        if self.kl_warmup_steps < 0:
            raise ConfigError(f"kl_warmup_steps must be >= 0, got {self.kl_warmup_steps}")


def build(**values):
    return build_dataclass(SkipOptions, values, WHERE)


def refused(message: str, **values) -> None:
    with pytest.raises(ConfigError) as caught:
        build(**values)
    assert str(caught.value) == message


@pytest.mark.parametrize("value", [2.5, "ten", 3.0, True, None, [3]])
def test_an_integer_option_refuses_anything_else_naming_the_full_key(value):
    refused(f"{WHERE}.kl_warmup_steps: expected an integer, got {value!r}", kl_warmup_steps=value)


def test_the_example_of_the_issue_reads_as_one_line():
    with pytest.raises(ConfigError) as caught:
        build(kl_warmup_steps=2.5)
    assert str(caught.value) == "model_defs.skip.options.kl_warmup_steps: expected an integer, got 2.5"
    assert config_error_line(caught.value) == f"config error: {caught.value}" and "\n" not in str(caught.value)


def test_a_float_option_takes_an_int_as_it_is_and_refuses_text_and_booleans():
    refused(f"{WHERE}.kl_start: expected a number, got 'x'", kl_start="x")
    refused(f"{WHERE}.kl_start: expected a number, got True", kl_start=True)
    options = build(kl_start=3)
    assert options.kl_start == 3 and type(options.kl_start) is int  # kept as written: run fingerprints unchanged
    assert build(kl_start=0.25).kl_start == 0.25


def test_a_bool_option_takes_only_true_or_false():
    refused(f"{WHERE}.skip_output: expected true or false, got 'no'", skip_output="no")
    refused(f"{WHERE}.skip_output: expected true or false, got 0", skip_output=0)
    assert build(skip_output=True).skip_output is True


def test_a_literal_option_names_its_choices():
    refused(f"{WHERE}.rnn_type: expected one of 'lstm', 'gru', got 'transformer'", rnn_type="transformer")
    assert build(rnn_type="gru").rnn_type == "gru"


def test_optional_string_and_mapping_fields():
    assert build(cap=None).cap is None and build(cap=5).cap == 5
    refused(f"{WHERE}.cap: expected an integer or null, got 'all'", cap="all")
    refused(f"{WHERE}.name: expected a string, got 3", name=3)
    assert build(extra={"a": [1, "b"]}).extra == {"a": [1, "b"]}  # a mapping's contents are not checked
    refused(f"{WHERE}.extra: expected a mapping, got [1]", extra=[1])
    assert build(anything=object).anything is object  # Any: accepted as it is


def test_a_yaml_list_fills_a_tuple_field_as_a_tuple():
    options = build(**yaml.safe_load("widths: [3, 4]\ntags: [a, b]\npair: [2, x]"))
    assert options.widths == (3, 4) and isinstance(options.widths, tuple)
    assert options.tags == ["a", "b"] and options.pair == (2, "x")
    hash(build_dataclass(Widths, {"widths": [5]}, WHERE))  # a frozen options object of tuples stays hashable
    refused(f"{WHERE}.widths: expected a list of integers, got [1, 'x']", widths=[1, "x"])
    refused(f"{WHERE}.widths: expected a list of integers, got 3", widths=3)
    refused(f"{WHERE}.pair: expected a list of 2 items (an integer, a string), got [1]", pair=[1])


def test_a_dataclass_field_takes_a_mapping_built_under_its_own_key_or_an_instance():
    assert build(inner={"size": 4}).inner == Inner(4)
    assert build(inner=Inner(2)).inner == Inner(2)
    refused(f"{WHERE}.inner.size: expected an integer, got 'big'", inner={"size": "big"})
    refused(f"{WHERE}.inner: expected a mapping (keys size) or null, got 3", inner=3)


def test_unknown_keys_and_the_dataclass_own_checks_still_name_the_entry():
    with pytest.raises(ConfigError, match=re.escape(f"{WHERE}: unknown key(s) ['kl_warmup']")):
        build(kl_warmup=3)
    refused(f"{WHERE}: kl_warmup_steps must be >= 0, got -1", kl_warmup_steps=-1)


def test_an_annotation_that_cannot_be_resolved_is_not_checked():
    @dataclass
    class Unresolvable:
        value: "NoSuchType" = None  # noqa: F821

    assert build_dataclass(Unresolvable, {"value": "anything"}, "x").value == "anything"
    assert checked_values(Unresolvable, {"value": 1}, "x") == {"value": 1}


def test_defaults_are_checked_on_request():
    @dataclass(frozen=True)
    class BadDefault:
        steps: int = 2.5

    with pytest.raises(ConfigError, match=r"^m: BadDefault\.steps: expected an integer, got 2\.5$"):
        check_defaults(BadDefault, "m: BadDefault")
    check_defaults(SkipOptions, "SkipOptions")


def test_every_registered_method_has_typed_defaults():
    from harness.methods.lookup import get_method, registered_methods

    for name in registered_methods():
        check_defaults(get_method(name).Options, name)


def test_a_wrongly_typed_option_in_a_config_names_the_model_entry():
    """Through the config loader (harness.core.config.ExperimentConfig.check -> Method.parse_options)."""
    from harness.core.config import ExperimentConfig

    for value, words in ((2.5, "an integer"), ("ten", "an integer")):
        raw = {"models": ["skip"], "model_defs": {"skip": {"method": "vae-rnn", "options": {"kl_warmup_steps": value}}}}
        with pytest.raises(ConfigError) as caught:
            ExperimentConfig.from_mapping(raw)
        assert str(caught.value) == f"model_defs.skip.options.kl_warmup_steps: expected {words}, got {value!r}"
    raw = {"models": ["skip"], "model_defs": {"skip": {"method": "twr-vae", "options": {"kl_start": 1}}}}
    assert ExperimentConfig.from_mapping(raw).runs()[0].model.options == {"kl_start": 1}
    raw = {"models": ["m"], "model_defs": {"m": {"method": "vae-rnn", "train": {"lr_decay": {"mode": "plateau",
                                                                                               "patience": 1.5}}}}}
    with pytest.raises(ConfigError, match=r"^model_defs\.m\.train\.lr_decay\.patience: expected an integer, got 1\.5$"):
        ExperimentConfig.from_mapping(raw)


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml"])
def test_the_shipped_configs_pass_the_typed_check(name):
    from conftest import REPO_ROOT
    from harness.core.config import ExperimentConfig, RunConfig

    experiment = ExperimentConfig.from_file(REPO_ROOT / "config" / name)
    runs = experiment.runs()
    assert runs and all(isinstance(run.model.paper_tables, tuple) for run in runs)
    assert all(RunConfig.from_dict(run.to_dict()) == run for run in runs)
    experiment.interpolate_config()


def test_check_method_reports_a_config_error_in_one_line(capsys, monkeypatch):
    """A method whose option defaults are wrongly typed: `python -m harness.methods.check_method` says so in one line, as the
    workflow's config check does, and exits 2 without running the contract."""
    from harness.methods import check_method
    from harness.methods.lookup import registered_methods
    from harness.methods.registry import METHODS, register_method
    from baselines.vae_rnn import BasicVAE, BasicVAEOptions

    @dataclass(frozen=True)
    class BadOptions(BasicVAEOptions):
        skip_output: bool = "no"

    class Bad(BasicVAE):
        Options = BadOptions

    registered_methods()
    before = dict(METHODS)
    monkeypatch.setattr(check_method, "run_checks", lambda method: pytest.fail("the contract ran"))
    try:
        register_method("toy-bad-defaults")(Bad)
        assert check_method.main(["toy-bad-defaults"]) == 2
    finally:
        METHODS.clear()
        METHODS.update(before)
    err = capsys.readouterr().err
    assert err == "config error: toy-bad-defaults: BadOptions.skip_output: expected true or false, got 'no'\n"
