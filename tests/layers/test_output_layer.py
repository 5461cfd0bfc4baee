"""The blockwise linear + cross-entropy equals the plain one, in values, gradients and second derivatives."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from layers.output_layer import linear_cross_entropy


def problem(n=7, h=5, v=11, dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, h, generator=generator, dtype=dtype, requires_grad=True)
    weight = torch.randn(v, h, generator=generator, dtype=dtype, requires_grad=True)
    bias = torch.randn(v, generator=generator, dtype=dtype, requires_grad=True)
    targets = torch.randint(0, v, (n,), generator=generator)
    return hidden, weight, bias, targets


@pytest.mark.parametrize("rows", [1, 3, 7, 100])
def test_values_and_gradients_equal_the_plain_computation(rows):
    hidden, weight, bias, targets = problem(dtype=torch.float32)
    upstream = torch.rand(hidden.size(0))
    plain = F.cross_entropy(F.linear(hidden, weight, bias), targets, reduction="none")
    expected = torch.autograd.grad((plain * upstream).sum(), (hidden, weight, bias))
    fused = linear_cross_entropy(hidden, weight, bias, targets, rows=rows)
    got = torch.autograd.grad((fused * upstream).sum(), (hidden, weight, bias))
    assert torch.allclose(fused, plain, atol=1e-5)
    for a, b in zip(got, expected):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("upstream_kind", ["uniform", "per_row"])
@pytest.mark.parametrize("rows", [1, 3, 100])
def test_eager_gradient_equals_the_plain_computation(rows, upstream_kind):
    """The gradient formed in the forward pass (used when every row's incoming gradient is the same) and its
    fallback (any other incoming gradient) both equal the plain computation's."""
    hidden, weight, bias, targets = problem(dtype=torch.float32)
    upstream = torch.full((hidden.size(0),), 0.25) if upstream_kind == "uniform" else torch.rand(hidden.size(0))
    plain = F.cross_entropy(F.linear(hidden, weight, bias), targets, reduction="none")
    expected = torch.autograd.grad((plain * upstream).sum(), (hidden, weight, bias))
    fused = linear_cross_entropy(hidden, weight, bias, targets, rows=rows, eager_gradient=True)
    got = torch.autograd.grad((fused * upstream).sum(), (hidden, weight, bias))
    assert torch.allclose(fused, plain, atol=1e-5)
    for a, b in zip(got, expected):
        assert torch.allclose(a, b, atol=1e-5)


def test_eager_gradient_is_scaled_not_recomputed_for_a_uniform_upstream(monkeypatch):
    """With a uniform incoming gradient the backward pass does no V-wide matmul (the point of the eager gradient);
    a test that would pass with the recomputation alone could not tell."""
    import layers.output_layer as output_layer

    hidden, weight, bias, targets = problem(dtype=torch.float32)
    loss = linear_cross_entropy(hidden, weight, bias, targets, rows=3, eager_gradient=True).sum()
    calls = []
    monkeypatch.setattr(output_layer, "_block_logits", lambda *a: calls.append(a) or torch.zeros(0))
    loss.backward()
    assert calls == [] and hidden.grad is not None


def test_eager_gradient_with_double_backward():
    hidden, weight, bias, targets = problem()
    function = lambda h, w, b: linear_cross_entropy(h, w, b, targets, rows=3, eager_gradient=True)  # noqa: E731
    assert torch.autograd.gradcheck(function, (hidden, weight, bias))
    assert torch.autograd.gradgradcheck(function, (hidden, weight, bias))


def test_gradcheck_and_gradgradcheck():
    hidden, weight, bias, targets = problem()
    function = lambda h, w, b: linear_cross_entropy(h, w, b, targets, rows=3)  # noqa: E731
    assert torch.autograd.gradcheck(function, (hidden, weight, bias))
    assert torch.autograd.gradgradcheck(function, (hidden, weight, bias))


def test_bfloat16_operands_stay_close_and_return_float32():
    hidden, weight, bias, targets = problem(n=40, h=16, v=50, dtype=torch.float32)
    plain = F.cross_entropy(F.linear(hidden, weight, bias), targets, reduction="none")
    reduced = linear_cross_entropy(hidden, weight, bias, targets, compute_dtype=torch.bfloat16, rows=16)
    assert reduced.dtype == torch.float32 and not torch.equal(reduced, plain)
    assert torch.allclose(reduced, plain, rtol=2e-2, atol=5e-2)
    reduced.sum().backward()
    assert weight.grad.dtype == torch.float32 and torch.isfinite(weight.grad).all()


@pytest.mark.parametrize("flush_rows", [16, 2048])
def test_bfloat16_eager_gradient_matches_the_recomputed_one(monkeypatch, flush_rows):
    """The bf16 training path (eager: softmax written in bf16, bias as a weight column, the weight's gradient one
    matmul per `REDUCED_FLUSH_ROWS` rows) gives the values and gradients of the bf16 recomputation, within bf16
    rounding, and of float64 within bf16's tolerance."""
    import layers.output_layer as output_layer

    monkeypatch.setattr(output_layer, "REDUCED_FLUSH_ROWS", flush_rows)
    hidden, weight, bias, targets = problem(n=100, h=16, v=50, dtype=torch.float32)
    results = {}
    for eager in (True, False):
        for tensor in (hidden, weight, bias):
            tensor.grad = None
        nll = linear_cross_entropy(hidden, weight, bias, targets, compute_dtype=torch.bfloat16, rows=8,
                                   eager_gradient=eager)
        nll.sum().backward()
        results[eager] = (nll.detach(), hidden.grad.clone(), weight.grad.clone(), bias.grad.clone())
    for got, expected in zip(results[True], results[False]):
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, expected, rtol=2e-2, atol=2e-2)
    exact = F.cross_entropy(F.linear(hidden.double(), weight.double(), bias.double()), targets, reduction="none")
    torch.testing.assert_close(results[True][0].double(), exact, rtol=2e-2, atol=5e-2)


def test_a_kept_workspace_is_allocated_once_and_changes_no_value(monkeypatch):
    """The decoder's OutputWorkspace keeps the pending rows' buffers between calls: the same memory for batches of
    other sizes, and results bit-identical to a call that allocates its own (stale rows from a larger batch are
    never read)."""
    import copy

    import layers.output_layer as output_layer

    monkeypatch.setattr(output_layer, "REDUCED_FLUSH_ROWS", 16)
    workspace = output_layer.OutputWorkspace()
    pointers = set()
    for n in (40, 7, 23):
        results = []
        for kept in (workspace, None):
            hidden, weight, bias, targets = problem(n=n, h=16, v=50, dtype=torch.float32, seed=n)
            nll = linear_cross_entropy(hidden, weight, bias, targets, compute_dtype=torch.bfloat16, rows=8,
                                       eager_gradient=True, workspace=kept)
            nll.sum().backward()
            results.append((nll.detach(), hidden.grad, weight.grad, bias.grad))
        assert all(torch.equal(a, b) for a, b in zip(*results))
        pointers.add(workspace._buffers[0].data_ptr())
    assert len(pointers) == 1
    assert copy.deepcopy(workspace)._buffers is None  # a copied model does not share (or copy) the buffers


def test_bfloat16_eager_nll_of_an_underflowing_target_is_finite():
    """A target 200 nats below the best word has probability 0 in bf16 as in float32; its nll is taken from the
    log-sum-exp instead of log(0)."""
    hidden = torch.tensor([[1.0, 0.0]], requires_grad=True)
    weight = torch.tensor([[100.0, 0.0], [-100.0, 0.0], [0.0, 0.0]], requires_grad=True)
    bias = torch.zeros(3, requires_grad=True)
    nll = linear_cross_entropy(hidden, weight, bias, torch.tensor([1]), compute_dtype=torch.bfloat16,
                               eager_gradient=True)
    assert torch.isfinite(nll).all() and abs(float(nll.detach()) - 200.0) < 1.0
    nll.sum().backward()
    assert torch.isfinite(weight.grad).all()


def test_rows_must_be_positive():
    hidden, weight, bias, targets = problem()
    with pytest.raises(ValueError, match="rows must be positive"):
        linear_cross_entropy(hidden, weight, bias, targets, rows=0)


def decoder_output_problem(device, compute_dtype=None):
    """The decoder's own output layer on `device`, over more rows than one of its blocks there (16,384 on a GPU,
    256 on a CPU), against the plain float64 computation on the CPU: values and gradients."""
    from layers.recurrent import LatentDecoder

    decoder = LatentDecoder(300, 8, 32, 4, 1, 0.0, "lstm")
    decoder.compute_dtype = compute_dtype
    hidden, weight, bias, targets = problem(n=LatentDecoder.OUTPUT_ROWS_GPU + 1000, h=32, v=300, dtype=torch.float32)
    with torch.no_grad():
        decoder.out.weight.copy_(weight)
        decoder.out.bias.copy_(bias)
    upstream = torch.rand(hidden.size(0), generator=torch.Generator().manual_seed(1))
    reference = F.cross_entropy(F.linear(hidden.double(), weight.double(), bias.double()), targets, reduction="none")
    expected = torch.autograd.grad((reference * upstream.double()).sum(), (hidden, weight, bias))
    decoder = decoder.to(device)
    on_device = hidden.detach().to(device).requires_grad_()
    got = decoder.output_nll(on_device, targets.to(device))
    grads = torch.autograd.grad((got * upstream.to(device)).sum(), (on_device, decoder.out.weight, decoder.out.bias))
    return got, grads, reference, expected


def test_on_the_device_the_decoders_output_layer_matches_the_cpu_in_float32(device):
    got, grads, reference, expected = decoder_output_problem(device)
    assert got.dtype == torch.float32 and got.device.type == device.type
    torch.testing.assert_close(got.cpu().double(), reference, rtol=1e-5, atol=1e-4)
    for a, b in zip(grads, expected):  # the weight gradient sums 17k rows: float32 accumulation
        torch.testing.assert_close(a.cpu().double(), b.double(), rtol=1e-4, atol=1e-4)


def test_on_the_device_bfloat16_operands_stay_close_to_float32(device):
    got, grads, reference, expected = decoder_output_problem(device, torch.bfloat16)
    assert got.dtype == torch.float32 and not torch.equal(got.cpu().double(), reference)
    torch.testing.assert_close(got.cpu().double(), reference, rtol=2e-2, atol=5e-2)
    assert all(torch.isfinite(g).all() for g in grads)
    assert float((grads[1].cpu().double() - expected[1]).norm() / expected[1].norm()) < 2e-2
