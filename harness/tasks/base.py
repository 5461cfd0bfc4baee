"""What differs between the two tasks (language modelling, dialogue) for the task-agnostic drivers."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from harness.data.vocab import Vocab


@dataclass(frozen=True)
class Task:
    """A task's processed split files, their batching, the criterion that selects the kept epoch, its evaluation
    and its results table."""

    name: str
    suffix: str  # processed split files: <role><suffix>
    open_split: Callable[[Path, Vocab, int | None, int | None], Any]  # (path, vocab, cap, max_length) -> dataset
    batches: Callable[..., Iterator]  # (dataset, batch_size, shuffle, generator) -> batches
    selection_terms: Callable[[Any, Any], Any]  # (model, batch) -> terms whose recon + kl select the epoch
    # (loaded run, test split, data_dir, out_path, samples_path, vectors_path, progress) -> metrics.json payload
    evaluate_run: Callable[..., dict]
    # (summary of the tidy results, paper values, metrics.json payloads, table number, caption) -> LaTeX
    render_table: Callable[..., str]

    def load_split(self, run, data_dir: Path, vocab: Vocab, role: str, apply_max_length: bool = False):
        """The processed `role` split (train/valid/test) of `run` (a RunConfig), capped as its config says."""
        cap = getattr(run.data, f"max_{role}_sentences")
        return self.open_split(Path(data_dir) / f"{role}{self.suffix}", vocab, cap,
                               run.data.max_length if apply_max_length else None)
