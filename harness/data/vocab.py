"""Word vocabulary with fixed special ids: <pad>=0, <unk>=1, <s>=2, </s>=3.

File format (`Vocab.save` / `Vocab.load`): UTF-8, one token per line, line i = id i, the first four
lines are the specials in id order.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from harness.data.registry import DataError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
SPECIALS: tuple[str, ...] = (PAD, UNK, BOS, EOS)


class Vocab:
    """Bidirectional token <-> id map; ids 0..3 are always the specials."""

    def __init__(self, itos: Sequence[str]):
        itos = list(itos)
        if tuple(itos[:4]) != SPECIALS:
            raise DataError(f"vocabulary must start with the specials {list(SPECIALS)}, got {itos[:4]}")
        stoi: dict[str, int] = {}
        for i, tok in enumerate(itos):
            if tok in stoi:
                raise DataError(f"duplicate token {tok!r} in vocabulary (ids {stoi[tok]} and {i})")
            if not tok or any(c.isspace() for c in tok):
                raise DataError(f"invalid token {tok!r} at id {i}: empty or contains whitespace")
            stoi[tok] = i
        self.itos: list[str] = itos
        self.stoi: dict[str, int] = stoi

    @classmethod
    def build(cls, sentences: Iterable[list[str]], max_size: int | None, min_count: int = 1) -> "Vocab":
        """Count tokens; keep the most frequent first (ties alphabetical), `min_count` or more occurrences.

        max_size counts the 4 specials (so at most ``max_size - 4`` ordinary types); None = no cap.
        Tokens equal to a special (e.g. PTB's own ``<unk>``) are not added twice.
        """
        if max_size is not None and max_size < len(SPECIALS):
            raise ValueError(f"max_size must be >= {len(SPECIALS)} (the specials), got {max_size}")
        counts: Counter[str] = Counter()
        for sent in sentences:
            counts.update(sent)
        ranked = sorted((t for t, c in counts.items() if c >= min_count and t not in SPECIALS),
                        key=lambda t: (-counts[t], t))
        if max_size is not None:
            ranked = ranked[: max_size - len(SPECIALS)]
        return cls(list(SPECIALS) + ranked)

    def save(self, path: Path) -> None:
        """Write one token per line (UTF-8, '\\n' line ends)."""
        Path(path).write_text("".join(t + "\n" for t in self.itos), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "Vocab":
        """Read a file written by `save`; `DataError` naming the file if it is empty or malformed."""
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").split("\n")
        except UnicodeDecodeError as e:
            raise DataError(f"vocabulary file {path} is not valid UTF-8: {e}") from e
        if lines and lines[-1] == "":
            lines.pop()
        if not lines:
            raise DataError(f"vocabulary file {path} is empty")
        if tuple(lines[:4]) != SPECIALS:
            raise DataError(f"vocabulary file {path}: first four lines must be {list(SPECIALS)}, got {lines[:4]}")
        try:
            return cls(lines)
        except DataError as e:
            raise DataError(f"vocabulary file {path}: {e}") from e

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Token ids; out-of-vocabulary tokens map to UNK_ID (no BOS/EOS added)."""
        get = self.stoi.get
        return [get(t, UNK_ID) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens for ids (ints or 0-d tensors)."""
        return [self.itos[int(i)] for i in ids]

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)})"
