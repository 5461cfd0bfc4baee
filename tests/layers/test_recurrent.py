"""layers/recurrent.py: the CPU dropout (nn.Dropout's distribution and gradient, drawn another way) and the output
layer's block rule."""
from __future__ import annotations

import pytest
import torch

from layers import recurrent
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


def test_the_output_layer_makes_its_logits_in_cpu_sized_blocks_on_a_cpu_and_large_ones_elsewhere(monkeypatch):
    """VocabularyOutput.output_rows, the one block rule: OUTPUT_ROWS on a CPU, OUTPUT_ROWS_GPU on any other device;
    the loss (output_nll) blocks by it (SeqGAN's sampling too: tests/baselines/test_seqgan.py)."""
    decoder = recurrent.LatentDecoder(50, 8, 16, 4, 1, 0.0, "lstm")
    assert decoder.output_rows(torch.device("cpu")) == recurrent.VocabularyOutput.OUTPUT_ROWS
    assert decoder.output_rows(torch.device("cuda")) == recurrent.VocabularyOutput.OUTPUT_ROWS_GPU
    assert recurrent.VocabularyOutput.OUTPUT_ROWS != recurrent.VocabularyOutput.OUTPUT_ROWS_GPU
    seen = []

    def spy(*args, **kwargs):
        seen.append(args[5])  # linear_cross_entropy(hidden, weight, bias, targets, compute_dtype, rows, ...)
        return torch.zeros(args[0].size(0))

    monkeypatch.setattr(recurrent, "linear_cross_entropy", spy)
    monkeypatch.setattr(decoder, "OUTPUT_ROWS", 7)
    decoder.output_nll(torch.randn(10, 16), torch.randint(0, 50, (10,)))
    assert seen == [7]
