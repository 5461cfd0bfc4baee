"""Optimisation: which gradients the clipping norm covers when a method steps one group of its parameters."""
import pytest
import torch

from harness.core.config import TrainConfig
from harness.train.optim import Optimisation


def two_groups():
    encoder, decoder = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    cfg = TrainConfig(optimizer="sgd", lr=1.0, weight_decay=0.0, grad_clip=1.0, loss_reduction="sum")
    optimisation = Optimisation({"encoder": [encoder], "decoder": [decoder]}, cfg)
    loss = lambda: 3.0 * encoder + 4.0 * decoder  # gradients 3 and 4: the whole model's norm is 5  # noqa: E731
    return encoder, decoder, optimisation, loss


def test_clipping_covers_the_stepped_group_only_by_default():
    encoder, decoder, optimisation, loss = two_groups()
    optimisation.minimise(loss(), 0, groups=("encoder",))
    assert encoder.item() == pytest.approx(-1.0)  # 3 clipped to norm 1 on its own
    assert decoder.item() == 0.0


def test_clip_all_scales_the_stepped_group_by_the_whole_models_norm():
    encoder, decoder, optimisation, loss = two_groups()
    optimisation.minimise(loss(), 0, groups=("encoder",), clip_all=True)
    assert encoder.item() == pytest.approx(-3.0 / 5.0)  # 3 scaled by 1/5, as He et al.'s clip over vae.parameters()
    assert decoder.item() == 0.0  # its gradient counted in the norm, not stepped
