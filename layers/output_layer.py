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
    grad_bias.add_(grad_logits.sum(0, dtype=grad_bias.dtype))


REDUCED_PAD = 16  # the bias column, padded so the matmuls' inner size stays a multiple of 16 (bf16 kernels)
REDUCED_FLUSH_ROWS = 2048  # rows of reduced d nll / d logits kept before their weight-gradient matmul


def _with_bias_column(matrix: torch.Tensor, column: torch.Tensor) -> torch.Tensor:
    """[matrix | column | 0 ...]: REDUCED_PAD more columns, the first of them `column`."""
    padded = matrix.new_zeros(matrix.size(0), matrix.size(1) + REDUCED_PAD)
    padded[:, :matrix.size(1)] = matrix
    padded[:, matrix.size(1)] = column
    return padded


class OutputWorkspace:
    """The buffers of the reduced eager path's pending rows (their d nll / d logits and states: ~42 MB at the paper's
    sizes), kept from one call to the next by their owner (LatentDecoder) instead of allocated per batch. An
    allocation that size (over malloc's largest heap block, harness/core/allocator.py) is mapped afresh by the OS every
    time and faulted in page by page; reusing it made the bf16 training step 2-15 % faster and steadier in two
    interleaved comparisons on 2 CPU cores (per benchmark pass 0.49 s vs 0.50-0.82 s; 0.53-0.75 vs 0.56-0.87). Not
    state: a copy of its owner starts with an empty one."""

    def __init__(self):
        self._key: tuple | None = None
        self._buffers: tuple[torch.Tensor, torch.Tensor] | None = None

    def pending_buffers(self, rows: int, weight_c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[rows, V] for the gradients and [rows, H + PAD] for the states (the ones column, then zeros), of
        `weight_c`'s [V, H], dtype and device."""
        key = (rows, tuple(weight_c.shape), weight_c.dtype, weight_c.device)
        if self._key != key:
            self._buffers = (weight_c.new_empty(rows, weight_c.size(0)),
                             _with_bias_column(weight_c.new_zeros(rows, weight_c.size(1)), 1.0))
            self._key = key
        return self._buffers

    def __deepcopy__(self, memo):
        return OutputWorkspace()


class _ReducedEagerBlocks:
    """The eager forward of a reduced compute dtype (bf16), without any float copy of a block's logits.

    The bias is a column of the weight, against a column of ones in the states, so the logits come from one matmul
    with no broadcast copy of the bias, and the bias's gradient is a column of the weight's (no sum over the block).
    The softmax reads the reduced logits and writes reduced probabilities (computing in float inside) straight into
    a buffer of pending rows; minus the one-hot targets (one entry per row, written by index) they are already the
    reduced operand of the gradient matmuls. nll = -log p[target] from the rounded probability (relative error
    <= 2^-9, so <= 0.002 nats); a row whose target probability underflows (a logit gap over ~87 nats) takes
    log-sum-exp minus the target's logit in float instead. The weight's gradient is one matmul per
    REDUCED_FLUSH_ROWS pending rows, so its float sum is updated a few times per batch, not once per block. One pass
    over each N x V block, where the float path makes five, and no copy of it: the pending rows are written in place
    (a bf16 scatter_add_ and a concatenation of the blocks each copied them whole)."""

    def __init__(self, weight_c: torch.Tensor, bias_c: torch.Tensor, grad_weight: torch.Tensor,
                 grad_bias: torch.Tensor, total_rows: int, block_rows: int, workspace: OutputWorkspace | None):
        self.hidden_dim = weight_c.size(1)
        self.weight = _with_bias_column(weight_c, bias_c)  # [V, H + PAD]
        self.grad_weight, self.grad_bias = grad_weight, grad_bias
        self.grad_hidden_blocks: list[torch.Tensor] = []
        # the pending rows: d nll / d logits [rows, V] and their states [rows, H + PAD] (the ones column, then zeros)
        capacity = max(REDUCED_FLUSH_ROWS, block_rows)
        if workspace is None:
            workspace = OutputWorkspace()  # used once: no larger than this call needs
            capacity = min(total_rows, capacity)
        self.pending_gradients, self.pending_states = workspace.pending_buffers(capacity, weight_c)
        self.pending_rows = 0

    def block(self, h_block: torch.Tensor, block_targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """nll and log-sum-exp (float) of one block; its gradients accumulated."""
        rows = h_block.size(0)
        if self.pending_rows + rows > self.pending_gradients.size(0):
            self.flush()
        pending = slice(self.pending_rows, self.pending_rows + rows)
        states = self.pending_states[pending]
        states[:, :self.hidden_dim] = h_block
        logits = states @ self.weight.t()
        target_logits = logits.gather(1, block_targets).squeeze(1).float()
        probabilities = self.pending_gradients[pending]
        torch.ops.aten._softmax.out(logits, -1, False, out=probabilities)
        target_probabilities = probabilities.gather(1, block_targets).squeeze(1)
        nll = -target_probabilities.float().log()
        underflow = ~torch.isfinite(nll)
        if underflow.any():
            nll[underflow] = torch.logsumexp(logits[underflow].float(), dim=-1) - target_logits[underflow]
        # d nll / d logits = softmax - onehot(target): one entry per row
        probabilities[torch.arange(rows, device=h_block.device), block_targets.squeeze(1)] = target_probabilities - 1
        self.grad_hidden_blocks.append((probabilities @ self.weight[:, :self.hidden_dim]).to(self.grad_weight.dtype))
        self.pending_rows += rows
        if self.pending_rows >= REDUCED_FLUSH_ROWS:
            self.flush()
        return nll, nll + target_logits

    def flush(self) -> None:
        if self.pending_rows == 0:
            return
        rows = self.pending_rows
        grad = (self.pending_gradients[:rows].t() @ self.pending_states[:rows]).to(self.grad_weight.dtype)
        self.grad_weight.add_(grad[:, :self.hidden_dim])
        self.grad_bias.add_(grad[:, self.hidden_dim])
        self.pending_rows = 0


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, compute_dtype, rows, eager_gradient, workspace):
        result_dtype = torch.promote_types(hidden.dtype, torch.float32)
        h, w, b = (t.to(compute_dtype) if compute_dtype is not None else t for t in (hidden, weight, bias))
        nll = torch.empty(hidden.size(0), dtype=result_dtype, device=hidden.device)
        lse = torch.empty_like(nll)
        eager = eager_gradient and any(ctx.needs_input_grad[:3])
        grad_hidden_blocks = []
        grad_weight = torch.zeros(weight.shape, dtype=result_dtype, device=hidden.device) if eager else None
        grad_bias = torch.zeros(bias.shape, dtype=result_dtype, device=hidden.device) if eager else None
        reduced = (_ReducedEagerBlocks(w, b, grad_weight, grad_bias, hidden.size(0), rows, workspace)
                   if eager and compute_dtype is not None else None)
        if reduced is not None:
            grad_hidden_blocks = reduced.grad_hidden_blocks
        for start in range(0, hidden.size(0), rows):
            stop = start + rows
            block_targets = targets[start:stop, None]
            if reduced is not None:
                nll[start:stop], lse[start:stop] = reduced.block(h[start:stop], block_targets)
                continue
            logits = _block_logits(h[start:stop], w, b, result_dtype)
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
        if reduced is not None:
            reduced.flush()
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
                        (eager_bias * scale).to(bias.dtype), None, None, None, None, None)
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
        return grad_hidden, grad_weight.to(weight.dtype), grad_bias.to(bias.dtype), None, None, None, None, None


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor,
                         compute_dtype: torch.dtype | None = None, rows: int = 512,
                         eager_gradient: bool = False, workspace: OutputWorkspace | None = None) -> torch.Tensor:
    """Per-row -log softmax(hidden @ weight.T + bias)[targets], [N]; hidden [N, H], weight [V, H], bias [V].
    `workspace`: buffers the reduced eager path may keep between calls (else it allocates its own)."""
    if rows < 1:
        raise ValueError(f"rows must be positive, got {rows}")
    return _LinearCrossEntropy.apply(hidden, weight, bias, targets, compute_dtype, rows, eager_gradient, workspace)
