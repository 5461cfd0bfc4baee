"""What the machine is: the CPU's model name and instruction-set flags, for messages and benchmark records."""
from __future__ import annotations

import platform
from pathlib import Path


def cpuinfo() -> str | None:
    """/proc/cpuinfo, or None where it cannot be read (not Linux)."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return None


def cpu_model(info: str | None) -> str:
    """The CPU's model name (platform.processor() is often just the architecture)."""
    lines = (info or "").splitlines()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                platform.processor() or platform.machine())


def native_bf16(info: str | None) -> bool | None:
    """Whether this CPU multiplies bf16 natively (AMX or AVX512-BF16); None where /proc/cpuinfo is unreadable."""
    return None if info is None else ("amx_bf16" in info or "avx512_bf16" in info)
