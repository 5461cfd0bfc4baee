"""Which source files a method's trained weights depend on, and their hashes.

The files that define the method's class and its bases, and every module of `layers`, `twrvae`, `baselines`,
`metrics` or a plugin's package that they import, transitively (the harness's drivers are covered by
`code_version` instead). The workflow makes them inputs of the method's training jobs, so that editing a method
retrains it, and every train_log/metrics.json records their hashes.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
from pathlib import Path

import torch

from harness.core.paths import REPO_ROOT

SOURCE_PACKAGES = ("layers", "twrvae", "baselines", "metrics")


def _module_file(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin).resolve() if spec and spec.origin and spec.origin.endswith(".py") else None


def _imported_modules(path: Path, packages: set[str]) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from package import module`
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.split(".")[0] in packages}


def method_source_files(method_cls: type, plugins: tuple[str, ...] = ()) -> list[Path]:
    """The source files `method_cls` is built from (see the module docstring), sorted."""
    packages = set(SOURCE_PACKAGES) | {name.split(".")[0] for name in plugins} | {method_cls.__module__.split(".")[0]}
    packages.discard("harness")
    pending = [cls.__module__ for cls in inspect.getmro(method_cls)
               if cls.__module__.split(".")[0] in packages and not issubclass(torch.nn.Module, cls)]
    files: set[Path] = set()
    while pending:
        path = _module_file(pending.pop())
        if path is None or path in files:
            continue
        files.add(path)
        pending.extend(_imported_modules(path, packages))
    return sorted(files)


def source_hashes(files: list[Path]) -> dict[str, str]:
    """{path: sha256 prefix}; paths inside the repository relative to it, others as they are."""
    def shown(path: Path) -> str:
        return path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else str(path)
    return {shown(path): hashlib.sha256(path.read_bytes()).hexdigest()[:16] for path in files}
