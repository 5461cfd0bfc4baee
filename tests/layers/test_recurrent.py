"""layers/recurrent.py's CPU dropout: nn.Dropout's distribution and gradient, drawn another way."""
from __future__ import annotations

import pytest
import torch

from layers.recurrent import Dropout


@pytest.mark.parametrize("p", [0.5, 0.3])
def test_the_cpu_dropout_keeps_with_probability_one_minus_p_and_scales_the_kept(p):
    torch.manual_seed(0)
    x = torch.randn(64, 30, 512, requires_grad=True)
    y = Dropout(p).train()(x)
    kept = y != 0
    assert float(kept.float().mean()) == pytest.approx(1 - p, abs=0.005)
    assert torch.equal(y[kept], x.detach()[kept] * (1.0 / (1.0 - p)))  # the kept values scaled exactly
    y.backward(torch.ones_like(y))
    assert torch.equal(x.grad, kept.float() * (1.0 / (1.0 - p)))  # the gradient is the scaled mask


def test_the_cpu_dropout_is_the_identity_in_evaluation():
    x = torch.randn(4, 5)
    assert torch.equal(Dropout(0.5).eval()(x), x)
