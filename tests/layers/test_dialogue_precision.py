"""The dialogue layers (layers/dialogue.py) on the language model's fast path: the response decoder's blockwise output
layer equals the plain full-logits cross-entropy in float32, bfloat16 stays within bf16's rounding of float32, and
harness.core.precision reaches every dialogue module."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import make_dialogue_batch, skip_without_bfloat16, tiny_dialogue_model
from harness.core.precision import set_compute_precision
from harness.methods.check_method import DIALOGUES
from layers.dialogue import BagOfWordsHead, ContextEncoder, ResponseDecoder, UtteranceEncoder
from layers.recurrent import length_mask, row_sums

VOCAB, EMB, STATE = 60, 16, 24

# bf16 keeps 8 significant bits (7 stored, 1 implicit): rounding to it changes a value by at most 2^-8 of it
BF16_ROUNDING = 2.0 ** -8


def decoder_problem(seed: int = 0, logit_scale: float = 1.0, dropout: float = 0.0):
    """A ResponseDecoder and a padded batch of responses (<s> words </s> PAD...) of assorted lengths."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    decoder = ResponseDecoder(nn.Embedding(VOCAB, EMB, padding_idx=0), STATE, VOCAB, dropout)
    with torch.no_grad():
        decoder.out.weight.mul_(logit_scale)  # logits spread over several nats, as a trained decoder's
    lengths = torch.tensor([2, 9, 5, 12, 3, 12, 7, 4])
    width = int(lengths.max())
    response = torch.randint(4, VOCAB, (lengths.numel(), width), generator=generator)
    response[:, 0] = 2
    response[torch.arange(lengths.numel()), lengths - 1] = 3
    response = response.masked_fill(~length_mask(lengths, width), 0)
    state = torch.randn(lengths.numel(), STATE, generator=generator).tanh().requires_grad_()
    return decoder, response, lengths, state


def reference_log_likelihood(decoder: ResponseDecoder, response, lengths, state) -> torch.Tensor:
    """The decoder's former computation: the full [tokens x V] logits of the real positions and F.cross_entropy."""
    inputs, targets = response[:, :-1], response[:, 1:]
    hidden, _ = decoder.rnn(decoder.dropout(decoder.embedding(inputs)), state.unsqueeze(0).contiguous())
    real = length_mask(lengths - 1, inputs.size(1))
    return -row_sums(F.cross_entropy(decoder.out(hidden[real]), targets[real], reduction="none"), real)


def assert_relatively_close(got: torch.Tensor, expected: torch.Tensor, rtol: float, what: str):
    """|got - expected| <= rtol * max|expected| elementwise (relative to the tensor's scale, so that entries near 0
    need not match to rtol of themselves)."""
    scale = float(expected.abs().max())
    error = float((got - expected).abs().max())
    assert error <= rtol * scale, f"{what}: max error {error:.3g} > {rtol:g} x {scale:.3g}"


@pytest.mark.parametrize("upstream", ["mean", "per_response"])
@pytest.mark.parametrize("rows", [5, 256])
def test_float32_log_likelihood_equals_the_full_logits_cross_entropy(monkeypatch, upstream, rows):
    """Values and gradients of every parameter (and of the initial state) to 1e-5 relative, over several blocks of
    rows (5) and one (256), with the mean of the losses (every row the same incoming gradient: the gradient formed in
    the forward pass) and with per-response weights (the gradient recomputed in the backward pass). Dropout on, the
    same masks drawn in both."""
    decoder, response, lengths, state = decoder_problem(logit_scale=20.0, dropout=0.25)
    monkeypatch.setattr(decoder, "OUTPUT_ROWS", rows)
    weights = (torch.full((lengths.numel(),), 1.0 / lengths.numel()) if upstream == "mean"
               else torch.rand(lengths.numel(), generator=torch.Generator().manual_seed(1)))
    inputs = [*decoder.parameters(), state]
    results = []
    for compute in (reference_log_likelihood, ResponseDecoder.log_likelihood):
        torch.manual_seed(3)  # the same dropout masks
        log_likelihood = compute(decoder, response, lengths, state)
        results.append((log_likelihood.detach(), torch.autograd.grad(-(log_likelihood * weights).sum(), inputs)))
    (expected, expected_grads), (got, got_grads) = results
    assert got.dtype == torch.float32
    assert_relatively_close(got, expected, 1e-5, "log-likelihood")
    names = [name for name, _ in decoder.named_parameters()] + ["state"]
    for name, a, b in zip(names, got_grads, expected_grads):
        assert_relatively_close(a, b, 1e-5, f"gradient of {name}")


def test_the_decoder_never_forms_the_full_logits():
    """log_likelihood reads `out`'s weight and bias (the state_dict keys stay decoder.out.weight/bias) but never
    calls it on the [tokens x V] states: layers.output_layer makes the logits block by block."""
    decoder, response, lengths, state = decoder_problem()

    def whole_logits(_):
        raise AssertionError("the output layer was called on all the states")

    decoder.out.forward = whole_logits
    decoder.log_likelihood(response, lengths, state).sum().backward()
    assert decoder.out.weight.grad is not None and decoder.out.bias.grad is not None
    assert {"out.weight", "out.bias"} <= set(decoder.state_dict())


@pytest.mark.parametrize("seed, logit_scale", [(0, 1.0), (1, 10.0), (2, 30.0)])
def test_bfloat16_log_likelihood_is_within_bf16_rounding_of_float32(seed, logit_scale):
    """The bound, per predicted token. A logit z_j = h . w_j + b_j is computed in bf16 from rounded operands and
    rounded itself; every rounding changes a value by at most u = 2^-8 of it, so z_j moves by at most K u A, where
    A = max_j (sum_i |h_i w_ji| + |b_j|) is the size of the terms a logit sums (from the float32 states) and K counts
    the roundings those terms go through: the state's, the weight's, the logit's, and the state's own error from the
    GRU's bf16 matmuls, whose convex update (h_t = (1 - g) n + g h_t-1, |h| <= 1) keeps it within one more; K = 4.
    -log softmax(z)[target] moves by at most twice the largest change of a logit, and the bf16 output layer reads the
    nll from the target's probability rounded to bf16 (at most -log(1 - u) ~ u more). So per token
    |nll_bf16 - nll_fp32| <= 2 K u A + u, summed over a response's tokens."""
    skip_without_bfloat16()
    decoder, response, lengths, state = decoder_problem(seed, logit_scale)
    state = state.detach()
    exact = decoder.log_likelihood(response, lengths, state)
    with torch.no_grad():
        hidden, _ = decoder.rnn(decoder.embedding(response[:, :-1]), state.unsqueeze(0))
        real = length_mask(lengths - 1, response.size(1) - 1)
        states = hidden[real]
        sizes = (states.abs() @ decoder.out.weight.abs().t() + decoder.out.bias.abs()).amax(1)  # A per token
        tolerance = row_sums(2 * 4 * BF16_ROUNDING * sizes + BF16_ROUNDING, real)
    decoder.compute_dtype = torch.bfloat16
    reduced = decoder.log_likelihood(response, lengths, state)
    assert reduced.dtype == torch.float32
    assert not torch.equal(reduced, exact)  # really computed in another precision
    error = (reduced - exact).abs().detach()
    assert (error <= tolerance).all(), f"errors {error.tolist()} over the bounds {tolerance.tolist()}"
    reduced.sum().backward()
    for name, parameter in decoder.named_parameters():
        assert parameter.dtype == torch.float32 and parameter.grad.dtype == torch.float32, name
        assert torch.isfinite(parameter.grad).all(), name


def test_bfloat16_greedy_decoding_takes_the_argmax_of_the_float32_scores_of_bf16_states():
    """As LatentDecoder.greedy: the output layer under the compute dtype, its scores float32, their argmax fed back."""
    skip_without_bfloat16()
    decoder, _, _, state = decoder_problem(logit_scale=10.0)
    decoder.compute_dtype = torch.bfloat16
    state = state.detach()
    tokens, lengths = decoder.greedy(state, 6, 2, 3)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        output, _ = decoder.rnn(decoder.embedding(torch.full((state.size(0), 1), 2)), state.unsqueeze(0))
        first = decoder.out(output[:, -1]).float().argmax(-1)
    assert torch.equal(tokens[:, 0], first)
    assert tokens.shape == (state.size(0), 6) and ((lengths >= 0) & (lengths <= 6)).all()


DIALOGUE_MODULES = (UtteranceEncoder, ContextEncoder, ResponseDecoder, BagOfWordsHead)


@pytest.mark.parametrize("method, expected", [("cvae", 4), ("twr-cvae", 3), ("dialogwae", 3), ("ivae", 3)])
def test_set_compute_precision_reaches_every_dialogue_module(method, expected):
    """The utterance and context encoders, the response decoder and (CVAE's) bag-of-words head; float32 restores
    them. TWR-CVAE has no bag-of-words head; DialogWAE's and iVAE's critics and samplers have no compute dtype."""
    skip_without_bfloat16()
    model = tiny_dialogue_model(method)
    assert set_compute_precision(model, "bfloat16") == expected
    modules = [module for module in model.modules() if isinstance(module, DIALOGUE_MODULES)]
    assert len(modules) == expected and all(module.compute_dtype is torch.bfloat16 for module in modules)
    set_compute_precision(model, "float32")
    assert all(module.compute_dtype is None for module in modules)


@pytest.mark.parametrize("method", ["cvae", "twr-cvae"])
def test_bfloat16_dialogue_loss_is_close_to_float32_and_trains_float32_weights(method):
    """The whole loss (encoders, KL, decoder, bag-of-words) in bf16: float32 results within a few bf16 roundings
    (8 u relative) of float32's, float32 weights and finite float32 gradients."""
    skip_without_bfloat16()
    model = tiny_dialogue_model(method)
    batch = make_dialogue_batch(DIALOGUES)
    torch.manual_seed(0)
    exact = model.loss(batch, 0).loss.detach()
    set_compute_precision(model, "bfloat16")
    torch.manual_seed(0)
    reduced = model.loss(batch, 0).loss
    assert reduced.dtype == torch.float32 and not torch.equal(reduced.detach(), exact)
    torch.testing.assert_close(reduced.detach(), exact, rtol=8 * BF16_ROUNDING, atol=0.0)
    reduced.mean().backward()
    for name, parameter in model.named_parameters():
        assert parameter.dtype == torch.float32, name
        if parameter.grad is not None:
            assert parameter.grad.dtype == torch.float32 and torch.isfinite(parameter.grad).all(), name
