"""RNN encoder and decoder of the paper's language model (§3.1, Appendix D), shared with the baselines.

Both follow ruizheliUOA/TWR-VAE (lang_model/encoder.py, decoder.py): separate embeddings, dropout on the
embeddings, the decoder's initial state is a bias-free projection of z (and the LSTM cell starts equal to it),
and z is concatenated to every decoder input. Padding is handled by masks, never by computing on it.
"""
from __future__ import annotations

import torch
from torch import nn

from harness.data.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from layers.output_layer import OutputWorkspace, linear_cross_entropy

RNN_TYPES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def make_rnn(rnn_type: str, input_dim: int, hidden_dim: int, num_layers: int, dropout: float) -> nn.RNNBase:
    if rnn_type not in RNN_TYPES:
        raise ValueError(f"rnn_type must be one of {sorted(RNN_TYPES)}, got '{rnn_type}'")
    return RNN_TYPES[rnn_type](
        input_dim, hidden_dim, num_layers, batch_first=True, dropout=dropout if num_layers > 1 else 0.0
    )


def length_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """[B, max_len] bool, True at real positions."""
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


def row_sums(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B] sums of `values` (one per True position of `mask` [B, L], in row-major order) per row.

    Scattered back into [B, L] and summed per row: deterministic on a GPU too, where index_add_ accumulates with
    atomics in no fixed order."""
    return values.new_zeros(mask.shape).masked_scatter(mask, values).sum(1)


def compute_autocast(device: torch.device, compute_dtype: torch.dtype | None):
    """The autocast of a module's `compute_dtype` (harness.core.precision): None computes in the parameters' dtype
    (float32, autocast off); torch.bfloat16 runs the matmuls inside (an RNN's, a Linear's) on bf16 operands with the
    weights kept float32."""
    return torch.autocast(device.type, dtype=compute_dtype or torch.bfloat16, enabled=compute_dtype is not None)


class Dropout(nn.Dropout):
    """nn.Dropout, but on the CPU the mask comes from torch.rand: the same distribution (keep with probability 1 - p,
    scale by 1 / (1 - p)), about twice as fast there as the bernoulli_ that nn.Dropout draws (7 vs 15 ms for a
    64 x 25 x 512 batch of embeddings on 2 cores). The scaled mask is made in place, in the input's dtype, and
    multiplied once (x * (mask * scale) is x * mask * scale exactly: the mask is 0 or 1), 4.5 instead of 11 ms
    for 64 x 30 x 512 embeddings, where a bool mask went through two promoting products."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or self.p == 1 or x.device.type != "cpu":
            return super().forward(x)
        return x * torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))


class TimestepEncoder(nn.Module):
    """Runs the RNN over <s> x </s> and maps *every* hidden state h_t to (mu_t, logvar_t) (paper Eq. 3)."""

    # None: float32. torch.bfloat16: the RNN runs under autocast (bf16 matmuls, float32 weights); its states are
    # turned back into float32 before the mu / logvar heads, so the posteriors and the KL are float32 arithmetic.
    # Set by the harness (harness.core.precision), as LatentDecoder.compute_dtype.
    compute_dtype: torch.dtype | None = None

    def __init__(self, vocab_size, emb_dim, hidden_dim, z_dim, num_layers, dropout, rnn_type):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=PAD_ID)
        self.dropout = Dropout(dropout)
        self.rnn = make_rnn(rnn_type, emb_dim, hidden_dim, num_layers, dropout)
        self.to_mu = nn.Linear(hidden_dim, z_dim)
        self.to_logvar = nn.Linear(hidden_dim, z_dim)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mu, logvar of shape [B, L, Z]; positions past a sentence's length are garbage and must be masked.

        A unidirectional RNN's state at t depends only on tokens <= t, so trailing padding cannot change any
        real position: the result for a sentence is the same whatever it is batched with.
        """
        with compute_autocast(tokens.device, self.compute_dtype):
            hidden, _ = self.rnn(self.dropout(self.embedding(tokens)))
        hidden = hidden.to(self.to_mu.weight.dtype)  # bf16 states back to the heads' dtype
        return self.to_mu(hidden), self.to_logvar(hidden)


class VocabularyOutput(nn.Module):
    """What a decoder with a V-wide output layer `self.out` (nn.Linear; its parameters are the decoder's) shares,
    whatever its RNN: the compute dtype, the scores of a state, and -log p(target | state) made blockwise without the
    [tokens x V] logits (layers.output_layer). The language model's LatentDecoder and the dialogue models'
    ResponseDecoder (layers.dialogue) are both one; a subclass calls `super().__init__()` first and sets `self.out`."""

    OUTPUT_ROWS = 256  # rows of logits per block on a CPU: 256 x 10k words x 4 bytes = 10 MB
    OUTPUT_ROWS_GPU = 16384  # on a GPU, few large blocks (kernel launches, not cache, are what counts there)
    # None: float32. torch.bfloat16: the RNN (run by the subclass under `_autocast`) and the output layer compute in
    # bf16 (see LatentDecoder); set by the harness (harness.core.precision), not part of the checkpoint.
    compute_dtype: torch.dtype | None = None
    out: nn.Linear

    def __init__(self):
        super().__init__()
        self.output_workspace = OutputWorkspace()  # the bf16 output layer's buffers, reused between batches

    def _autocast(self, device: torch.device):
        return compute_autocast(device, self.compute_dtype)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The V-wide scores for decoder states [..., H], float32 whatever the compute dtype (greedy decoding takes
        their argmax, sampling their softmax)."""
        with self._autocast(hidden.device):
            return self.out(hidden).float()

    def output_rows(self, device: torch.device) -> int:
        """Rows of V-wide logits made at a time on `device`: OUTPUT_ROWS on a CPU (a block that stays in cache and is
        reused from the heap), OUTPUT_ROWS_GPU elsewhere. The one rule for every blockwise use of the output layer."""
        return self.OUTPUT_ROWS if device.type == "cpu" else self.OUTPUT_ROWS_GPU

    def output_nll(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """-log p(target | state) [N] for decoder states [N, H], the V-wide logits made `output_rows` rows at a time
        and never stored (layers.output_layer), in training and in evaluation."""
        rows = self.output_rows(hidden.device)
        return linear_cross_entropy(hidden, self.out.weight, self.out.bias, targets, self.compute_dtype, rows,
                                    eager_gradient=hidden.device.type == "cpu", workspace=self.output_workspace)


class LatentDecoder(VocabularyOutput):
    """p(x|z) = prod_t p(x_t | x_<t, z): z initialises the state and is appended to every input embedding."""

    # None: compute in the parameters' dtype (float32). torch.bfloat16: the decoder's RNN runs under autocast and the
    # V-wide output layer multiplies bf16 operands (fp32 weights and accumulation; AMX on recent x86 CPUs, tensor
    # cores on GPUs); in training its softmax is written in bf16 from the bf16 logits (layers.output_layer), the
    # losses' sums and the KL stay float32 (the encoder has its own compute_dtype). Set by the harness
    # (harness.core.precision, config `train.precision` / `evaluate.precision`); not part of the checkpoint.
    compute_dtype: torch.dtype | None = None

    def __init__(self, vocab_size, emb_dim, hidden_dim, z_dim, num_layers, dropout, rnn_type, word_dropout=0.0):
        super().__init__()
        self.word_dropout = word_dropout  # Bowman et al. 2016: replace input words by <unk> with this rate
        self.rnn_type = rnn_type
        self.num_layers = num_layers
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=PAD_ID)
        self.dropout = Dropout(dropout)
        self.rnn = make_rnn(rnn_type, emb_dim + z_dim, hidden_dim, num_layers, dropout)
        self.z_to_hidden = nn.Linear(z_dim, hidden_dim, bias=False)
        self.out = nn.Linear(hidden_dim, vocab_size)

    def initial_state(self, z: torch.Tensor):
        h0 = self.z_to_hidden(z).unsqueeze(0).expand(self.num_layers, -1, -1).contiguous()
        return (h0, h0) if self.rnn_type == "lstm" else h0

    def hidden_states(self, inputs: torch.Tensor, z: torch.Tensor, state=None):
        """Decoder states [N, T, H] for input tokens [N, T] and latents [N, Z]."""
        if self.training and self.word_dropout > 0:
            dropped = torch.rand(inputs.shape, device=inputs.device) < self.word_dropout
            dropped[:, 0] = False  # keep <s>
            inputs = inputs.masked_fill(dropped & (inputs != PAD_ID), UNK_ID)
        embedded = self.dropout(self.embedding(inputs))
        z_steps = z.unsqueeze(1).expand(-1, inputs.size(1), -1)
        if state is None:
            state = self.initial_state(z)
        with self._autocast(inputs.device):
            return self.rnn(torch.cat([embedded, z_steps], dim=-1), state)

    def token_log_likelihood(self, tokens: torch.Tensor, lengths: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) [N] for token rows [N, L] (<s> ... </s> PAD...), summed over the lengths-1 targets.

        The output layer (the costly V-wide projection) runs only on real positions.
        """
        inputs, targets = tokens[:, :-1], tokens[:, 1:]
        hidden, _ = self.hidden_states(inputs, z)
        real = length_mask(lengths - 1, inputs.size(1))
        return -row_sums(self.output_nll(hidden[real], targets[real]), real)

    @torch.no_grad()
    def greedy(self, z: torch.Tensor, max_length: int) -> list[list[int]]:
        """Greedy decoding from latents [N, Z]: the argmax word at each step, fed back, until </s> or
        `max_length` words. Returns each row's word ids (without <s> and </s>)."""
        state = None
        token = torch.full((z.size(0), 1), BOS_ID, dtype=torch.long, device=z.device)
        steps = []
        finished = torch.zeros(z.size(0), dtype=torch.bool, device=z.device)
        for _ in range(max_length):
            hidden, state = self.hidden_states(token, z, state)
            token = self.logits(hidden[:, -1]).argmax(-1, keepdim=True)
            steps.append(token.squeeze(1).masked_fill(finished, EOS_ID))
            finished |= token.squeeze(1) == EOS_ID
            if bool(finished.all()):
                break
        words = torch.stack(steps, 1).tolist() if steps else [[] for _ in range(z.size(0))]
        return [row[:row.index(EOS_ID)] if EOS_ID in row else row for row in words]
