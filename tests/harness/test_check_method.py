"""`python -m harness.check_method`: every registered method passes the contract, and the contract can fail."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from harness.check_method import lm_checks, main, make_batch, run_checks, tiny_model
from harness.methods import registered_methods
from harness.registry import METHODS, register_method
from harness.model_api import LossTerms, PaperProtocolTerms
from baselines.vae_rnn import BasicVAE, BasicVAEOptions


@pytest.mark.parametrize("method", registered_methods())
def test_every_registered_method_passes_the_contract(method):
    failed = [f"{result.name}: {result.detail}" for result in run_checks(method) if not result.passed]
    assert not failed, failed


@pytest.fixture
def toy_methods():
    """Register toy methods for one test and remove them afterwards (the registry is process-wide)."""
    registered_methods()  # the repository's methods are loaded before the snapshot
    before = dict(METHODS)
    yield
    METHODS.clear()
    METHODS.update(before)


@dataclass(frozen=True)
class FreeBitsOptions(BasicVAEOptions):
    free_bits: float = 3.0  # nats: the KL term is not pushed below this (Kingma et al. 2016)


class FreeBits(BasicVAE):
    """A free-bits VAE: a training-only change of the KL term (one value per sentence, as `loss` must return)."""

    Options = FreeBitsOptions

    def loss(self, batch, step):
        terms = super().loss(batch, step)
        clamped = terms.kl.clamp(min=self.options.free_bits)
        return LossTerms(loss=terms.recon + clamped, recon=terms.recon, kl=terms.kl, beta=1.0)


def _failed(method):
    return {result.name for result in lm_checks(method) if not result.passed}


def test_a_free_bits_method_passes_and_its_evaluation_reports_the_unclamped_kl(toy_methods, tmp_path):
    """Evaluation owns the KL and the selection criterion: the training-only clamp never reaches them."""
    from harness.check_method import _tiny_split
    from harness.lm_evaluate import evaluate_model

    register_method("toy-free-bits")(FreeBits)
    assert not _failed("toy-free-bits")
    model = tiny_model("toy-free-bits", free_bits=50.0)
    dataset, run = _tiny_split(tmp_path)
    metrics = evaluate_model(model, dataset, run, torch.device("cpu"), progress=False)
    with torch.no_grad():
        posterior_kl = model.paper_protocol_terms(make_batch([[4]])).kl
    assert metrics["paper"]["KL"] < 50.0 and float(posterior_kl) < 50.0  # not the clamped value
    assert abs(metrics["paper"]["KL"] - metrics["uniform"]["KL"]) < 1e-4


def test_an_evaluation_that_calls_the_training_loss_fails(toy_methods):
    class Leaky(FreeBits):
        def paper_protocol_terms(self, batch, posterior=None):
            terms = self.loss(batch, 0)  # the training objective, free bits included, leaks into evaluation
            mu, logvar = self.posterior(batch)
            return PaperProtocolTerms(terms.recon, terms.loss - terms.recon, mu, logvar)

    register_method("toy-leaky")(Leaky)
    assert _failed("toy-leaky") == {"evaluation without training-only terms"}


def test_a_padding_dependent_posterior_and_untrainable_model_fail(toy_methods):
    class PaddingDependent(BasicVAE):
        def posterior(self, batch):
            mu, logvar = super().posterior(batch)
            return mu + 0.01 * batch.tokens.size(1), logvar

        def loss(self, batch, step):  # no gradient reaches anything: training cannot lower it
            terms = super().loss(batch, step)
            return LossTerms(loss=terms.loss.detach().requires_grad_(), recon=terms.recon, kl=terms.kl)

    register_method("toy-padding")(PaddingDependent)
    assert {"padding invariance", "training lowers the loss"} <= _failed("toy-padding")


def test_the_command_line_names_the_plugin_hint_and_exits_non_zero_on_failure(toy_methods, capsys):
    with pytest.raises(KeyError, match="plugins:"):
        main(["no-such-method"])
    assert main(["--list"]) == 0 and "twr-vae" in capsys.readouterr().out
