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
    from harness.io import resolve_device

    return resolve_device(request.config.getoption("--device"))  # on a GPU: set up as the harness runs there


@pytest.fixture(scope="module")
def ptb_sample(tmp_path_factory) -> Path:
    """The committed tiny PTB sample, preprocessed as the workflow does (once per test module)."""
    from harness.data.preprocess import preprocess_lm

    root = tmp_path_factory.mktemp("ptb")
    shutil.copytree(FIXTURES / "ptb_tiny", root / "raw" / "ptb")
    preprocess_lm("ptb", root / "raw", root / "processed")
    return root / "processed"


def make_batch(rows: list[list[int]]):
    """A Batch from word-id rows (ids >= 4), adding <s>=2 and </s>=3 and padding with 0."""
    from harness.data.lm_dataset import Batch

    seqs = [[2, *row, 3] for row in rows]
    width = max(len(s) for s in seqs)
    tokens = torch.tensor([s + [0] * (width - len(s)) for s in seqs], dtype=torch.long)
    return Batch(tokens=tokens, lengths=torch.tensor([len(s) for s in seqs], dtype=torch.long))


def tiny_model(method: str = "twr-vae", vocab_size: int = 12, z_dim: int = 4, **options):
    from harness.config import ArchitectureConfig
    from harness.methods import get_method

    torch.manual_seed(0)
    arch = ArchitectureConfig(emb_dim=8, hidden_dim=16, z_dim=z_dim, num_layers=1, dropout=0.0)
    return get_method(method).build(vocab_size, arch, options)


def make_dialogue_batch(dialogues: list[tuple[list[list[int]], list[int]]], floors=None):
    """A dialogue batch from (context utterances as word-id rows, response row) pairs; ids >= 4.

    Utterances are wrapped in <s>=2 ... </s>=3 and padded with 0; absent context slots have length 0.
    """
    from types import SimpleNamespace

    j = max(len(context) for context, _ in dialogues)
    u = max(len(utt) + 2 for context, _ in dialogues for utt in context)
    b = len(dialogues)
    context = torch.zeros(b, j, u, dtype=torch.long)
    context_lengths = torch.zeros(b, j, dtype=torch.long)
    for i, (utts, _) in enumerate(dialogues):
        for k, utt in enumerate(utts):
            row = [2, *utt, 3]
            context[i, k, : len(row)] = torch.tensor(row)
            context_lengths[i, k] = len(row)
    responses = [[2, *response, 3] for _, response in dialogues]
    width = max(len(r) for r in responses)
    response = torch.tensor([r + [0] * (width - len(r)) for r in responses], dtype=torch.long)
    if floors is None:
        floors = torch.tensor([[k % 2 for k in range(j)] for _ in dialogues], dtype=torch.long)
    return SimpleNamespace(context=context, context_lengths=context_lengths,
                           num_utterances=torch.tensor([len(c) for c, _ in dialogues]), floors=floors,
                           response=response, response_lengths=torch.tensor([len(r) for r in responses]),
                           size=b)


def tiny_dialogue_model(method: str = "cvae", vocab_size: int = 12, **options):
    from harness.methods import get_method

    import dataclasses

    torch.manual_seed(0)
    cls = get_method(method)
    sizes = dict(emb_dim=8, hidden_dim=6, z_dim=3, dropout=0.0)
    if "kl_warmup_steps" in {field.name for field in dataclasses.fields(cls.Options)}:
        sizes["kl_warmup_steps"] = 0  # no annealing in the tiny models, for methods that have a KL term
    return cls.build(vocab_size, None, {**sizes, **options})


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
