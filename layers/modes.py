"""A module switched to evaluation mode (no dropout, running BatchNorm statistics) for a block, then back."""
from __future__ import annotations

import contextlib

from torch import nn


@contextlib.contextmanager
def eval_mode(module: nn.Module):
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)
