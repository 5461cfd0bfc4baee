"""The kernel ceiling runs the step's kernels at the step's shapes (counted here, not timed: timing is the
benchmark's)."""
from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.ceiling import _output_layer_pass, kernel_ceiling
from conftest import make_batch
from harness.config import ArchitectureConfig
from layers.output_layer import REDUCED_PAD

ARCH = ArchitectureConfig(emb_dim=8, hidden_dim=16, z_dim=4, num_layers=1, dropout=0.5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("rows", [1, 255, 256, 2049, 4100])
def test_the_output_layer_part_multiplies_every_row_three_times(dtype, rows):
    # forward logits, the states' gradient and the weight's gradient, each once per predicted token: no row dropped
    # or counted twice by the blocking and the flushes
    vocab = 50
    width = ARCH.hidden_dim + (REDUCED_PAD if dtype == torch.bfloat16 else 0)  # the bias column, padded
    with FlopCounterMode(display=False) as counter:
        _output_layer_pass(rows, ARCH, vocab, dtype)()
    expected = 2 * rows * vocab * (width + ARCH.hidden_dim + width)
    assert counter.get_total_flops() == expected


def test_the_ceiling_reports_each_part_and_the_tokens_they_allow():
    batches = [make_batch([[4, 5, 6], [7, 8, 9, 10, 11]]), make_batch([[5, 6], [4, 4, 4]])]
    result = kernel_ceiling(batches, ARCH, 12, torch.float32, repeats=1)
    assert set(result["seconds_per_part"]) == {"encoder_rnn", "decoder_rnn", "output_layer", "posterior_heads"}
    assert all(seconds > 0 for seconds in result["seconds_per_part"].values())
    tokens = sum(batch.num_predicted_tokens() for batch in batches)
    assert result["predicted_tokens_per_pass"] == tokens
    assert result["seconds_per_pass"] == pytest.approx(sum(result["seconds_per_part"].values()))
    assert result["tokens_per_second"] == pytest.approx(tokens / result["seconds_per_pass"])
