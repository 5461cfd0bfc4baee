"""The training step's kernel ceiling: the matmul and RNN kernels one TWR-VAE training step has to run, timed alone.

For the benchmark's own batches, at the step's exact shapes and in its compute dtype, this runs only
- the encoder's LSTM over <s> x </s> and the decoder's LSTM over <s> x (input: embedding ; z), forward and backward
  (PyTorch's oneDNN kernels, weights already in the dtype: no autocast casts);
- the V-wide output layer as the harness blocks it (layers/output_layer.py): per block of rows the logits
  [rows, H + bias column] x [H + bias column, V] and the states' gradient [rows, V] x [V, H], and the weight's
  gradient [V, rows] x [rows, H + bias column] per REDUCED_FLUSH_ROWS (bf16) or per block (float32);
- the posterior heads' three small products;
into preallocated outputs, with nothing else: no softmax, embeddings, dropout, optimiser, allocation or Python
between them beyond the loop. The training benchmark (benchmarks/measure.py) times these runners interleaved with
the steps themselves, so that both see the machine in the same state. Predicted tokens / that time is the most
tokens/s a step built on these kernels could reach on this machine -- the ceiling the issue's throughput target is
to be read against -- and the step's measured tokens/s over it is the share of the step spent in them.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from harness.core.config import ArchitectureConfig
from harness.data.lm_dataset import Batch
from layers.output_layer import REDUCED_FLUSH_ROWS, REDUCED_PAD
from layers.recurrent import LatentDecoder


PARTS = ("encoder_rnn", "decoder_rnn", "output_layer", "posterior_heads")


def _lstm_pass(lstm: nn.LSTM, inputs: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor],
               grad_outputs: torch.Tensor):
    """Forward and backward: the gradients of the inputs (the embeddings') and of the weights, none accumulated."""
    wrt = [inputs, *lstm.parameters()]

    def run():
        outputs, _ = lstm(inputs, state)
        torch.autograd.grad(outputs, wrt, grad_outputs)
    return run


def _output_layer_pass(rows: int, arch: ArchitectureConfig, vocab_size: int, dtype: torch.dtype):
    """The output layer's products for `rows` predicted tokens, blocked as layers.output_layer blocks them."""
    block, hidden = LatentDecoder.OUTPUT_ROWS, arch.hidden_dim
    reduced = dtype != torch.float32
    width = hidden + REDUCED_PAD if reduced else hidden  # the bias is a weight column in the reduced path
    flush = REDUCED_FLUSH_ROWS if reduced else block
    weight = torch.randn(vocab_size, width, dtype=dtype) * 0.01
    states = torch.randn(max(flush, block), width, dtype=dtype)
    logits = torch.empty(block, vocab_size, dtype=dtype)
    gradients = torch.randn(max(flush, block), vocab_size, dtype=dtype) * 0.01
    grad_states = torch.empty(block, hidden, dtype=dtype)
    grad_weight = torch.empty(vocab_size, width, dtype=dtype)
    weight_h = weight[:, :hidden]

    def run():
        pending = 0
        for start in range(0, rows, block):
            size = min(block, rows - start)
            torch.mm(states[:size], weight.t(), out=logits[:size])
            torch.mm(gradients[:size], weight_h, out=grad_states[:size])
            pending += size
            if pending >= flush or start + size >= rows:
                torch.mm(gradients[:pending].t(), states[:pending], out=grad_weight)
                pending = 0
    return run


def _heads_pass(rows: int, arch: ArchitectureConfig):
    heads = nn.Linear(arch.hidden_dim, 2 * arch.z_dim)
    states = torch.randn(rows, arch.hidden_dim, requires_grad=True)
    grad = torch.randn(rows, 2 * arch.z_dim)
    wrt = [states, *heads.parameters()]

    def run():
        torch.autograd.grad(heads(states), wrt, grad)
    return run


def ceiling_runners(batches: list[Batch], arch: ArchitectureConfig, vocab_size: int,
                    dtype: torch.dtype) -> dict[str, Callable[[], None]]:
    """One runner per part of the step's kernel work over all `batches` (timed by the training benchmark, interleaved
    with the steps themselves so that both see the machine in the same state)."""
    torch.manual_seed(0)
    encoder = nn.LSTM(arch.emb_dim, arch.hidden_dim).to(dtype)
    decoder = nn.LSTM(arch.emb_dim + arch.z_dim, arch.hidden_dim).to(dtype)
    parts: dict[str, list] = {name: [] for name in PARTS}
    for batch in batches:
        size, length = batch.tokens.shape
        state = tuple(torch.zeros(1, size, arch.hidden_dim, dtype=dtype) for _ in range(2))
        grad = torch.randn(length, size, arch.hidden_dim, dtype=dtype)
        encoder_inputs = torch.randn(length, size, arch.emb_dim, dtype=dtype, requires_grad=True)
        decoder_inputs = torch.randn(length - 1, size, arch.emb_dim + arch.z_dim, dtype=dtype, requires_grad=True)
        parts["encoder_rnn"].append(_lstm_pass(encoder, encoder_inputs, state, grad))
        parts["decoder_rnn"].append(_lstm_pass(decoder, decoder_inputs, state, grad[:-1]))
        parts["output_layer"].append(_output_layer_pass(batch.num_predicted_tokens(), arch, vocab_size, dtype))
        parts["posterior_heads"].append(_heads_pass(size * length, arch))  # every encoder state, as the step
    return {name: (lambda runs=runs: [run() for run in runs]) for name, runs in parts.items()}


def kernel_ceiling(seconds_per_part: dict[str, float], tokens: int, dtype: torch.dtype) -> dict:
    """The ceiling from the parts' seconds per pass over batches with `tokens` predicted tokens."""
    total = sum(seconds_per_part.values())
    return {"dtype": str(dtype).removeprefix("torch."), "seconds_per_pass": total, "seconds_per_part": seconds_per_part,
            "tokens_per_second": tokens / total, "predicted_tokens_per_pass": tokens}
