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
                "--lint": "a check, not a run"}


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
