"""Small I/O helpers: atomic writes, provenance (code version, library versions), device choice."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from harness.core.paths import REPO_ROOT


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp_path)` on a temp file beside `path`, then rename it into place.

    An interrupted job leaves at most a `.tmp` file, never a partial `path` that a later step would trust.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; results and data are ordinary readable files
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """The records of a JSON-lines file; a bad line raises ValueError naming the file and line."""
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{line_number}: not valid JSON ({exc})") from exc


def read_json(path: str | Path) -> Any:
    """A JSON file's content; a file that is not valid JSON raises ValueError naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


def write_json_atomic(path: str | Path, payload: Any) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def write_text_atomic(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def save_torch_atomic(path: str | Path, payload: Any) -> None:
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def code_version(root: Path = REPO_ROOT) -> str:
    """The commit of the code that produced a result, '+dirty' when tracked files differ from it (edited, staged,
    deleted). Files under results/ do not count: a rewritten result (e.g. a benchmark's committed latest.json)
    changes no code.

    Untracked files do not count either (a plugin folder, notes, scratch scripts would otherwise mark every run
    dirty): committed code reaches an untracked module only by importing it, and the modules a run's method is
    built from are hashed in its `method_sources` (harness.core.provenance: the method's class and bases and what they
    import of layers/, twrvae/, baselines/, metrics/ and the plugin's own package -- a plugin method's files
    included), which train_log.json and metrics.json record beside this version. Not covered: an untracked module
    of twrvae/ or baselines/ that the run's method does not import (harness.methods.lookup imports every module there;
    registering a taken name is refused) and modules outside those packages that a plugin imports."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)results"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def environment_info() -> dict:
    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),  # a plain str: model.pt is read with weights_only=True
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def resolve_device(choice: str) -> torch.device:
    """The torch device of config `device` (cpu, cuda, auto); on a GPU, set it up to compute as the CPU does."""
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"config asks for device '{choice}' but no CUDA device is available")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(choice)
    if device.type == "cuda":
        exact_cuda()
    return device


def exact_cuda() -> None:
    """float32 means float32 on a GPU too, and a seed means the same weights.

    TF32 (on by default for cuDNN's RNNs) rounds operands to 10 mantissa bits, which moves an NLL by ~1e-3; the
    fast reduced-precision option is `precision: bfloat16`. cuBLAS is deterministic only with a fixed workspace
    (NVIDIA's documented `CUBLAS_WORKSPACE_CONFIG`), read when its first handle is made, so set it before any
    matmul; an explicit setting in the environment wins.
    """
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)


def progress_interval() -> float:
    """Seconds between progress-bar refreshes: live on a terminal, sparse in log files."""
    return 0.1 if sys.stderr.isatty() else 15.0
