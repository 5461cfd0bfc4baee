"""The benchmark's baselines compute what they claim (not timed here: speed is measured by `python -m benchmarks`)."""
from __future__ import annotations

import json

import pytest
import torch

import harness.core.precision
from benchmarks.__main__ import main as benchmark_main
from benchmarks.measure import equal_length_batch
from benchmarks.naive_iwnll import he_style_iw_log_marginal, naive_iw_log_marginal
from benchmarks.original_style import OriginalStyleTWRVAE
from conftest import make_batch, tiny_model
from harness.core.precision import bfloat16_unsupported
from metrics.lm import importance_weighted_log_marginal, sample_gaussian


@pytest.mark.parametrize("per_step", [False, True])
def test_the_original_style_step_computes_the_harness_loss_on_an_unpadded_batch(per_step):
    ours = tiny_model("twr-vae", vocab_size=12).eval()
    original = OriginalStyleTWRVAE(12, 8, 16, 4, 0.0, per_step=per_step).copy_from(ours).eval()
    batch = make_batch([[4, 5, 6, 7], [8, 9, 10, 11], [5, 5, 6, 4]])
    torch.manual_seed(3)
    a = ours.loss(batch, 0).loss.sum()
    torch.manual_seed(3)
    b = original.loss(batch.tokens.t())
    assert float(a.detach()) == pytest.approx(float(b.detach()), rel=1e-5)
    # and the gradients agree too
    a.backward()
    b.backward()
    assert torch.allclose(ours.decoder.out.weight.grad, original.out.weight.grad, atol=1e-5)
    assert torch.allclose(ours.encoder.rnn.weight_ih_l0.grad, original.enc_rnn.weight_ih_l0.grad, atol=1e-5)


def test_the_original_style_step_differs_on_padded_batches_as_the_original_does():
    # its KL averages over the padded length and z comes from the last padded position: a padded batch differs
    ours = tiny_model("twr-vae", vocab_size=12).eval()
    original = OriginalStyleTWRVAE(12, 8, 16, 4, 0.0).copy_from(ours).eval()
    batch = make_batch([[4, 5, 6, 7, 8, 9], [8]])
    torch.manual_seed(3)
    a = float(ours.loss(batch, 0).loss.sum().detach())
    torch.manual_seed(3)
    assert a != pytest.approx(float(original.loss(batch.tokens.t()).detach()), rel=1e-4)


def test_the_naive_and_he_style_loops_give_the_batched_estimate_on_the_same_draws():
    model = tiny_model("twr-vae", vocab_size=12).eval()
    batch = make_batch([[4, 5, 6], [7, 8, 9, 10, 11], [5]])
    with torch.no_grad():
        mu, logvar = model.posterior(batch)
        batched = importance_weighted_log_marginal(lambda z: model.log_likelihood(batch, z), mu, logvar, 12, 5,
                                                   torch.Generator().manual_seed(0))
        generator = torch.Generator().manual_seed(0)
        eps = torch.cat([sample_gaussian(torch.zeros_like(mu), torch.zeros_like(logvar), n, generator) for n in (5, 5, 2)])
        naive = naive_iw_log_marginal(model, batch, mu, logvar, eps)
        he_style = he_style_iw_log_marginal(model, batch, eps, samples_per_pass=5)
        other = naive_iw_log_marginal(model, batch, mu, logvar, torch.randn_like(eps))
    assert torch.allclose(batched, naive, atol=1e-5)
    assert torch.allclose(batched, he_style, atol=1e-5)  # one sentence at a time, unpadded: the same estimate
    assert not torch.allclose(batched, other, atol=1e-3)  # the comparison can fail: other draws, other estimate


def tiny_benchmark(tmp_path) -> dict:
    out = tmp_path / "latest.json"
    benchmark_main(["--data", str(tmp_path / "absent"), "--out", str(out), "--threads", "1", "--arch", "16,16,4",
                    "--train-batches", "1", "--repeats", "1", "--iw-sentences", "4", "--iw-samples", "6"])
    return json.loads(out.read_text())


def assert_bfloat16_left_out(payload: dict, reason: str) -> None:
    """float32 measured, every bfloat16 figure None, and the record saying why."""
    assert payload["bfloat16"]["unsupported"] == reason
    assert payload["bfloat16"]["train_speedup"] is None and payload["bfloat16"]["iwnll_speedup"] is None
    assert payload["train_tokens_per_second"]["bfloat16"] is None and payload["train_tokens_per_second"]["float32"] > 0
    assert "ours_bfloat16" not in payload["train"]["tokens_per_second"] and set(payload["kernel_ceiling"]) == {"float32"}
    assert payload["matmul_peak"]["gflops"]["bfloat16"] is None and payload["fraction_of_peak"]["bfloat16"] is None
    assert payload["iwnll"]["bfloat16_speedup"] is None and payload["train_speedup"] > 0


def test_the_benchmark_writes_both_ratios_with_the_machine(tmp_path):
    payload = tiny_benchmark(tmp_path)
    assert payload["train_speedup"] > 0 and payload["iwnll_speedup"] > 0
    assert payload["threads"] == 1 and payload["torch"] == torch.__version__ and payload["machine"]["cpu_count"]
    assert payload["train"]["loss_check"]["max_relative_difference"] < 1e-4
    assert payload["iwnll"]["max_abs_difference_log_px"] < 1e-3
    assert "ptb_tiny" in payload["data"]
    assert payload["kernel_ceiling"]["float32"]["tokens_per_second"] > 0
    assert "mallopt" in payload["machine"]["allocator"]
    reason = bfloat16_unsupported("cpu")
    if reason is not None:  # a CPU without bf16 kernels: measured in float32 only, and it says so
        assert_bfloat16_left_out(payload, reason)
        return
    # the bfloat16 variants are measured and differ, a little, from the float32 numbers
    assert payload["bfloat16"]["unsupported"] is None
    assert payload["bfloat16"]["train_speedup"] > 0 and payload["bfloat16"]["iwnll_speedup"] > 0
    assert 0 < payload["train"]["loss_check"]["bfloat16_relative_difference"] < 1e-2
    assert 0 < payload["iwnll"]["bfloat16_max_abs_difference_log_px"] < 1.0
    # the kernel ceiling of both precisions, and the step's share of it
    for precision in ("float32", "bfloat16"):
        ceiling = payload["kernel_ceiling"][precision]
        assert ceiling["dtype"] == precision and ceiling["tokens_per_second"] > 0 and ceiling["step_share"] > 0


def test_on_a_cpu_without_bf16_the_benchmark_measures_float32_and_says_why_not_bfloat16(tmp_path, monkeypatch):
    monkeypatch.setattr(harness.core.precision, "_cpu_bfloat16_unsupported", lambda: "no bf16 kernels on this test CPU")
    assert_bfloat16_left_out(tiny_benchmark(tmp_path), "no bf16 kernels on this test CPU")


def test_the_equal_length_batch_has_no_padding(tmp_path):
    from harness.data.lm_dataset import LMDataset
    from benchmarks.measure import benchmark_data
    from harness.data.vocab import Vocab

    data, _ = benchmark_data(tmp_path / "absent")
    dataset = LMDataset(data / "train.txt", Vocab.load(data / "vocab.txt"))
    batch = equal_length_batch(dataset, 64)
    assert batch.size >= 2 and bool((batch.lengths == batch.lengths[0]).all())


def test_the_iwnll_benchmark_scores_at_most_the_sentences_the_sample_has(tmp_path):
    """`python -m benchmarks` before any workflow run reads the committed 50-sentence test sample but asks for 64
    sentences: it scores the 50 there are (was: IndexError: index 50 is out of bounds), and says so."""
    from benchmarks.measure import benchmark_data, iwnll_benchmark
    from harness.core.config import ArchitectureConfig
    from harness.data.lm_dataset import LMDataset
    from harness.data.vocab import Vocab

    data, note = benchmark_data(tmp_path / "absent")
    assert "ptb_tiny" in note
    vocab = Vocab.load(data / "vocab.txt")
    test = LMDataset(data / "test.txt", vocab)
    arch = ArchitectureConfig(emb_dim=8, hidden_dim=8, z_dim=2, num_layers=1, dropout=0.5)
    record = iwnll_benchmark(test, len(vocab), len(test) + 14, samples=2, chunk=2, batch_size=32, arch=arch,
                             repeats=1)
    assert record["sentences"] == len(test) == 50 and record["sentences_requested"] == 64
    assert record["max_abs_difference_log_px"] < 1e-3  # every sentence scored by both, on the same draws
    fewer = iwnll_benchmark(test, len(vocab), 5, samples=2, chunk=2, batch_size=4, arch=arch, repeats=1)
    assert fewer["sentences"] == fewer["sentences_requested"] == 5
