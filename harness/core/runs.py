"""A run's folder and how every stage opens it: the model a run config builds, its data splits, a trained model.

Shared by the stages (train, evaluate, interpolate, dialogue evaluation), so that none imports another's module.
"""
from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import torch

from harness.core.config import RunConfig
from harness.data.sources import describe_source
from harness.data.vocab import Vocab
from harness.core.io import resolve_device
from harness.methods.model_api import Method
from harness.core.precision import set_compute_precision
from harness.methods.lookup import get_method, load_plugins

CHECKPOINT = "checkpoint.pt"  # refreshed after every epoch while training; removed at the end (kept at a budget stop)
MODEL = "model.pt"  # the kept weights, the vocabulary size and the training summary
TRAIN_LOG = "train_log.json"  # the training summary


#: the keys of a run's training summary (train_log.json) that metrics.json repeats under `training`, for both tasks:
#: how the kept weights were selected, how training ended and what code trained them (docs/results_format.md)
TRAINING_RECORD = ("selected_epoch", "select_by", "epochs_completed", "steps", "stopped_early", "lr_schedule",
                   "early_stopping", "history", "code_version", "method_sources", "warm_start", "resumed_from",
                   "code_changed_during_run", "discarded_checkpoint")


def training_record(summary: dict) -> dict:
    """metrics.json's `training`: TRAINING_RECORD's keys of the summary (None where an older run has no such key)."""
    return {key: summary.get(key) for key in TRAINING_RECORD}


def build_model(run: RunConfig, vocab_size: int) -> Method:
    load_plugins(run.plugins)
    return get_method(run.model.method).build(vocab_size, run.architecture, run.model.options)


def load_saved(path: Path, map_location="cpu") -> dict:
    """A model.pt or checkpoint.pt: tensors and plain Python values only (weights_only=True), so that a results
    folder from elsewhere cannot run code when it is opened; anything else is refused, naming the file, and so is a
    file that is not a whole PyTorch archive (truncated by a killed copy, or not a save at all)."""
    if not Path(path).is_file():
        raise ValueError(f"{path} not found: no saved weights there")
    if not zipfile.is_zipfile(path):  # torch.save's format: a zip archive whose directory sits at its end
        raise ValueError(f"{path} is not a whole PyTorch save file (truncated, corrupt or not written by torch.save): "
                         "it cannot be opened; rerun the step that wrote it")
    try:  # torch's version string (a str subclass) is what files written before 2026-11-28 carry besides plain values
        with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{path} holds more than tensors and plain values, so it is not opened (torch.load "
                         f"weights_only=True refused it: {str(exc).splitlines()[0]})") from None
    except RuntimeError as exc:  # a damaged archive whose directory survived (or a device torch cannot map to)
        raise ValueError(f"{path} could not be read by torch.load (corrupt, or its tensors cannot be placed on "
                         f"{map_location}): {str(exc).splitlines()[0]}") from None


def trained_run_config(model_path: Path) -> RunConfig:
    """The run config a model.pt was trained with."""
    return RunConfig.from_dict(load_saved(model_path)["summary"]["run_config"])


def load_trained(model_path: Path, data_dir: Path, run: RunConfig | None = None):
    """(run config, training summary, model on its device, vocab, device) of a finished training run; `run` (the
    evaluation's config) must match the training config, evaluation settings aside."""
    checkpoint = load_saved(model_path)
    summary = checkpoint["summary"]
    trained = RunConfig.from_dict(summary["run_config"])
    run = run or trained
    if run.training_fingerprint() != trained.training_fingerprint():
        raise ValueError(f"{model_path} was trained with another config than the one given for evaluation")
    device = resolve_device(run.device)
    vocab = Vocab.load(Path(data_dir) / "vocab.txt")
    model = build_model(run, len(vocab))
    model.load_state_dict(checkpoint["state_dict"])
    model = model.to(device)
    set_compute_precision(model, run.evaluate.precision, "evaluate.precision")  # checked on the run's device
    return run, summary, model, vocab, device


def data_description(run: RunConfig, data_dir: Path, train_sentences: int, test) -> dict:
    """What the numbers were computed on, and a human-readable note when anything was reduced."""
    stats_path = Path(data_dir) / "stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    full = {split: info.get("sentences", info.get("examples")) for split, info in stats.get("splits", {}).items()}
    unit = "examples" if stats.get("kind") == "dialogue" or any("examples" in info for info in stats.get("splits", {}).values()) else "sentences"
    remapped = run.data.remapped()
    notes = [f"{out} split built from {describe_source(src)}" for out, src in remapped.items()]
    if remapped.get("train") == run.data.source_splits["valid"]:
        notes.append("model selection on the training data")
    if full.get("train") and train_sentences < full["train"]:
        notes.append(f"train capped at {train_sentences} of {full['train']} {unit}")
    if full.get("test") and len(test) < full["test"]:
        notes.append(f"test capped at {len(test)} of {full['test']} {unit}")
    unverified = sorted(key for key, source in stats.get("sources", {}).items() if source.get("verified") is False)
    reduced = bool(notes)
    if run.data.tokenization != "released":  # not less data, other tokens: named, but not "reduced"
        notes.append(f"{run.data.tokenization} tokenization (as the original TWR-VAE code reads the corpus)")
    return {
        "train_sentences": train_sentences, "test_sentences": len(test), "test_tokens": int(test.num_tokens),
        "full_train_sentences": full.get("train"), "full_test_sentences": full.get("test"),
        "source_splits": dict(run.data.source_splits), "vocab_size": stats.get("vocab_size"),
        "unverified_sources": unverified,
        "tokenization": run.data.tokenization, "reduced": reduced, "note": "; ".join(notes),
    }
