"""The one registry through which every method reaches train, evaluate and the workflow.

A method is a `TextVAE` subclass in one file, decorated with `@register_method("name")`. Files in the
packages listed in `PLUGIN_PACKAGES` are imported on first lookup, so adding a method means adding a file to
`baselines/` (or your own package listed here) and a `model_defs` entry in the config.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, TypeVar

PLUGIN_PACKAGES = ("twrvae", "baselines")

_METHODS: dict[str, type] = {}
_loaded = False

T = TypeVar("T", bound=type)


def register_method(name: str) -> Callable[[T], T]:
    """Class decorator: make `cls` available under `name`."""

    def decorate(cls: T) -> T:
        if name in _METHODS and _METHODS[name] is not cls:
            raise ValueError(f"method name '{name}' is registered twice ({_METHODS[name].__module__} and {cls.__module__})")
        cls.method_name = name
        _METHODS[name] = cls
        return cls

    return decorate


def _load_plugins() -> None:
    global _loaded
    if _loaded:
        return
    for package_name in PLUGIN_PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package_name}.{module.name}")
    _loaded = True


def load_plugins(modules) -> None:
    """Import extra modules that register methods (config key `plugins`); a clear error names a missing one."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ImportError(f"plugin module '{module}' (config key `plugins`) cannot be imported: {exc}") from exc


def get_method(name: str) -> type:
    """The class registered under `name`; a clear error lists the known names otherwise."""
    _load_plugins()
    try:
        return _METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method '{name}'; registered methods: {sorted(_METHODS)}") from None


def registered_methods(task: str | None = None) -> list[str]:
    """Names of the registered methods, optionally only those of one task ("lm" or "dialogue")."""
    _load_plugins()
    return sorted(name for name, cls in _METHODS.items() if task is None or cls.task == task)
