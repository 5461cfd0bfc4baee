"""Evaluate a trained language model under two protocols and write `metrics.json` (docs/results_format.md); run
through the one evaluation command, `python -m harness.evaluate` (harness.tasks.lm). The protocols:

uniform  this suite's protocol, identical for every method (He et al. 2019), scored on batches of sentences of one
         length, so that no sentence's number depends on the others' padding:
         NLL  = -mean_x log p(x), log p(x) by importance sampling with K draws from q(z|x)
         PPL  = exp(-sum_x log p(x) / number of predicted tokens, words + </s>)
         KL   = mean_x KL(q(z|x) || p(z)) of the latent the decoder is fed
         MI   = I_q(x; z) over the whole evaluation set (paired estimator, mi_samples draws per x);  AU = active units (Cov > threshold)
paper    what ruizheliUOA/TWR-VAE's `reconstruction` reports, kept only to compare with the paper, on its batches
         (length-sorted batches of `evaluate.batch_size`; with `timesteps: padded` a sentence's latent is read at
         its batch's padded length, as the original code reads it):
         NLL  = mean_x [recon(x | z = posterior mean) + the method's KL term]
         PPL  = exp(sum of the same / number of tokens incl. <s> and </s>)
         KL   = mean of the method's KL term (timestep-averaged for TWR-VAE)
         MI   = batch-wise MI (batches of 64 in length-sorted order) from q(z_T|x)
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from harness.core.config import RunConfig
from harness.data.lm_dataset import LMDataset, batches, equal_length_batches
from harness.core.io import (code_version, environment_info, now_iso, progress_interval,
                        write_json_atomic, write_text_atomic)
from harness.core.runs import data_description, training_record
from metrics.lm import (active_units, batchwise_mutual_information, gaussian_kl_standard_normal,
                        importance_weighted_log_marginal, paired_mutual_information, sample_gaussian)


#: how each protocol batches the test set (metrics.json `protocol_batches`; results before 2026-12-05 lack it: both
#: protocols then used the paper protocol's batches)
PROTOCOL_BATCHES = {"uniform": "sentences of one length per batch (no padding)",
                    "paper": "length-sorted batches of evaluate.batch_size, as the original code"}


@torch.no_grad()
def evaluate_model(model, dataset: LMDataset, run: RunConfig, device, progress: bool = True,
                   protocols: tuple[str, ...] = ("uniform", "paper")) -> dict:
    """Both protocols' metrics for `model` on `dataset`; `protocols=("paper",)` computes only the paper protocol (a
    learning curve's cheap point): the same NLL, PPL, KL and recon as a full evaluation, MI from other draws."""
    uniform_wanted = "uniform" in protocols
    model.eval()
    cfg = run.evaluate
    generator = torch.Generator().manual_seed(run.seed)  # CPU draws: the same samples on every device
    torch.manual_seed(run.seed)  # methods that draw noise inside `posterior` (SA-VAE's SVI) use the global RNG
    parts: dict[str, list[torch.Tensor]] = {key: [] for key in (
        "log_px", "kl", "recon", "mu", "logvar", "uniform_lengths", "paper_recon", "paper_kl", "paper_mu", "paper_logvar",
        "lengths")}
    bar = tqdm(total=len(dataset) * (2 if uniform_wanted else 1), desc=f"evaluate {run.model.name} "
               f"(K={cfg.iw_samples})", unit="sent", disable=not progress, file=sys.stderr,
               mininterval=progress_interval())
    if uniform_wanted:  # batches of one length: a sentence's score never depends on its batch-mates' padding
        for batch in equal_length_batches(dataset, cfg.batch_size):
            batch = batch.to(device)
            mu, logvar = model.posterior(batch)
            parts["log_px"].append(importance_weighted_log_marginal(
                lambda z: model.log_likelihood(batch, z), mu, logvar, cfg.iw_samples, cfg.iw_chunk, generator))
            parts["recon"].append(-model.log_likelihood(batch, sample_gaussian(mu, logvar, 1, generator))[0])
            parts["kl"].append(gaussian_kl_standard_normal(mu, logvar))
            parts["mu"].append(mu)
            parts["logvar"].append(logvar)
            parts["uniform_lengths"].append(batch.lengths)
            bar.update(batch.size)
    # Both loops walk the sentences in the same length-sorted order (equal_length_batches only cuts it more finely), so
    # the paper protocol is handed the very posterior the uniform protocol scored: a stochastic one (SA-VAE's SVI) is
    # drawn once, and both protocols score the same refined q(z|x).
    scored = (torch.cat(parts["mu"]), torch.cat(parts["logvar"]), torch.cat(parts["uniform_lengths"])) \
        if uniform_wanted else None
    offset = 0
    for batch in batches(dataset, cfg.batch_size, shuffle=False, generator=None):  # as the original code batches
        batch = batch.to(device)
        if scored is None:
            posterior = model.posterior(batch)
        else:
            rows = slice(offset, offset + batch.size)
            if not torch.equal(scored[2][rows], batch.lengths):
                raise RuntimeError("the two protocols' batches walk the sentences in different orders")
            posterior, offset = (scored[0][rows], scored[1][rows]), offset + batch.size
        terms = model.paper_protocol_terms(batch, posterior)
        parts["paper_recon"].append(terms.recon)
        parts["paper_kl"].append(terms.kl)
        parts["paper_mu"].append(terms.mi_mu)
        parts["paper_logvar"].append(terms.mi_logvar)
        parts["lengths"].append(batch.lengths)
        bar.update(batch.size)
    bar.close()
    v = {key: torch.cat(values).double().cpu() for key, values in parts.items() if values}
    predicted_tokens = float((v["lengths"] - 1).sum())  # words + </s>
    cpu_generator = torch.Generator().manual_seed(run.seed)
    uniform = None if not uniform_wanted else {
        "NLL": float(-v["log_px"].mean()),
        "PPL": math.exp(float(-v["log_px"].sum()) / predicted_tokens),
        "KL": float(v["kl"].mean()),
        "MI": paired_mutual_information(v["mu"], v["logvar"], cfg.mi_samples, cpu_generator),
        "AU": active_units(v["mu"], cfg.au_threshold),
        "recon": float(v["recon"].mean()),
        "elbo": float(-(v["recon"] + v["kl"]).mean()),
        "iw_samples": cfg.iw_samples,
    }
    paper_loss = v["paper_recon"] + v["paper_kl"]
    by_length = torch.sort(v["lengths"], stable=True).indices  # the original sorts its corpus by length
    paper = {
        "NLL": float(paper_loss.mean()),
        "PPL": math.exp(float(paper_loss.sum()) / float(v["lengths"].sum())),  # its word count includes <s>
        "KL": float(v["paper_kl"].mean()),
        "MI": batchwise_mutual_information(v["paper_mu"][by_length], v["paper_logvar"][by_length],
                                           cfg.paper_batch_size, cpu_generator),
        "recon": float(v["paper_recon"].mean()),
    }
    result = {"uniform": uniform, "paper": paper, "predicted_tokens": int(predicted_tokens)}
    if uniform_wanted:  # per sentence, in the dataset's order (equal_length_batches walks it sorted by length)
        order = torch.sort(dataset.lengths, stable=True).indices
        result["per_sentence"] = {key: torch.empty_like(v[key]).index_copy_(0, order, v[key]).tolist()
                                  for key in ("log_px", "kl")}
    return {key: value for key, value in result.items() if key != "uniform" or uniform_wanted}


def evaluate_lm_run(loaded, test: LMDataset, data_dir: Path, out_path: Path, samples_path: Path | None = None,
                    vectors_path: Path | None = None, progress: bool = True) -> dict:
    """metrics.json of a trained language model (`loaded`: harness.core.runs.load_trained's tuple) on its test split;
    with `samples_path` also the test set's greedy reconstructions. `vectors_path` is unused (dialogue only)."""
    run, summary, model, vocab, device = loaded
    started = time.perf_counter()
    result = evaluate_model(model, test, run, device, progress)
    eval_seconds = time.perf_counter() - started
    payload = {
        "schema_version": 1,
        "task": "lm",
        "experiment": run.experiment,
        "dataset": run.dataset,
        "model": run.model.name,
        "method": run.model.method,
        "paper_name": run.model.paper_name,
        "label": run.model.label,
        "paper_tables": list(run.model.paper_tables),
        "seed": run.seed,
        "data": data_description(run, data_dir, summary["train_sentences"], test),
        "metrics": {"uniform": result["uniform"], "paper": result["paper"]},
        "protocol_batches": PROTOCOL_BATCHES,
        "config": run.to_dict(),
        "training": training_record(summary),
        "code_version": code_version(),
        "versions": environment_info(),
        "device": str(device),
        "timing": {"train_seconds": summary["train_seconds"], "eval_seconds": eval_seconds,
                   "train_tokens_per_second": summary["train_tokens_per_second"],
                   "eval_sentences_per_second": len(test) / max(eval_seconds, 1e-9)},
        "created": now_iso(),
    }
    if samples_path is not None:  # after the metrics: decoding draws nothing, so the numbers do not depend on it
        records = reconstructions(model, test, vocab, run, device)
        write_text_atomic(samples_path, "".join(json.dumps(record) + "\n" for record in records))
    write_json_atomic(out_path, payload)  # last: its presence means the samples are complete too
    return payload


@torch.no_grad()
def reconstructions(model, dataset: LMDataset, vocab, run: RunConfig, device) -> list[dict]:
    """Every test sentence with its greedy reconstruction from the posterior mean (as the original code writes
    `TWRvae_outcome_<epoch>.txt`); `reconstruction` is null for a method without greedy decoding."""
    model.eval()
    records = []
    for batch in batches(dataset, run.evaluate.batch_size, shuffle=False, generator=None):
        batch = batch.to(device)
        mu, _ = model.posterior(batch)
        try:
            decoded = model.greedy_decode(mu, int(batch.lengths.max()))
        except NotImplementedError:
            decoded = [None] * batch.size
        for tokens, length, ids in zip(batch.tokens.tolist(), batch.lengths.tolist(), decoded):
            records.append({"sentence": " ".join(vocab.decode(tokens[1:length - 1])),
                            "reconstruction": None if ids is None else " ".join(vocab.decode(ids))})
    return records
