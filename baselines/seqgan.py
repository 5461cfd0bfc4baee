"""SeqGAN for dialogue response generation (Yu et al., AAAI 2017, "SeqGAN: Sequence Generative Adversarial Nets with
Policy Gradient"), the SeqGAN row of the TWR-VAE paper's Table 5, which repeats DialogWAE's (Gu et al. 2019), whose
SeqGAN is the adversarial dialogue model of Li et al. (EMNLP 2017, "Adversarial Learning for Neural Dialogue
Generation": REINFORCE with Monte-Carlo roll-outs, a (context, response) discriminator, teacher forcing).

    generator      p(y | c): the CVAE family's context encoder and GRU response decoder (layers/dialogue.py), no latent
    discriminator  D(c, y): its own context encoder + a CNN over the response (filter widths, max-pooling, highway)
    reward         Q(y_1..y_t-1, y_t) = mean of D over N roll-outs completing y_1..y_t; D(c, y) at t = T (Eq. 4)
Phases by update count: MLE pre-training, discriminator pre-training, adversarial (policy gradient + MLE + D).
Reference code read, not copied: LantaoYu/SeqGAN. Details and deviations: docs/methods.md, "SeqGAN".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from harness.core.contract import ConfigError
from harness.data.vocab import BOS_ID, EOS_ID, PAD_ID
from harness.methods.dialogue_api import DialogueVAE
from harness.methods.model_api import LossTerms
from harness.methods.registry import register_method
from layers.dialogue import ContextEncoder, ResponseDecoder, UtteranceEncoder, reference_initialisation
from layers.modes import eval_mode
from layers.recurrent import compute_autocast, length_mask

#: score(tokens [K, M], lengths [K], rows [K]) -> probability [K] that each response is a real reply to the context of
#: batch row `rows`; the discriminator's in training, a stub in the tests
Scorer = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class SeqGANOptions:
    emb_dim: int = 200
    hidden_dim: int = 300
    # SeqGAN has no latent variable: the decoder's initial state is [f(c); c], f(c) = tanh(W c + b) of size z_dim, as
    # wide as the CVAE family's [z; c], so that every dialogue model has the same decoder (0: the state is c)
    z_dim: int = 200
    dropout: float = 0.5
    init: str = "reference"  # reference (the TWR-VAE / DialogWAE code's; reference_initialisation) | pytorch
    embedding_init: str = "vectors"  # vectors (pretrained word vectors, when the harness passes some) | random
    # the schedule, in updates (the harness's step counter); the defaults keep short runs in MLE pre-training
    pretrain_steps: int = 5000  # generator MLE (teacher forcing) updates first
    discriminator_pretrain_steps: int = 1000  # then discriminator updates alone, one per step
    d_steps: int = 5  # discriminator updates after each adversarial generator update (Li et al. 2017: D-steps 5)
    mle_steps: int = 1  # teacher-forcing updates after each policy-gradient update (Li et al. 2017); 0: Yu et al.
    rollouts: int = 16  # N Monte-Carlo roll-outs per prefix (Yu et al.'s rollout_num)
    sample_max_len: int = 40  # most tokens (words and </s>) of a response sampled in training
    reward_baseline: str = "mean"  # mean: subtract the batch's mean reward at each step (Li et al.'s b) | none (Yu)
    # discriminator (Yu et al.: embedding 64, 12 widths 1..20 with 100-200 filters each, highway, keep-prob 0.75)
    d_emb_dim: int = 64
    d_hidden_dim: int = 128  # its context encoder's GRU size
    d_filter_widths: tuple[int, ...] = (1, 2, 3, 4, 5)
    d_filters: int = 100  # filters per width
    d_dropout: float = 0.25

    def __post_init__(self):
        if not isinstance(self.d_filter_widths, (list, tuple)) or not self.d_filter_widths \
                or not all(isinstance(w, int) and w >= 1 for w in self.d_filter_widths):
            raise ConfigError(f"seqgan: d_filter_widths must be a non-empty list of integers >= 1, got "
                              f"{self.d_filter_widths!r}")
        object.__setattr__(self, "d_filter_widths", tuple(self.d_filter_widths))  # YAML gives a list
        if min(self.emb_dim, self.hidden_dim, self.d_emb_dim, self.d_hidden_dim, self.d_filters) <= 0 \
                or self.z_dim < 0 or not 0 <= self.dropout < 1 or not 0 <= self.d_dropout < 1:
            raise ConfigError(f"seqgan: sizes must be > 0 (z_dim >= 0) and dropouts in [0, 1), got {self}")
        if min(self.pretrain_steps, self.discriminator_pretrain_steps, self.mle_steps) < 0:
            raise ConfigError(f"seqgan: pretrain_steps, discriminator_pretrain_steps and mle_steps must be >= 0, got "
                              f"{self.pretrain_steps}, {self.discriminator_pretrain_steps}, {self.mle_steps}")
        if min(self.d_steps, self.rollouts) < 1 or self.sample_max_len < 1:
            raise ConfigError(f"seqgan: d_steps and rollouts must be >= 1 and sample_max_len >= 1, got d_steps "
                              f"{self.d_steps}, rollouts {self.rollouts}, sample_max_len {self.sample_max_len}")
        if self.reward_baseline not in ("mean", "none"):
            raise ConfigError(f"seqgan: reward_baseline must be 'mean' or 'none', got {self.reward_baseline!r}")
        if self.init not in ("reference", "pytorch") or self.embedding_init not in ("vectors", "random"):
            raise ConfigError(f"seqgan: init must be 'reference' or 'pytorch' and embedding_init 'vectors' or "
                              f"'random', got {self.init!r} and {self.embedding_init!r}")


def draw(logits: torch.Tensor) -> torch.Tensor:
    """One index per row from softmax(logits) [N, V], by inverting the CDF: the distribution of torch.multinomial,
    about three times faster on a CPU at a 6,000-word vocabulary (where sampling dominates the roll-outs)."""
    cdf = F.softmax(logits.float(), dim=-1).cumsum(-1)
    u = torch.rand(cdf.size(0), 1, device=cdf.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True)[:, 0].clamp(max=cdf.size(1) - 1)  # zero-probability ids: never


class ResponseDiscriminator(nn.Module):
    """D(c, y) as a logit: a GRU context encoder (the generator's layer classes, its own weights) and a CNN text
    classifier over the response (Yu et al.'s discriminator after Kim 2014: one convolution per filter width, ReLU,
    max over time; then one highway layer over [features; context] and a linear output)."""

    def __init__(self, vocab_size: int, emb_dim: int, hidden_dim: int, widths: tuple[int, ...], filters: int,
                 dropout: float):
        super().__init__()
        self.widths = widths
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=PAD_ID)
        self.context_encoder = ContextEncoder(UtteranceEncoder(self.embedding, hidden_dim, dropout), hidden_dim, dropout)
        self.convs = nn.ModuleList(nn.Conv1d(emb_dim, filters, width) for width in widths)
        features = filters * len(widths) + hidden_dim
        self.gate = nn.Linear(features, features)
        self.transform = nn.Linear(features, features)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(features, 1)

    def encode_context(self, batch) -> torch.Tensor:
        """[B, H_D], the context read as the generator reads it (DialogueVAE.encode_context: without <s>)."""
        lengths = (batch.context_lengths - 1).clamp(min=0)
        return self.context_encoder(batch.context[:, :, 1:], lengths, batch.num_utterances, batch.floors)[0]

    def forward(self, context: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Logits [N] for context vectors [N, H_D] and responses `tokens` [N, M] (words and </s>, no <s>) of
        `lengths` [N]. Positions past a length are read as padding and windows past it are not pooled, so a score
        does not depend on how far its batch is padded; a response shorter than a width gets one window."""
        width = max(max(self.widths), tokens.size(1))
        tokens = F.pad(tokens, (0, width - tokens.size(1)), value=PAD_ID)
        tokens = tokens.masked_fill(~length_mask(lengths, width), PAD_ID)
        embedded = self.embedding(tokens).transpose(1, 2)  # [N, E, M]
        pooled = []
        for conv, w in zip(self.convs, self.widths):
            maps = F.relu(conv(embedded))  # [N, F, M - w + 1]
            windows = length_mask((lengths - w + 1).clamp(min=1), maps.size(2))
            pooled.append(maps.masked_fill(~windows.unsqueeze(1), float("-inf")).amax(2))
        h = torch.cat([*pooled, context], dim=-1)
        gate = torch.sigmoid(self.gate(h))
        h = gate * F.relu(self.transform(h)) + (1 - gate) * h  # highway (Srivastava et al. 2015)
        return self.out(self.dropout(h)).squeeze(-1)

    #: responses scored per block on a CPU: a roll-out's completions of every prefix (up to 64 x 39) at once make
    #: feature maps of ~40 MB per filter width, which glibc maps and faults in afresh at every call (past its 32 MB
    #: mmap threshold, harness/core/allocator.py); blocks of 256 are reused from the heap
    ROWS = 256

    @torch.no_grad()
    def probability(self, context: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """sigmoid of `forward` [N], on a CPU ROWS responses at a time (a score does not depend on its batch-mates)."""
        rows = self.ROWS if tokens.device.type == "cpu" else max(tokens.size(0), 1)
        return torch.cat([torch.sigmoid(self(c, t, n)) for c, t, n in
                          zip(context.split(rows), tokens.split(rows), lengths.split(rows))])


@register_method("seqgan")
class SeqGAN(DialogueVAE):
    """A context-conditioned generator trained by MLE, then by policy gradient against a (context, response)
    discriminator with Monte-Carlo roll-out rewards; no latent variable."""

    Options = SeqGANOptions

    def __init__(self, vocab_size: int, options: SeqGANOptions):
        super().__init__()
        self.options = o = options
        self.embedding = nn.Embedding(vocab_size, o.emb_dim, padding_idx=PAD_ID)
        self.utterance_encoder = UtteranceEncoder(self.embedding, o.hidden_dim, o.dropout)
        self.context_encoder = ContextEncoder(self.utterance_encoder, o.hidden_dim)
        self.bridge = nn.Sequential(nn.Linear(o.hidden_dim, o.z_dim), nn.Tanh()) if o.z_dim else None
        self.decoder = ResponseDecoder(self.embedding, o.hidden_dim + o.z_dim, vocab_size, o.dropout)
        if o.init == "reference":
            reference_initialisation([self.utterance_encoder.rnn, self.context_encoder.rnn, self.decoder.rnn],
                                     [self.bridge] if self.bridge is not None else [], self.decoder.out)
        self.discriminator = ResponseDiscriminator(vocab_size, o.d_emb_dim, o.d_hidden_dim, o.d_filter_widths,
                                                   o.d_filters, o.d_dropout)

    def initialise_embeddings(self, vocab, vectors, name: str) -> dict:
        if self.options.embedding_init == "random":
            return {"vectors": name, "initialised": 0, "note": "embedding_init random: not initialised from vectors"}
        return super().initialise_embeddings(vocab, vectors, name)  # the generator's embedding, not D's

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        d = {id(p) for p in self.discriminator.parameters()}
        return {"generator": [p for p in self.parameters() if id(p) not in d],
                "discriminator": list(self.discriminator.parameters())}

    def phase(self, step: int) -> str:
        """mle | discriminator | adversarial: the schedule is the update counter, so a resumed run is in its phase."""
        o = self.options
        if step < o.pretrain_steps:
            return "mle"
        return "discriminator" if step < o.pretrain_steps + o.discriminator_pretrain_steps else "adversarial"

    # ---- generator
    def decoder_state(self, c: torch.Tensor) -> torch.Tensor:
        return c if self.bridge is None else torch.cat([self.bridge(c), c], dim=-1)

    def loss(self, batch, step: int) -> LossTerms:
        """The MLE objective: -log p(response | c) [B] (teacher forcing, with dropout); no KL term."""
        state = self.decoder_state(self.encode_context(batch)[0])
        recon = -self.decoder.log_likelihood(batch.response, batch.response_lengths, state)
        return LossTerms(loss=recon, recon=recon, kl=torch.zeros_like(recon), beta=0.0)

    def _next_tokens(self, output: torch.Tensor) -> torch.Tensor:
        """One token [N] drawn from p(. | state) for decoder outputs [N, D], the V-wide logits made a block of rows at
        a time (the output layer's `output_rows`, as its loss makes them): a roll-out step has up to 64 x 39 prefixes,
        whose logits (100 MB at 10,000 words) glibc would map and fault in afresh at every step (over its 32 MB mmap
        threshold, harness/core/allocator.py); 256-row blocks are reused from the heap. Each row's draw is the same
        distribution (draw); docs/performance.md has the measurement."""
        blocks = output.split(self.decoder.output_rows(output.device))
        return torch.cat([draw(self.decoder.logits(block)) for block in blocks])

    @torch.no_grad()
    def _complete(self, hidden: torch.Tensor, token: torch.Tensor, out: torch.Tensor, lengths: torch.Tensor):
        """Sample the rest of each row from the decoder (no dropout, temperature 1): `hidden` [N, D] is its state
        before reading `token` [N] (the row's last token, <s> for an empty row), `out` [N, M] holds the row's
        `lengths` [N] tokens so far and is filled in place up to </s> or M tokens. Returns the lengths [N].
        One autocast region around the loop: in bf16 the decoder's weights are cast once, not at every step."""
        lengths = lengths.clone()
        active = torch.arange(out.size(0), device=out.device)
        with compute_autocast(out.device, self.decoder.compute_dtype):
            while active.numel():
                output, h = self.decoder.run(self.embedding(token).unsqueeze(1), hidden.unsqueeze(0).contiguous())
                token = self._next_tokens(output[:, 0])
                out[active, lengths[active]] = token
                lengths[active] += 1
                going = (token != EOS_ID) & (lengths[active] < out.size(1))
                active, hidden, token = active[going], h[0][going], token[going]
        return lengths

    @torch.no_grad()
    def sample(self, state: torch.Tensor, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Responses sampled from the decoder's initial states [N, D]: tokens [N, max_len] (words and </s>, no <s>,
        then padding) and lengths [N] (tokens including </s>; max_len when none was sampled)."""
        n = state.size(0)
        out = torch.full((n, max_len), PAD_ID, dtype=torch.long, device=state.device)
        start = torch.full((n,), BOS_ID, dtype=torch.long, device=state.device)
        lengths = self._complete(state, start, out, torch.zeros(n, dtype=torch.long, device=state.device))
        return out, lengths

    def _decoder_states(self, state: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """[N, M, D]: position t holds the decoder's state after reading <s> y_1 .. y_t (teacher forcing of the
        sampled tokens, no dropout); its output layer gives p(y_t+1 | y_1..y_t, c)."""
        inputs = torch.cat([torch.full_like(tokens[:, :1], BOS_ID), tokens[:, :-1]], dim=1)
        return self.decoder.run(self.embedding(inputs), state.unsqueeze(0).contiguous())[0]

    def token_log_probs(self, state: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """log G(y_t | y_1..y_t-1, c) [N, M] of sampled responses, 0 past their lengths (differentiable)."""
        logits = self.decoder.logits(self._decoder_states(state, tokens))  # float32 whatever the compute dtype
        log_probs = F.log_softmax(logits, dim=-1).gather(2, tokens.unsqueeze(2)).squeeze(2)
        return log_probs * length_mask(lengths, tokens.size(1)).to(log_probs.dtype)

    @torch.no_grad()
    def rollout_rewards(self, state: torch.Tensor, tokens: torch.Tensor, lengths: torch.Tensor, score: Scorer,
                        rollouts: int) -> torch.Tensor:
        """Yu et al. Eq. 4, Q [N, M]: for t < T (the row's length), Q[:, t-1] is the mean score of `rollouts`
        completions of the prefix y_1..y_t sampled from the current generator; Q[:, T-1] = score of the whole
        response; 0 past T. `state` [N, D]: the decoder's initial states; score: see `Scorer`."""
        n, m = tokens.shape
        rewards = torch.zeros(n, m, device=tokens.device)
        rows = torch.arange(n, device=tokens.device)
        rewards[rows, lengths - 1] = score(tokens, lengths, rows).float()
        prefix = length_mask(lengths - 1, m)  # (row, t-1) for the prefixes y_1..y_t with t < T
        if not prefix.any():
            return rewards
        row, last = prefix.nonzero(as_tuple=True)  # last = t - 1, the index of the prefix's last token
        hidden = self._decoder_states(state, tokens)[row, last]  # after <s> y_1..y_t-1: before reading y_t
        keep = length_mask(last + 1, m)
        total = torch.zeros(row.size(0), device=tokens.device)
        for _ in range(rollouts):  # one roll-out of every prefix at a time, as Yu et al.'s loop over rollout_num
            out = tokens[row].masked_fill(~keep, PAD_ID)
            done = self._complete(hidden.clone(), tokens[row, last], out, last + 1)
            total += score(out, done, row).float()
        rewards[row, last] = total / rollouts
        return rewards

    def policy_gradient_loss(self, batch, score: Scorer | None = None) -> torch.Tensor:
        """REINFORCE (Yu et al. Eq. 6-7) on one response sampled per context of the batch: per example
        -sum_t (Q_t - b_t) log G(y_t | y_1..y_t-1, c) [B]. score: the discriminator's probability (default) or a
        stub."""
        o = self.options
        score = self.discriminator_scorer(batch) if score is None else score
        with eval_mode(self.context_encoder):
            state = self.decoder_state(self.encode_context(batch)[0])
            tokens, lengths = self.sample(state.detach(), o.sample_max_len)
            rewards = self.rollout_rewards(state.detach(), tokens, lengths, score, o.rollouts)
            if o.reward_baseline == "mean":  # b_t: the mean reward at step t over the responses that reach it
                mask = length_mask(lengths, tokens.size(1)).to(rewards.dtype)
                rewards = (rewards - (rewards * mask).sum(0) / mask.sum(0).clamp(min=1)) * mask
            log_probs = self.token_log_probs(state, tokens, lengths)
        return -(rewards * log_probs).sum(1)

    # ---- discriminator
    def discriminator_scorer(self, batch) -> Scorer:
        """D's probability that a response is real, as the reward (dropout off, as Yu et al.'s rollout rewards)."""
        with eval_mode(self.discriminator), torch.no_grad():
            context = self.discriminator.encode_context(batch)

        def score(tokens, lengths, rows):
            with eval_mode(self.discriminator):
                return self.discriminator.probability(context[rows], tokens, lengths)
        return score

    def discriminator_loss(self, batch) -> torch.Tensor:
        """-log D(c, y) - log(1 - D(c, y~)) [B]: the batch's responses y against one response y~ sampled from the
        generator per context (Yu et al. Eq. 5)."""
        with eval_mode(self.context_encoder), torch.no_grad():
            fake, fake_lengths = self.sample(self.decoder_state(self.encode_context(batch)[0]),
                                             self.options.sample_max_len)
        context = self.discriminator.encode_context(batch)
        real = self.discriminator(context, batch.response[:, 1:], batch.response_lengths - 1)
        return F.softplus(-real) + F.softplus(self.discriminator(context, fake, fake_lengths))

    # ---- training (Yu et al. Algorithm 1; Li et al. 2017's teacher forcing)
    def _reported(self, batch) -> LossTerms:
        with torch.no_grad():
            return self.loss(batch, 0)

    def training_step(self, batch, step: int, optimisation) -> LossTerms:
        o = self.options
        phase = self.phase(step)
        if phase == "mle":
            terms = self.loss(batch, step)
            optimisation.minimise(terms.loss, step, groups=("generator",))
            return terms
        if phase == "discriminator":
            optimisation.minimise(self.discriminator_loss(batch), step, groups=("discriminator",))
            return self._reported(batch)
        optimisation.minimise(self.policy_gradient_loss(batch), step, groups=("generator",))
        terms = None
        for _ in range(o.mle_steps):  # teacher forcing: the human response as an action with reward 1
            terms = self.loss(batch, step)
            optimisation.minimise(terms.loss, step, groups=("generator",))
        for i in range(o.d_steps):  # after the first, on random training batches when the trainer provides them
            d_batch = batch if i == 0 or optimisation.random_batch is None else optimisation.random_batch()
            optimisation.minimise(self.discriminator_loss(d_batch), step, groups=("discriminator",))
        if terms is None:
            return self._reported(batch)
        return LossTerms(terms.loss.detach(), terms.recon.detach(), terms.kl, terms.beta)

    @torch.no_grad()
    def generate(self, batch, num_samples: int, max_len: int):
        """Greedy responses, as every dialogue model here: without a latent the S responses of a context are one
        response repeated (the paper's SeqGAN row has BLEU precision = recall, as S identical responses give)."""
        state = self.decoder_state(self.encode_context(batch)[0])
        tokens, lengths = self.decoder.greedy(state, max_len, BOS_ID, EOS_ID)
        return (tokens.unsqueeze(1).expand(-1, num_samples, -1).contiguous(),
                lengths.unsqueeze(1).expand(-1, num_samples).contiguous())
