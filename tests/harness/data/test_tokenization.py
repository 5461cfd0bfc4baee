"""The original TWR-VAE code's tokenisation (harness.data.tokenization) on hand cases, and through preprocessing."""
from __future__ import annotations

import json
import shutil

import pytest

from conftest import FIXTURES
from harness.core.config import ConfigError, DataOptions, ExperimentConfig
from harness.data.preprocess import preprocess_lm
from harness.data.tokenization import tokenize, twr_vae_code_tokens


def test_the_original_code_splits_periods_and_lower_cases():
    assert twr_vae_code_tokens(" mr. <unk> is chairman of <unk> n.v. the dutch publishing group ") == \
        "mr . <unk> is chairman of <unk> n .v . the dutch publishing group".split()
    assert twr_vae_code_tokens(" it 's N years ... ok , fine? ") == "it 's n years . ok , fine ?".split()
    assert tokenize(" it 's N years ", "released") == ["it", "'s", "N", "years"]
    with pytest.raises(ValueError, match="tokenization must be one of"):
        tokenize("a b", "bpe")


def test_preprocessing_with_the_original_tokens_names_them_and_changes_the_counts(tmp_path):
    shutil.copytree(FIXTURES / "ptb_tiny", tmp_path / "raw" / "ptb")
    released = preprocess_lm("ptb", tmp_path / "raw", tmp_path / "released")
    original = preprocess_lm("ptb", tmp_path / "raw", tmp_path / "original", tokenization="twr-vae-code")
    assert (released["tokenization"], original["tokenization"]) == ("released", "twr-vae-code")
    assert original["splits"]["train"]["tokens"] > released["splits"]["train"]["tokens"]  # periods split off
    assert "N" in (tmp_path / "released" / "vocab.txt").read_text().split()
    assert "N" not in (tmp_path / "original" / "vocab.txt").read_text().split()
    assert json.loads((tmp_path / "original" / "stats.json").read_text())["lowercased"] is True


def test_a_tokenization_gets_its_own_processed_folder_and_is_for_language_modelling_only():
    assert DataOptions(tokenization="twr-vae-code").processed_name("ptb") == "ptb.twr-vae-code-tokens"
    assert DataOptions(tokenization="twr-vae-code", source_splits={"train": "valid", "valid": "valid", "test": "test"}
                       ).processed_name("yahoo") == "yahoo.train-from-valid.twr-vae-code-tokens"
    assert DataOptions().processed_name("ptb") == "ptb"
    with pytest.raises(ConfigError, match="only language-modelling corpora"):
        ExperimentConfig.from_mapping({"data_options": {"dailydialog": {"tokenization": "twr-vae-code"}}})
    with pytest.raises(ConfigError, match="tokenization"):
        ExperimentConfig.from_mapping({"data_options": {"ptb": {"tokenization": "bpe"}}})
