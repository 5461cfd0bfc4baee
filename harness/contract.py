"""What a method needs from the harness besides its base class: the config error, the architecture sizes and
building an options dataclass from a config mapping. Nothing here reads a config file (harness.config does)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping


class ConfigError(ValueError):
    """A configuration file or value is invalid; the message names the key."""


@dataclass(frozen=True)
class ArchitectureConfig:
    """Sizes shared by every method of an experiment (config key `architecture`)."""

    emb_dim: int = 512
    hidden_dim: int = 256
    z_dim: int = 32
    num_layers: int = 1
    dropout: float = 0.5


def build_dataclass(cls, values: Mapping[str, Any], where: str):
    """Instantiate a dataclass from a config mapping, naming the offending key on an unknown or rejected one."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(names)}")
    try:
        return cls(**values)
    except (TypeError, ConfigError) as exc:  # a required key missing, or a value the dataclass's checks reject
        raise ConfigError(f"{where}: {exc}") from None
