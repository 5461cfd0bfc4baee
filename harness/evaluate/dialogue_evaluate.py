"""Evaluate one trained dialogue run: sample responses for every test context and score them (Table 5).

Called by the one evaluation command, `python -m harness.evaluate ... --vectors V --samples-out S`. For each test
context `responses_per_context` responses are decoded greedily with z ~ p(z|c) (Zhao et al. 2017) and scored with
BLEU-P/R/F1, BOW embedding Average/Extrema/Greedy and intra/inter distinct-1/2 (metrics.dialogue) under two
protocols: "uniform" (words only) and "paper" (BLEU with </s> as the TWR-VAE dialogue code's `indexes2sent`).
Files and protocols in detail: docs/results_format.md.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import nltk
import torch
from tqdm.auto import tqdm

from harness.core.config import RunConfig
from harness.data.dialogue_dataset import DialogueDataset, dialogue_batches
from harness.data.vocab import EOS, Vocab
from harness.core.io import (code_version, environment_info, now_iso, progress_interval, write_json_atomic,
                        write_text_atomic)
from harness.core.runs import data_description, training_record
from harness.data.vectors import load_vectors
from metrics.dialogue import bow_embedding_scores, corpus_bleu_prf, corpus_distinct, distinct_responses


def words(vocab: Vocab, ids) -> list[str]:
    return vocab.decode(ids)


@torch.no_grad()
def generate_responses(model, dataset: DialogueDataset, vocab: Vocab, run: RunConfig, device, progress=True):
    """[{context, reference, samples}] for every test example, in dataset order."""
    model.eval()
    cfg = run.evaluate
    records = []
    bar = tqdm(total=len(dataset), desc=f"generate {run.model.name} ({cfg.responses_per_context}/context)",
               unit="ctx", disable=not progress, file=sys.stderr, mininterval=progress_interval())
    for batch in dialogue_batches(dataset, cfg.batch_size, shuffle=False, generator=None, bucket=False):
        tokens, lengths = model.generate(batch.to(device), cfg.responses_per_context, cfg.max_response_length)
        for row, index in enumerate(batch.indices.tolist()):
            context = [words(vocab, utt.tolist()[1:-1]) for utt in dataset.context_of(index)]
            reference = words(vocab, dataset.response_of(index).tolist()[1:-1])
            samples = [words(vocab, tokens[row, s, : lengths[row, s]].tolist()) for s in range(tokens.size(1))]
            ended = [bool(lengths[row, s] < tokens.size(2)) for s in range(tokens.size(1))]  # </s> within the limit
            records.append({"example": index, "context": context, "reference": reference, "samples": samples,
                            "ended": ended})
        bar.update(batch.size)
    bar.close()
    return records


def with_end_token(tokens: list[str], ended: bool = True) -> list[str]:
    """The tokens the original code's `indexes2sent` gives BLEU: the words, then </s> if the sentence has one."""
    return [*tokens, EOS] if ended else list(tokens)


def paper_protocol_bleu(records: list[dict]) -> dict:
    """BLEU-R/P/F1 with </s> kept on the reference and on every sample that produced it (the paper protocol)."""
    hyps = [[with_end_token(s, e) for s, e in zip(r["samples"], r["ended"], strict=True)] for r in records]
    refs = [with_end_token(r["reference"]) for r in records]
    precision, recall, f1 = corpus_bleu_prf(hyps, refs)
    return {"BLEU-R": recall, "BLEU-P": precision, "BLEU-F1": f1}


def score(records: list[dict], vectors) -> dict:
    """Table 5's metrics over all contexts (each the mean over contexts, as the TWR-VAE / DialogWAE code), per
    protocol: {"uniform": every metric on words alone, "paper": BLEU with </s> as the original code}."""
    hyps = [r["samples"] for r in records]
    refs = [r["reference"] for r in records]
    precision, recall, f1 = corpus_bleu_prf(hyps, refs)
    average, extrema, greedy = bow_embedding_scores(hyps, refs, vectors)
    intra1, inter1 = corpus_distinct(hyps, 1)
    intra2, inter2 = corpus_distinct(hyps, 2)
    uniform = {
        "BLEU-R": recall, "BLEU-P": precision, "BLEU-F1": f1,
        "BOW-A": average, "BOW-E": extrema, "BOW-G": greedy,
        "Intra-dist1": intra1, "Intra-dist2": intra2, "Inter-dist1": inter1, "Inter-dist2": inter2,
        "avg_length": sum(len(s) for h in hyps for s in h) / max(sum(len(h) for h in hyps), 1),
        "responses_per_context": len(records[0]["samples"]) if records else 0,
        "distinct_responses": distinct_responses(hyps),
    }
    return {"uniform": uniform, "paper": paper_protocol_bleu(records)}


def evaluate_dialogue_run(loaded, test, data_dir: Path, out_path: Path, samples_path: Path | None = None,
                          vectors_path: Path | None = None, progress: bool = True) -> dict:
    """metrics.json and samples.jsonl of a trained dialogue model (`loaded`: harness.core.runs.load_trained's tuple) on
    its test split; `samples_path` and `vectors_path` (the BOW metrics' word vectors) are required."""
    if samples_path is None or vectors_path is None:
        raise ValueError("a dialogue model is evaluated with word vectors (--vectors) and writes its samples "
                         "(--samples-out)")
    run, summary, model, vocab, device = loaded
    vectors, vectors_name = load_vectors(vectors_path)
    torch.manual_seed(run.seed)  # z ~ p(z|c) draws
    started = time.perf_counter()
    records = generate_responses(model, test, vocab, run, device, progress)
    metrics = score(records, vectors)
    responses = metrics["uniform"]["responses_per_context"]
    bleu = f"smoothed sentence BLEU (n <= 3, NLTK {nltk.__version__} smoothing 7) against the one reference"
    seconds = time.perf_counter() - started
    payload = {
        "experiment": run.experiment, "dataset": run.dataset, "model": run.model.name,
        "paper_name": run.model.paper_name, "label": run.model.label, "seed": run.seed, "task": "dialogue",
        "data": data_description(run, data_dir, summary["train_sentences"], test),
        "metrics": metrics,
        "protocols": {"uniform": f"{responses} greedy responses per context (latent models: each with its own "
                                 f"z ~ p(z|c)); BLEU: {bleu}, "
                                 f"words only; BOW embeddings: {vectors_name}",
                      "paper": f"the same responses; BLEU as the TWR-VAE dialogue code: {bleu}, with </s> kept on "
                               f"the reference and on every response that produced it (indexes2sent)"},
        "word_vectors": vectors_name,
        "config": run.to_dict(), "code_version": code_version(), "versions": environment_info(),
        "device": str(device),
        "timing": {"train_seconds": summary["train_seconds"], "eval_seconds": seconds,
                   "train_tokens_per_second": summary["train_tokens_per_second"]},
        "training": training_record(summary),
        "finished": now_iso(),
    }
    write_text_atomic(Path(samples_path), "".join(json.dumps(r) + "\n" for r in records))
    write_json_atomic(Path(out_path), payload)  # last: its presence means the samples are complete too
    return payload
