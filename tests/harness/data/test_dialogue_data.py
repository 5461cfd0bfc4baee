"""harness.data.dialogue_corpora / dialogue / dialogue_dataset: parsers, context/response examples, preprocessing outputs, dialogue batches."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import SHARED_DATA, needs_mirror, tiny_dialogue_model
from harness.data.dialogue import preprocess_dialogue
from harness.data.dialogue_corpora import START_TOKEN, Utterance, build_examples, read_dailydialog, read_swda_jsonl, tokenize
from harness.data.dialogue_dataset import DialogueDataset, dialogue_batches
from harness.data.preprocess import main
from harness.data.registry import DataError
from harness.data.vocab import BOS_ID, EOS_ID, PAD_ID, SPECIALS, UNK, UNK_ID, Vocab

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "dialogue_tiny"
DD_TRAIN = FIXTURES / "dailydialog/train/dialogues_train.txt"
SWDA_VALID = FIXTURES / "swda/json_data/valid.jsonl"
OUTPUTS = ["stats.json", "test.jsonl", "train.jsonl", "valid.jsonl", "vocab.txt"]


def _raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    shutil.copytree(FIXTURES, raw)
    return raw


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _dialogue(lengths: list[int]) -> list[Utterance]:
    """Synthetic dialogue: utterance i has words 'u{i}w0', 'u{i}w1', ...; speakers alternate 1, 0, 1, ..."""
    return [Utterance(int(i % 2 == 0), [f"u{i}w{k}" for k in range(n)]) for i, n in enumerate(lengths)]


def _dot_entries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".")]


# ---------------------------------------------------------------------------------------------
# parsers

def test_tokenize_is_nltk_wordpunct_on_lowercase() -> None:
    assert tokenize("I guess you are right.But I don't ") == ["i", "guess", "you", "are", "right", ".", "but",
                                                              "i", "don", "'", "t"]
    assert tokenize("Uh-huh, 3.5!!") == ["uh", "-", "huh", ",", "3", ".", "5", "!!"]


def test_read_dailydialog_fixture() -> None:
    dialogues = read_dailydialog(DD_TRAIN)
    assert [len(d) for d in dialogues] == [10, 6, 5, 4, 9, 10]
    first = dialogues[0]
    assert first[0].tokens == ["say", ",", "jim", ",", "how", "about", "going", "for", "a", "few", "beers", "after",
                               "dinner", "?"]
    assert [u.speaker for u in first] == [1, 0] * 5  # the reference's floors: first speaker 1
    assert all(u.act is None for d in dialogues for u in d)
    assert all(u.tokens and "__eou__" not in u.tokens and t == t.lower() for d in dialogues for u in d
               for t in u.tokens)


def test_read_swda_fixture() -> None:
    dialogues = read_swda_jsonl(SWDA_VALID)
    assert [len(d) for d in dialogues] == [12, 12]
    u0, u1 = dialogues[0][:2]
    assert (u0.speaker, u0.tokens, u0.act) == (0, "favorite type of music or musician or any".split(), "open-question")
    assert u1.speaker == 1 and u1.act == "statement-non-opinion"
    assert u1.tokens[:5] == ["i", "don", "'", "t", "really"]
    raw = [json.loads(line)["utts"] for line in SWDA_VALID.read_text().splitlines()]
    assert [[u.speaker for u in d] for d in dialogues] == [[int(c == "B") for c, _, _ in utts] for utts in raw]


@pytest.mark.parametrize(("content", "match"), [
    ("hello there . __eou__ hi . __eou__\nno delimiter here\n", r"bad\.txt:2: no '__eou__'"),
    ("hello . __eou__ dangling text\n", r"bad\.txt:1: text after the last '__eou__'"),
    ("", r"bad\.txt is empty"),
    ("\n  \n", r"bad\.txt is empty"),
])
def test_dailydialog_malformed(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=match):
        read_dailydialog(path)


@pytest.mark.parametrize(("line2", "match"), [
    ('{"utts": [["A", "hi", ["x", []]]', r"bad\.jsonl:2: invalid JSON"),
    ('{"A": {}, "topic": "music"}', r"bad\.jsonl:2: not a dialogue record .*'utts'"),
    ('["A", "hi"]', r"bad\.jsonl:2: not a dialogue record"),
    ('{"utts": []}', r"bad\.jsonl:2: 'utts' must be a non-empty list"),
    ('{"utts": [["C", "hi", ["statement", [0, 1, 0, 0]]]]}', r"bad\.jsonl:2: utterance 0 is not"),
    ('{"utts": [["A", "hi", ["s", [0]]], ["B", 3, ["s", [0]]]]}', r"bad\.jsonl:2: utterance 1 is not"),
    ('{"utts": [["A", "hi"]]}', r"bad\.jsonl:2: utterance 0 is not"),
])
def test_swda_malformed(tmp_path: Path, line2: str, match: str) -> None:
    good = '{"utts": [["A", "hello", ["statement", [0, 1, 0, 0]]], ["B", "hi", null]]}'
    path = tmp_path / "bad.jsonl"
    path.write_text(good + "\n" + line2 + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=match):
        read_swda_jsonl(path)


def test_swda_empty_missing_and_null_features(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.jsonl is empty"):
        read_swda_jsonl(empty)
    with pytest.raises(DataError, match=r"nothere\.jsonl does not exist"):
        read_swda_jsonl(tmp_path / "nothere.jsonl")
    ok = tmp_path / "ok.jsonl"
    ok.write_text('{"utts": [["A", "Hello!", ["statement", [0, 1, 0, 0]]], ["B", "hi", null]]}\n', encoding="utf-8")
    [d] = read_swda_jsonl(ok)
    assert [(u.speaker, u.tokens, u.act) for u in d] == [(0, ["hello", "!"], "statement"), (1, ["hi"], None)]


# ---------------------------------------------------------------------------------------------
# examples

def test_response_alignment_with_start_marker() -> None:
    """Reference setting: responses are utterances 0 .. n-2; the context of utterance k ends with utterance k-1
    (with the <d> start utterance for k = 0)."""
    dialogues = read_dailydialog(DD_TRAIN)
    examples = build_examples(dialogues)
    assert len(examples) == sum(len(d) - 1 for d in dialogues) == 38
    for e in examples:
        d = dialogues[e.dialogue]
        assert e.response == d[e.turn].tokens[:38] and e.response_speaker == d[e.turn].speaker
        if e.turn == 0:
            assert e.context == [[START_TOKEN]] and e.speakers == [0]
        else:
            assert e.context[-1] == d[e.turn - 1].tokens[:38] and e.speakers[-1] == d[e.turn - 1].speaker
    per_dialogue = [[e.turn for e in examples if e.dialogue == i] for i in range(len(dialogues))]
    assert per_dialogue == [list(range(len(d) - 1)) for d in dialogues]  # the last utterance is never a response


def test_response_alignment_without_start_marker_and_with_last() -> None:
    dialogues = [_dialogue([3, 4, 5, 6]), _dialogue([2]), _dialogue([1, 2])]
    plain = build_examples(dialogues, start_marker=False)
    # example k of a dialogue: response = utterance k+1, its context ends with utterance k
    assert [(e.dialogue, e.turn) for e in plain] == [(0, 1), (0, 2)]
    for k, e in enumerate(plain):
        assert e.response == dialogues[0][k + 1].tokens and e.context[-1] == dialogues[0][k].tokens
        assert e.context == [u.tokens for u in dialogues[0][: k + 1]]
    with_last = build_examples(dialogues, start_marker=False, include_last=True)
    assert [(e.dialogue, e.turn) for e in with_last] == [(0, 1), (0, 2), (0, 3), (2, 1)]
    marked = build_examples(dialogues, include_last=True)
    assert [(e.dialogue, e.turn) for e in marked] == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (2, 0), (2, 1)]


def test_context_window_truncation() -> None:
    dialogue = _dialogue([2] * 15)
    examples = build_examples([dialogue])  # window of 10 = at most 9 context utterances
    assert len(examples) == 14
    assert [len(e.context) for e in examples] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9, 9, 9]
    assert examples[8].context[0] == [START_TOKEN]  # <d> + utterances 0..7
    assert examples[9].context == [u.tokens for u in dialogue[0:9]]  # <d> has left the window
    last = examples[-1]
    assert last.turn == 13 and last.context == [u.tokens for u in dialogue[4:13]]
    assert last.speakers == [u.speaker for u in dialogue[4:13]]
    small = build_examples([dialogue], context_window=3)
    assert max(len(e.context) for e in small) == 2
    assert small[-1].context == [dialogue[11].tokens, dialogue[12].tokens]
    with pytest.raises(ValueError):
        build_examples([dialogue], context_window=1)


def test_utterance_length_truncation() -> None:
    dialogue = _dialogue([50, 38, 39, 45])
    examples = build_examples([dialogue])  # max_utt_len 40 counts <s> and </s>: first 38 words kept
    assert [len(e.response) for e in examples] == [38, 38, 38]
    assert examples[0].response == dialogue[0].tokens[:38]
    assert [len(u) for u in examples[-1].context] == [1, 38, 38]
    assert dialogue[0].tokens[:38] == examples[-1].context[1]
    short = build_examples([dialogue], max_utt_len=5)
    assert short[1].context[1] == ["u0w0", "u0w1", "u0w2"] and short[1].response == ["u1w0", "u1w1", "u1w2"]
    assert len(dialogue[0].tokens) == 50  # the input is not modified


# ---------------------------------------------------------------------------------------------
# preprocessing

def test_preprocess_dailydialog_tiny(tmp_path: Path) -> None:
    raw, out = _raw(tmp_path), tmp_path / "proc" / "dailydialog"
    stats = preprocess_dialogue("dailydialog", raw, out)
    assert sorted(p.name for p in out.iterdir()) == OUTPUTS
    assert {s: (v["dialogues"], v["utterances"], v["examples"]) for s, v in stats["splits"].items()} == {
        "train": (6, 44, 38), "valid": (3, 21, 18), "test": (3, 23, 20)}
    assert stats["reduced"] is False and stats["source_splits"] == {"train": "train", "valid": "valid", "test": "test"}
    assert json.loads((out / "stats.json").read_text()) == stats
    train = _jsonl(out / "train.jsonl")
    assert len(train) == 38
    assert train[0] == {"context": [["<d>"]], "speakers": [0], "response": tokenize(
        "Say , Jim , how about going for a few beers after dinner ?"), "response_speaker": 1, "response_act": None,
        "dialogue": 0, "turn": 0}
    assert train[1]["context"] == [["<d>"], train[0]["response"]] and train[1]["speakers"] == [0, 1]
    # vocab from the train split only: every train type, nothing else
    vocab = Vocab.load(out / "vocab.txt")
    train_types = {t for d in read_dailydialog(DD_TRAIN) for u in d for t in u.tokens} | {START_TOKEN}
    assert set(vocab.itos[len(SPECIALS):]) == train_types and stats["vocab_size"] == len(vocab)
    valid_words = {t for e in _jsonl(out / "valid.jsonl") for u in [*e["context"], e["response"]] for t in u}
    unseen = sorted(valid_words - train_types)
    assert unseen and vocab.encode(unseen) == [UNK_ID] * len(unseen)
    assert stats["splits"]["train"]["oov_rate"] == 0 and stats["splits"]["valid"]["oov_rate"] > 0
    assert not _dot_entries(out.parent)  # temp dir removed


def test_preprocess_vocab_cap(tmp_path: Path) -> None:
    stats = preprocess_dialogue("dailydialog", _raw(tmp_path), tmp_path / "out", max_vocab=20)
    vocab = Vocab.load(tmp_path / "out" / "vocab.txt")
    assert len(vocab) == stats["vocab_size"] == 20 and stats["train_types_dropped_by_cap"] > 0
    assert vocab.itos[:4] == list(SPECIALS) and "." in vocab and "," in vocab
    assert stats["splits"]["train"]["oov_rate"] > 0


def test_preprocess_swda_reduced_train_from_valid(tmp_path: Path) -> None:
    raw, out = _raw(tmp_path), tmp_path / "swda.train-from-valid"
    with pytest.raises(DataError, match=r"train\.jsonl does not exist"):
        preprocess_dialogue("swda", raw, out)  # the fixture, like the mirror, has no train file
    assert not out.exists() and not _dot_entries(tmp_path)
    stats = preprocess_dialogue("swda", raw, out, source_splits={"train": "valid"})
    assert stats["reduced"] is True and stats["source_splits"]["train"] == "valid"
    assert stats["splits"]["train"]["source"] == "valid" and set(stats["sources"]) == {"valid", "test"}
    assert (out / "train.jsonl").read_bytes() == (out / "valid.jsonl").read_bytes()
    assert {s: v["examples"] for s, v in stats["splits"].items()} == {"train": 22, "valid": 22, "test": 18}
    first = _jsonl(out / "train.jsonl")[0]
    assert first["response_act"] == "open-question" and first["response_speaker"] == 0
    with pytest.raises(DataError, match="unknown output split"):
        preprocess_dialogue("swda", raw, out, source_splits={"dev": "valid"})
    with pytest.raises(DataError, match="not a dialogue corpus"):
        preprocess_dialogue("ptb", raw, out)


def test_failure_leaves_no_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw, out = _raw(tmp_path), tmp_path / "proc" / "dd"
    with open(raw / "dailydialog/test/dialogues_test.txt", "a", encoding="utf-8") as f:
        f.write("a line without the delimiter\n")
    with pytest.raises(DataError, match=r"dialogues_test\.txt:4: no '__eou__'"):
        preprocess_dialogue("dailydialog", raw, out)
    assert not out.parent.exists()  # inputs are parsed before anything is created
    # a failure while writing: nothing appears either (outputs go to a temp dir first)
    shutil.copy(FIXTURES / "dailydialog/test/dialogues_test.txt", raw / "dailydialog/test/dialogues_test.txt")

    def broken_save(self, path):
        raise OSError("disk full")

    monkeypatch.setattr(Vocab, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        preprocess_dialogue("dailydialog", raw, out)
    assert not out.exists() and not _dot_entries(out.parent)
    monkeypatch.undo()
    # a previous complete output is untouched by a failed run
    preprocess_dialogue("dailydialog", raw, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (raw / "dailydialog/validation/dialogues_validation.txt").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=r"dialogues_validation\.txt is empty"):
        preprocess_dialogue("dailydialog", raw, out, max_vocab=30)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_manifest_cross_check(tmp_path: Path) -> None:
    raw = _raw(tmp_path)
    manifest = {"files": {"valid": {"sha256": "0" * 64, "verified": True}}}
    (raw / "swda" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="differs from the fetch manifest"):
        preprocess_dialogue("swda", raw, tmp_path / "out", source_splits={"train": "valid"})


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    raw, out = _raw(tmp_path), tmp_path / "out"
    assert main(["--dataset", "swda", "--raw", str(raw), "--out", str(out), "--split", "train=valid",
                 "--max-vocab", "50", "--context-window", "4", "--max-utt-len", "10"]) == 0
    assert "swda: 22 / 22 / 18 examples, vocab 50" in capsys.readouterr().out
    stats = json.loads((out / "stats.json").read_text())
    assert (stats["context_window"], stats["max_utt_len"], stats["reduced"]) == (4, 10, True)
    examples = _jsonl(out / "test.jsonl")
    assert max(len(e["context"]) for e in examples) == 3 and max(len(e["response"]) for e in examples) == 8
    assert main(["--dataset", "swda", "--raw", str(raw), "--out", str(tmp_path / "o2")]) == 2
    assert "train.jsonl does not exist" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# dataset and batches

@pytest.fixture()
def dd_processed(tmp_path: Path) -> Path:
    out = tmp_path / "dd"
    preprocess_dialogue("dailydialog", _raw(tmp_path), out, max_vocab=60)
    return out


def test_dataset_and_collate_padding(dd_processed: Path) -> None:
    vocab = Vocab.load(dd_processed / "vocab.txt")
    data = DialogueDataset(dd_processed / "train.jsonl", vocab)
    examples = _jsonl(dd_processed / "train.jsonl")
    assert len(data) == len(examples) == 38
    picks = [0, 8, 3]  # 1, 9 (the full window) and 4 context utterances
    batch = data.collate(picks)
    n = [len(examples[i]["context"]) for i in picks]
    assert n == [1, 9, 4]
    longest = max(len(u) + 2 for i in picks for u in examples[i]["context"])
    assert batch.context.shape == (3, 9, longest) and batch.context_lengths.shape == (3, 9)
    assert batch.num_utterances.tolist() == n and batch.floors.shape == (3, 9)
    for row, i in enumerate(picks):
        ex = examples[i]
        for k in range(9):
            if k < n[row]:
                ids = [BOS_ID, *vocab.encode(ex["context"][k]), EOS_ID]
                assert batch.context_lengths[row, k] == len(ids)
                assert batch.context[row, k, : len(ids)].tolist() == ids
                assert (batch.context[row, k, len(ids):] == PAD_ID).all()
                assert batch.floors[row, k] == int(ex["speakers"][k] == ex["response_speaker"])
            else:
                assert batch.context_lengths[row, k] == 0 and batch.floors[row, k] == 0
                assert (batch.context[row, k] == PAD_ID).all()
        ids = [BOS_ID, *vocab.encode(ex["response"]), EOS_ID]
        assert batch.response_lengths[row] == len(ids) and batch.response[row, : len(ids)].tolist() == ids
        assert (batch.response[row, len(ids):] == PAD_ID).all()
    assert batch.response.shape[1] == int(batch.response_lengths.max())
    assert UNK_ID in batch.context or UNK_ID in batch.response  # vocab capped at 60: rare words are <unk>
    assert batch.indices.tolist() == picks and batch.size == 3
    assert batch.num_predicted_tokens() == int((batch.response_lengths - 1).sum())
    moved = batch.to("cpu")
    assert torch.equal(moved.context, batch.context) and torch.equal(moved.floors, batch.floors)
    assert data.references[9] == examples[9]["response"]
    assert len(DialogueDataset(dd_processed / "train.jsonl", vocab, max_examples=5)) == 5


def test_dataset_errors(tmp_path: Path) -> None:
    vocab = Vocab(list(SPECIALS) + ["hi"])
    with pytest.raises(DataError, match="does not exist"):
        DialogueDataset(tmp_path / "missing.jsonl", vocab)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="no examples"):
        DialogueDataset(empty, vocab)
    bad = tmp_path / "bad.jsonl"
    good = '{"context": [["hi"]], "speakers": [0], "response": ["hi"], "response_speaker": 1}'
    bad.write_text(good + '\n{"context": 1}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl:2: not a dialogue example"):
        DialogueDataset(bad, vocab)


def test_dialogue_batches_cover_everything_deterministically(dd_processed: Path) -> None:
    data = DialogueDataset(dd_processed / "train.jsonl", Vocab.load(dd_processed / "vocab.txt"))
    plain = list(dialogue_batches(data, 8, shuffle=False, generator=None, bucket=False))
    assert [b.size for b in plain] == [8, 8, 8, 8, 6]
    assert torch.cat([b.indices for b in plain]).tolist() == list(range(38))

    def run(seed: int):
        return list(dialogue_batches(data, 8, shuffle=True, generator=torch.Generator().manual_seed(seed)))

    a, b = run(1), run(1)
    assert sorted(torch.cat([x.indices for x in a]).tolist()) == list(range(38))
    assert [x.indices.tolist() for x in a] == [x.indices.tolist() for x in b]
    assert [x.indices.tolist() for x in a] != [x.indices.tolist() for x in run(2)]
    bucketed = list(dialogue_batches(data, 8, shuffle=False, generator=None))
    assert [x.num_utterances.tolist() for x in bucketed] == [sorted(x.num_utterances.tolist()) for x in bucketed]
    assert max(x.num_utterances.max() for x in bucketed[:1]) <= min(x.num_utterances.min() for x in bucketed[1:])
    with pytest.raises(ValueError):
        next(dialogue_batches(data, 0, shuffle=False, generator=None))


@pytest.mark.parametrize("method", ["cvae", "twr-cvae"])
def test_batches_feed_the_dialogue_models(dd_processed: Path, method: str) -> None:
    vocab = Vocab.load(dd_processed / "vocab.txt")
    data = DialogueDataset(dd_processed / "valid.jsonl", vocab)
    batch = next(dialogue_batches(data, 6, shuffle=False, generator=None))
    model = tiny_dialogue_model(method, vocab_size=len(vocab))
    terms = model.loss(batch, step=0)
    assert terms.loss.shape == (6,) and torch.isfinite(terms.loss).all()


# ---------------------------------------------------------------------------------------------
# the real corpora (offline mirror)

@needs_mirror
def test_real_dailydialog_counts() -> None:
    root = SHARED_DATA / "dailydialog"
    counts = {}
    for split in ("train", "validation", "test"):
        dialogues = read_dailydialog(root / split / f"dialogues_{split}.txt")
        counts[split] = (len(dialogues), sum(map(len, dialogues)), len(build_examples(dialogues)))
    assert counts == {"train": (11118, 87170, 76052), "validation": (1000, 8069, 7069), "test": (1000, 7740, 6740)}


@needs_mirror
def test_real_switchboard_counts() -> None:
    root = SHARED_DATA / "swda" / "json_data"
    counts = {}
    for split in ("valid", "test"):
        dialogues = read_swda_jsonl(root / f"{split}.jsonl")
        counts[split] = (len(dialogues), sum(map(len, dialogues)), len(build_examples(dialogues)))
    assert counts == {"valid": (60, 5225, 5165), "test": (62, 5543, 5481)}
    assert all(u.act for d in dialogues for u in d)


@needs_mirror
def test_real_switchboard_reduced_preprocessing(tmp_path: Path) -> None:
    stats = preprocess_dialogue("swda", SHARED_DATA, tmp_path / "swda", source_splits={"train": "valid"})
    assert {s: v["examples"] for s, v in stats["splits"].items()} == {"train": 5165, "valid": 5165, "test": 5481}
    assert stats["reduced"] and stats["sources"]["valid"]["relpath"] == "swda/json_data/valid.jsonl"
    assert stats["vocab_size"] == len(Vocab.load(tmp_path / "swda" / "vocab.txt")) < 10_000
    assert 0 < stats["splits"]["test"]["oov_rate"] < 0.1
    assert UNK not in Vocab.load(tmp_path / "swda" / "vocab.txt").itos[4:]
