"""How a line of a language-modelling corpus becomes tokens: as released, or as the original TWR-VAE code reads it.

`released` splits on whitespace (the corpora are tokenised already). `twr-vae-code` re-implements what
ruizheliUOA/TWR-VAE lang_model/Corpus.py `_split` does to every line before training and evaluation: lower-case,
collapse runs of periods, and put a space before every period, ?, !, comma and 's. On PTB this splits the periods
off abbreviations ("mr." -> "mr .", "u.s." -> "u .s .") and writes its number token N as n: 2 % more test tokens,
which changes the per-word perplexity of the paper's PTB numbers (docs/fidelity.md).
"""
from __future__ import annotations

import re

TOKENIZATIONS = ("released", "twr-vae-code")


def twr_vae_code_tokens(line: str) -> list[str]:
    """The tokens the original TWR-VAE code makes of `line`."""
    line = re.sub(r"[.]+", ".", line.strip().lower())
    return re.sub(r"([.?!,]|'s)", r" \1", line).split()


def tokenize(line: str, tokenization: str) -> list[str]:
    if tokenization == "released":
        return line.split()
    if tokenization == "twr-vae-code":
        return twr_vae_code_tokens(line)
    raise ValueError(f"tokenization must be one of {TOKENIZATIONS}, got '{tokenization}'")
