"""Checksums and manifests of fetched files: shared by fetching and preprocessing."""
from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20  # bytes read at a time


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def git_blob_sha1(path: Path) -> str:
    """The file's git blob hash, sha1(b"blob <size>\\0" + bytes): what `git hash-object` prints."""
    h = hashlib.sha1(b"blob %d\0" % Path(path).stat().st_size)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest_path(name: str, dest: Path) -> Path:
    """Where `fetch_dataset` writes the manifest of dataset `name`."""
    return Path(dest) / name / "manifest.json"
