"""Building blocks of the dialogue CVAEs, as in ruizheliUOA/TWR-VAE dialogue_dd/models_dailydial.py (which follows
guxd/DialogWAE): a shared embedding, a bidirectional GRU utterance encoder, a GRU context encoder over utterance
vectors plus a one-hot floor (speaker), Gaussian recognition and prior networks, a GRU decoder whose initial
state is [z; c]. Padding is handled with lengths (packed sequences) and masks.

The GRUs of the encoders and of the decoder's teacher-forced pass run through layers.gru.gru_sequences on the CPU:
nn.GRU's function and parameters, packed (nothing computed on padding), with a written-out backward through time that
avoids PyTorch's per-timestep slice gradients (about half of the CPU step's time in a profile). Step-by-step decoding
calls the nn.GRU itself.

Reduced precision as the language model's layers (layers.recurrent): the encoders, the decoder and the bag-of-words
head each have a `compute_dtype` (None = float32) that the harness sets (harness.core.precision); with bfloat16 their
GRUs' and Linears' matrix products take bf16 operands (float32 weights), their outputs come back as float32, and the
decoder's V-wide output layer is the language model's (layers.recurrent.VocabularyOutput: blockwise, the [tokens x V]
logits never stored, bf16 operands). The recognition / prior networks and the losses' sums stay float32.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from harness.data.vocab import PAD_ID
from layers.gru import gru_sequences
from layers.recurrent import Dropout, VocabularyOutput, compute_autocast, length_mask, row_sums


class ReferenceBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d (eps 1e-5, momentum 0.1, as guxd/DialogWAE and fangleai/Implicit-LVM) that uses its running
    statistics for a batch of one, where batch statistics are undefined (DialogWAE's and iVAE's noise layers and
    generators)."""

    def forward(self, x):
        if self.training and x.size(0) == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


class UtteranceEncoder(nn.Module):
    """Bi-GRU over an utterance's tokens; its vector is the final state of both directions [N, 2H]."""

    # None: float32. torch.bfloat16: the GRU runs under autocast, its vectors come back as float32 (as
    # layers.recurrent.TimestepEncoder's states). Set by the harness (harness.core.precision).
    compute_dtype: torch.dtype | None = None

    def __init__(self, embedding: nn.Embedding, hidden_dim: int, dropout: float):
        super().__init__()
        self.embedding = embedding
        self.dropout = Dropout(dropout)
        self.rnn = nn.GRU(embedding.embedding_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.output_dim = 2 * hidden_dim

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        embedded = self.dropout(self.embedding(tokens))
        _, final = gru_sequences(self.rnn, embedded, lengths.clamp(min=1), compute_dtype=self.compute_dtype,
                                 outputs=False)  # [2, N, H]
        vectors = final.transpose(0, 1).reshape(tokens.size(0), self.output_dim).to(self.rnn.weight_hh_l0.dtype)
        return vectors * (lengths > 0).unsqueeze(1).to(vectors.dtype)  # absent utterances are zero vectors


class ContextEncoder(nn.Module):
    """GRU over [utterance vector; floor one-hot] of the J context utterances: states c_1..c_J and c = c_n."""

    # None: float32. torch.bfloat16: the GRU runs under autocast, its states come back as float32 (the utterance
    # encoder has its own compute_dtype). Set by the harness (harness.core.precision).
    compute_dtype: torch.dtype | None = None

    def __init__(self, utterance_encoder: UtteranceEncoder, hidden_dim: int, dropout: float = 0.25):
        super().__init__()
        self.utterance_encoder = utterance_encoder
        self.dropout = Dropout(dropout)
        self.rnn = nn.GRU(utterance_encoder.output_dim + 2, hidden_dim, batch_first=True)

    def forward(self, context, utterance_lengths, num_utterances, floors):
        """context [B, J, U], utterance_lengths [B, J], num_utterances [B], floors [B, J] in {0, 1} ->
        (c [B, H], states [B, J, H]); states past num_utterances are zero."""
        b, j, u = context.shape
        vectors = self.utterance_encoder(context.reshape(b * j, u), utterance_lengths.reshape(b * j)).view(b, j, -1)
        inputs = self.dropout(torch.cat([vectors, F.one_hot(floors.long(), 2).to(vectors.dtype)], dim=-1))
        states, final = gru_sequences(self.rnn, inputs, num_utterances.clamp(min=1), compute_dtype=self.compute_dtype)
        dtype = self.rnn.weight_hh_l0.dtype  # bf16 states back to the parameters' dtype
        return final[-1].to(dtype), states.to(dtype)


class GaussianHead(nn.Module):
    """(mu, logvar) of a diagonal Gaussian from a vector; `hidden` adds a tanh layer first (the prior net)."""

    def __init__(self, input_dim: int, z_dim: int, hidden: bool = False):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(input_dim, z_dim), nn.Tanh()) if hidden else nn.Identity()
        width = z_dim if hidden else input_dim
        self.to_mu = nn.Linear(width, z_dim)
        self.to_logvar = nn.Linear(width, z_dim)

    def forward(self, x):
        h = self.body(x)
        return self.to_mu(h), self.to_logvar(h)


class ResponseDecoder(VocabularyOutput):
    """GRU language model of the response whose initial state is [z; c] (hidden size H + Z).

    Its output layer `out` is the language model decoder's (layers.recurrent.VocabularyOutput): -log p(token | state)
    made blockwise on the real positions only, never the [tokens x V] logits; `compute_dtype` (None = float32,
    torch.bfloat16: the GRU under autocast and bf16 output-layer operands) is set by the harness
    (harness.core.precision), as LatentDecoder's."""

    def __init__(self, embedding: nn.Embedding, state_dim: int, vocab_size: int, dropout: float):
        super().__init__()
        self.embedding = embedding
        self.dropout = Dropout(dropout)
        self.rnn = nn.GRU(embedding.embedding_dim, state_dim, batch_first=True)
        self.out = nn.Linear(state_dim, vocab_size)

    def run(self, embedded: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The GRU over input embeddings [N, T, E] from `hidden` [1, N, D], in the compute dtype: (states [N, T, D],
        final state [1, N, D]); `logits` or `output_nll` turn the states into scores."""
        with self._autocast(embedded.device):
            return self.rnn(embedded, hidden)

    def log_likelihood(self, response: torch.Tensor, lengths: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """log p(response | state) [B], summed over the lengths-1 predicted tokens (words and </s>).

        The GRU (layers.gru.gru_sequences) and the output layer run on the real positions only."""
        inputs, targets = response[:, :-1], response[:, 1:]
        hidden, _ = gru_sequences(self.rnn, self.dropout(self.embedding(inputs)), (lengths - 1).clamp(min=1),
                                  state.unsqueeze(0), self.compute_dtype)  # zero past each length
        real = length_mask(lengths - 1, inputs.size(1))
        return -row_sums(self.output_nll(hidden[real], targets[real]), real)

    @torch.no_grad()
    def greedy(self, state: torch.Tensor, max_len: int, bos: int, eos: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy decoding from `state` [N, D]: token ids [N, max_len] and lengths [N] (tokens before </s>)."""
        n = state.size(0)
        token = torch.full((n, 1), bos, dtype=torch.long, device=state.device)
        hidden = state.unsqueeze(0).contiguous()
        out = torch.full((n, max_len), PAD_ID, dtype=torch.long, device=state.device)
        lengths = torch.full((n,), max_len, dtype=torch.long, device=state.device)
        finished = torch.zeros(n, dtype=torch.bool, device=state.device)
        for t in range(max_len):
            output, hidden = self.run(self.embedding(token), hidden)
            token = self.logits(output[:, -1]).argmax(-1, keepdim=True)  # as LatentDecoder.greedy
            out[:, t] = token[:, 0]
            newly = (token[:, 0] == eos) & ~finished
            lengths[newly] = t
            finished |= newly
            if bool(finished.all()):
                break
        return out, lengths


class BagOfWordsHead(nn.Module):
    """Zhao et al. 2017 §3.2 bag-of-words loss: predict the response's words, order-free, from [z; c]."""

    # None: float32. torch.bfloat16: the two Linears (the second V wide, one row per response) run under autocast;
    # the log-softmax and the sums are float32. Set by the harness (harness.core.precision).
    compute_dtype: torch.dtype | None = None

    def __init__(self, input_dim: int, vocab_size: int, hidden_dim: int = 400):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.Tanh(), nn.Linear(hidden_dim, vocab_size))

    def negative_log_likelihood(self, state: torch.Tensor, response: torch.Tensor, lengths: torch.Tensor):
        """-sum_t log f(x_t) over the response's words and </s> [B]."""
        with compute_autocast(state.device, self.compute_dtype):
            logits = self.net(state)
        log_probs = F.log_softmax(logits.float(), dim=-1)  # [B, V]
        targets = response[:, 1:]
        real = torch.arange(targets.size(1), device=lengths.device).unsqueeze(0) < (lengths - 1).unsqueeze(1)
        return -(log_probs.gather(1, targets) * real.to(log_probs.dtype)).sum(1)


@torch.no_grad()
def reference_initialisation(rnns: list[nn.RNNBase], gaussian_heads: list[nn.Module], output: nn.Linear) -> None:
    """The initialisation of ruizheliUOA/TWR-VAE dialogue_dd/models_dailydial.py and dialogue_switchboard/
    models_swda.py (after guxd/DialogWAE; the paper's Appendix F): every weight matrix of the GRUs orthogonal
    (`init_weights`: each parameter with dim > 1, i.e. the stacked input and hidden matrices), the recognition and
    prior networks' Linear weights U(-0.02, 0.02) with zero biases, the output layer U(-0.1, 0.1) with a zero bias.
    GRU biases and the embedding keep PyTorch's defaults there too."""
    for rnn in rnns:
        for weight in rnn.parameters():
            if weight.dim() > 1:
                nn.init.orthogonal_(weight)
    for head in gaussian_heads:
        for layer in head.modules():
            if isinstance(layer, nn.Linear):
                nn.init.uniform_(layer.weight, -0.02, 0.02)
                nn.init.zeros_(layer.bias)
    nn.init.uniform_(output.weight, -0.1, 0.1)
    nn.init.zeros_(output.bias)
