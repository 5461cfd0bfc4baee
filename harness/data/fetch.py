"""Fetch registered dataset files from an offline mirror or their upstream URL, verified.

Details: docs/data.md, "Fetching (harness/data/fetch.py)".
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from harness.data.files import git_blob_sha1, manifest_path, sha256_file  # noqa: F401  (part of this module's API)
from harness.core.io import atomic_write, write_json_atomic
from harness.data.registry import (
    ChecksumError,
    DataError,
    DatasetSpec,
    FileSpec,
    MissingSourceError,
    get_spec,
)

__all__ = [
    "DataError", "ChecksumError", "MissingSourceError", "UnverifiedFileError",
    "fetch_dataset", "available_files", "sha256_file", "verify_file", "manifest_path",
]

DOWNLOAD_TIMEOUT_S = 60.0
_CHUNK = 1 << 20
_USER_AGENT = "textvae-harness/0.1 (+https://github.com/ruizheliUOA/TWR-VAE reproduction)"


class UnverifiedFileError(DataError):
    """The registry has no checksum for a file and the caller did not pass ``allow_unverified=True``."""


def verify_file(path: Path, spec: FileSpec, label: str) -> tuple[str, int]:
    """Check `path` against `spec` (size first, then sha256); return ``(sha256, size)``.

    `label` names the file in error messages. Unknown expected values (None) are not checked.
    """
    size = path.stat().st_size
    if spec.size is not None and size != spec.size:
        raise ChecksumError(
            f"{label}: truncated or wrong size: expected {spec.size} bytes, got {size} "
            f"(expected sha256 {spec.sha256})")
    digest = sha256_file(path)
    if spec.sha256 is not None and digest != spec.sha256:
        raise ChecksumError(f"{label}: sha256 mismatch: expected {spec.sha256}, got {digest}")
    if spec.git_blob_sha1 is not None and (blob := git_blob_sha1(path)) != spec.git_blob_sha1:
        raise ChecksumError(f"{label}: git blob sha1 mismatch: expected {spec.git_blob_sha1}, got {blob}")
    return digest, size


def available_files(name: str, mirror: Path | None) -> dict[str, bool]:
    """Which logical files of dataset `name` the mirror has (all False when `mirror` is None)."""
    spec = get_spec(name)
    return {key: mirror is not None and (Path(mirror) / f.relpath).is_file() for key, f in spec.files.items()}


def unavailable_reason(name: str, needed: list[str], mirror: Path | None, allow_download: bool,
                       allow_unverified: bool) -> str | None:
    """Why dataset `name` cannot provide the logical files `needed` under these settings, or None if it can.

    Decided before any job runs, so the workflow can skip a dataset with a clear message instead of failing
    halfway. A file is obtainable from the mirror, or by download when downloads are allowed and its checksum is
    registered (or unverified downloads are allowed). Whether the network actually answers is only known at
    fetch time.
    """
    spec = get_spec(name)
    in_mirror = available_files(name, mirror)
    problems = []
    for key in needed:
        if key not in spec.files:
            problems.append(f"'{key}' is not a file of {name} (registered: {sorted(spec.files)})")
            continue
        if in_mirror[key]:
            continue
        file = spec.files[key]
        where = f"not in the mirror {mirror}" if mirror else "no mirror configured"
        if not allow_download:
            problems.append(f"{file.relpath}: {where} and downloads are off (allow_download: false)")
        elif file.url is None:
            problems.append(f"{file.relpath}: {where} and no upstream URL is known")
        elif not file.checksum_known and not allow_unverified:
            problems.append(f"{file.relpath}: {where}, and its download has no registered checksum (sha256 or git blob sha1) "
                            f"(allow_unverified_downloads: true accepts it, recorded as unverified)")
    return "; ".join(problems) or None


# ---------------------------------------------------------------------------------------------
# low-level helpers

def _temp_beside(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; fetched data files are ordinary readable files
    return Path(tmp)


def _download(url: str, out: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Stream `url` into `out` with a progress bar; raise `DataError` on HTTP/network errors,
    an HTML page where a data file was expected, or fewer bytes than Content-Length."""
    from tqdm import tqdm

    req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp, open(out, "wb") as f:
            total = resp.headers.get("Content-Length")
            total_n = int(total) if total and total.isdigit() else None
            ctype = resp.headers.get("Content-Type", "")
            if "text/html" in ctype and not url.endswith((".html", ".htm")):
                raise DataError(f"{url} returned an HTML page instead of data (login/confirmation page?); "
                                f"download it by hand and put it in the mirror")
            got = 0
            with tqdm(total=total_n, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1][:40],
                      disable=None, leave=False) as bar:
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    f.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
            if total_n is not None and got != total_n:
                raise DataError(f"{url}: download truncated: expected {total_n} bytes, got {got}")
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise DataError(f"download of {url} failed: {e}") from e


def _extract(archive: Path, member: str, out: Path) -> None:
    """Copy `member` (a path inside the zip/tar `archive`) into the file `out`."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            try:
                src = z.open(member)
            except KeyError:
                raise DataError(f"{archive}: no member {member!r} (has e.g. {z.namelist()[:8]})") from None
            with src, open(out, "wb") as f:
                shutil.copyfileobj(src, f, _CHUNK)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive, "r:*") as t:
            try:
                src = t.extractfile(member)
            except KeyError:
                src = None
            if src is None:
                raise DataError(f"{archive}: no regular-file member {member!r} (has e.g. {t.getnames()[:8]})")
            with src, open(out, "wb") as f:
                shutil.copyfileobj(src, f, _CHUNK)
    else:
        raise DataError(f"{archive} is neither a zip nor a tar archive")


def _extract_chain(archive: Path, chain: str, out: Path) -> None:
    """Follow a ``!``-separated member path through nested archives, writing the last member to `out`."""
    parts = chain.split("!")
    current = archive
    intermediates: list[Path] = []
    try:
        for i, member in enumerate(parts):
            target = out if i == len(parts) - 1 else _temp_beside(out)
            if target is not out:
                intermediates.append(target)
            _extract(current, member, target)
            current = target
    finally:
        for p in intermediates:
            p.unlink(missing_ok=True)


def _cached_archive(url: str, dest: Path) -> Path:
    """Download an archive once into ``dest/.downloads/`` (atomically) and return its path."""
    key = hashlib.sha1(url.encode()).hexdigest()[:12]
    path = dest / ".downloads" / f"{key}-{url.rsplit('/', 1)[-1].split('?')[0] or 'archive'}"
    if path.is_file():
        return path
    atomic_write(path, lambda tmp: _download(url, tmp))
    return path


def _load_manifest(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


# ---------------------------------------------------------------------------------------------

def _fetch_one(ds: DatasetSpec, key: str, spec: FileSpec, dest: Path, mirror: Path | None,
               allow_download: bool, allow_unverified: bool, previous: dict[str, Any]) -> dict[str, Any]:
    target = dest / spec.relpath
    label = f"{ds.name}/{key} ({target})"

    # 1. an existing destination file: re-verify, keep if good.
    if target.is_file():
        prev_sha = previous.get("sha256")
        try:
            if not spec.checksum_known and not allow_unverified:
                raise UnverifiedFileError(_unverified_msg(ds, key, spec))
            digest, size = verify_file(target, spec, label)
            if not spec.checksum_known and prev_sha not in (None, digest):
                raise ChecksumError(f"{label}: sha256 changed since the last fetch: {prev_sha} -> {digest}")
            return {"relpath": spec.relpath, "source": previous.get("source", f"existing:{target}"),
                    "sha256": digest, "size": size, "verified": spec.checksum_known}
        except ChecksumError as e:
            print(f"[fetch] {e}; deleting it and fetching again", file=sys.stderr)
            target.unlink()

    # 2. pick a source.
    mirror_file = Path(mirror) / spec.relpath if mirror is not None else None
    if mirror_file is not None and mirror_file.is_file():
        source = str(mirror_file.resolve())
    elif spec.url and allow_download:
        source = spec.url
    else:
        why = "downloads disabled" if spec.url else "no url registered"
        raise MissingSourceError(_missing_msg(ds, key, spec, mirror_file, why))
    if not spec.checksum_known and not allow_unverified:
        raise UnverifiedFileError(_unverified_msg(ds, key, spec))

    # 3. copy/download to a temp file beside the target, verify, rename into place.
    verified = {}

    def fetch_and_verify(tmp: Path) -> None:
        if source == spec.url:
            try:
                if spec.archive_member:
                    _extract_chain(_cached_archive(spec.url, dest), spec.archive_member, tmp)
                else:
                    _download(spec.url, tmp)
            except DataError as e:
                raise MissingSourceError(_missing_msg(ds, key, spec, mirror_file, str(e))) from e
        else:
            shutil.copyfile(mirror_file, tmp)  # type: ignore[arg-type]
        verified["digest"], verified["size"] = verify_file(tmp, spec, f"{label} from {source}")

    atomic_write(target, fetch_and_verify)
    digest, size = verified["digest"], verified["size"]
    if spec.archive_member and source == spec.url:
        source = f"{source}!{spec.archive_member}"
    return {"relpath": spec.relpath, "source": source, "sha256": digest, "size": size,
            "verified": spec.checksum_known}


def _missing_msg(ds: DatasetSpec, key: str, spec: FileSpec, mirror_file: Path | None, why: str) -> str:
    tried = str(mirror_file) if mirror_file is not None else "no mirror given"
    member = f" (archive member {spec.archive_member})" if spec.archive_member else ""
    return (f"dataset {ds.name!r}, file {key!r} ({spec.relpath}): not in the mirror (tried {tried}) and not "
            f"downloadable ({why}); url: {spec.url or 'none registered'}{member}")


def _unverified_msg(ds: DatasetSpec, key: str, spec: FileSpec) -> str:
    return (f"dataset {ds.name!r}, file {key!r} ({spec.relpath}): no registered checksum (sha256 or git blob sha1), so it cannot be "
            f"verified; pass allow_unverified=True (CLI: --allow-unverified) to accept it and record its "
            f"sha256 as unverified")


def fetch_dataset(name: str, dest: Path, mirror: Path | None, allow_download: bool = True,
                  allow_unverified: bool = False, only: list[str] | None = None) -> dict[str, Any]:
    """Fetch (and verify) the files of dataset `name` into `dest`; return the manifest.

    only: logical file names to fetch (default: every registered file). Manifest entries of files
    fetched by an earlier call and not requested now are kept if the file is still there.
    Raises `ChecksumError`, `MissingSourceError`, `UnverifiedFileError` (all `DataError`).
    """
    ds = get_spec(name)
    dest = Path(dest)
    keys = list(ds.files) if only is None else list(only)
    unknown = [k for k in keys if k not in ds.files]
    if unknown:
        raise DataError(f"dataset {name!r} has no file(s) {unknown}; registered: {sorted(ds.files)}")
    mpath = manifest_path(name, dest)
    old = _load_manifest(mpath).get("files", {})

    entries: dict[str, Any] = {}
    for key in keys:
        entries[key] = _fetch_one(ds, key, ds.files[key], dest, mirror, allow_download, allow_unverified,
                                  old.get(key, {}))
    for key, entry in old.items():
        if key not in entries and key in ds.files and (dest / ds.files[key].relpath).is_file():
            entries[key] = entry
    manifest = {
        "dataset": name,
        "files": dict(sorted(entries.items())),
        "all_verified": all(e["verified"] for e in entries.values()),
        "complete": set(entries) == set(ds.files),
    }
    write_json_atomic(mpath, manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Fetch and verify a registered dataset.")
    p.add_argument("--dataset", required=True)
    p.add_argument("--dest", type=Path, required=True)
    p.add_argument("--mirror", type=Path, default=None, help="offline mirror root (e.g. ../shared/data)")
    p.add_argument("--no-download", action="store_true", help="never use the network")
    p.add_argument("--allow-unverified", action="store_true", help="accept files with no registered checksum")
    p.add_argument("--only", nargs="+", default=None, help="logical file names (train valid test vocab ...)")
    p.add_argument("--list-available", action="store_true", help="print which files the mirror has and exit")
    a = p.parse_args(argv)
    try:
        if a.list_available:
            print(json.dumps(available_files(a.dataset, a.mirror), indent=2))
            return 0
        m = fetch_dataset(a.dataset, a.dest, a.mirror, allow_download=not a.no_download,
                          allow_unverified=a.allow_unverified, only=a.only)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{a.dataset}: {len(m['files'])} file(s) ok -> {manifest_path(a.dataset, a.dest)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
