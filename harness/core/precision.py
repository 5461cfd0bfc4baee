"""Reduced-precision compute for the costly part of a model (config `train.precision`, `evaluate.precision`).

A module opts in by having a `compute_dtype` attribute (None = float32), as `layers.recurrent.TimestepEncoder` does
for its RNN and `layers.recurrent.LatentDecoder` for its RNN (bf16 autocast) and V-wide output layer (bf16 matmul
operands; in training the softmax is written in bf16 from the bf16 logits: layers.output_layer), and the dialogue
layers (layers.dialogue: the utterance and context encoders' GRUs, ResponseDecoder, which shares LatentDecoder's
output layer, and the bag-of-words head) the same way; the harness sets it, so methods need no config of their own.
Weights, optimiser state, the posterior heads, KL terms and the losses' sums stay float32. bfloat16 pays off where
the hardware multiplies it natively (AMX / AVX512-BF16 on recent x86 CPUs, tensor cores on GPUs). A CPU without
AVX-512 has no oneDNN bf16 kernels at all: there PyTorch cannot run an LSTM in bf16 ("could not create a primitive
descriptor for the LSTM forward propagation primitive") and emulates bf16 matmuls ~30x slower than float32 (a
256 x 256 x 10k product on 2 cores of an AMD EPYC Zen 3: 686 against 24 ms), so asking for bfloat16 there is
refused up front, naming the setting and the CPU (`PrecisionUnsupported`).
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from harness.core.machine import cpu_model, cpuinfo

PRECISIONS: dict[str, torch.dtype | None] = {"float32": None, "bfloat16": torch.bfloat16}


class PrecisionUnsupported(RuntimeError):
    """The configured precision cannot run on the device the run uses."""


def bfloat16_unsupported(device: torch.device | str) -> str | None:
    """Why `device` cannot compute in bfloat16 the way the harness does; None where it can."""
    device = torch.device(device)
    if device.type == "cpu":
        return _cpu_bfloat16_unsupported()
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return f"the GPU ({torch.cuda.get_device_name(device)}) does not support bfloat16"
    return None


@functools.cache
def _cpu_bfloat16_unsupported() -> str | None:
    """PyTorch's own check of oneDNN's bf16 support where it has one, and a tiny bf16 LSTM either way (what fails
    first on such a CPU); the probe's weights are drawn with the random state saved and restored, so asking changes
    no run's random numbers."""
    cpu = cpu_model(cpuinfo())
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if check is not None and not check():
        return (f"this CPU ({cpu}) has no oneDNN bf16 kernels (they need AVX-512 or AMX): PyTorch cannot run the RNNs "
                "in bf16 here and emulates bf16 matmuls many times slower than float32")
    try:
        with torch.random.fork_rng(devices=[]), torch.autocast("cpu", dtype=torch.bfloat16):
            nn.LSTM(4, 4)(torch.zeros(1, 1, 4))
    except RuntimeError as error:
        return f"this CPU ({cpu}) cannot run an LSTM in bf16 (PyTorch: {str(error).splitlines()[0]})"
    return None


def require_supported(precision: str, device: torch.device | str, setting: str) -> None:
    """Raise PrecisionUnsupported, naming `setting` (the config key), if `precision` cannot run on `device`."""
    reason = bfloat16_unsupported(device) if precision == "bfloat16" else None
    if reason is not None:
        raise PrecisionUnsupported(f"{setting}: bfloat16 was asked for, but {reason}. Use {setting}: float32 on this "
                                   "machine (bfloat16 needs AVX-512 or AMX on a CPU, or a GPU with bf16)")


def set_compute_precision(model: nn.Module, precision: str, setting: str = "precision") -> int:
    """Set the compute dtype of every opting-in submodule of `model`; returns how many there are. Refuses
    (PrecisionUnsupported, naming the config key `setting`) a precision the model's device cannot run."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got '{precision}'")
    modules = [module for module in model.modules() if hasattr(module, "compute_dtype")]
    if precision != "float32" and not modules:
        raise ValueError(f"precision '{precision}' was asked for, but {type(model).__name__} has no module that "
                         "supports it (a `compute_dtype` attribute); use precision: float32 for this model")
    if modules:
        parameter = next(model.parameters(), None)
        require_supported(precision, parameter.device if parameter is not None else "cpu", setting)
    for module in modules:
        module.compute_dtype = PRECISIONS[precision]
    return len(modules)
