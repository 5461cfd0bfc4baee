"""The one registry through which every method reaches train, evaluate and the workflow: lookup by name.

A method is a `Method` subclass in one file, decorated with `harness.registry.register_method("name")`. Every
module of the packages in `PLUGIN_PACKAGES` is imported on the first lookup, so adding a method means adding a
file to `baselines/` (or a module named in the config key `plugins`) and a `model_defs` entry in the config.
"""
from __future__ import annotations

import importlib
import pkgutil

from harness.registry import METHODS

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
            raise ImportError(f"plugin module '{module}' (config key `plugins`) cannot be imported: {exc}") from exc


def get_method(name: str) -> type:
    """The class registered under `name`; a clear error lists the known names otherwise."""
    _load_plugins()
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method '{name}'; registered methods: {sorted(METHODS)}. A method defined outside "
                       f"{' and '.join(f'{p}/' for p in PLUGIN_PACKAGES)} is found once its module is listed under "
                       f"the config key `plugins:` (python -m harness.check_method: --plugin MODULE)") from None


def registered_methods(task: str | None = None) -> list[str]:
    """Names of the registered methods, optionally only those of one task ("lm" or "dialogue")."""
    _load_plugins()
    return sorted(name for name, cls in METHODS.items() if task is None or cls.task == task)
