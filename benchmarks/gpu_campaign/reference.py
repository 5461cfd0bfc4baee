"""Take what a GPU window returned into `results/reference/<device>/` and render Table 2 from it.

    python -m benchmarks.gpu_campaign.reference BUNDLE.tar.gz [BUNDLE ...] [--into results/reference]

The bundles (`--bundle` of the campaign; a later one holds the earlier phases too) are merged. Written, small JSON
only: `phase{1,2,3}.json` (logs stay in the bundle: they hold the GPU machine's paths), and for every phase-3 run
that finished `ptb/<model>/seed1/{metrics.json,train_log.json}`; then `table2.tex` / `table2.csv` from those
metrics files (harness.report.aggregate), with the paper's numbers beside ours and a caption naming the device, the
wall-clock budget and the epochs each method reached.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from harness.report import aggregate
from harness.core.config import REPO_ROOT
from harness.core.io import write_json_atomic
from harness.report.tables import latex_escape

PAPER_VALUES = REPO_ROOT / ".." / "shared" / "paper" / "tables.csv"


def merged_bundles(bundles: list[Path], scratch: Path) -> Path:
    """The campaign's output folder, the bundles extracted over each other in order."""
    roots = set()
    for bundle in bundles:
        with tarfile.open(bundle) as archive:
            archive.extractall(scratch, filter="data")
            roots.update(name.split("/")[0] for name in archive.getnames())
    if len(roots) != 1:
        raise ValueError(f"the bundles hold {sorted(roots)}: expected one campaign output folder")
    return scratch / roots.pop()


def provenance_caption(phase3: dict) -> str:
    budget, runs = phase3["budget"], phase3["runs"]
    reached = ", ".join(
        f"{latex_escape(run['paper_name'] or model)} {run['epochs_completed']}"
        + (" (+ part of one)" if (run.get("stopped_early") or {}).get("partial_epoch") else "")
        for model, run in runs.items() if run.get("epochs_completed") is not None)
    failed = ", ".join(f"{latex_escape(model)} ({latex_escape(run['status'])})"
                       for model, run in runs.items() if run["status"] != "ok")
    planned = sorted({run["epochs_planned"] for run in runs.values()})
    text = (f"Reference runs of the GPU campaign on {latex_escape(phase3['device']['name'])} "
            f"({phase3['created'][:10]}, seed 1, {latex_escape(phase3['data_source'])}): "
            f"{latex_escape(phase3['config_file'])}'s recipe, all methods trained at once on the one device for "
            f"{budget['train_seconds']:.0f} s of wall-clock each, stopping at that budget or at the config's "
            f"{'/'.join(map(str, planned))} epochs; epochs reached: {reached}.")
    if failed:
        text += f" Not finished: {failed}."
    return text


def import_reference(bundles: list[Path], into: Path, paper: Path | None = PAPER_VALUES) -> Path:
    with tempfile.TemporaryDirectory(prefix="textvae-reference-") as scratch:
        out = merged_bundles(bundles, Path(scratch))
        phases = {n: json.loads((out / f"phase{n}.json").read_text()) for n in (1, 2, 3)
                  if (out / f"phase{n}.json").is_file()}
        if not phases:
            raise ValueError(f"no phase JSON in {', '.join(map(str, bundles))}")
        slugs = {record["device_slug"] for record in phases.values()}
        if len(slugs) != 1:
            raise ValueError(f"the phases were measured on different devices: {sorted(slugs)}")
        dest = into / slugs.pop()
        for number, record in phases.items():
            for run in record.get("runs", {}).values():
                run.pop("log_tail", None)  # holds the GPU machine's paths; the whole log is in the bundle
            write_json_atomic(dest / f"phase{number}.json", record)
        metrics = []
        for model, run in phases.get(3, {}).get("runs", {}).items():
            if run["status"] != "ok":
                continue
            target = dest / "ptb" / model / "seed1"
            target.mkdir(parents=True, exist_ok=True)
            for name in ("metrics.json", "train_log.json"):
                shutil.copyfile(out / "phase3" / model / name, target / name)
            metrics.append(target / "metrics.json")
    if metrics:
        arguments = ["--results", *map(str, metrics), "--out-csv", str(dest / "table2.csv"), "--out-tex",
                     str(dest / "table2.tex"), "--table", "2", "--caption-extra", provenance_caption(phases[3])]
        if paper is not None and paper.is_file():
            arguments += ["--paper", str(paper)]
        if aggregate.main(arguments) != 0:
            raise ValueError(f"Table 2 could not be rendered from {dest}")
    return dest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--into", type=Path, default=REPO_ROOT / "results" / "reference")
    parser.add_argument("--paper", type=Path, default=PAPER_VALUES, help="the paper's numbers (tables.csv)")
    args = parser.parse_args(argv)
    try:
        dest = import_reference(args.bundles, args.into, args.paper)
    except (OSError, ValueError, tarfile.TarError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {dest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
