"""-log softmax(h Wᵀ + b)[target] for every decoder state, without ever holding the N x V logits.

Reference code, details and deviations: docs/methods.md, "The blockwise output layer (layers/output_layer.py)".
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _block_logits(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Float logits of one block; operands already in the compute dtype."""
    return torch.addmm(bias, hidden, weight.t()).to(dtype)


def _accumulate(grad_logits, h_block, w, dtype, grad_hidden_blocks, grad_weight, grad_bias):
    """Gradients of one block from its d loss / d logits (float), without autograd: in place."""
    operand = grad_logits.to(dtype) if dtype is not None else grad_logits
    grad_hidden_blocks.append((operand @ w).to(grad_weight.dtype))
    if operand.dtype == grad_weight.dtype:
        grad_weight.addmm_(operand.t(), h_block)
    else:
        grad_weight.add_(operand.t() @ h_block)
    grad_bias.add_(grad_logits.sum(0))


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, compute_dtype, rows, eager_gradient):
        result_dtype = torch.promote_types(hidden.dtype, torch.float32)
        h, w, b = (t.to(compute_dtype) if compute_dtype is not None else t for t in (hidden, weight, bias))
        nll = torch.empty(hidden.size(0), dtype=result_dtype, device=hidden.device)
        lse = torch.empty_like(nll)
        eager = eager_gradient and any(ctx.needs_input_grad[:3])
        grad_hidden_blocks = []
        grad_weight = torch.zeros(weight.shape, dtype=result_dtype, device=hidden.device) if eager else None
        grad_bias = torch.zeros(bias.shape, dtype=result_dtype, device=hidden.device) if eager else None
        for start in range(0, hidden.size(0), rows):
            stop = start + rows
            logits = _block_logits(h[start:stop], w, b, result_dtype)
            block_targets = targets[start:stop, None]
            if not eager:
                nll[start:stop] = F.cross_entropy(logits, block_targets.squeeze(1), reduction="none")  # one kernel
                lse[start:stop] = nll[start:stop] + logits.gather(1, block_targets).squeeze(1)
                continue
            target_logits = logits.gather(1, block_targets).squeeze(1)
            log_probabilities = torch.log_softmax(logits, dim=-1)
            nll[start:stop] = -log_probabilities.gather(1, block_targets).squeeze(1)
            lse[start:stop] = nll[start:stop] + target_logits
            # d nll / d logits = softmax - onehot(target), in place of the log-probabilities
            grad_logits = log_probabilities.exp_()
            grad_logits.scatter_add_(1, block_targets, grad_logits.new_full(block_targets.shape, -1.0))
            _accumulate(grad_logits, h[start:stop], w, compute_dtype, grad_hidden_blocks, grad_weight, grad_bias)
        grad_hidden = torch.cat(grad_hidden_blocks) if grad_hidden_blocks else None
        ctx.save_for_backward(hidden, weight, bias, targets, lse, grad_hidden, grad_weight, grad_bias)
        ctx.compute_dtype, ctx.rows, ctx.eager = compute_dtype, rows, eager
        return nll

    @staticmethod
    def backward(ctx, grad_nll):
        hidden, weight, bias, targets, lse, eager_hidden, eager_weight, eager_bias = ctx.saved_tensors
        if ctx.eager and not torch.is_grad_enabled() and hidden.size(0) > 0:
            scale = grad_nll[0]
            if bool((grad_nll == scale).all()):  # the same incoming gradient on every row: scale the eager ones
                return ((eager_hidden * scale).to(hidden.dtype), (eager_weight * scale).to(weight.dtype),
                        (eager_bias * scale).to(bias.dtype), None, None, None, None)
        dtype = ctx.compute_dtype
        h, w, b = (t.to(dtype) if dtype is not None else t for t in (hidden, weight, bias))
        grad_hidden_blocks = []
        grad_weight = torch.zeros_like(weight, dtype=lse.dtype)
        grad_bias = torch.zeros_like(bias, dtype=lse.dtype)
        for start in range(0, hidden.size(0), ctx.rows):
            stop = start + ctx.rows
            g = grad_nll[start:stop, None]
            # d nll / d logits = softmax - onehot(target), scaled by the incoming gradient of each row
            logits = _block_logits(h[start:stop], w, b, lse.dtype)
            if torch.is_grad_enabled():  # double backward: the softmax must depend on hidden/weight through lse too
                probabilities = torch.softmax(logits, dim=-1)
                grad_logits = (probabilities * g).scatter_add(1, targets[start:stop, None], -g)
                operand = grad_logits.to(dtype) if dtype is not None else grad_logits
                grad_hidden_blocks.append((operand @ w).to(hidden.dtype))
                # out of place, so autograd can trace it
                grad_weight = grad_weight + (operand.t() @ h[start:stop]).to(lse.dtype)
                grad_bias = grad_bias + grad_logits.sum(0)
                continue
            # the saved log-sum-exp spares a max and a sum over the block; in place, no new N x V tensors
            grad_logits = logits.sub_(lse[start:stop, None]).exp_().mul_(g).scatter_add_(1, targets[start:stop, None], -g)
            _accumulate(grad_logits, h[start:stop], w, dtype, grad_hidden_blocks, grad_weight, grad_bias)
        grad_hidden = torch.cat(grad_hidden_blocks).to(hidden.dtype) if grad_hidden_blocks else torch.zeros_like(hidden)
        return grad_hidden, grad_weight.to(weight.dtype), grad_bias.to(bias.dtype), None, None, None, None


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor,
                         compute_dtype: torch.dtype | None = None, rows: int = 512,
                         eager_gradient: bool = False) -> torch.Tensor:
    """Per-row -log softmax(hidden @ weight.T + bias)[targets], [N]; hidden [N, H], weight [V, H], bias [V]."""
    if rows < 1:
        raise ValueError(f"rows must be positive, got {rows}")
    return _LinearCrossEntropy.apply(hidden, weight, bias, targets, compute_dtype, rows, eager_gradient)
