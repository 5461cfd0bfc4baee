"""Where the repository is: the one path every layer may need (code version, default data and config folders)."""
from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
