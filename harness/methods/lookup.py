"""The one registry through which every method reaches train, evaluate and the workflow: lookup by name.

A method is a `Method` subclass in one file, decorated with `harness.methods.registry.register_method("name")`. Every
module of the packages in `PLUGIN_PACKAGES` is imported on the first lookup, so adding a method means adding a
file to `baselines/` (or a module named in the config key `plugins`) and a `model_defs` entry in the config.
"""
from __future__ import annotations

import importlib
import pkgutil

from harness.core.contract import ConfigError
from harness.methods.registry import METHODS


class UnknownMethod(ConfigError, KeyError):
    """No method is registered under the name (a KeyError, as the lookup always raised, and a ConfigError, so that
    the workflow's config check and `python -m harness.methods.check_method` report it in one line)."""

    def __str__(self) -> str:  # the message, not KeyError's quoted repr of it
        return str(self.args[0]) if self.args else ""


class PluginNotFound(ConfigError, ImportError):
    """A plugin module (config key `plugins`, check_method's --plugin) cannot be imported; reported in one line."""


PLUGIN_PACKAGES = ("twrvae", "baselines")

_loaded = False


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
            raise PluginNotFound(f"plugins: module '{module}' cannot be imported ({type(exc).__name__}: {exc}); a "
                                 "plugin is a module importable from the directory the command runs in, named with "
                                 "dots (my_methods.free_bits for my_methods/free_bits.py)") from exc


def get_method(name: str) -> type:
    """The class registered under `name`; a clear error lists the known names otherwise."""
    _load_plugins()
    try:
        return METHODS[name]
    except KeyError:
        raise UnknownMethod(f"unknown method '{name}'; registered methods: {sorted(METHODS)}. A method defined "
                            f"outside {' and '.join(f'{p}/' for p in PLUGIN_PACKAGES)} is found once its module is "
                            f"listed under the config key `plugins:` (python -m harness.methods.check_method: --plugin "
                            "MODULE)") from None


def registered_methods(task: str | None = None) -> list[str]:
    """Names of the registered methods, optionally only those of one task ("lm" or "dialogue")."""
    _load_plugins()
    return sorted(name for name, cls in METHODS.items() if task is None or cls.task == task)
