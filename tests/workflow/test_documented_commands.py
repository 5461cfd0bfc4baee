"""Every `snakemake` command the README, the docs, the shipped configs and profiles show is dry-run exactly as
written (from the repository root, with `-n` added), so a user never copies a command that fails."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

SOURCES = ["README.md", *sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "docs").glob("*.md")),
           *sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "config").glob("*.yaml")),
           *sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "profiles").glob("*/config.yaml"))]
# placeholders a reader replaces, and commands that need a finished run: not dry-runnable as written
NOT_RUNNABLE = {"your.yaml": "a placeholder for the reader's config", "--report": "reports on finished results",
                "--lint": "a check, not a run",
                "my_methods/": "written by `python -m harness.methods.new_method` (test_workflow.py runs that path: "
                               "test_a_method_added_through_a_plugin_runs_through_the_dag)"}


def documented_commands() -> list[tuple[str, str]]:
    """(source, command) for every snakemake invocation shown: in code blocks, `inline code` and YAML comments."""
    found = []
    for source in SOURCES:
        for line in (REPO_ROOT / source).read_text().splitlines():
            candidates = re.findall(r"`([^`]*snakemake [^`]*)`", line)
            if not candidates and "snakemake " in line:  # a code-block or comment line; a set-up line's last step
                candidates = [part for piece in line.lstrip(" #").split("&&") for part in piece.split("  or  ")]
            for text in candidates:
                text = text.strip().split("  ")[0]  # prose after two spaces
                text = re.sub(r"\s*\[--[^\]]*\]", "", text)  # optional flags in brackets
                if re.match(r"^(\.venv/bin/)?snakemake ", text):
                    found.append((source, text))
    return sorted(set(found))


COMMANDS = documented_commands()
# each distinct command is run once (`.venv/bin/snakemake` and `snakemake` are the same program), with its sources
UNIQUE = sorted({command.removeprefix(".venv/bin/"): ", ".join(sorted({s for s, c in COMMANDS
                                                                       if c.removeprefix(".venv/bin/") == command.removeprefix(".venv/bin/")}))
                 for _, command in COMMANDS}.items())


def test_the_documented_commands_are_found():
    """The scan sees the commands the README leads with (a scan that found nothing would pass every test below)."""
    texts = {command for _, command in COMMANDS}
    assert ".venv/bin/snakemake --cores 2" in texts and ".venv/bin/snakemake --cores 8 --profile slurm" in texts
    assert len(COMMANDS) >= 8


@pytest.mark.parametrize("command, source", UNIQUE, ids=[command for command, _ in UNIQUE])
def test_a_documented_command_dry_runs_as_written(command, source):
    reason = next((why for marker, why in NOT_RUNNABLE.items() if marker in command), None)
    if reason:
        pytest.skip(f"{command!r} ({source}): {reason}")
    if "--profile slurm" in command:
        pytest.importorskip("snakemake_executor_plugin_slurm", reason="snakemake-executor-plugin-slurm not installed")
    arguments = shlex.split(command)[1:]
    result = subprocess.run([sys.executable, "-m", "snakemake", *arguments, "-n"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=600)
    out = result.stdout + result.stderr
    assert result.returncode == 0, f"{command} ({source}) failed:\n{out[-3000:]}"
    assert "Job stats" in out or "Nothing to be done" in out, out[-2000:]


# --------------------------------------------------------------------------------------------- python -m commands
# A `python -m MODULE ...` command is checked without running it (most are long measurements): the module's
# argument parser, asked for --help with the command's subcommand, must list every --flag the command uses.
NOT_PARSED = {"pytest": "the test runner itself"}


def documented_python_commands() -> list[tuple[str, str, tuple[str, ...], tuple[str, ...]]]:
    """(source, module, words before the first flag, flags) of every `python -m` command shown."""
    found = set()
    for source in SOURCES:
        for line in (REPO_ROOT / source).read_text().splitlines():
            for module, rest in re.findall(r"python -m ([A-Za-z_][\w.]*)((?: +[^\s`|;#)]+)*)", line):
                words = rest.split()
                first_flag = next((i for i, word in enumerate(words) if word.startswith("--")), len(words))
                flags = tuple(sorted({word.split("=")[0] for word in words if word.startswith("--")}))
                found.add((source, module, tuple(words[:first_flag]), flags))
    return sorted(found)


PYTHON_COMMANDS = documented_python_commands()


def _help_text(module: str, words: tuple[str, ...]) -> str:
    """--help of the module, or of its subcommand when the first word names one."""
    for prefix in (words[:1], ()):
        result = subprocess.run([sys.executable, "-m", module, *prefix, "--help"], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=120)
        if result.returncode == 0:
            return result.stdout
    raise AssertionError(f"python -m {module} --help failed:\n{result.stderr[-2000:]}")


def test_the_documented_python_commands_are_found():
    modules = {module for _, module, _, _ in PYTHON_COMMANDS}
    assert {"harness.data.fetch", "harness.train", "benchmarks", "reproduction.cpu_reference"} <= modules


@pytest.mark.parametrize("module", sorted({m for _, m, _, _ in PYTHON_COMMANDS} - set(NOT_PARSED)))
def test_a_documented_python_command_uses_only_flags_its_module_accepts(module):
    helps: dict[tuple[str, ...], str] = {}
    for source, _, words, flags in (c for c in PYTHON_COMMANDS if c[1] == module):
        text = helps.setdefault(words[:1], _help_text(module, words))
        unknown = [flag for flag in flags if not re.search(rf"(^|[\s,\[]){re.escape(flag)}\b", text)]
        assert not unknown, f"{source}: `python -m {module} {' '.join(words)} ...` uses {unknown}, not in its --help"
