"""Prepare the folder the GPU campaign reads (run here, where the project is installed; it needs no GPU).

    python -m benchmarks.gpu_campaign.prepare [--out .campaign/prepared] [--models twr-vae,vae-lstm,...]
    python -m benchmarks.gpu_campaign.prepare --tiny --out DIR      # the 200-sentence sample, tiny sizes (CI)

Full: PTB is fetched (the configured mirror, else its upstream URL; sha256-checked) and preprocessed exactly as the
workflow does, and `config/paper.yaml` is validated against the schema and resolved into one run config per model
(seed 1). Tiny: the committed PTB sample and the same configs with tiny layer sizes and few importance samples.
The folder (about 6 MB for full PTB) is what travels to the GPU machine (`carry`); see docs/gpu_campaign.md.
"""
from __future__ import annotations

import argparse
import copy
import shutil
import sys
import tempfile
from pathlib import Path


from benchmarks.gpu_campaign.plan import PLAN, PLAN_VERSION
from harness.core.config import REPO_ROOT, ExperimentConfig, layered_config
from harness.data.fetch import fetch_dataset, sha256_file
from harness.data.preprocess import preprocess_lm
from harness.core.io import code_version, now_iso, write_json_atomic

PAPER_CONFIG = REPO_ROOT / "config" / "paper.yaml"
#: Table 2's PTB rows that phase 3 trains: TWR-VAE first, then the baselines
MODELS = ("twr-vae", "vae-lstm", "bn-vae", "cyc-vae", "lag-vae", "sa-vae")
DATASET = "ptb"
#: --tiny: the paper's recipe with layer sizes, batches and importance samples small enough for a CI run
TINY_SETTINGS = {
    "architecture": {"emb_dim": 16, "hidden_dim": 16, "z_dim": 4, "num_layers": 1, "dropout": 0.5},
    "train": {"batch_size": 16},
    "evaluate": {"iw_samples": 10, "iw_chunk": 5, "batch_size": 16, "mi_samples": 2},
}


def resolved_runs(config: dict, models: list[str], tiny: bool) -> dict[str, dict]:
    """Run configs (seed 1 on PTB) of `models`, validated against the schema (with --tiny settings)."""
    config = copy.deepcopy(config)
    config["models"] = list(models)
    config["datasets"] = [DATASET]
    if tiny:
        config["experiment"] = f"{config['experiment']}-tiny"
        for section, values in TINY_SETTINGS.items():
            config[section] = {**config.get(section, {}), **values}
    experiment = ExperimentConfig.from_mapping(config)
    return {model: experiment.run_config(DATASET, model, 1).to_dict() for model in models}


def paper_rows(paper_csv: Path | None, runs: dict[str, dict]) -> list[dict]:
    """The paper's Table 2 PTB numbers of the planned models (empty when the CSV is absent)."""
    from harness.report.results import load_paper_values, paper_dataset_name

    frame = load_paper_values(paper_csv)
    names = {run["model"]["paper_name"] for run in runs.values()}
    chosen = frame[(frame["table"] == "2") & (frame["dataset"] == paper_dataset_name(DATASET))
                   & frame["model"].isin(names)].drop_duplicates()
    return chosen.to_dict("records")


def prepare_data(config: dict, out: Path, tiny: bool) -> str:
    """Processed PTB in `out` (train/valid/test.txt, vocab.txt, stats.json); returns where it came from."""
    with tempfile.TemporaryDirectory(prefix="textvae-campaign-") as scratch:
        raw = Path(scratch) / "raw"
        if tiny:
            shutil.copytree(REPO_ROOT / "tests" / "fixtures" / "ptb_tiny", raw / DATASET)
            source = "tests/fixtures/ptb_tiny (the committed 200-sentence PTB sample)"
        else:
            mirror = config.get("data_mirror")
            mirror = (REPO_ROOT / mirror) if mirror else None
            fetch_dataset(DATASET, raw, mirror, allow_download=True, only=["train", "valid", "test"])
            source = "full PTB (Mikolov's split), sha256-verified"
        max_vocab = config.get("data_options", {}).get(DATASET, {}).get("max_vocab")
        preprocess_lm(DATASET, raw, out, max_vocab or None)
    return source


def prepare(out: Path, tiny: bool = False, models: tuple[str, ...] = MODELS, config_path: Path = PAPER_CONFIG) -> dict:
    """Write the prepared folder `out`; returns the plan."""
    out = Path(out)
    config = layered_config(config_path)  # the file over its base (config/paper.yaml stands alone)
    runs = resolved_runs(config, list(models), tiny)
    source = prepare_data(config, out / "data" / DATASET, tiny)
    paper_csv = config.get("paper_values")
    plan = {
        "plan_version": PLAN_VERSION,
        "tiny": tiny,
        "config_file": str(config_path.relative_to(REPO_ROOT)),
        "config_sha256": sha256_file(config_path),
        "settings": ("the paper config with " + "; ".join(f"{k}: {v}" for k, v in TINY_SETTINGS.items())) if tiny
                    else "the paper config as it is",
        "dataset": DATASET,
        "data": f"data/{DATASET}",
        "data_source": source,
        "runs": runs,
        "paper_values": paper_rows(REPO_ROOT / paper_csv if paper_csv else None, runs),
        "code_version": code_version(),
        "created": now_iso(),
    }
    write_json_atomic(out / PLAN, plan)  # last: its presence marks a complete folder
    return plan


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None,
                        help="default: .campaign/prepared (tiny: .campaign/prepared-tiny)")
    parser.add_argument("--tiny", action="store_true", help="the committed PTB sample and tiny sizes (for CI)")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated model_defs of the paper config "
                                                                    f"(default: {','.join(MODELS)})")
    args = parser.parse_args(argv)
    out = args.out or default_folder(args.tiny)
    plan = prepare(out, args.tiny, tuple(args.models.split(",")))
    size = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    print(f"prepared {out}: {plan['data_source']}, runs {', '.join(plan['runs'])}; {size / 2**20:.1f} MiB "
          f"(the GPU machine takes at most 64 MiB with the working tree)", file=sys.stderr)
    return 0


def default_folder(tiny: bool) -> Path:
    return REPO_ROOT / ".campaign" / ("prepared-tiny" if tiny else "prepared")


if __name__ == "__main__":
    raise SystemExit(main())
