"""Word vectors for the BOW embedding metrics: trained word2vec or a configured text file, always named."""
import json

import numpy as np
import pytest

from harness.data.vectors import load_vectors
from harness.data.word_vectors import train_word2vec, training_sentences


def write_examples(path, examples):
    path.write_text("".join(json.dumps({"context": c, "response": r}) + "\n" for c, r in examples))


def test_word2vec_is_trained_on_distinct_training_utterances_and_described(tmp_path):
    train = tmp_path / "train.jsonl"
    write_examples(train, [([["hello", "there"]], ["hi", "you"]), ([["hello", "there"], ["hi", "you"]], ["bye"])])
    assert training_sentences(train) == [["hello", "there"], ["hi", "you"], ["bye"]]
    description = train_word2vec(train, tmp_path / "w2v.kv", dim=8, seed=3)
    vectors, name = load_vectors(tmp_path / "w2v.kv")
    assert vectors.vector_size == 8 and "hello" in vectors and "bye" in vectors
    assert name == description["name"] and "word2vec 8d" in name and str(train) in name
    assert not list(tmp_path.glob("*.tmp*"))


def test_glove_text_files_load_without_a_header(tmp_path):
    glove = tmp_path / "glove.txt"
    glove.write_text("good 1.0 0.0\nbad 0.0 1.0\n")
    vectors, name = load_vectors(glove)
    np.testing.assert_allclose(vectors["good"], [1.0, 0.0])
    assert "glove.txt (2d, 2 words)" == name


def test_missing_vector_file_names_the_config_key(tmp_path):
    with pytest.raises(FileNotFoundError, match="word_vectors"):
        load_vectors(tmp_path / "absent.txt")
