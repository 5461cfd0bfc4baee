"""The prepared folder the campaign reads: processed PTB, the resolved run configs, the paper's numbers.

`prepare` writes it on a machine with the project installed (configs are validated against the schema there);
the campaign only reads it, so the GPU image needs no jsonschema. Layout:

    <prepared>/plan.json        the plan: run configs per model, paper values, provenance
    <prepared>/data/ptb/        train.txt valid.txt test.txt vocab.txt stats.json (harness.data.preprocess)
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.core.config import REPO_ROOT, RunConfig
from harness.data.fetch import sha256_file

PLAN = "plan.json"
PLAN_VERSION = 1


class PlanError(RuntimeError):
    """The prepared folder is missing, incomplete or made for the other size (tiny / full)."""


@dataclass(frozen=True)
class Plan:
    folder: Path
    raw: dict

    @classmethod
    def load(cls, folder: Path, tiny: bool) -> "Plan":
        path = Path(folder) / PLAN
        command = f"python -m benchmarks.gpu_campaign.prepare{' --tiny' if tiny else ''} --out {folder}"
        if not path.is_file():
            raise PlanError(f"{path} does not exist: prepare it first, where the project is installed: {command}")
        raw = json.loads(path.read_text())
        if raw.get("plan_version") != PLAN_VERSION:
            raise PlanError(f"{path} is of plan version {raw.get('plan_version')}, not {PLAN_VERSION}: {command}")
        if raw["tiny"] != tiny:
            raise PlanError(f"{path} was prepared {'with' if raw['tiny'] else 'without'} --tiny: {command}")
        config = REPO_ROOT / raw["config_file"]
        if config.is_file() and sha256_file(config) != raw["config_sha256"]:
            raise PlanError(f"{raw['config_file']} changed since {path} was prepared: prepare it again: {command}")
        plan = cls(Path(folder), raw)
        missing = [name for name in ("train.txt", "valid.txt", "test.txt", "vocab.txt", "stats.json")
                   if not (plan.data_dir / name).is_file()]
        if missing:
            raise PlanError(f"{plan.data_dir} lacks {missing}: {command}")
        return plan

    @property
    def data_dir(self) -> Path:
        return self.folder / self.raw["data"]

    @property
    def models(self) -> list[str]:
        return list(self.raw["runs"])

    def run(self, model: str, device: str) -> RunConfig:
        """The prepared run config of `model`, on `device`."""
        if model not in self.raw["runs"]:
            raise PlanError(f"model '{model}' is not in the plan (prepared: {self.models})")
        return RunConfig.from_dict({**self.raw["runs"][model], "device": device})
