"""Every registered language-modelling method runs on the device under test as on the CPU: the same function of the
same weights (evaluation), and a training update that stays on the device (no tensor made on the wrong one)."""
from __future__ import annotations

import copy

import pytest
import torch

from conftest import make_batch, tiny_model
from harness.core.config import TrainConfig
from harness.train.optim import Optimisation
from harness.methods.lookup import registered_methods

BATCH = make_batch([[4, 5, 6, 7, 8], [9, 10, 29], [11, 12, 13, 14, 15, 16, 17, 18], [20], [21, 22, 23, 24]])


def posterior_with_seed(model, batch, seed):
    torch.manual_seed(seed)  # methods that draw inside the posterior (SA-VAE's SVI) use the global RNG
    with torch.no_grad():
        return model.posterior(batch)


@pytest.mark.parametrize("method", registered_methods("lm"))
def test_evaluation_on_the_device_computes_what_the_cpu_computes(method, device):
    model = tiny_model(method, vocab_size=30).eval()
    twin = copy.deepcopy(model).to(device)
    batch = BATCH.to(device)
    z = torch.randn(3, BATCH.size, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(twin.log_likelihood(batch, z.to(device)).cpu(), model.log_likelihood(BATCH, z),
                                   rtol=1e-5, atol=1e-4)
        terms = twin.paper_protocol_terms(batch)
    assert all(torch.isfinite(t).all() for t in (terms.recon, terms.kl, terms.mi_mu, terms.mi_logvar))
    mu, logvar = posterior_with_seed(twin, batch, 0)
    assert mu.device.type == device.type and torch.isfinite(mu).all() and torch.isfinite(logvar).all()
    if all(torch.equal(a, b) for a, b in zip(posterior_with_seed(model, BATCH, 0), posterior_with_seed(model, BATCH, 1))):
        # a deterministic posterior: the same on both devices (a stochastic one, SA-VAE's, draws other noise there)
        for on_device, on_cpu in zip((mu, logvar), posterior_with_seed(model, BATCH, 0)):
            torch.testing.assert_close(on_device.cpu(), on_cpu, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", registered_methods("lm"))
def test_a_training_update_runs_on_the_device(method, device):
    model = tiny_model(method, vocab_size=30).to(device).train()
    batch = BATCH.to(device)
    optimisation = Optimisation(model.parameter_groups(), TrainConfig(lr=0.01))
    optimisation.random_batch = lambda: batch  # inner-loop methods (Lagging VAE) draw more training batches
    before = copy.deepcopy(model.state_dict())
    terms = model.training_step(batch, 0, optimisation)
    assert torch.isfinite(terms.loss).all() and terms.loss.device.type == device.type
    model.on_epoch_end(1, lambda: iter([batch]))
    changed = [name for name, value in model.state_dict().items() if not torch.equal(value, before[name])]
    assert any("decoder" in name for name in changed) and any("encoder" in name for name in changed)
