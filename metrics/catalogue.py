"""The one table of reported metrics: name, task, which direction is better, and the label tables print.

Tables (bold best), the significance tests (which baseline is best) and captions read it; `better` None means the
metric is reported but never ranked (a larger or smaller KL is not better in itself)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str  # key in metrics.json and the tidy CSV
    task: str  # "lm" | "dialogue"
    better: str | None  # "lower" | "higher" | None (not ranked)
    label: str  # as table headers print it


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("NLL", "lm", "lower", "NLL"),
    Metric("PPL", "lm", "lower", "PPL"),
    Metric("MI", "lm", "higher", "MI"),
    Metric("KL", "lm", None, "KL"),
    Metric("AU", "lm", None, "AU"),
    *(Metric(f"BLEU-{part}", "dialogue", "higher", f"BLEU {part}") for part in ("R", "P", "F1")),
    *(Metric(f"BOW-{part}", "dialogue", "higher", f"BOW {part}") for part in ("A", "E", "G")),
    *(Metric(f"{kind}-dist{n}", "dialogue", "higher", f"{kind}-dist {n}") for kind in ("Intra", "Inter") for n in (1, 2)),
)}

#: the columns of the paper's language-model tables (Tables 2-3) and dialogue table (Table 5), in its order
LM_TABLE_METRICS: tuple[str, ...] = ("NLL", "PPL", "MI", "KL")
DIALOGUE_METRICS: tuple[str, ...] = tuple(name for name, metric in METRICS.items() if metric.task == "dialogue")


def better(name: str) -> str | None:
    """"lower", "higher" or None (unknown or unranked metric)."""
    metric = METRICS.get(name)
    return None if metric is None else metric.better
