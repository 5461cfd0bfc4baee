"""Word vectors for the BOW embedding metrics (Liu et al. 2016) of the dialogue task.

The paper uses GloVe Twitter 200d (not redistributable here); when a vector file is configured (`word_vectors`,
word2vec or GloVe text format) it is used, otherwise word2vec vectors (gensim, 200 dimensions) are trained on the
training responses and contexts of the dataset. Every table built from them names the vectors used.

    python -m harness.data.word_vectors --train data/processed/dailydialog/train.jsonl --out .../word2vec.kv
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gensim.models import Word2Vec

from harness.core.io import read_jsonl, write_json_atomic


def training_sentences(path: Path) -> list[list[str]]:
    """Every distinct utterance of a processed dialogue split (contexts and responses), as token lists."""
    seen, sentences = set(), []
    for example in read_jsonl(path):
        for utterance in [*example["context"], example["response"]]:
            key = tuple(utterance)
            if key and key not in seen:
                seen.add(key)
                sentences.append(list(utterance))
    return sentences


def train_word2vec(train_path: Path, out_path: Path, dim: int = 200, seed: int = 1, epochs: int = 5) -> dict:
    """Skip-gram word2vec on the training split; saves KeyedVectors atomically and returns its description."""
    sentences = training_sentences(train_path)
    model = Word2Vec(sentences, vector_size=dim, window=5, min_count=1, sg=1, seed=seed, workers=1, epochs=epochs)
    out_path = Path(out_path)
    tmp = out_path.with_name(out_path.name + ".tmp")
    model.wv.save(str(tmp))
    for extra in tmp.parent.glob(tmp.name + ".*"):  # gensim may write side files for large arrays
        extra.rename(out_path.with_name(out_path.name + extra.name[len(tmp.name):]))
    tmp.rename(out_path)
    description = {"name": f"word2vec {dim}d trained on {train_path} ({len(sentences)} utterances, seed {seed})",
                   "kind": "word2vec", "dim": dim, "vocabulary": len(model.wv)}
    write_json_atomic(out_path.with_name(out_path.name + ".json"), description)
    return description


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, type=Path, help="processed train.jsonl")
    parser.add_argument("--out", required=True, type=Path, help="output .kv file")
    parser.add_argument("--dim", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    description = train_word2vec(args.train, args.out, args.dim, args.seed)
    print(f"wrote {args.out}: {description['name']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
