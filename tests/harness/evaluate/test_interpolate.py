"""Latent interpolation (harness.evaluate.interpolate): pairs, decoding along the line, ROUGE endpoints, result files."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from conftest import make_batch, tiny_model
from harness.core.config import ExperimentConfig, InterpolateConfig
from harness.data.lm_dataset import LMDataset
from harness.data.vocab import EOS_ID, Vocab
from harness.evaluate.interpolate import interpolate_pairs, interpolate_run, random_pairs
from harness.train.training import MODEL, train_run
from metrics.rouge import interpolation_curves, rouge_f1


class PerfectAutoencoder(nn.Module):
    """Reconstructs every sentence it was given exactly: z = one-hot of the sentence, decoding = the sentence
    of the largest coordinate. Along z1 -> z2 it decodes s1 for alpha < 1/2 and s2 for alpha > 1/2."""

    def __init__(self, dataset: LMDataset):
        super().__init__()
        self.sentences = [dataset[i].tolist() for i in range(len(dataset))]
        self.anchor = nn.Parameter(torch.zeros(1))

    def posterior(self, batch):
        rows = [row[:length].tolist() for row, length in zip(batch.tokens, batch.lengths)]
        z = torch.zeros(len(rows), len(self.sentences))
        for i, row in enumerate(rows):
            z[i, self.sentences.index(row)] = 1.0
        return z, torch.zeros_like(z)

    def greedy_decode(self, z, max_length):
        return [self.sentences[int(i)][1:-1][:max_length] for i in z.argmax(-1)]


def test_pairs_are_disjoint_seeded_and_capped():
    pairs = random_pairs(11, None, seed=3)
    flat = [i for pair in pairs for i in pair]
    assert len(pairs) == 5 and len(set(flat)) == 10
    assert random_pairs(11, None, seed=3) == pairs and random_pairs(11, None, seed=4) != pairs
    assert random_pairs(11, 2, seed=3) == pairs[:2]
    with pytest.raises(ValueError, match="only 5 disjoint pairs"):
        random_pairs(11, 6, seed=3)


def test_rouge_curve_endpoints_on_a_model_that_reconstructs_perfectly(ptb_sample):
    vocab = Vocab.load(ptb_sample / "vocab.txt")
    test = LMDataset(ptb_sample / "test.txt", vocab)
    settings = InterpolateConfig(steps=10, max_length=200, batch_size=7)
    pairs = random_pairs(len(test), None, seed=1)
    records = interpolate_pairs(PerfectAutoencoder(test), test, vocab, pairs, settings, "cpu", progress=False)
    assert len(records) == len(pairs) == 25
    assert all(r["sentences"][0] == r["source"] and r["sentences"][-1] == r["target"] for r in records)
    curves = interpolation_curves([(r["source"], r["target"], r["sentences"]) for r in records])
    cross = {name: sum(rouge_f1(r["target"], r["source"])[name] for r in records) / len(records)
             for name in curves}
    for name, curve in curves.items():
        assert curve["source"][0] == pytest.approx(1.0) and curve["target"][-1] == pytest.approx(1.0)
        # the other end scores what the two sentences share, far below 1 for random pairs
        assert curve["source"][-1] == pytest.approx(cross[name]) and curve["target"][0] == pytest.approx(cross[name])
        assert cross[name] < 0.5
        assert curve["source"][:5] == pytest.approx([1.0] * 5) and curve["target"][6:] == pytest.approx([1.0] * 5)


def test_greedy_decoding_stops_at_end_of_sentence_and_at_the_length_limit():
    model = tiny_model("twr-vae", vocab_size=12).eval()
    with torch.no_grad():
        model.decoder.out.bias.fill_(-10.0)
        model.decoder.out.bias[EOS_ID] = 10.0
    assert model.greedy_decode(torch.randn(3, 4), max_length=5) == [[], [], []]
    with torch.no_grad():
        model.decoder.out.bias[EOS_ID] = -10.0
        model.decoder.out.bias[7] = 10.0
    assert model.greedy_decode(torch.randn(2, 4), max_length=5) == [[7] * 5, [7] * 5]
    # the first step's argmax is the teacher-forced model's prediction after <s>
    mu, _ = model.posterior(make_batch([[4, 5, 6]]))
    assert len(model.greedy_decode(mu, max_length=3)[0]) == 3


def test_interpolate_run_writes_curves_and_samples_with_provenance(ptb_sample, tmp_path):
    config = {"device": "cpu", "models": ["twr-vae"],
              "data_options": {"ptb": {"max_train_sentences": 60, "max_test_sentences": 20}},
              "architecture": {"emb_dim": 16, "hidden_dim": 16, "z_dim": 4},
              "train": {"epochs": 1, "batch_size": 16, "lr": 0.003},
              "interpolate": {"pairs": 4, "steps": 4, "max_length": 6},
              "model_defs": {"twr-vae": {"method": "twr-vae", "paper_name": "TWR-VAE"}}}
    experiment = ExperimentConfig.from_mapping(config)
    run = experiment.runs()[0]
    train_run(run, ptb_sample, tmp_path, progress=False)
    payload = interpolate_run(tmp_path / MODEL, ptb_sample, tmp_path / "interpolation.json",
                              tmp_path / "interpolation.jsonl", experiment.interpolate_config(), progress=False)
    assert payload["settings"] == {"pairs": 4, "alphas": [0.0, 0.25, 0.5, 0.75, 1.0], "max_length": 6}
    assert set(payload["curves"]) == {"rouge1", "rouge2", "rougeL"}
    assert all(len(curve) == 5 for by_ref in payload["curves"].values() for curve in by_ref.values())
    assert payload["data"]["reduced"] and payload["config"]["seed"] == 1 and payload["code_version"]
    samples = [json.loads(line) for line in (tmp_path / "interpolation.jsonl").read_text().splitlines()]
    assert len(samples) == 4 and all(len(s["sentences"]) == 5 for s in samples)
    assert all(len(sentence.split()) <= 6 for s in samples for sentence in s["sentences"])
    assert json.loads((tmp_path / "interpolation.json").read_text())["curves"] == payload["curves"]


def test_unknown_interpolated_model_is_a_config_error():
    from harness.core.config import ConfigError

    with pytest.raises(ConfigError, match="interpolate.models: 'bn-vae'"):
        ExperimentConfig.from_mapping({"models": ["twr-vae"], "interpolate": {"models": ["bn-vae"]},
                                       "model_defs": {"twr-vae": {"method": "twr-vae"}}})
