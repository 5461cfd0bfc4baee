"""Per-run `metrics.json` files -> one tidy (long) table, plus the paper's published numbers.

The format of a result file is described in `docs/results_format.md`. Everything here is a pure function of
those files: nothing is filled in, a metric missing from a file is simply absent from the tidy frame.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from harness.data.registry import DATASETS

#: dataset registry key -> dataset name used in the paper's tables (`../shared/paper/tables.csv`), in their order.
PAPER_DATASET_NAMES: dict[str, str] = {name: spec.paper_name or name for name, spec in DATASETS.items()}

PROTOCOLS: tuple[str, ...] = ("uniform", "paper")

TIDY_COLUMNS: list[str] = [
    "experiment", "dataset", "model", "paper_name", "label", "seed", "protocol", "metric", "value", "reduced",
    "data_note",
]
PAPER_COLUMNS: list[str] = ["table", "dataset", "model", "metric", "value"]
GROUP_KEYS: list[str] = ["experiment", "dataset", "model", "paper_name", "label", "protocol", "metric"]
SUMMARY_COLUMNS: list[str] = GROUP_KEYS + ["mean", "std", "n_seeds", "reduced", "data_note"]

#: separator between distinct data notes in `summarise`'s `data_note` column.
NOTE_SEP = " | "

_REQUIRED_TOP = ("experiment", "dataset", "model", "seed", "data", "metrics")


class ResultError(ValueError):
    """A result file is unreadable or does not follow `docs/results_format.md`."""


def paper_dataset_name(key: str) -> str:
    """The paper's name for a dataset registry key (the key itself when unknown)."""
    return PAPER_DATASET_NAMES.get(key, key)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _load_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ResultError(f"{path}: cannot read result file ({exc})") from exc
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(record, dict):
        raise ResultError(f"{path}: top level must be a JSON object, got {type(record).__name__}")
    return record


def _rows_from_record(path: Path, record: dict[str, Any]) -> list[dict[str, Any]]:
    """Validate one parsed result file and turn it into tidy rows."""
    for key in _REQUIRED_TOP:
        if key not in record:
            raise ResultError(f"{path}: missing key '{key}'")
    for key in ("experiment", "dataset", "model"):
        if not isinstance(record[key], str) or not record[key]:
            raise ResultError(f"{path}: key '{key}' must be a non-empty string, got {record[key]!r}")
    seed = record["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ResultError(f"{path}: key 'seed' must be an integer, got {seed!r}")
    paper_name, label = record.get("paper_name"), record.get("label")
    for key, name in (("paper_name", paper_name), ("label", label)):
        if name is not None and not isinstance(name, str):
            raise ResultError(f"{path}: key '{key}' must be a string or null, got {name!r}")
    data = record["data"]
    if not isinstance(data, dict):
        raise ResultError(f"{path}: key 'data' must be an object")
    if "reduced" not in data:
        raise ResultError(f"{path}: missing key 'data.reduced'")
    if not isinstance(data["reduced"], bool):
        raise ResultError(f"{path}: key 'data.reduced' must be true or false, got {data['reduced']!r}")
    note = data.get("note") or ""
    if not isinstance(note, str):
        raise ResultError(f"{path}: key 'data.note' must be a string, got {note!r}")
    metrics = record["metrics"]
    if not isinstance(metrics, dict):
        raise ResultError(f"{path}: key 'metrics' must be an object")

    rows: list[dict[str, Any]] = []
    for protocol, values in metrics.items():
        if protocol not in PROTOCOLS:
            raise ResultError(f"{path}: unknown protocol 'metrics.{protocol}' (expected one of {PROTOCOLS})")
        if not isinstance(values, dict):
            raise ResultError(f"{path}: key 'metrics.{protocol}' must be an object")
        for metric, value in values.items():
            if value is None:
                continue  # not measured: leave it out, never fill it in
            if not _is_number(value) or math.isnan(float(value)):
                raise ResultError(f"{path}: 'metrics.{protocol}.{metric}' must be a number, got {value!r}")
            rows.append({
                "experiment": record["experiment"], "dataset": record["dataset"], "model": record["model"],
                "paper_name": paper_name, "label": label, "seed": seed, "protocol": protocol, "metric": metric,
                "value": float(value), "reduced": data["reduced"], "data_note": note,
            })
    return rows


def collect_results(paths: Iterable[Path]) -> pd.DataFrame:
    """Read `metrics.json` files into a tidy frame with columns `TIDY_COLUMNS`, one row per reported number.

    Raises `ResultError` naming the file (and the key) for a file that is not JSON or is malformed, and for two
    files describing the same (experiment, dataset, model, seed).
    """
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[str, str, str, int], Path] = {}
    for raw in paths:
        path = Path(raw)
        record = _load_json(path)
        file_rows = _rows_from_record(path, record)
        run = (record["experiment"], record["dataset"], record["model"], record["seed"])
        if run in seen:
            raise ResultError(f"{path}: run {run} already read from {seen[run]}")
        seen[run] = path
        rows.extend(file_rows)
    frame = pd.DataFrame(rows, columns=TIDY_COLUMNS)
    frame["value"] = frame["value"].astype(float)
    frame["reduced"] = frame["reduced"].astype(bool)
    return frame.sort_values(["experiment", "dataset", "model", "seed", "protocol", "metric"], kind="stable").reset_index(drop=True)


def load_paper_values(csv_path: Path | None) -> pd.DataFrame:
    """The paper's published numbers (columns `PAPER_COLUMNS`; `table` as str); empty frame if absent/None."""
    if csv_path is None or not Path(csv_path).is_file():
        return pd.DataFrame({c: pd.Series(dtype=float if c == "value" else object) for c in PAPER_COLUMNS})
    frame = pd.read_csv(csv_path, dtype={"table": str, "dataset": str, "model": str, "metric": str})
    missing = [c for c in PAPER_COLUMNS if c not in frame.columns]
    if missing:
        raise ResultError(f"{csv_path}: missing column(s) {missing}")
    frame = frame[PAPER_COLUMNS].copy()
    frame["value"] = pd.to_numeric(frame["value"], errors="raise").astype(float)
    return frame


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof=1; NaN for a single seed) and n_seeds per `GROUP_KEYS`.

    Also carries `reduced` (any run of the group reduced) and `data_note` (distinct non-empty notes joined by
    `NOTE_SEP`) so tables can say what the numbers were computed on.
    """
    if df.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)

    def distinct_notes(notes: pd.Series) -> str:
        return NOTE_SEP.join(sorted({n for n in notes if isinstance(n, str) and n}))

    grouped = df.groupby(GROUP_KEYS, dropna=False, sort=True)
    out = grouped.agg(
        mean=("value", "mean"),
        std=("value", lambda v: v.std(ddof=1) if len(v) > 1 else float("nan")),
        n_seeds=("seed", "nunique"),
        reduced=("reduced", "any"),
        data_note=("data_note", distinct_notes),
    ).reset_index()
    for key in ("paper_name", "label"):
        out[key] = out[key].astype(object).where(out[key].notna(), None)
    out["n_seeds"] = out["n_seeds"].astype(int)
    out["reduced"] = out["reduced"].astype(bool)
    return out[SUMMARY_COLUMNS]
