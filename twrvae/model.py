"""TWR-VAE: Timestep-Wise Regularisation VAE (Li et al., COLING 2020, §3.2-3.3), and the basic RNN-VAE.

Reads top to bottom like the paper:
  Eq. 3    every encoder state h_t defines a posterior q(z_t|x) = N(mu_t, diag sigma_t^2);
  Eq. 3-4  the KL term is averaged over timesteps, (1/T) sum_t KL(q(z_t|x) || p(z)), instead of being
           applied to the last state only, and the decoder reconstructs x from z_T ~ q(z_T|x).
The basic VAE-RNN is the special case `kl_timesteps="last"` (KL on q(z_T|x) only), optionally with KL
annealing (Bowman et al. 2016). Variants (Table 2/3): z = mean or sum of the timestep samples, KL on the last
25/50/75 % of timesteps, LSTM/GRU/vanilla RNN.

Timesteps (option `timesteps`): by default ("own") a sentence's latent is read over its own T real timesteps
(<s> w_1..w_n </s>): its KL is the mean over them, z_T is its own last state, "last P %" keeps round(T P / 100)
(at least 1) of them, and its loss does not depend on which sentences share its batch. "padded" is the original
code's arithmetic (ruizheliUOA/TWR-VAE lang_model/encoder.py): every sentence of a batch is read over the batch's
padded length L, padding positions included -- the KL is summed over all L positions and divided by L, z and the
MI posterior come from position L, mean/sum run over all L positions, "last P %" is the last round(L P / 100).
Its length-sorted batches make the difference small but nonzero; config/paper.yaml uses "padded" for TWR-VAE.

Differences from ruizheliUOA/TWR-VAE, on purpose:
  * z_mode mean/sum: averaging/summing independent samples z_t ~ N(mu_t, sigma_t^2) is itself Gaussian,
    N(mean mu_t, sum sigma_t^2 / T^2) or N(sum mu_t, sum sigma_t^2); we sample that Gaussian directly, which is
    the same distribution and gives the exact q(z|x) of the decoder's latent for the IW-NLL.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.config import ArchitectureConfig, ConfigError
from harness.model_api import LossTerms, PaperProtocolTerms, TextVAE
from harness.registry import register_method
from harness.schedules import linear_warmup
from metrics.lm import gaussian_kl_standard_normal
from twrvae.modules import LatentDecoder, TimestepEncoder, length_mask

KL_TIMESTEPS = {"all": None, "last": 0, "last25": 25, "last50": 50, "last75": 75}
Z_MODES = ("normal", "mean", "sum")
TIMESTEPS = ("own", "padded")


@dataclass(frozen=True)
class TWRVAEOptions:
    rnn_type: str = "lstm"  # lstm | gru | rnn
    z_mode: str = "normal"  # normal: z = z_T; mean / sum: z = mean / sum of the timestep samples
    kl_timesteps: str = "all"  # all (TWR-VAE) | last (basic VAE) | last25 | last50 | last75
    kl_warmup_steps: int = 0  # linear KL annealing over this many updates; 0 = none
    kl_start: float = 0.0  # beta at step 0 when annealing
    word_dropout: float = 0.0  # decoder input words replaced by <unk> with this rate (Bowman et al. 2016)
    timesteps: str = "own"  # own: each sentence's real timesteps | padded: the batch's padded length (the original)

    def __post_init__(self):
        if self.rnn_type not in ("lstm", "gru", "rnn"):
            raise ConfigError(f"rnn_type must be lstm, gru or rnn, got '{self.rnn_type}'")
        if self.z_mode not in Z_MODES:
            raise ConfigError(f"z_mode must be one of {Z_MODES}, got '{self.z_mode}'")
        if self.kl_timesteps not in KL_TIMESTEPS:
            raise ConfigError(f"kl_timesteps must be one of {sorted(KL_TIMESTEPS)}, got '{self.kl_timesteps}'")
        if self.kl_warmup_steps < 0 or not 0.0 <= self.kl_start <= 1.0:
            raise ConfigError("kl_warmup_steps must be >= 0 and kl_start in [0, 1]")
        if not 0.0 <= self.word_dropout < 1.0:
            raise ConfigError(f"word_dropout must be in [0, 1), got {self.word_dropout}")
        if self.timesteps not in TIMESTEPS:
            raise ConfigError(f"timesteps must be one of {TIMESTEPS}, got '{self.timesteps}'")


@register_method("twr-vae")
class TWRVAE(TextVAE):
    Options = TWRVAEOptions

    def __init__(self, vocab_size: int, arch: ArchitectureConfig, options: TWRVAEOptions):
        super().__init__()
        self.options = options
        sizes = (vocab_size, arch.emb_dim, arch.hidden_dim, arch.z_dim, arch.num_layers, arch.dropout, options.rnn_type)
        self.encoder = TimestepEncoder(*sizes)
        self.decoder = LatentDecoder(*sizes, word_dropout=options.word_dropout)

    # ---- Eq. 3: one posterior per encoder timestep
    def timestep_posteriors(self, batch):
        """mu_t, logvar_t [B, L, Z] and the number of timesteps T [B] each sentence's latent is read over: its own
        length, or the batch's padded length L (`timesteps: padded`, the original code)."""
        mu_t, logvar_t = self.encoder(batch.tokens)
        if self.options.timesteps == "padded":
            return mu_t, logvar_t, torch.full_like(batch.lengths, batch.tokens.size(1))
        return mu_t, logvar_t, batch.lengths

    def regularised_timesteps(self, lengths: torch.Tensor, max_len: int) -> torch.Tensor:
        """[B, L] bool: the timesteps whose KL enters the loss (all real ones for TWR-VAE)."""
        percent = KL_TIMESTEPS[self.options.kl_timesteps]
        if percent is None:
            keep = lengths
        elif percent == 0:
            keep = torch.ones_like(lengths)
        else:
            keep = torch.clamp(torch.round(lengths.double() * percent / 100.0).long(), min=1)
        positions = torch.arange(max_len, device=lengths.device).unsqueeze(0)
        return (positions < lengths.unsqueeze(1)) & (positions >= (lengths - keep).unsqueeze(1))

    # ---- Eq. 3-4: timestep-wise KL, averaged
    def timestep_wise_kl(self, mu_t, logvar_t, lengths) -> torch.Tensor:
        """(1/|S|) sum_{t in S} KL(q(z_t|x) || N(0, I)) per sentence [B], S = regularised timesteps."""
        selected = self.regularised_timesteps(lengths, mu_t.size(1)).to(mu_t.dtype)
        kl_t = gaussian_kl_standard_normal(mu_t, logvar_t)  # [B, L]
        return (kl_t * selected).sum(1) / selected.sum(1)

    # ---- the latent fed to the decoder
    @staticmethod
    def last_timestep(values, lengths):
        """values [B, L, Z] at each sentence's last timestep T: [B, Z]."""
        return values.gather(1, (lengths - 1).view(-1, 1, 1).expand(-1, 1, values.size(2))).squeeze(1)

    def decoder_posterior(self, mu_t, logvar_t, lengths):
        """Mean and log-variance [B, Z] of the Gaussian the decoder's z is drawn from (z_mode), over T = lengths."""
        if self.options.z_mode == "normal":  # z = z_T
            return self.last_timestep(mu_t, lengths), self.last_timestep(logvar_t, lengths)
        weight = length_mask(lengths, mu_t.size(1)).to(mu_t.dtype).unsqueeze(2)
        mu_sum = (mu_t * weight).sum(1)
        var_sum = (logvar_t.exp() * weight).sum(1)
        if self.options.z_mode == "sum":
            return mu_sum, var_sum.log()
        count = lengths.to(mu_t.dtype).unsqueeze(1)
        return mu_sum / count, (var_sum / count.pow(2)).log()

    def kl_weight(self, step: int) -> float:
        return linear_warmup(step, self.options.kl_warmup_steps, self.options.kl_start)

    def loss(self, batch, step: int) -> LossTerms:
        mu_t, logvar_t, steps = self.timestep_posteriors(batch)
        kl = self.timestep_wise_kl(mu_t, logvar_t, steps)
        mu, logvar = self.decoder_posterior(mu_t, logvar_t, steps)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = -self.decoder.token_log_likelihood(batch.tokens, batch.lengths, z)
        beta = self.kl_weight(step)
        return LossTerms(loss=recon + beta * kl, recon=recon, kl=kl, beta=beta)

    # ---- evaluation interface
    def posterior(self, batch):
        return self.decoder_posterior(*self.timestep_posteriors(batch))

    def log_likelihood(self, batch, z: torch.Tensor) -> torch.Tensor:
        samples, size = z.shape[0], z.shape[1]
        tokens = batch.tokens.repeat(samples, 1)
        lengths = batch.lengths.repeat(samples)
        return self.decoder.token_log_likelihood(tokens, lengths, z.reshape(samples * size, -1)).view(samples, size)

    def greedy_decode(self, z: torch.Tensor, max_length: int) -> list[list[int]]:
        return self.decoder.greedy(z, max_length)

    def paper_protocol_terms(self, batch, posterior=None) -> PaperProtocolTerms:
        """As lang_model/main.py `reconstruction`: recon at the posterior mean, the timestep-averaged KL, and MI
        from the last timestep's posterior q(z_T|x) (whatever z_mode). `posterior` is not needed: TWR-VAE's is
        deterministic and its timestep posteriors are computed here anyway."""
        mu_t, logvar_t, steps = self.timestep_posteriors(batch)
        mu, _ = self.decoder_posterior(mu_t, logvar_t, steps)
        recon = -self.decoder.token_log_likelihood(batch.tokens, batch.lengths, mu)
        kl = self.timestep_wise_kl(mu_t, logvar_t, steps)
        return PaperProtocolTerms(recon, kl, self.last_timestep(mu_t, steps), self.last_timestep(logvar_t, steps))
