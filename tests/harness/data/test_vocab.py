"""Vocab: special ids, frequency/alphabetical order, cap, save/load round trip, load errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.data.registry import DataError
from harness.data.vocab import BOS, BOS_ID, EOS, EOS_ID, PAD, PAD_ID, UNK, UNK_ID, Vocab


def test_specials_and_order() -> None:
    v = Vocab.build([["b", "a", "c", "b"], ["c", "d", "<unk>"]], max_size=None)
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    assert v.itos[:4] == [PAD, UNK, BOS, EOS]
    assert v.itos[4:] == ["b", "c", "a", "d"]  # count 2 first (alphabetical), then count 1 (alphabetical)
    assert len(v) == 8  # the corpus' own <unk> is not added twice


def test_max_size_counts_specials_and_min_count() -> None:
    sents = [["x"] * 3 + ["y"] * 2 + ["z"]]
    assert Vocab.build(sents, max_size=6).itos[4:] == ["x", "y"]
    assert len(Vocab.build(sents, max_size=4)) == 4
    assert Vocab.build(sents, max_size=None, min_count=2).itos[4:] == ["x", "y"]
    with pytest.raises(ValueError):
        Vocab.build(sents, max_size=3)


def test_encode_decode_oov() -> None:
    v = Vocab.build([["hello", "world"]], max_size=None)
    ids = v.encode(["hello", "there", "world"])
    assert ids == [v.stoi["hello"], UNK_ID, v.stoi["world"]]
    assert v.decode(ids) == ["hello", UNK, "world"]


def test_save_load_roundtrip(tmp_path: Path) -> None:
    v = Vocab.build([["é", "ß", "a"]], max_size=None)
    v.save(tmp_path / "vocab.txt")
    assert (tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines()[:4] == [PAD, UNK, BOS, EOS]
    assert Vocab.load(tmp_path / "vocab.txt") == v


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(DataError, match=r"empty\.txt.*empty"):
        Vocab.load(empty)
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("<pad>\n<s>\n<unk>\n</s>\nfoo\n")
    with pytest.raises(DataError, match=r"wrong\.txt.*first four lines"):
        Vocab.load(wrong)
    dup = tmp_path / "dup.txt"
    dup.write_text("<pad>\n<unk>\n<s>\n</s>\nfoo\nfoo\n")
    with pytest.raises(DataError, match=r"dup\.txt.*duplicate"):
        Vocab.load(dup)
