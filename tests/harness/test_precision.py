"""Reduced-precision compute (harness.precision): opt-in modules, losses close to float32, weights stay float32."""
from __future__ import annotations

import pytest
import torch

from conftest import make_batch
from harness.config import ArchitectureConfig, ConfigError, ExperimentConfig
from harness.precision import set_compute_precision
from twrvae.model import TWRVAE, TWRVAEOptions

ARCH = ArchitectureConfig(emb_dim=32, hidden_dim=48, z_dim=8, num_layers=1, dropout=0.0)


def toy_batch():
    return make_batch([[5, 9, 13, 40], [7, 59, 4], [33, 21, 8, 8, 17, 50, 6], [11, 12], [44, 45, 46], [30]])


def loss_of(model, batch, seed=0) -> torch.Tensor:
    torch.manual_seed(seed)
    return model.loss(batch, 0).loss


def test_bfloat16_reaches_the_encoder_and_decoder_and_float32_restores_them():
    model = TWRVAE(60, ARCH, TWRVAEOptions())
    assert set_compute_precision(model, "bfloat16") == 2
    assert model.encoder.compute_dtype is torch.bfloat16 and model.decoder.compute_dtype is torch.bfloat16
    set_compute_precision(model, "float32")
    assert model.encoder.compute_dtype is None and model.decoder.compute_dtype is None


def test_bfloat16_encoder_keeps_float32_posteriors_close_to_float32():
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
