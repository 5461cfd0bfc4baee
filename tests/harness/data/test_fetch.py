"""fetch_dataset on a tiny fake mirror / file:// "network" (no real network needed)."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from harness.data import registry
from harness.data.fetch import (
    ChecksumError,
    DataError,
    MissingSourceError,
    UnverifiedFileError,
    available_files,
    fetch_dataset,
    manifest_path,
)
from harness.data.registry import DatasetSpec, FileSpec

TRAIN = b"the cat sat\nthe dog ran\n"
TEST = b"a bird flew\n"


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _register(monkeypatch: pytest.MonkeyPatch, files: dict[str, FileSpec], name: str = "tiny") -> None:
    spec = DatasetSpec(name=name, kind="lm", files=files, description="tiny test corpus", citation="none",
                       max_vocab=None)
    monkeypatch.setitem(registry.DATASETS, name, spec)


def _tiny_files(url: str | None = None) -> dict[str, FileSpec]:
    return {
        "train": FileSpec("tiny/train.txt", url, _sha(TRAIN), len(TRAIN)),
        "test": FileSpec("tiny/test.txt", url, _sha(TEST), len(TEST)),
    }


def _mirror(root: Path, train: bytes = TRAIN, test: bytes = TEST) -> Path:
    (root / "tiny").mkdir(parents=True)
    (root / "tiny" / "train.txt").write_bytes(train)
    (root / "tiny" / "test.txt").write_bytes(test)
    return root


def _dest_files(dest: Path) -> list[str]:
    return sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())


def test_good_copy_writes_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, _tiny_files())
    mirror, dest = _mirror(tmp_path / "mirror"), tmp_path / "raw"
    m = fetch_dataset("tiny", dest, mirror, allow_download=False)
    assert (dest / "tiny/train.txt").read_bytes() == TRAIN
    on_disk = json.loads(manifest_path("tiny", dest).read_text())
    assert on_disk == m
    assert m["files"]["train"] == {"relpath": "tiny/train.txt", "source": str((mirror / "tiny/train.txt").resolve()),
                                   "sha256": _sha(TRAIN), "size": len(TRAIN), "verified": True}
    assert m["all_verified"] and m["complete"]
    assert _dest_files(dest) == ["tiny/manifest.json", "tiny/test.txt", "tiny/train.txt"]  # no temp files


def test_existing_verified_file_is_not_recopied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, _tiny_files())
    mirror, dest = _mirror(tmp_path / "mirror"), tmp_path / "raw"
    fetch_dataset("tiny", dest, mirror, allow_download=False)
    mtime = (dest / "tiny/train.txt").stat().st_mtime_ns
    (mirror / "tiny/train.txt").unlink()  # would fail if it tried to copy again
    m = fetch_dataset("tiny", dest, mirror, allow_download=False)
    assert (dest / "tiny/train.txt").stat().st_mtime_ns == mtime
    assert m["files"]["train"]["verified"]


def test_corrupted_existing_file_is_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, _tiny_files())
    mirror, dest = _mirror(tmp_path / "mirror"), tmp_path / "raw"
    fetch_dataset("tiny", dest, mirror, allow_download=False)
    (dest / "tiny/train.txt").write_bytes(TRAIN.replace(b"cat", b"bat"))
    fetch_dataset("tiny", dest, mirror, allow_download=False)
    assert (dest / "tiny/train.txt").read_bytes() == TRAIN


def test_corrupted_byte_raises_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, _tiny_files())
    bad = bytearray(TRAIN)
    bad[4] ^= 0x01  # same size, one flipped bit
    mirror, dest = _mirror(tmp_path / "mirror", train=bytes(bad)), tmp_path / "raw"
    with pytest.raises(ChecksumError) as ei:
        fetch_dataset("tiny", dest, mirror, allow_download=False)
    msg = str(ei.value)
    assert "tiny/train.txt" in msg and _sha(TRAIN) in msg and _sha(bytes(bad)) in msg
    assert not (dest / "tiny/train.txt").exists()
    assert not manifest_path("tiny", dest).exists()
    assert _dest_files(dest) == []  # no temp file left either


def test_truncated_file_mentions_truncated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, _tiny_files())
    mirror, dest = _mirror(tmp_path / "mirror", test=TEST[:-3]), tmp_path / "raw"
    with pytest.raises(ChecksumError, match=rf"truncated or wrong size: expected {len(TEST)} bytes, got {len(TEST) - 3}"):
        fetch_dataset("tiny", dest, mirror, allow_download=False)
    assert not (dest / "tiny/test.txt").exists()
    assert not manifest_path("tiny", dest).exists()


def test_missing_source_without_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, _tiny_files(url="https://example.invalid/train.txt"))
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with pytest.raises(MissingSourceError) as ei:
        fetch_dataset("tiny", tmp_path / "raw", mirror, allow_download=False)
    msg = str(ei.value)
    assert "'tiny'" in msg and "'train'" in msg
    assert str(mirror / "tiny/train.txt") in msg and "https://example.invalid/train.txt" in msg
    assert not manifest_path("tiny", tmp_path / "raw").exists()


def test_unknown_checksum_needs_allow_unverified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _tiny_files()
    files["train"] = FileSpec("tiny/train.txt", None, None, None)
    _register(monkeypatch, files)
    mirror, dest = _mirror(tmp_path / "mirror"), tmp_path / "raw"
    with pytest.raises(UnverifiedFileError, match="allow_unverified"):
        fetch_dataset("tiny", dest, mirror, allow_download=False)
    assert not (dest / "tiny/train.txt").exists() and not manifest_path("tiny", dest).exists()
    m = fetch_dataset("tiny", dest, mirror, allow_download=False, allow_unverified=True)
    assert m["files"]["train"]["verified"] is False and m["files"]["train"]["sha256"] == _sha(TRAIN)
    assert m["files"]["test"]["verified"] is True and not m["all_verified"]
    with pytest.raises(UnverifiedFileError):  # an existing unverifiable file is not silently trusted either
        fetch_dataset("tiny", dest, mirror, allow_download=False)


def test_only_and_available_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, _tiny_files())
    mirror = tmp_path / "mirror"
    (mirror / "tiny").mkdir(parents=True)
    (mirror / "tiny" / "test.txt").write_bytes(TEST)
    assert available_files("tiny", mirror) == {"train": False, "test": True}
    assert available_files("tiny", None) == {"train": False, "test": False}
    m = fetch_dataset("tiny", tmp_path / "raw", mirror, allow_download=False, only=["test"])
    assert list(m["files"]) == ["test"] and not m["complete"]
    with pytest.raises(DataError, match="no file"):
        fetch_dataset("tiny", tmp_path / "raw", mirror, only=["nope"])
    with pytest.raises(DataError, match="unknown dataset"):
        fetch_dataset("no-such-dataset", tmp_path / "raw", mirror)


def test_download_nested_zip_member(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The DailyDialog layout: an outer zip holding per-split zips (file:// stands in for http)."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("train/dialogues_train.txt", TRAIN)
    outer = tmp_path / "net" / "corpus.zip"
    outer.parent.mkdir()
    with zipfile.ZipFile(outer, "w") as z:
        z.writestr("corpus/train.zip", inner.getvalue())
        z.writestr("corpus/readme.txt", TEST)
    url = outer.as_uri()
    _register(monkeypatch, {
        "train": FileSpec("tiny/train.txt", url, _sha(TRAIN), len(TRAIN), "corpus/train.zip!train/dialogues_train.txt"),
        "readme": FileSpec("tiny/readme.txt", url, _sha(TEST), len(TEST), "corpus/readme.txt"),
    })
    dest = tmp_path / "raw"
    m = fetch_dataset("tiny", dest, mirror=None)
    assert (dest / "tiny/train.txt").read_bytes() == TRAIN
    assert m["files"]["train"]["source"] == url + "!corpus/train.zip!train/dialogues_train.txt"
    assert not list((dest / "tiny").glob(".*.part"))


def test_download_tar_member_and_plain_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    net = tmp_path / "net"
    net.mkdir()
    tgz = net / "data.tar.gz"
    with tarfile.open(tgz, "w:gz") as t:
        info = tarfile.TarInfo("tiny_data/train.txt")
        info.size = len(TRAIN)
        t.addfile(info, io.BytesIO(TRAIN))
    (net / "test.txt").write_bytes(TEST)
    _register(monkeypatch, {
        "train": FileSpec("tiny/train.txt", tgz.as_uri(), _sha(TRAIN), len(TRAIN), "tiny_data/train.txt"),
        "test": FileSpec("tiny/test.txt", (net / "test.txt").as_uri(), _sha(TEST), len(TEST)),
    })
    m = fetch_dataset("tiny", tmp_path / "raw", mirror=tmp_path / "empty-mirror")
    assert m["all_verified"] and (tmp_path / "raw/tiny/test.txt").read_bytes() == TEST


def test_bad_download_raises_checksum_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    net = tmp_path / "net"
    net.mkdir()
    (net / "train.txt").write_bytes(TRAIN.upper())
    _register(monkeypatch, {"train": FileSpec("tiny/train.txt", (net / "train.txt").as_uri(), _sha(TRAIN), len(TRAIN))})
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        fetch_dataset("tiny", tmp_path / "raw", mirror=None)
    assert _dest_files(tmp_path / "raw") == []


def test_registry_shape() -> None:
    assert set(registry.DATASETS) == {"ptb", "yahoo", "yelp15", "swda", "dailydialog"}
    for ds in registry.DATASETS.values():
        for key, f in ds.files.items():
            assert f.sha256 is None or f.size is not None, (ds.name, key)
            assert f.size is None or f.checksum_known, (ds.name, key)
            assert f.sha256 is None or len(f.sha256) == 64
    assert registry.DATASETS["ptb"].files["train"].relpath == "ptb/ptb.train.txt"
    assert registry.DATASETS["dailydialog"].files["valid"].relpath == "dailydialog/validation/dialogues_validation.txt"


def test_unavailable_reason_explains_what_is_missing(tmp_path):
    from harness.data.fetch import unavailable_reason

    assert "downloads are off" in unavailable_reason("yahoo", ["train"], tmp_path, False, False)
    assert "no registered checksum" in unavailable_reason("yahoo", ["he2019-train"], tmp_path, True, False)
    assert unavailable_reason("yahoo", ["he2019-train"], tmp_path, True, True) is None
    assert unavailable_reason("ptb", ["train", "valid", "test"], None, True, False) is None  # checksums known
    assert "not a file of ptb" in unavailable_reason("ptb", ["vocab"], None, True, False)


def test_a_git_blob_sha1_verifies_a_file_without_a_sha256(tmp_path):
    """Files of the original TWR-VAE repository are verified by their git blob hash (what `git hash-object`
    prints), so their download needs no allow_unverified; a wrong file fails naming both hashes."""
    import subprocess

    from harness.data.fetch import ChecksumError, verify_file
    from harness.data.files import git_blob_sha1
    from harness.data.registry import FileSpec

    path = tmp_path / "train.jsonl"
    path.write_bytes(b'{"utts": []}\n')
    expected = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True).stdout.strip()
    assert git_blob_sha1(path) == expected
    spec = FileSpec("swda/json_data/train.jsonl", "https://example.org/train.jsonl", None, None, git_blob_sha1=expected)
    assert spec.checksum_known
    verify_file(path, spec, "swda/train")
    path.write_bytes(b'{"utts": [1]}\n')
    with pytest.raises(ChecksumError, match=f"git blob sha1 mismatch: expected {expected}"):
        verify_file(path, spec, "swda/train")


def test_the_paper_experiment_downloads_only_verified_files():
    """config/paper.yaml needs no allow_unverified_downloads: every file its datasets read has a sha256 or the git
    blob hash of the original TWR-VAE repository (Yahoo and Yelp15 are that repository's copies, as the paper's
    scripts read them)."""
    from harness.core.config import ExperimentConfig
    from harness.data.fetch import unavailable_reason

    paper = ExperimentConfig.from_file(Path(__file__).resolve().parents[3] / "config" / "paper.yaml")
    assert not paper.raw["allow_unverified_downloads"]
    datasets = {run.dataset: run for run in paper.runs()}
    assert set(datasets) == set(paper.raw["datasets"])
    for dataset, run in datasets.items():
        assert unavailable_reason(dataset, sorted(set(run.data.source_splits.values())), None, True, False) is None
    for name in ("yahoo", "yelp15"):
        files = registry.DATASETS[name].files
        assert all(files[split].url.startswith(registry._TWR) and files[split].git_blob_sha1
                   for split in ("train", "valid", "test"))
