"""Opening saved weights (harness.core.runs.load_saved): a file that is not a whole torch.save archive is refused with
an error naming it and saying what is wrong, never a stack trace from inside torch."""
import pytest
import torch

from harness.core.runs import load_saved


def test_a_whole_save_opens(tmp_path):
    torch.save({"state_dict": {"w": torch.ones(2)}, "epoch": 3}, tmp_path / "model.pt")
    assert load_saved(tmp_path / "model.pt")["epoch"] == 3


def test_a_truncated_save_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"state_dict": {"w": torch.randn(1000)}}, path)
    path.write_bytes(path.read_bytes()[:2000])  # a copy killed half-way
    with pytest.raises(ValueError, match=r"model.pt is not a whole PyTorch save file \(truncated"):
        load_saved(path)


def test_a_file_that_is_no_save_at_all_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_text("not weights\n")
    with pytest.raises(ValueError, match=r"checkpoint.pt is not a whole PyTorch save file"):
        load_saved(path)


def test_a_damaged_archive_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"state_dict": {"w": torch.randn(1000)}}, path)
    data = bytearray(path.read_bytes())
    start = data.index(b"PK\x03\x04")  # the first member's local header: its name length field makes it unreadable
    data[start + 26:start + 28] = b"\xff\xff"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"model.pt could not be read by torch.load \(corrupt"):
        load_saved(path)


def test_a_missing_file_is_refused_naming_it(tmp_path):
    with pytest.raises(ValueError, match=r"model.pt not found"):
        load_saved(tmp_path / "model.pt")
