"""Checks against the real offline mirror (``shared/data`` next to the repo root), when present."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.data.fetch import fetch_dataset, sha256_file
from harness.data.preprocess import preprocess_lm
from harness.data.registry import DATASETS

MIRROR = (Path(__file__).resolve().parents[3] / ".." / "shared" / "data").resolve()
pytestmark = pytest.mark.skipif(not MIRROR.is_dir(), reason=f"offline data mirror not found at {MIRROR}")

MIRRORED = [(ds.name, key) for ds in DATASETS.values() for key, f in ds.files.items() if (MIRROR / f.relpath).is_file()]


def test_mirror_has_the_expected_files() -> None:
    got = {f"{n}/{k}" for n, k in MIRRORED}
    for name in ("ptb/train", "ptb/valid", "ptb/test", "dailydialog/train", "dailydialog/valid", "dailydialog/test"):
        assert name in got


@pytest.mark.parametrize(("name", "key"), MIRRORED, ids=[f"{n}-{k}" for n, k in MIRRORED])
def test_mirror_file_matches_registry(name: str, key: str) -> None:
    f = DATASETS[name].files[key]
    path = MIRROR / f.relpath
    assert f.sha256 is not None, f"{name}/{key}: mirror has {f.relpath} but the registry has no checksum"
    assert path.stat().st_size == f.size
    assert sha256_file(path) == f.sha256


def test_sha256sums_covered_by_registry() -> None:
    """Every data file listed in the mirror's SHA256SUMS is registered with that checksum."""
    registered = {f.relpath: f.sha256 for ds in DATASETS.values() for f in ds.files.values()}
    for line in (MIRROR / "SHA256SUMS").read_text().splitlines():
        sha, rel = line.split()
        rel = rel.removeprefix("./")
        assert registered.get(rel) == sha, rel


def test_real_ptb(tmp_path: Path) -> None:
    fetch_dataset("ptb", tmp_path / "raw", MIRROR, allow_download=False)
    stats = preprocess_lm("ptb", tmp_path / "raw", tmp_path / "ptb")
    counts = [stats["splits"][s]["sentences"] for s in ("train", "valid", "test")]
    assert counts == [42_068, 3_370, 3_761]
    assert stats["train_types"] == 9_998  # 9,999 types in ptb.train.txt, one of them <unk>
    # 9,998 words + <pad> <unk> <s> </s>: every train type is kept (no cap for PTB).
    assert stats["vocab_size"] == 10_002
    assert stats["splits"]["valid"]["oov_rate"] == stats["splits"]["valid"]["source_unk_rate"]
