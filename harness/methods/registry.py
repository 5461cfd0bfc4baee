"""Where methods register: `@register_method("name")` on a `Method` subclass in one file (twrvae/, baselines/, or
a plugin module). Lookup, which first imports those packages, is harness.methods.lookup (so that the methods, which
import this module, are never imported by it)."""
from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T", bound=type)

METHODS: dict[str, type] = {}


def register_method(name: str) -> Callable[[T], T]:
    """Class decorator: make `cls` available under `name`."""

    def decorate(cls: T) -> T:
        if name in METHODS and METHODS[name] is not cls:
            raise ValueError(f"method name '{name}' is registered twice ({METHODS[name].__module__} and {cls.__module__})")
        cls.method_name = name
        METHODS[name] = cls
        return cls

    return decorate
