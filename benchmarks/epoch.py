"""What one epoch costs the user, end to end: the harness's against the original code's way, on the same data.

harness   `harness.train.training.train_run` for one epoch of config/paper.yaml's TWR-VAE recipe (sorted batches of 64, Adam
          1e-4, KL over the padded length), as the workflow runs it: loading and encoding the splits, batching, the
          steps, the validation after epoch 1, the checkpoint and the model file.
original  benchmarks.original_style's step inside a transcription of ruizheliUOA/TWR-VAE lang_model/main.py's epoch
          (read, not copied): `Corpus` (read the file, sort by length, one id tensor per sentence with <s> ... </s>),
          `BatchIter` (pad_sequence, time-major), per batch `zero_grad`, the loss, `backward`, `step`, the `.item()`
          reads and `sentence_acc` (an argmax over the [L, B, V] logits), then `reconstruction` of the validation
          set as after its epoch 0 (eval mode, the loss, the argmax and `get_sentence`'s per-token strings).
Both read the harness's processed split files with its vocabulary, so the model sizes are the same; the original
in float32, as it runs.
"""
from __future__ import annotations

import dataclasses
import operator
import tempfile
import time
from pathlib import Path

import torch
from torch.nn.utils.rnn import pad_sequence

from benchmarks.original_style import OriginalStyleTWRVAE
from harness.core.config import REPO_ROOT, ExperimentConfig
from harness.data.vocab import BOS_ID, EOS_ID, UNK_ID, Vocab
from harness.core.precision import bfloat16_unsupported
from harness.train.training import train_run


def harness_epoch_seconds(data_dir: Path, precision: str, seed: int = 1) -> dict:
    """Wall-clock seconds of one epoch (plus validation) of config/paper.yaml's TWR-VAE through harness.train.training."""
    run = ExperimentConfig.from_file(REPO_ROOT / "config" / "paper.yaml").run_config("ptb", "twr-vae", seed)
    run = dataclasses.replace(run, device="cpu",
                              train=dataclasses.replace(run.train, epochs=1, precision=precision))
    with tempfile.TemporaryDirectory(prefix="textvae-epoch-") as out:
        started = time.perf_counter()
        summary = train_run(run, data_dir, Path(out), progress=False)
        seconds = time.perf_counter() - started
    entry = summary["history"][0]
    return {"seconds": seconds, "train_seconds": entry["train_seconds"], "steps": summary["steps"],
            "train_loss": entry["train_loss"], "valid_loss": entry["valid_loss"]}


def _original_corpus(path: Path, word_id: dict[str, int]) -> list[torch.Tensor]:
    """Corpus.__init__ (sort=True): lines split on whitespace, sorted by length, [<s>] + ids + [</s>] tensors."""
    with open(path) as handle:
        corpus = [line.strip().split() for line in handle]
    corpus = [(tokens, len(tokens)) for tokens in corpus if tokens]
    corpus.sort(key=operator.itemgetter(1))
    return [torch.tensor([BOS_ID] + [word_id.get(w, UNK_ID) for w in tokens] + [EOS_ID]) for tokens, _ in corpus]


def _batches(corpus: list[torch.Tensor], batch_size: int):
    """BatchIter: consecutive slices, pad_sequence time-major with 0."""
    for start in range(0, len(corpus), batch_size):
        yield pad_sequence(corpus[start:start + batch_size], padding_value=0)


def original_epoch_seconds(data_dir: Path, arch, batch_size: int = 64, seed: int = 1) -> dict:
    """Wall-clock seconds of main.py's epoch 0 (train + `reconstruction` of the validation set), float32."""
    started = time.perf_counter()
    vocab = Vocab.load(data_dir / "vocab.txt")
    word_id = {word: index for index, word in enumerate(vocab.itos)}
    train = _original_corpus(data_dir / "train.txt", word_id)
    valid = _original_corpus(data_dir / "valid.txt", word_id)
    torch.manual_seed(seed)
    model = OriginalStyleTWRVAE(len(vocab), arch.emb_dim, arch.hidden_dim, arch.z_dim, arch.dropout)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, eps=1e-6, weight_decay=1e-5)
    model.train()
    totals = {"loss": 0.0, "correct": 0.0, "sentences": 0}
    train_started = time.perf_counter()
    for sen in _batches(train, batch_size):
        optimizer.zero_grad()
        loss, prediction = model.loss(sen, return_prediction=True)
        loss.backward()
        optimizer.step()
        totals["loss"] += loss.item()
        totals["correct"] += _sentence_acc(prediction.detach(), sen)
        totals["sentences"] += sen.shape[1]
    train_seconds = time.perf_counter() - train_started
    model.eval()
    valid_total, texts = 0.0, []
    with torch.no_grad():
        for sen in _batches(valid, batch_size):
            texts += _get_sentence(sen[1:], vocab.itos)
            loss, prediction = model.loss(sen, return_prediction=True)
            texts += _get_sentence(prediction.argmax(dim=2), vocab.itos)
            valid_total += loss.item()
    return {"seconds": time.perf_counter() - started, "train_seconds": train_seconds,
            "train_loss": totals["loss"] / totals["sentences"], "valid_loss": valid_total / len(valid)}


def _sentence_acc(prediction: torch.Tensor, sen: torch.Tensor) -> float:
    """main.py sentence_acc: argmax over the vocabulary, compared with the targets outside padding."""
    target = sen[1:]
    guess = prediction.argmax(dim=2)
    guess[target == 0] = -1
    return torch.eq(guess, target).float().sum().item()


def _get_sentence(batch: torch.Tensor, itos: list[str]) -> list[str]:
    """main.py get_sentence: the words of every column, one `.item()` per token."""
    return [" ".join(itos[batch[i, b].item()] for i in range(batch.shape[0])) for b in range(batch.shape[1])]


def epoch_benchmark(data_dir: Path, arch) -> dict:
    """One end-to-end epoch each: the harness in float32 and bfloat16, the original's way in float32 (bfloat16 left
    out, and `bfloat16_unsupported` saying why, on a CPU without bf16 kernels)."""
    no_bfloat16 = bfloat16_unsupported("cpu")
    results = {"harness": harness_epoch_seconds(data_dir, "float32"),
               **({} if no_bfloat16 else {"harness_bfloat16": harness_epoch_seconds(data_dir, "bfloat16")}),
               "original": original_epoch_seconds(data_dir, arch)}
    original = results["original"]["seconds"]
    return {"seconds": {name: value["seconds"] for name, value in results.items()}, "runs": results,
            "speedup_vs_original": original / results["harness"]["seconds"],
            "bfloat16_speedup_vs_original": None if no_bfloat16 else original / results["harness_bfloat16"]["seconds"],
            "bfloat16_unsupported": no_bfloat16}
