"""Run the GPU campaign (see benchmarks/gpu_campaign/__init__.py and docs/gpu_campaign.md).

    python -m benchmarks.gpu_campaign --device cuda [--phases 1,2,3] [--out .campaign/out] [--bundle FILE]
    python -m benchmarks.gpu_campaign --device cpu --tiny --out /tmp/x

Writes phase<N>.json per phase into --out (and phase3/<model>/ run folders), each with the device, versions and
timings; with --bundle, a .tar.gz of --out without checkpoints is rewritten after every phase and every finished
run, so a command killed at its time limit still returns what it measured.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tarfile
import time
from pathlib import Path

import torch

from benchmarks.gpu_campaign import paper_runs, speed
from benchmarks.gpu_campaign.correctness import run_correctness
from benchmarks.gpu_campaign.plan import Plan, PlanError
from benchmarks.gpu_campaign.prepare import default_folder
from harness.core.config import REPO_ROOT
from harness.core.io import atomic_write, code_version, now_iso, resolve_device, write_json_atomic

PHASES = {1: "correctness", 2: "speed", 3: "paper_runs"}


def describe_device(device: torch.device) -> dict:
    """What the numbers were measured on."""
    info = {"type": device.type, "torch": torch.__version__, "platform": platform.platform(),
            "python": platform.python_version(), "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info.update({"name": properties.name, "memory_gib": round(properties.total_memory / 2**30, 1),
                     "multiprocessors": properties.multi_processor_count,
                     "capability": f"{properties.major}.{properties.minor}", "cuda": torch.version.cuda,
                     "cudnn": torch.backends.cudnn.version()})
    else:
        from harness.core.machine import cpu_model, cpuinfo

        info["name"] = cpu_model(cpuinfo())
    return info


def device_slug(info: dict) -> str:
    """A folder name for the device: 'nvidia-h100-80gb-hbm3', 'cpu'."""
    if info["type"] != "cuda":
        return "cpu"
    return "".join(c if c.isalnum() else "-" for c in info["name"].lower()).strip("-")


def write_bundle(out: Path, bundle: Path | None) -> None:
    """A .tar.gz of `out`'s small files (no checkpoints), written atomically."""
    if bundle is None:
        return

    def write(tmp: Path) -> None:
        with tarfile.open(tmp, "w:gz") as archive:
            for path in sorted(out.rglob("*")):
                if path.is_file() and path.suffix != ".pt" and ".tmp" not in path.name:
                    archive.add(path, arcname=str(Path(out.name) / path.relative_to(out)))

    atomic_write(bundle, write)


def parse_phases(text: str) -> list[int]:
    phases = sorted({int(part) for part in text.split(",") if part.strip()})
    unknown = [p for p in phases if p not in PHASES]
    if unknown or not phases:
        raise argparse.ArgumentTypeError(f"phases are 1, 2 and 3 (comma-separated), got '{text}'")
    return phases


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default), cpu or auto")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes and the PTB sample (minutes on a CPU; CI)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / ".campaign" / "out")
    parser.add_argument("--prepared", type=Path, default=None,
                        help="folder written by benchmarks.gpu_campaign.prepare (default: .campaign/prepared, with "
                             "--tiny .campaign/prepared-tiny, which is prepared on the spot if absent)")
    parser.add_argument("--phases", type=parse_phases, default=[1, 2, 3], help="e.g. 1,2 (default: 1,2,3)")
    parser.add_argument("--models", default=None, help="phase 3's models, comma-separated (default: all planned)")
    parser.add_argument("--phase3-seconds", type=float, default=None,
                        help=f"phase 3's wall-clock allowance (default {paper_runs.FULL.total_seconds:.0f}, "
                             f"tiny {paper_runs.TINY.total_seconds:.0f})")
    parser.add_argument("--phase1-timeout", type=float, default=300.0)
    parser.add_argument("--keep-going", action="store_true", help="run later phases even after a failed phase 1")
    parser.add_argument("--bundle", type=Path, default=None, help=".tar.gz of --out, refreshed as results come")
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    prepared = args.prepared or default_folder(args.tiny)
    try:
        if args.tiny and not (prepared / "plan.json").exists():
            from benchmarks.gpu_campaign.prepare import prepare

            prepare(prepared, tiny=True)
        plan = Plan.load(prepared, args.tiny)
        models = args.models.split(",") if args.models else plan.models
        for model in models:
            plan.run(model, device.type)  # unknown model: PlanError now, not in phase 3
    except PlanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    info = describe_device(device)
    print(f"campaign on {info['name']} ({device}), phases {args.phases}, out {out}", file=sys.stderr, flush=True)
    provenance = {"device": info, "device_slug": device_slug(info), "tiny": args.tiny,
                  "code_version": code_version(), "prepared_code_version": plan.raw["code_version"]}

    status = {}
    for phase in args.phases:
        started = time.perf_counter()
        print(f"--- phase {phase}: {PHASES[phase]}", file=sys.stderr, flush=True)
        if status.get(1) == "failed" and not args.keep_going:
            record = {"status": "skipped", "reason": "phase 1 failed (pass --keep-going to run it anyway)"}
        elif phase == 1:
            record = run_correctness(device.type, out, args.phase1_timeout)
        elif phase == 2:
            record = speed.run_speed(plan, device, speed.TINY if args.tiny else speed.FULL)
        else:
            sizes = paper_runs.TINY if args.tiny else paper_runs.FULL
            if args.phase3_seconds is not None:
                sizes = dataclasses.replace(sizes, total_seconds=args.phase3_seconds, kill_after_seconds=(
                    None if sizes.kill_after_seconds is None else args.phase3_seconds + 60))
            phase2 = out / "phase2.json"
            measured = json.loads(phase2.read_text()) if phase2.is_file() else None
            if measured is not None and (measured.get("status") != "passed" or measured["device"] != info):
                measured = None  # not a measurement of this device: the budget falls back to its default share
            record = paper_runs.run_paper_runs(plan, models, device.type, out / "phase3", sizes, measured,
                                               os.cpu_count() or 1, on_progress=lambda: write_bundle(out, args.bundle))
        record = {"phase": phase, "name": PHASES[phase], **record, **provenance, "wall_seconds":
                  time.perf_counter() - started, "created": now_iso()}
        write_json_atomic(out / f"phase{phase}.json", record)
        write_bundle(out, args.bundle)
        status[phase] = record["status"]
        print(f"phase {phase}: {record['status']}" + (f" ({record['reason']})" if record.get("reason") else ""),
              file=sys.stderr, flush=True)
    return 0 if all(value in ("passed", "skipped") for value in status.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
