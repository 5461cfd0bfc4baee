"""The layer picture of docs/architecture.md, enforced on the imports of every module (function-level ones too).

    metrics                     <- nothing of the project
    harness.core.paths / contract / schedules / machine / io, harness.methods.registry, harness.data
                                (shared, below the methods)
    harness.methods.model_api / dialogue_api                                            (the method contract)
    layers                      <- the above
    twrvae, baselines           <- the above; not each other (except TWR-CVAE -> CVAE)
    harness drivers             <- anything but the methods (they are found through the registry); no driver
                                   imports another stage's command-line module (one with `__main__`)
No import cycle among the project's modules, counting the registry's loading of the method packages.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO_ROOT

PACKAGES = ("harness", "metrics", "layers", "twrvae", "baselines")
SHARED = ("harness.core.paths", "harness.core.contract", "harness.core.schedules", "harness.core.machine", "harness.core.io",
          "harness.methods.registry", "harness.data")
CONTRACT = ("harness.methods.model_api", "harness.methods.dialogue_api")
ALLOWED = {  # module prefix -> prefixes it may import
    "metrics": ("metrics",),
    "harness.core.paths": (),
    "harness.core.contract": (),
    "harness.methods.registry": (),
    "harness.core.schedules": (),
    "harness.core.machine": (),
    "harness.core.io": ("harness.core.paths",),
    "harness.data": ("harness.data", "harness.core.io", "harness.core.paths"),
    "harness.methods.model_api": ("harness.core.contract", "metrics"),
    "harness.methods.dialogue_api": ("harness.methods.model_api", "harness.core.contract", "metrics"),
    "layers": ("layers", *SHARED, *CONTRACT, "metrics"),
    "twrvae": ("twrvae", "layers", *SHARED, *CONTRACT, "metrics"),
    "baselines": ("baselines", "layers", *SHARED, *CONTRACT, "metrics"),
    "harness": ("harness", "metrics", "layers"),  # the drivers
}
EXCEPTIONS = {("twrvae.dialogue", "baselines.cvae")}  # TWR-CVAE is the CVAE with Eq. 7's KL term


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in (REPO_ROOT / package).rglob("*.py")}


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.split(".")[0] in PACKAGES}


def resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module an import names (`from a.b import c` names a.b, or the package a.b.c)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def rule_for(module: str) -> tuple[str, ...]:
    key = max((prefix for prefix in ALLOWED if module == prefix or module.startswith(prefix + ".")), key=len)
    return ALLOWED[key]


def is_cli(path: Path) -> bool:
    return 'if __name__ == "__main__":' in path.read_text()


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    edges = {name: {resolve(imported, modules) for imported in imports_of(path)} - {None, name}
             for name, path in modules.items()}
    from harness.methods.lookup import PLUGIN_PACKAGES  # the lookup imports every module of these packages
    edges["harness.methods.lookup"] |= {name for name in modules if name.split(".")[0] in PLUGIN_PACKAGES}
    return edges


def test_every_import_goes_down_the_layers():
    modules = project_modules()
    wrong = []
    for name, path in modules.items():
        allowed = rule_for(name)
        for imported in imports_of(path):
            target = resolve(imported, modules) or imported
            if (name, target) in EXCEPTIONS:
                continue
            if not any(target == prefix or target.startswith(prefix + ".") for prefix in allowed):
                wrong.append(f"{name} imports {target}")
    assert not wrong, "imports against docs/architecture.md:\n" + "\n".join(sorted(wrong))


def stage_of(module: str) -> str:
    """harness.<stage> for the harness's modules (harness.train, harness.report, ...), else the top package."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "harness" else parts[0]


def test_no_stage_imports_another_stages_command_line_module():
    """A stage's command (a module with a __main__ guard, or a package's __main__) is called by the workflow, never
    imported by another stage; within a stage, the package's __main__ calls its driver."""
    modules = project_modules()
    wrong = [f"{name} imports the command-line module {target}"
             for name, path in modules.items() for target in (resolve(i, modules) for i in imports_of(path))
             if target and target != name and stage_of(target) != stage_of(name)
             and (is_cli(modules[target]) or target.endswith(".__main__"))]
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycle_at_run_time():
    edges = graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles = []

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("forbidden", ["harness.data imports harness.core.config", "layers imports twrvae"])
def test_the_check_can_fail(forbidden, monkeypatch):
    """A wrong import is caught: the rule table rejects the two examples."""
    importer, _, target = forbidden.partition(" imports ")
    assert not any(target == prefix or target.startswith(prefix + ".") for prefix in rule_for(importer + ".x"))
