"""Shared fixtures: tiny models and batches, and where the optional dataset mirror lives."""
from __future__ import annotations

import json

import shutil
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

SHARED_DATA = (REPO_ROOT / ".." / "shared" / "data").resolve()
FIXTURES = REPO_ROOT / "tests" / "fixtures"

needs_mirror = pytest.mark.skipif(
    not (SHARED_DATA / "ptb" / "ptb.train.txt").exists(),
    reason=f"the dataset mirror {SHARED_DATA} is absent (tests on real data need it; everything else runs without)",
)


def skip_without_bfloat16(device: torch.device | str = "cpu") -> None:
    """Skip the calling test where `device` cannot compute in bfloat16 (a CPU without AVX-512 or AMX), saying why;
    tests/harness/core/test_precision.py checks the refusal itself on every machine."""
    from harness.core.precision import bfloat16_unsupported

    reason = bfloat16_unsupported(device)
    if reason is not None:
        pytest.skip(f"bfloat16 cannot run on this machine: {reason}")


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu",
                     help="where the tests that take the `device` fixture run: cpu (default) or cuda; "
                          "`python -m benchmarks.gpu_campaign` runs them on a GPU")


def pytest_configure(config):
    config.addinivalue_line("markers", "device: takes the `device` fixture, so runs on the device given by --device")
    name = config.getoption("--device")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise pytest.UsageError(f"--device {name}: no CUDA device is available")


def pytest_collection_modifyitems(config, items):
    for item in items:  # `-m device` selects exactly the tests that run on the chosen device
        if "device" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.device)


@pytest.fixture
def device(request) -> torch.device:
    """The device of `--device` (cpu unless asked): tests taking it compare that device's results with the CPU's."""
    from harness.core.io import resolve_device

    return resolve_device(request.config.getoption("--device"))  # on a GPU: set up as the harness runs there


@pytest.fixture(scope="module")
def ptb_sample(tmp_path_factory) -> Path:
    """The committed tiny PTB sample, preprocessed as the workflow does (once per test module)."""
    from harness.data.preprocess import preprocess_lm

    root = tmp_path_factory.mktemp("ptb")
    shutil.copytree(FIXTURES / "ptb_tiny", root / "raw" / "ptb")
    preprocess_lm("ptb", root / "raw", root / "processed")
    return root / "processed"


def tiny_run(model="twr-vae", epochs=2, device="cpu", **train):
    """A validated run config of the committed sample (ExperimentConfig: schema defaults, checks)."""
    from harness.core.config import ExperimentConfig

    return ExperimentConfig.from_mapping(tiny_config(model, epochs, device, **train)).runs()[0]


def tiny_config(model="twr-vae", epochs=2, device="cpu", **train) -> dict:
    return {
        "device": device,
        "models": [model],
        "data_options": {"ptb": {"max_train_sentences": 120, "max_test_sentences": 30}},
        "architecture": {"emb_dim": 16, "hidden_dim": 16, "z_dim": 4},
        "train": {"epochs": epochs, "batch_size": 16, "lr": 0.003, **train},
        "evaluate": {"iw_samples": 6, "iw_chunk": 4, "batch_size": 16, "mi_samples": 2},
        "model_defs": {"twr-vae": {"method": "twr-vae", "paper_name": "TWR-VAE"},
                       "basic": {"method": "vae-rnn"},
                       "sa": {"method": "sa-vae", "options": {"svi_steps": 3}}},
    }


def slow_updates(monkeypatch) -> dict:
    """A fake clock on which each update takes 1 s (8 updates an epoch here): deterministic whatever the machine."""
    from harness.train import training as train_module

    clock = {"now": 0.0}
    real_step = train_module.Optimisation.minimise

    def slow_step(self, *args, **kwargs):
        clock["now"] += 1.0
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(train_module.Optimisation, "minimise", slow_step)
    monkeypatch.setattr(train_module.time, "monotonic", lambda: clock["now"])
    return clock


# the tiny instances of a method that the contract check builds (harness.methods.check_method), shared with the tests
from harness.methods.check_method import make_batch, make_dialogue_batch, tiny_dialogue_model, tiny_model  # noqa: E402,F401


def recording_optimisation(model, cfg, label=lambda name: name.split(".")[0]):
    """An Optimisation of `model` that records, per `minimise` call, (step, groups stepped, the labels of the
    parameters that call changed); `label` names a parameter from its name (default: its top-level sub-module)."""
    from harness.train.optim import Optimisation

    class RecordingOptimisation(Optimisation):
        def minimise(self, per_sentence_loss, step, groups=None):
            before = {name: p.detach().clone() for name, p in model.named_parameters()}
            value = super().minimise(per_sentence_loss, step, groups)
            self.calls.append((step, groups, {label(name) for name, p in model.named_parameters()
                                              if not torch.equal(before[name], p.detach())}))
            return value

    optimisation = RecordingOptimisation(model.parameter_groups(), cfg)
    optimisation.calls = []
    return optimisation


def assert_greedy_generation(model, batch, num_samples: int = 4, max_len: int = 7):
    """`generate` gives num_samples responses per context, each cut right before its </s> (id 3)."""
    tokens, lengths = model.generate(batch, num_samples=num_samples, max_len=max_len)
    assert tokens.shape == (batch.size, num_samples, max_len) and lengths.shape == (batch.size, num_samples)
    assert ((lengths >= 0) & (lengths <= max_len)).all()
    for row, length in zip(tokens.view(-1, max_len), lengths.view(-1)):
        assert 3 not in row[:length].tolist()  # </s> ends a response
        if length < max_len:
            assert row[length] == 3


def write_metrics(folder: Path, model: str, seed: int, metrics: dict, *, paper_name: str | None = None,
                  reduced: bool = False, note: str = "", dataset: str = "ptb", paper_tables=("2",), **fields) -> Path:
    """A minimal `folder/<model>/seed<k>/metrics.json` following docs/results_format.md (`fields`: more keys)."""
    record = {"schema_version": 1, "experiment": "unit", "dataset": dataset, "model": model, "method": model,
              "paper_name": paper_name, "paper_tables": list(paper_tables), "seed": seed,
              "data": {"reduced": reduced, "note": note}, "metrics": metrics, **fields}
    path = Path(folder) / model / f"seed{seed}" / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def compile_on_article_page(folder: Path, table: str) -> str:
    """pdflatex -halt-on-error on an article page that \\input{}s `folder/table` (booktabs, array); asserts it
    compiled and returns the log, so a caller can also check for overfull boxes. Skip first where pdflatex is absent."""
    import subprocess

    (folder / "page.tex").write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{array}\n"
                                     "\\begin{document}\n\\input{" + table + "}\n\\end{document}\n")
    compiled = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "page.tex"], cwd=folder,
                              capture_output=True, text=True, timeout=120)
    assert compiled.returncode == 0, (table, compiled.stdout[-2000:])
    return (folder / "page.log").read_text()
