"""Reduced-precision compute for the costly part of a model (config `train.precision`, `evaluate.precision`).

A module opts in by having a `compute_dtype` attribute (None = float32), as `layers.recurrent.TimestepEncoder` does
for its RNN and `layers.recurrent.LatentDecoder` for its RNN (bf16 autocast) and V-wide output layer (bf16 matmul
operands; in training the softmax is written in bf16 from the bf16 logits: layers.output_layer); the harness sets it,
so methods need no config of their own. Weights, optimiser state, the posterior heads, KL terms and the losses'
sums stay float32. bfloat16 pays off where the hardware multiplies it
natively (AMX / AVX512-BF16 on recent x86 CPUs, tensor cores on GPUs); elsewhere it is emulated and slower.
"""
from __future__ import annotations

import torch
from torch import nn

PRECISIONS: dict[str, torch.dtype | None] = {"float32": None, "bfloat16": torch.bfloat16}


def set_compute_precision(model: nn.Module, precision: str) -> int:
    """Set the compute dtype of every opting-in submodule of `model`; returns how many there are."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got '{precision}'")
    modules = [module for module in model.modules() if hasattr(module, "compute_dtype")]
    if precision != "float32" and not modules:
        raise ValueError(f"precision '{precision}' was asked for, but {type(model).__name__} has no module that "
                         "supports it (a `compute_dtype` attribute); use precision: float32 for this model")
    for module in modules:
        module.compute_dtype = PRECISIONS[precision]
    return len(modules)
