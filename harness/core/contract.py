"""What a method needs from the harness besides its base class: the config error, the architecture sizes and
building an options dataclass from a config mapping. Nothing here reads a config file (harness.core.config does)."""
from __future__ import annotations

import collections.abc
import dataclasses
import numbers
import types
import typing
from dataclasses import dataclass
from typing import Any, Mapping


class ConfigError(ValueError):
    """A configuration file or value is invalid; the message names the key."""


def config_error_line(error: ConfigError) -> str:
    """How a command reports a ConfigError instead of a traceback (the workflow's config check and
    `python -m harness.methods.check_method`): the message, which names the key, after one fixed prefix."""
    return f"config error: {error}"


@dataclass(frozen=True)
class ArchitectureConfig:
    """Sizes shared by every method of an experiment (config key `architecture`)."""

    emb_dim: int = 512
    hidden_dim: int = 256
    z_dim: int = 32
    num_layers: int = 1
    dropout: float = 0.5


def build_dataclass(cls, values: Mapping[str, Any], where: str):
    """Instantiate a dataclass from a config mapping, naming the offending key on an unknown, wrongly typed or
    rejected one. Each value is checked against its field's annotation first (`checked_values`)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(names)}")
    values = checked_values(cls, values, where)
    try:
        return cls(**values)
    except (TypeError, ConfigError) as exc:  # a required key missing, or a value the dataclass's checks reject
        raise ConfigError(f"{where}: {exc}") from None


# ------------------------------------------------------------------------------------- typed config values
class _Mismatch(Exception):
    """A value does not have its annotation's type (internal: turned into a ConfigError naming the key)."""


def _field_types(cls) -> dict[str, Any]:
    """The fields' annotations, string annotations resolved (the modules use `from __future__ import annotations`);
    a class whose annotations cannot be resolved is not type-checked (nothing is guessed)."""
    try:
        return typing.get_type_hints(cls)
    except Exception:  # a forward reference its module does not define, a name only imported under TYPE_CHECKING
        return {}


def checked_values(cls, values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """`values` (keys of the dataclass `cls`) checked against the fields' annotations: a mismatch raises a
    ConfigError naming `where.<field>`, the expected type in words and the value. YAML lists given for tuple fields
    come back as tuples; a mapping given for a dataclass-typed field is built (`build_dataclass`) under its key.

    Checked: int (not bool, not a float such as 2.5 or 3.0), float (an int is accepted as it is), bool (true or
    false only), str, None, `X | None`, `Literal[...]`, tuple[...] / list[...] of those, Mapping / dict (a mapping,
    its contents unchecked), dataclasses. Anything else (Any, other classes) is accepted as it is."""
    hints = _field_types(cls)
    checked = dict(values)
    for name, value in values.items():
        if name not in hints:
            continue
        key = f"{where}.{name}"
        try:
            checked[name] = _check(hints[name], value, key)
        except _Mismatch:
            raise ConfigError(f"{key}: expected {_describe(hints[name])}, got {value!r}") from None
    return checked


_SCALARS = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
_PLURALS = {bool: "true/false values", int: "integers", float: "numbers", str: "strings"}


def _union_members(annotation) -> tuple | None:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(annotation)
    return None


def _check(annotation, value, key: str):
    """`value` if it has the type `annotation` (a list turned into a tuple for a tuple type), else _Mismatch."""
    if annotation is Any or isinstance(annotation, typing.TypeVar):
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if annotation is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if annotation is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return value  # an int stays an int: run configs (and so training fingerprints) keep what was written
        raise _Mismatch
    if annotation is str or annotation is type(None):
        if isinstance(value, annotation):
            return value
        raise _Mismatch
    members = _union_members(annotation)
    if members is not None:
        for member in members:
            try:
                return _check(member, value, key)
            except _Mismatch:
                continue
        raise _Mismatch
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        if any(value == choice and type(value) is type(choice) for choice in typing.get_args(annotation)):
            return value
        raise _Mismatch
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        args = typing.get_args(annotation)
        if origin is list or (len(args) == 2 and args[1] is Ellipsis):
            items = [_check(args[0], item, key) for item in value] if args else list(value)
        else:  # tuple[X, Y]: one item of each
            if args == ((),):
                args = ()
            if args and len(value) != len(args):
                raise _Mismatch
            items = [_check(arg, item, key) for arg, item in zip(args, value)] if args else list(value)
        return tuple(items) if origin is tuple else items
    if annotation in (tuple, list):
        if isinstance(value, (list, tuple)):
            return annotation(value)
        raise _Mismatch
    if origin in (dict, collections.abc.Mapping) or annotation in (dict, Mapping, collections.abc.Mapping):
        if isinstance(value, Mapping):
            return value
        raise _Mismatch
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if isinstance(value, Mapping):
            return build_dataclass(annotation, value, key)  # its own keys named below this one
        raise _Mismatch
    return value  # an annotation this check does not know: accepted, not guessed


def _describe(annotation) -> str:
    """The type `annotation` in words, for the error message."""
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    members = _union_members(annotation)
    if members is not None:
        return " or ".join(_describe(member) for member in members)
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(choice) for choice in typing.get_args(annotation))
    if origin in (tuple, list) or annotation in (tuple, list):
        args = typing.get_args(annotation)
        if not args or args == ((),):
            return "a list"
        if origin is list or (len(args) == 2 and args[1] is Ellipsis):
            item = args[0]
            return f"a list of {_PLURALS[item]}" if item in _PLURALS else f"a list whose items are each {_describe(item)}"
        return f"a list of {len(args)} items ({', '.join(_describe(arg) for arg in args)})"
    if origin in (dict, collections.abc.Mapping) or annotation in (dict, Mapping, collections.abc.Mapping):
        return "a mapping"
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return f"a mapping (keys {', '.join(field.name for field in dataclasses.fields(annotation))})"
    return getattr(annotation, "__name__", repr(annotation))


def check_defaults(cls, where: str) -> None:
    """The defaults of a dataclass's fields checked against their annotations, as config values are
    (`python -m harness.methods.check_method` runs it on a method's Options): a mismatch raises a ConfigError."""
    defaults = {}
    for field in dataclasses.fields(cls):
        if field.default is not dataclasses.MISSING:
            defaults[field.name] = field.default
        elif field.default_factory is not dataclasses.MISSING:
            defaults[field.name] = field.default_factory()
    checked_values(cls, defaults, where)
