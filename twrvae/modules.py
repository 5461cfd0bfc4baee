"""RNN encoder and decoder of the paper's language model (§3.1, Appendix D), shared with the baselines.

Both follow ruizheliUOA/TWR-VAE (lang_model/encoder.py, decoder.py): separate embeddings, dropout on the
embeddings, the decoder's initial state is a bias-free projection of z (and the LSTM cell starts equal to it),
and z is concatenated to every decoder input. Padding is handled by masks, never by computing on it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.data.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID

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


class TimestepEncoder(nn.Module):
    """Runs the RNN over <s> x </s> and maps *every* hidden state h_t to (mu_t, logvar_t) (paper Eq. 3)."""

    def __init__(self, vocab_size, emb_dim, hidden_dim, z_dim, num_layers, dropout, rnn_type):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=PAD_ID)
        self.dropout = nn.Dropout(dropout)
        self.rnn = make_rnn(rnn_type, emb_dim, hidden_dim, num_layers, dropout)
        self.to_mu = nn.Linear(hidden_dim, z_dim)
        self.to_logvar = nn.Linear(hidden_dim, z_dim)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mu, logvar of shape [B, L, Z]; positions past a sentence's length are garbage and must be masked.

        A unidirectional RNN's state at t depends only on tokens <= t, so trailing padding cannot change any
        real position: the result for a sentence is the same whatever it is batched with.
        """
        hidden, _ = self.rnn(self.dropout(self.embedding(tokens)))
        return self.to_mu(hidden), self.to_logvar(hidden)


class LatentDecoder(nn.Module):
    """p(x|z) = prod_t p(x_t | x_<t, z): z initialises the state and is appended to every input embedding."""

    OUTPUT_ROWS = 512  # rows of logits per block in CPU evaluation: 512 x 10k words x 4 bytes = 20 MB (< L3)

    def __init__(self, vocab_size, emb_dim, hidden_dim, z_dim, num_layers, dropout, rnn_type, word_dropout=0.0):
        super().__init__()
        self.word_dropout = word_dropout  # Bowman et al. 2016: replace input words by <unk> with this rate
        self.rnn_type = rnn_type
        self.num_layers = num_layers
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=PAD_ID)
        self.dropout = nn.Dropout(dropout)
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
        return self.rnn(torch.cat([embedded, z_steps], dim=-1), state)

    def token_log_likelihood(self, tokens: torch.Tensor, lengths: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) [N] for token rows [N, L] (<s> ... </s> PAD...), summed over the lengths-1 targets.

        The output layer (the costly V-wide projection) runs only on real positions.
        """
        inputs, targets = tokens[:, :-1], tokens[:, 1:]
        hidden, _ = self.hidden_states(inputs, z)
        real = length_mask(lengths - 1, inputs.size(1))
        token_nll = self.output_nll(hidden[real], targets[real])
        rows = torch.arange(tokens.size(0), device=tokens.device).unsqueeze(1).expand_as(real)[real]
        return -torch.zeros(tokens.size(0), device=tokens.device, dtype=token_nll.dtype).index_add_(0, rows, token_nll)

    def output_nll(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """-log p(target | state) [N] for decoder states [N, H]. In CPU evaluation (no autograd; e.g. the K x B rows
        of the importance-weighted NLL) the V-wide logits are made OUTPUT_ROWS rows at a time, so that they stay in
        the cache instead of round-tripping through memory (benchmarks/: ~20 % faster at K x B = 640); the
        numbers are the same."""
        if torch.is_grad_enabled() or hidden.device.type != "cpu" or hidden.size(0) <= self.OUTPUT_ROWS:
            return F.cross_entropy(self.out(hidden), targets, reduction="none")
        return torch.cat([F.cross_entropy(self.out(hidden[start:start + self.OUTPUT_ROWS]),
                                          targets[start:start + self.OUTPUT_ROWS], reduction="none")
                          for start in range(0, hidden.size(0), self.OUTPUT_ROWS)])

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
            token = self.out(hidden[:, -1]).argmax(-1, keepdim=True)
            steps.append(token.squeeze(1).masked_fill(finished, EOS_ID))
            finished |= token.squeeze(1) == EOS_ID
            if bool(finished.all()):
                break
        words = torch.stack(steps, 1).tolist() if steps else [[] for _ in range(z.size(0))]
        return [row[:row.index(EOS_ID)] if EOS_ID in row else row for row in words]
