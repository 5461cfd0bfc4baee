"""Reading word vectors (gensim `.kv` written by harness.data.word_vectors, or word2vec / GloVe text) for the dialogue
task's BOW embedding metrics and embedding initialisation."""
from __future__ import annotations

import json
from pathlib import Path

from gensim.models import KeyedVectors


def load_vectors(path: Path) -> tuple[KeyedVectors, str]:
    """KeyedVectors from a gensim `.kv` file (with its `.json` description) or a word2vec/GloVe text file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"word vectors {path} do not exist (config key `word_vectors`)")
    if path.suffix == ".kv":
        description = json.loads(path.with_name(path.name + ".json").read_text())["name"]
        return KeyedVectors.load(str(path)), description
    with open(path, encoding="utf-8") as handle:
        first = handle.readline().split()
    has_header = len(first) == 2 and all(part.isdigit() for part in first)  # word2vec text; GloVe has none
    vectors = KeyedVectors.load_word2vec_format(str(path), binary=False, no_header=not has_header)
    return vectors, f"{path.name} ({vectors.vector_size}d, {len(vectors)} words)"
