"""A minimal re-implementation, for benchmarking only, of the original TWR-VAE training step.

Written from reading ruizheliUOA/TWR-VAE (lang_model/encoder.py, decoder.py, main.py `train`), not copied:
  * time-major padded batches [L, B] (BatchIter: pad_sequence of the length-sorted corpus), no packing;
  * encoder: one LSTM call over the padded batch, mu_t / logvar_t at *every* position (padding included),
    z = reparameterised sample of the last padded position;
  * KL = -0.5 * sum over [L, B, Z] / L (its `Encoder.loss`: the per-sentence timestep mean over the padded
    length, summed over the batch);
  * decoder: h0 = c0 = z2h_c(z), input = [embedding ; z] at every step, output projection over *all*
    [L-1, B] positions, cross-entropy summed with ignore_index = 0 (padding).
  * `per_step=True` instead runs the decoder one token per LSTM call in a Python loop, as the original's
    `singledecode` does at generation (its training uses the one-call path above).

`OriginalStyleTWRVAE.copy_from(model)` takes the weights of a harness `TWRVAE` so both compute the same
function; on a batch of equal-length sentences without dropout and with the same noise, their losses agree.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class OriginalStyleTWRVAE(nn.Module):
    def __init__(self, vocab_size: int, emb_dim: int, hidden_dim: int, z_dim: int, dropout: float, per_step: bool = False):
        super().__init__()
        self.per_step = per_step
        self.enc_embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=0)
        self.enc_rnn = nn.LSTM(emb_dim, hidden_dim)
        self.linear_mu = nn.Linear(hidden_dim, z_dim)
        self.linear_var = nn.Linear(hidden_dim, z_dim)
        self.dec_embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=0)
        self.dec_rnn = nn.LSTM(emb_dim + z_dim, hidden_dim)
        self.z2h_c = nn.Linear(z_dim, hidden_dim, bias=False)
        self.out = nn.Linear(hidden_dim, vocab_size)
        self.dropout = nn.Dropout(dropout)

    @torch.no_grad()
    def copy_from(self, model) -> "OriginalStyleTWRVAE":
        """Load the weights of a harness TWRVAE (LSTM, one layer)."""
        pairs = [(self.enc_embedding, model.encoder.embedding), (self.enc_rnn, model.encoder.rnn),
                 (self.linear_mu, model.encoder.to_mu), (self.linear_var, model.encoder.to_logvar),
                 (self.dec_embedding, model.decoder.embedding), (self.dec_rnn, model.decoder.rnn),
                 (self.z2h_c, model.decoder.z_to_hidden), (self.out, model.decoder.out)]
        for mine, theirs in pairs:
            mine.load_state_dict(theirs.state_dict())
        return self

    def loss(self, sen: torch.Tensor, return_prediction: bool = False):
        """kl_loss + recon_loss of one batch, sen = [L, B] time-major, padded with 0 (main.py `train`); with
        `return_prediction` also the [L-1, B, V] logits (the decoder's output, which main.py scores for accuracy)."""
        output, _ = self.enc_rnn(self.dropout(self.enc_embedding(sen)))
        mu_, logvar_ = self.linear_mu(output), self.linear_var(output)  # [L, B, Z]
        mu, logvar = mu_[-1], logvar_[-1]
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        kl = -0.5 * torch.sum(1 + logvar_ - mu_.pow(2) - logvar_.exp()) / mu_.shape[0]
        hidden = self.z2h_c(z).unsqueeze(0)
        cell = hidden[:]
        embedded = self.dropout(self.dec_embedding(sen[:-1]))
        z_steps = z.unsqueeze(0).expand(embedded.shape[0], -1, -1)
        inputs = torch.cat([embedded, z_steps], 2)
        if self.per_step:
            outputs = []
            state = (hidden, cell)
            for t in range(inputs.shape[0]):
                step, state = self.dec_rnn(inputs[t : t + 1], state)
                outputs.append(step)
            output = torch.cat(outputs, 0)
        else:
            output, _ = self.dec_rnn(inputs, (hidden, cell))
        prediction = self.out(output)  # [L-1, B, V], padding positions included
        recon = F.cross_entropy(prediction.view(-1, prediction.shape[2]), sen[1:].reshape(-1), ignore_index=0,
                                reduction="sum")
        return (kl + recon, prediction) if return_prediction else kl + recon
