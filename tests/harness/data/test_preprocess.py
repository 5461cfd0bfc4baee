"""preprocess_lm on small slices of the real PTB and Yahoo files (tests/fixtures/)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.data.fetch import fetch_dataset
from harness.data.preprocess import main as preprocess_main
from harness.data.preprocess import preprocess_lm
from harness.data.registry import DataError
from harness.data.vocab import SPECIALS, Vocab

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def _raw(tmp_path: Path, fixture: str, dataset_dir: str) -> Path:
    raw = tmp_path / "raw"
    shutil.copytree(FIXTURES / fixture, raw / dataset_dir)
    return raw


def _lines(p: Path) -> list[str]:
    return p.read_text(encoding="utf-8").split("\n")[:-1]


def test_ptb_tiny(tmp_path: Path) -> None:
    raw, out = _raw(tmp_path, "ptb_tiny", "ptb"), tmp_path / "proc"
    stats = preprocess_lm("ptb", raw, out)
    assert sorted(p.name for p in out.iterdir()) == ["stats.json", "test.txt", "train.txt", "valid.txt", "vocab.txt"]
    assert {s: stats["splits"][s]["sentences"] for s in ("train", "valid", "test")} == {"train": 200, "valid": 50, "test": 50}
    train = _lines(out / "train.txt")
    src = _lines(FIXTURES / "ptb_tiny/ptb.train.txt")
    assert train[1] == src[1].strip() == "pierre <unk> N years old will join the board as a nonexecutive director nov. N"
    for line in train:
        assert line and line == " ".join(line.split())  # single spaces, no leading/trailing space
        assert "<s>" not in line.split() and "</s>" not in line.split()
    vocab = Vocab.load(out / "vocab.txt")
    types = {t for line in src for t in line.split()}
    assert len(vocab) == len(types - {"<unk>"}) + len(SPECIALS)
    assert stats["vocab_size"] == len(vocab)
    assert stats["splits"]["train"]["tokens"] == sum(len(line.split()) for line in src)
    assert stats["splits"]["train"]["oov_rate"] == stats["splits"]["train"]["source_unk_rate"] > 0
    assert stats["splits"]["valid"]["oov_rate"] > stats["splits"]["valid"]["source_unk_rate"]  # unseen words
    assert json.loads((out / "stats.json").read_text()) == stats
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # temp dir removed


def test_ptb_tiny_vocab_cap_and_manifest_check(tmp_path: Path) -> None:
    raw, out = _raw(tmp_path, "ptb_tiny", "ptb"), tmp_path / "proc"
    stats = preprocess_lm("ptb", raw, out, max_vocab=54)
    assert stats["vocab_size"] == 54 and stats["train_types_dropped_by_cap"] > 0
    # A fetch manifest in raw/ptb is cross-checked: an edited raw file is refused.
    (raw / "ptb" / "manifest.json").write_text(json.dumps({"files": {"train": {"sha256": "0" * 64, "verified": True}}}))
    with pytest.raises(DataError, match="differs from the fetch manifest"):
        preprocess_lm("ptb", raw, out)


def test_yahoo_tiny_reduced(tmp_path: Path) -> None:
    """The paper's Yahoo files (TWR-VAE's copies) are not offline: a "reduced" run trains on He et al.'s valid
    file; _UNK becomes <unk>."""
    raw, out = _raw(tmp_path, "yahoo_tiny", "yahoo"), tmp_path / "proc"
    with pytest.raises(DataError, match=r"yahoo/twr-vae/yahoo_.*does not exist"):
        preprocess_lm("yahoo", raw, out)
    with pytest.raises(DataError, match="has no file 'he2019-dev'"):
        preprocess_lm("yahoo", raw, out, splits={"train": "he2019-dev"})
    stats = preprocess_lm("yahoo", raw, out, splits={"train": "he2019-valid", "valid": "he2019-valid", "test": "he2019-test"})
    assert stats["reduced"] and stats["splits"]["train"]["source"] == "he2019-valid"
    assert stats["splits"]["train"]["sentences"] == 30
    text = (out / "train.txt").read_text(encoding="utf-8")
    assert "_UNK" not in text and "_unk" not in text and "<unk>" in text
    assert text == text.lower()
    assert (out / "train.txt").read_text() == (out / "valid.txt").read_text()
    assert "_UNK" not in Vocab.load(out / "vocab.txt").stoi


def test_bad_inputs_name_the_file(tmp_path: Path) -> None:
    raw, out = _raw(tmp_path, "ptb_tiny", "ptb"), tmp_path / "proc"
    (raw / "ptb/ptb.valid.txt").write_text("\n  \n")
    with pytest.raises(DataError, match=r"ptb\.valid\.txt.*empty"):
        preprocess_lm("ptb", raw, out)
    (raw / "ptb/ptb.valid.txt").write_bytes(b"caf\xe9 au lait\n")
    with pytest.raises(DataError, match=r"ptb\.valid\.txt.*UTF-8"):
        preprocess_lm("ptb", raw, out)
    assert not out.exists() or not (out / "stats.json").exists()


def test_empty_lines_counted(tmp_path: Path) -> None:
    raw, out = _raw(tmp_path, "ptb_tiny", "ptb"), tmp_path / "proc"
    (raw / "ptb/ptb.test.txt").write_text(" a b \n\n c \n   \n")
    stats = preprocess_lm("ptb", raw, out)
    assert stats["splits"]["test"]["sentences"] == 2 and stats["splits"]["test"]["empty_lines_dropped"] == 2
    assert _lines(out / "test.txt") == ["a b", "c"]


def test_cli_after_fetch(tmp_path: Path) -> None:
    """fetch (fixture dir as mirror) -> preprocess via the CLI entry point."""
    mirror = tmp_path / "mirror"
    shutil.copytree(FIXTURES / "ptb_tiny", mirror / "ptb")
    with pytest.raises(DataError):  # the fixtures are not the registered files
        fetch_dataset("ptb", tmp_path / "raw", mirror, allow_download=False)
    raw = _raw(tmp_path / "x", "ptb_tiny", "ptb")
    assert preprocess_main(["--dataset", "ptb", "--raw", str(raw), "--out", str(tmp_path / "p"),
                            "--split", "valid=test"]) == 0
    stats = json.loads((tmp_path / "p/stats.json").read_text())
    assert stats["splits"]["valid"]["source"] == "test" and stats["splits"]["valid"]["sentences"] == 50
    assert preprocess_main(["--dataset", "swda", "--raw", str(raw), "--out", str(tmp_path / "q")]) == 2
