"""Reduced-precision compute (harness.core.precision): opt-in modules, losses close to float32, weights stay float32."""
from __future__ import annotations

import pytest
import torch

import harness.core.precision
from conftest import make_batch, skip_without_bfloat16, tiny_config, tiny_run
from harness.core.config import ArchitectureConfig, ConfigError, ExperimentConfig
from harness.evaluate.evaluation import evaluate_run
from harness.core.precision import PrecisionUnsupported, bfloat16_unsupported, set_compute_precision
from harness.core.runs import MODEL
from harness.train.training import train_run
from twrvae.model import TWRVAE, TWRVAEOptions

ARCH = ArchitectureConfig(emb_dim=32, hidden_dim=48, z_dim=8, num_layers=1, dropout=0.0)


def toy_batch():
    return make_batch([[5, 9, 13, 40], [7, 59, 4], [33, 21, 8, 8, 17, 50, 6], [11, 12], [44, 45, 46], [30]])


def loss_of(model, batch, seed=0) -> torch.Tensor:
    torch.manual_seed(seed)
    return model.loss(batch, 0).loss


def test_bfloat16_reaches_the_encoder_and_decoder_and_float32_restores_them():
    skip_without_bfloat16()
    model = TWRVAE(60, ARCH, TWRVAEOptions())
    assert set_compute_precision(model, "bfloat16") == 2
    assert model.encoder.compute_dtype is torch.bfloat16 and model.decoder.compute_dtype is torch.bfloat16
    set_compute_precision(model, "float32")
    assert model.encoder.compute_dtype is None and model.decoder.compute_dtype is None


def test_bfloat16_encoder_keeps_float32_posteriors_close_to_float32():
    skip_without_bfloat16()
    torch.manual_seed(0)
    model = TWRVAE(60, ARCH, TWRVAEOptions()).eval()
    batch = toy_batch()
    exact = model.encoder(batch.tokens)
    set_compute_precision(model, "bfloat16")
    reduced = model.encoder(batch.tokens)
    for a, b in zip(reduced, exact):
        assert a.dtype == torch.float32 and not torch.equal(a, b)  # computed in bf16, returned as float32
        assert torch.allclose(a, b, atol=2e-2)


def test_bfloat16_losses_are_close_to_float32_and_differ_from_them(device):
    skip_without_bfloat16(device)
    torch.manual_seed(0)
    model = TWRVAE(60, ARCH, TWRVAEOptions()).eval().to(device)
    batch = toy_batch().to(device)
    exact = loss_of(model, batch)
    set_compute_precision(model, "bfloat16")
    reduced = loss_of(model, batch)
    assert reduced.dtype == torch.float32
    assert not torch.equal(reduced, exact)  # really computed in another precision
    assert torch.allclose(reduced, exact, rtol=1e-2)


def test_bfloat16_training_keeps_float32_weights_and_gradients(device):
    skip_without_bfloat16(device)
    torch.manual_seed(0)
    model = TWRVAE(60, ARCH, TWRVAEOptions()).to(device)
    set_compute_precision(model, "bfloat16")
    loss_of(model, toy_batch().to(device)).sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.dtype == torch.float32, name
        assert parameter.grad is not None and parameter.grad.dtype == torch.float32, name
        assert torch.isfinite(parameter.grad).all(), name


def test_unknown_precision_and_unsupporting_models_are_errors():
    with pytest.raises(ValueError, match="precision must be one of"):
        set_compute_precision(TWRVAE(60, ARCH, TWRVAEOptions()), "float16")
    with pytest.raises(ValueError, match="Linear has no module that supports it"):
        set_compute_precision(torch.nn.Linear(2, 2), "bfloat16")
    assert set_compute_precision(torch.nn.Linear(2, 2), "float32") == 0


def test_the_config_rejects_an_unknown_precision():
    with pytest.raises(ConfigError, match="precision"):
        ExperimentConfig.from_mapping({"train": {"precision": "fp8"}})


UNSUPPORTED = "this CPU (Test CPU) has no oneDNN bf16 kernels (they need AVX-512 or AMX)"


@pytest.fixture
def cpu_without_bfloat16(monkeypatch):
    """As on a CPU without AVX-512 (an AMD EPYC Zen 3, say), whatever this machine is."""
    monkeypatch.setattr(harness.core.precision, "_cpu_bfloat16_unsupported", lambda: UNSUPPORTED)


def bf16_lstm_runs() -> bool:
    """What the check predicts, tried directly: an LSTM under bf16 autocast, forward and backward."""
    lstm = torch.nn.LSTM(8, 8)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            output, _ = lstm(torch.randn(3, 2, 8))
        output.float().sum().backward()
    except RuntimeError:
        return False
    return True


def test_the_bf16_check_agrees_with_whether_a_bf16_lstm_runs_on_this_cpu():
    assert (bfloat16_unsupported("cpu") is None) == bf16_lstm_runs()


def test_the_lstm_probe_alone_agrees_too_and_draws_no_random_numbers(monkeypatch):
    """With PyTorch's oneDNN query answering yes, the verdict is the probe's; asking must not move the random state
    (the harness asks after seeding, before training)."""
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    harness.core.precision._cpu_bfloat16_unsupported.cache_clear()
    try:
        torch.manual_seed(5)
        verdict = bfloat16_unsupported("cpu")
        after_asking = torch.rand(4)
        torch.manual_seed(5)
        assert torch.equal(after_asking, torch.rand(4))
        assert (verdict is None) == bf16_lstm_runs()
        assert verdict is None or "cannot run an LSTM in bf16" in verdict
    finally:
        monkeypatch.undo()
        harness.core.precision._cpu_bfloat16_unsupported.cache_clear()


def test_the_refusal_names_the_setting_the_cpu_and_the_fix(cpu_without_bfloat16):
    model = TWRVAE(60, ARCH, TWRVAEOptions())
    with pytest.raises(PrecisionUnsupported, match=r"evaluate\.precision: bfloat16 was asked for, but this CPU "
                                                   r"\(Test CPU\).*Use evaluate\.precision: float32"):
        set_compute_precision(model, "bfloat16", "evaluate.precision")
    assert model.encoder.compute_dtype is None and model.decoder.compute_dtype is None  # nothing was set
    assert set_compute_precision(model, "float32", "evaluate.precision") == 2  # float32 runs everywhere


def test_the_check_is_made_for_the_device_the_model_is_on(cpu_without_bfloat16):
    """A GPU run on a host CPU without bf16 must not be refused: the model's device is asked, not the CPU (here a
    model on the `meta` device, which the check does not judge)."""
    assert set_compute_precision(TWRVAE(60, ARCH, TWRVAEOptions()).to("meta"), "bfloat16", "train.precision") == 2
    with pytest.raises(PrecisionUnsupported):
        set_compute_precision(TWRVAE(60, ARCH, TWRVAEOptions()), "bfloat16", "train.precision")


def test_training_in_bf16_on_such_a_cpu_stops_before_reading_or_writing_anything(cpu_without_bfloat16, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(PrecisionUnsupported, match=r"train\.precision: bfloat16 was asked for, but this CPU"):
        train_run(tiny_run(precision="bfloat16"), tmp_path / "no-data-needed", out, progress=False)
    assert not out.exists()


def test_evaluating_in_bf16_on_such_a_cpu_writes_no_metrics(ptb_sample, tmp_path, monkeypatch):
    train_run(tiny_run(epochs=1), ptb_sample, tmp_path, progress=False)
    config = tiny_config(epochs=1)
    config["evaluate"]["precision"] = "bfloat16"
    run = ExperimentConfig.from_mapping(config).runs()[0]
    monkeypatch.setattr(harness.core.precision, "_cpu_bfloat16_unsupported", lambda: UNSUPPORTED)
    with pytest.raises(PrecisionUnsupported, match=r"evaluate\.precision: bfloat16 was asked for"):
        evaluate_run(tmp_path / MODEL, ptb_sample, tmp_path / "metrics.json", run, progress=False)
    assert not (tmp_path / "metrics.json").exists()
