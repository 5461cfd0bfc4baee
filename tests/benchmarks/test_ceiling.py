"""The kernel ceiling runs the step's kernels at the step's shapes (counted here, not timed: timing is the
benchmark's)."""
from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.ceiling import PARTS, _output_layer_pass, ceiling_runners, kernel_ceiling
from conftest import make_batch
from harness.core.config import ArchitectureConfig
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


def test_the_ceiling_runs_each_part_and_reports_the_tokens_they_allow():
    batches = [make_batch([[4, 5, 6], [7, 8, 9, 10, 11]]), make_batch([[5, 6], [4, 4, 4]])]
    runners = ceiling_runners(batches, ARCH, 12, torch.float32)
    assert tuple(runners) == PARTS
    for run in runners.values():
        run()
    seconds = {"encoder_rnn": 0.5, "decoder_rnn": 0.5, "output_layer": 2.0, "posterior_heads": 1.0}
    result = kernel_ceiling(seconds, 100, torch.bfloat16)
    assert result["dtype"] == "bfloat16" and result["seconds_per_pass"] == 4.0 and result["tokens_per_second"] == 25.0
