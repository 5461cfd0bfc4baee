"""layers.gru.gru_sequences: nn.GRU's function over a packed batch -- outputs, final states and every gradient --
with a hand-written backward through time."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from layers.gru import _reversed_within_lengths, gru_sequences

LENGTHS = [5, 1, 7, 3, 7, 2]  # unsorted, with ties and a length-1 sequence


def reference(rnn, inputs, lengths, h0):
    packed = pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
    states, final = rnn(packed, h0)
    states, _ = pad_packed_sequence(states, batch_first=True, total_length=inputs.size(1))
    return states, final


def run_both(bidirectional: bool, dtype: torch.dtype, with_h0: bool):
    torch.manual_seed(0)
    rnn = nn.GRU(4, 6, batch_first=True, bidirectional=bidirectional).to(dtype)
    directions = 2 if bidirectional else 1
    inputs = torch.randn(len(LENGTHS), max(LENGTHS) + 2, 4, dtype=dtype)  # padding past the longest too
    h0 = torch.randn(directions, len(LENGTHS), 6, dtype=dtype) if with_h0 else None
    lengths = torch.tensor(LENGTHS)
    weights = torch.randn(len(LENGTHS), max(LENGTHS) + 2, directions * 6, dtype=dtype)  # a loss on every output
    results = []
    for function in (reference, gru_sequences):
        leaves = [inputs.clone().requires_grad_(True)] + ([h0.clone().requires_grad_(True)] if with_h0 else [])
        rnn.zero_grad()
        states, final = function(rnn, leaves[0], lengths, leaves[1] if with_h0 else None)
        ((states * weights).sum() + (final * final).sum()).backward()
        results.append({"states": states.detach(), "final": final.detach(),
                        **{f"grad {i}": leaf.grad for i, leaf in enumerate(leaves)},
                        **{name: p.grad.clone() for name, p in rnn.named_parameters()}})
    return results


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("with_h0", [False, True])
def test_outputs_final_states_and_every_gradient_equal_nn_grus(bidirectional, with_h0):
    ours_vs_torch = run_both(bidirectional, torch.float64, with_h0)
    expected, ours = ours_vs_torch
    assert expected.keys() == ours.keys()
    for key in expected:
        assert torch.allclose(ours[key], expected[key], atol=1e-10, rtol=1e-10), key


def test_bfloat16_products_stay_within_bf16s_tolerance_of_float32():
    torch.manual_seed(1)
    rnn = nn.GRU(8, 16, batch_first=True, bidirectional=True)
    inputs, lengths = torch.randn(6, 9, 8), torch.tensor(LENGTHS)
    exact, _ = gru_sequences(rnn, inputs, lengths)
    rounded, _ = gru_sequences(rnn, inputs, lengths, compute_dtype=torch.bfloat16)
    assert rounded.dtype == torch.float32
    assert 0 < (rounded - exact).abs().max() < 0.05


def test_reversal_within_lengths_is_an_involution_that_reverses_each_sequence():
    packed = pack_padded_sequence(torch.arange(6 * 7).view(6, 7, 1).float(), torch.tensor(LENGTHS), batch_first=True,
                                  enforce_sorted=False)
    order = _reversed_within_lengths(packed.batch_sizes)
    assert torch.equal(order[order], torch.arange(sum(LENGTHS)))
    reversed_data, _ = pad_packed_sequence(packed._replace(data=packed.data[order]), batch_first=True)
    for row, length in enumerate(LENGTHS):
        assert reversed_data[row, :length, 0].tolist() == [row * 7 + t for t in range(length - 1, -1, -1)]


def test_without_gradients_it_is_nn_grus_own_pass():
    torch.manual_seed(2)
    rnn = nn.GRU(4, 6, batch_first=True, bidirectional=True).double()
    inputs, lengths = torch.randn(6, 9, 4, dtype=torch.float64), torch.tensor(LENGTHS)
    with torch.no_grad():
        expected = reference(rnn, inputs, lengths, None)
        ours = gru_sequences(rnn, inputs, lengths)
    assert torch.equal(ours[0], expected[0]) and torch.equal(ours[1], expected[1])  # the same code path: bit-equal
    with_grad = gru_sequences(rnn, inputs, lengths)
    assert with_grad[0].grad_fn is not None and torch.allclose(with_grad[0], expected[0], atol=1e-10)
