"""Which released file each output split is built from, and the arguments every preprocessing run shares."""
from __future__ import annotations

import argparse
from pathlib import Path

from harness.data.registry import DataError, DatasetSpec

OUTPUT_SPLITS: tuple[str, ...] = ("train", "valid", "test")


def resolve_splits(ds: DatasetSpec, splits: dict[str, str] | None) -> dict[str, str]:
    mapping = {s: s for s in OUTPUT_SPLITS}
    for out, src in (splits or {}).items():
        if out not in OUTPUT_SPLITS:
            raise DataError(f"unknown output split {out!r}; expected one of {OUTPUT_SPLITS}")
        mapping[out] = src
    for out, src in mapping.items():
        if src not in ds.files:
            raise DataError(f"dataset {ds.name!r} has no file {src!r} (for output split {out!r}); "
                            f"registered: {sorted(ds.files)}")
    return mapping


RELEASES = {"he2019": "He et al. (2019)"}  # prefixes of logical file names that come from another release


def describe_source(key: str) -> str:
    """How a caption or Table 1 names a source file: 'the released valid file', or for another release's file
    (logical names like ``he2019-valid``, harness.data.registry) 'He et al. (2019)'s valid file'."""
    release, _, split = key.rpartition("-")
    return f"{RELEASES[release]}'s {split} file" if release in RELEASES else f"the released {key} file"


def _parse_split(s: str) -> tuple[str, str]:
    if "=" not in s:
        raise argparse.ArgumentTypeError(f"expected OUT=SRC (e.g. train=valid), got {s!r}")
    out, src = s.split("=", 1)
    return out, src


def add_source_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments every preprocessing CLI shares (language modelling and dialogue): where the fetched files
    are, where the output goes, the vocabulary cap and substitute source splits."""
    p.add_argument("--raw", type=Path, required=True, help="fetch destination (e.g. data/raw)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--max-vocab", type=int, default=None,
                   help="vocab cap incl. specials (default: registry value; 0 = no cap)")
    p.add_argument("--split", type=_parse_split, action="append", default=[], metavar="OUT=SRC",
                   help="use source file SRC for output split OUT (repeatable), e.g. train=valid")
