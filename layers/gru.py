"""A GRU's training pass over variable-length sequences on the CPU, with its backward pass written out.

PyTorch's CPU GRU records every timestep's operations on the autograd tape, and over a packed batch it slices the
input one timestep at a time (`narrow`): the backward of each slice allocates a zero tensor as large as the whole
packed input and adds into it, so its cost grows with (timesteps x tokens). In the dialogue models' training step
(CVAE, bf16, Intel Xeon AMX, 1 thread; torch.profiler over 8 batches of DailyDialog) the zero fills and additions of
those slice backwards were 37 % of the CPU time, more than the matrix products. `gru_sequences` computes the same
function as `nn.GRU` (Cho et al. 2014 as PyTorch defines it; gates r, z, n in that order):

    r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

with the GRU's own parameters (the module stays an `nn.GRU`: its state_dict, initialisation and step-by-step
decoding are unchanged), but in the packed layout throughout: the input projections of every real token in one
matrix product, the recurrence over the shrinking active batch (sequences sorted by length, as a PackedSequence),
and a hand-written backward through time (`_Recurrence`) that writes each step's gate gradients into one buffer, so
that the hidden-to-hidden weight gradient is one product over all tokens. Nothing is computed on padding. The
reverse direction of a bidirectional GRU runs the same recurrence on each sequence reversed within its length.

With `compute_dtype=torch.bfloat16` the matrix products take bf16 operands (as `nn.GRU` under autocast does); the
gates, states and their gradients stay float32. Without gradients, and on other devices (CUDA: cuDNN's fused GRU),
`nn.GRU` is used as is.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from layers.recurrent import compute_autocast


class _Recurrence(torch.autograd.Function):
    """h_t for every packed position [total, H] from the input projections gi [total, 3H] (W_i x_t + b_i, float32),
    the initial states h0 [N, H] (sorted by decreasing length), W_hh [3H, H], b_hh [3H] and the batch sizes per
    timestep (a PackedSequence's, a list of ints)."""

    @staticmethod
    def forward(ctx, gi, h0, w_hh, b_hh, batch_sizes, compute_dtype):
        hidden = h0.size(1)
        weight = w_hh.to(compute_dtype) if compute_dtype is not None else w_hh
        out = gi.new_empty(gi.size(0), hidden)
        gates = gi.new_empty(gi.size(0), 4 * hidden)  # r, z, n and W_hn h + b_hn of every position, for the backward
        offset, previous = 0, h0
        for size in batch_sizes:
            h_prev = previous[:size]
            gh = torch.mm(h_prev.to(weight.dtype), weight.t()).to(gi.dtype).add_(b_hh)
            gi_t, saved = gi[offset:offset + size], gates[offset:offset + size]
            rz = torch.sigmoid(gi_t[:, :2 * hidden] + gh[:, :2 * hidden], out=saved[:, :2 * hidden])
            saved[:, 3 * hidden:].copy_(gh[:, 2 * hidden:])
            n = torch.tanh(torch.addcmul(gi_t[:, 2 * hidden:], rz[:, :hidden], gh[:, 2 * hidden:]),
                           out=saved[:, 2 * hidden:3 * hidden])
            previous = torch.lerp(n, h_prev, rz[:, hidden:], out=out[offset:offset + size])  # n + z (h_prev - n)
            offset += size
        ctx.batch_sizes, ctx.compute_dtype = batch_sizes, compute_dtype
        ctx.save_for_backward(h0, w_hh, out, gates)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        h0, w_hh, out, gates = ctx.saved_tensors
        batch_sizes, compute_dtype = ctx.batch_sizes, ctx.compute_dtype
        hidden = h0.size(1)
        weight = w_hh.to(compute_dtype) if compute_dtype is not None else w_hh
        grad_out = grad_out.contiguous()
        grad_gi = torch.empty_like(gates[:, :3 * hidden])   # d/d(gi): r and z pre-activations, n's input part
        grad_gh = torch.empty_like(gates[:, :3 * hidden])   # d/d(W_h h + b_h): the same with n's hidden part
        grad_h = torch.zeros_like(h0)                       # dL/dh carried back through time, rows sorted
        starts = [0]
        for size in batch_sizes[:-1]:
            starts.append(starts[-1] + size)
        for t in range(len(batch_sizes) - 1, -1, -1):
            size, offset = batch_sizes[t], starts[t]
            h_prev = h0[:size] if t == 0 else out[starts[t - 1]:starts[t - 1] + size]
            saved = gates[offset:offset + size]
            r, z, n, ghn = (saved[:, :hidden], saved[:, hidden:2 * hidden], saved[:, 2 * hidden:3 * hidden],
                            saved[:, 3 * hidden:])
            dh = grad_h[:size].add_(grad_out[offset:offset + size])
            d_gi, d_gh = grad_gi[offset:offset + size], grad_gh[offset:offset + size]
            d_n = torch.mul(dh, 1 - z)
            d_n.mul_(1 - n * n)                                          # through tanh
            d_gi[:, 2 * hidden:].copy_(d_n)
            torch.mul(d_n, r, out=d_gh[:, 2 * hidden:])                  # into W_hn h + b_hn
            torch.mul(d_n, ghn, out=d_gi[:, :hidden]).mul_(r * (1 - r))  # into r's pre-activation
            torch.mul(dh, h_prev - n, out=d_gi[:, hidden:2 * hidden]).mul_(z * (1 - z))  # into z's
            d_gh[:, :2 * hidden].copy_(d_gi[:, :2 * hidden])
            through_weights = torch.mm(d_gh.to(weight.dtype), weight).to(dh.dtype)
            dh.mul_(z).add_(through_weights)                             # grad_h's rows, in place: dL/dh_{t-1}
        # every step's h_{t-1}, in packed order: h0's rows for t = 0, then the outputs of the step before
        h_prevs = torch.cat([h0[:batch_sizes[0]]] + [out[starts[t - 1]:starts[t - 1] + batch_sizes[t]]
                                                     for t in range(1, len(batch_sizes))])
        grad_w = torch.mm(grad_gh.t().to(weight.dtype), h_prevs.to(weight.dtype)).to(w_hh.dtype)
        return grad_gi, grad_h, grad_w, grad_gh.sum(0), None, None


def _reversed_within_lengths(batch_sizes: torch.Tensor) -> torch.Tensor:
    """The permutation of packed positions that reverses every sequence within its own length (an involution)."""
    sizes = batch_sizes.tolist()
    starts = torch.tensor([0] + sizes[:-1]).cumsum(0)
    lengths = (batch_sizes.unsqueeze(0) > torch.arange(sizes[0]).unsqueeze(1)).sum(1)  # [N], sorted decreasing
    time = torch.cat([torch.full((size,), t) for t, size in enumerate(sizes)])
    row = torch.cat([torch.arange(size) for size in sizes])
    return starts[lengths[row] - 1 - time] + row


def _direction(packed: PackedSequence, h0: torch.Tensor, rnn: nn.GRU, suffix: str, compute_dtype, order=None):
    w_ih, w_hh = getattr(rnn, f"weight_ih_l0{suffix}"), getattr(rnn, f"weight_hh_l0{suffix}")
    b_ih, b_hh = getattr(rnn, f"bias_ih_l0{suffix}"), getattr(rnn, f"bias_hh_l0{suffix}")
    data = packed.data if order is None else packed.data[order]
    if compute_dtype is not None:
        gi = torch.addmm(b_ih.to(compute_dtype), data.to(compute_dtype), w_ih.to(compute_dtype).t()).float()
    else:
        gi = torch.addmm(b_ih, data, w_ih.t())
    states = _Recurrence.apply(gi, h0, w_hh, b_hh, packed.batch_sizes.tolist(), compute_dtype)
    return states if order is None else states[order]


def gru_sequences(rnn: nn.GRU, inputs: torch.Tensor, lengths: torch.Tensor, h0: torch.Tensor | None = None,
                  compute_dtype: torch.dtype | None = None,
                  outputs: bool = True) -> tuple[torch.Tensor | None, torch.Tensor]:
    """`rnn` (one layer, batch_first, uni- or bidirectional, with biases) over inputs [N, T, E] of the given
    lengths [N] (>= 1) from h0 [directions, N, H] (zeros if None): (outputs [N, T, directions x H], zero past each
    length, as pad_packed_sequence gives them -- None with `outputs=False`; final states [directions, N, H], each
    sequence's at its last real step: nn.GRU's results for a packed input). Without gradients (evaluation,
    generation, a critic's no-grad encodings), on a non-CPU device, or for a GRU of another shape: nn.GRU itself
    (without a backward to save, its C++ loop is ~20 % faster than this one: 0.076 vs 0.094 s for 320 DailyDialog
    utterances, float32, 1 thread)."""
    directions = 2 if rnn.bidirectional else 1
    supported = (torch.is_grad_enabled() and inputs.device.type == "cpu" and rnn.num_layers == 1 and rnn.batch_first
                 and rnn.bias and getattr(rnn, "proj_size", 0) == 0)
    packed = pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)
    if not supported:
        with compute_autocast(inputs.device, compute_dtype):
            states, final = rnn(packed, h0)
        if not outputs:
            return None, final.to(inputs.dtype)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=inputs.size(1))
        return states.to(inputs.dtype), final.to(inputs.dtype)
    n, hidden = inputs.size(0), rnn.hidden_size
    if h0 is None:
        h0 = inputs.new_zeros(directions, n, hidden)
    order = packed.sorted_indices
    h0 = h0.to(inputs.dtype)[:, order] if order is not None else h0.to(inputs.dtype)
    forward = _direction(packed, h0[0], rnn, "", compute_dtype)
    sizes = packed.batch_sizes
    reversal = _reversed_within_lengths(sizes)
    finals = [forward[reversal[:sizes[0]]]]  # reversal's first rows: the packed position of each sorted row's last step
    states = forward
    if directions == 2:
        backward = _direction(packed, h0[1], rnn, "_reverse", compute_dtype, order=reversal)
        finals.append(backward[:sizes[0]])  # the reversed pass ends at each sequence's first step
        states = torch.cat([forward, backward], dim=-1)
    final = torch.stack(finals)
    if packed.unsorted_indices is not None:
        final = final[:, packed.unsorted_indices]
    if not outputs:
        return None, final
    result = PackedSequence(states, sizes, packed.sorted_indices, packed.unsorted_indices)
    padded, _ = pad_packed_sequence(result, batch_first=True, total_length=inputs.size(1))
    return padded, final
