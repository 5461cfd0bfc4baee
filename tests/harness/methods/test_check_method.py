"""`python -m harness.methods.check_method`: every registered method passes the contract, and the contract can fail."""
from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
import torch

from conftest import REPO_ROOT
from harness.methods.check_method import lm_checks, main, make_batch, run_checks, tiny_model
from harness.methods.lookup import get_method, registered_methods
from harness.methods.registry import METHODS, register_method
from harness.methods.model_api import LossTerms, PaperProtocolTerms, TextVAE
from baselines.vae_rnn import BasicVAE, BasicVAEOptions
from layers.recurrent import LatentDecoder, length_mask, row_sums


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
    from harness.methods.check_method import _tiny_split
    from harness.evaluate.lm_evaluate import evaluate_model

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


def test_the_evaluation_check_says_whether_the_method_overrides_paper_protocol_terms(toy_methods):
    class Overriding(FreeBits):
        def paper_protocol_terms(self, batch, posterior=None):
            return super().paper_protocol_terms(batch, posterior)

    register_method("toy-free-bits")(FreeBits)
    register_method("toy-overriding")(Overriding)
    details = {method: next(r.detail for r in lm_checks(method) if r.name == "evaluation without training-only terms")
               for method in ("toy-free-bits", "toy-overriding")}
    assert details["toy-free-bits"].startswith("paper_protocol_terms not overridden by the method: "
                                               "layers.sequence_vae.SequenceVAE's")
    assert details["toy-overriding"].startswith("paper_protocol_terms overridden in ")
    assert "Overriding" in details["toy-overriding"]


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
    assert main(["--list"]) == 0 and "twr-vae" in capsys.readouterr().out


@pytest.mark.parametrize("arguments, message", [
    (["no-such-method"], "config error: unknown method 'no-such-method'; registered methods: "),
    (["no-such-method", "--plugin", "missing.module"], "config error: plugins: module 'missing.module' cannot be "
                                                       "imported (ModuleNotFoundError: No module named 'missing')"),
])
def test_an_unknown_method_or_a_missing_plugin_is_one_line_and_exit_status_2(arguments, message, capsys):
    """As the workflow's config check reports them (a ConfigError line), not a traceback."""
    assert main(arguments) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(message) and captured.err.count("\n") == 1
    assert "Traceback" not in captured.err
    if "--plugin" not in arguments:
        assert "--plugin MODULE" in captured.err  # the hint: a method outside twrvae/ and baselines/ needs its module


def test_the_workflow_reports_an_unknown_method_and_a_missing_plugin_as_config_errors():
    """The lookup's errors are ConfigErrors (the workflow prints them in one line) and still what they were."""
    from harness.core.config import ConfigError, ExperimentConfig
    from harness.methods.lookup import get_method, load_plugins

    with pytest.raises(ConfigError, match="unknown method 'no-such-method'") as error:
        get_method("no-such-method")
    assert isinstance(error.value, KeyError) and str(error.value).startswith("unknown method")  # not KeyError's repr
    with pytest.raises(ConfigError, match="plugins: module 'missing.module'") as error:
        load_plugins(["missing.module"])
    assert isinstance(error.value, ImportError)
    with pytest.raises(ConfigError, match="no-such-method"):
        ExperimentConfig.from_mapping({"models": ["m"], "model_defs": {"m": {"method": "no-such-method"}}})


# ------------------------------------------------------------------------- what the workflow's jobs call
class OutputSkipDecoder(LatentDecoder):
    """z fed to the output layer at every step, written by overriding `token_log_likelihood` instead of
    `hidden_states`: training and evaluation work, greedy decoding (which reads `hidden_states` and `logits`) breaks."""

    def __init__(self, vocab_size, emb_dim, hidden_dim, z_dim, *rest, **options):
        super().__init__(vocab_size, emb_dim, hidden_dim, z_dim, *rest, **options)
        self.out = torch.nn.Linear(hidden_dim + z_dim, vocab_size)

    def token_log_likelihood(self, tokens, lengths, z):
        inputs, targets = tokens[:, :-1], tokens[:, 1:]
        hidden, _ = self.hidden_states(inputs, z)
        hidden = torch.cat([hidden, z.unsqueeze(1).expand(-1, hidden.size(1), -1).to(hidden.dtype)], dim=-1)
        real = length_mask(lengths - 1, inputs.size(1))
        return -row_sums(self.output_nll(hidden[real], targets[real]), real)


class OutputSkipVAE(BasicVAE):
    def __init__(self, vocab_size, arch, options):
        super().__init__(vocab_size, arch, options)
        self.decoder = OutputSkipDecoder(vocab_size, arch.emb_dim, arch.hidden_dim, arch.z_dim, arch.num_layers,
                                         arch.dropout, options.rnn_type, word_dropout=options.word_dropout)


def test_a_skip_vae_that_breaks_greedy_decoding_fails_naming_it(toy_methods, capsys):
    """The user's report: such a plugin passed every check, then the workflow's interpolation job failed with
    `mat1 and mat2 shapes cannot be multiplied`."""
    register_method("toy-output-skip")(OutputSkipVAE)
    results = {result.name: result for result in lm_checks("toy-output-skip")}
    assert {name for name, result in results.items() if not result.passed} == {"greedy decoding", "interpolation"}
    for name in ("greedy decoding", "interpolation"):
        assert "mat1 and mat2 shapes cannot be multiplied" in results[name].detail
        assert "hidden_states" in results[name].detail  # where the change belongs
    assert results["training lowers the loss"].passed and results["evaluation without training-only terms"].passed
    assert main(["toy-output-skip"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  greedy decoding" in out and "FAIL  interpolation" in out
    assert "failed: greedy decoding, interpolation" in out


def documented_skip_vae() -> str:
    """The Python block of docs/adding_a_method.md's worked example (Skip-VAE)."""
    text = (REPO_ROOT / "docs" / "adding_a_method.md").read_text()
    section = text[text.index("## Changing the decoder"):]
    return section[section.index("```python\n") + len("```python\n"):section.index("\n```\n")]


def test_the_documented_skip_vae_passes_the_contract(toy_methods):
    """The docs' worked example: z reaches the output layer through the `hidden_states` hook, which training,
    evaluation and greedy decoding all call, so every check passes (bf16 too, where this CPU has it)."""
    namespace = {"__name__": "my_methods.skip_vae"}
    exec(compile(documented_skip_vae(), "docs/adding_a_method.md", "exec"), namespace)
    assert METHODS["skip-vae"] is namespace["SkipVAE"]
    results = lm_checks("skip-vae")
    failed = [f"{result.name}: {result.detail}" for result in results if not result.passed]
    assert not failed, failed
    ran = {result.name for result in results if not result.skipped}
    assert {"greedy decoding", "interpolation"} <= ran
    model = tiny_model("skip-vae")
    assert model.decoder.out.in_features == 16 + 4  # [h_t ; z]: the skip connection is there


class NaNLoss(BasicVAE):
    def loss(self, batch, step):
        terms = super().loss(batch, step)
        return LossTerms(loss=terms.loss * float("nan"), recon=terms.recon, kl=terms.kl, beta=terms.beta)


class InfFromStep2(BasicVAE):
    def loss(self, batch, step):
        terms = super().loss(batch, step)
        return terms if step < 2 else LossTerms(loss=terms.loss + float("inf"), recon=terms.recon, kl=terms.kl)


def test_a_nan_loss_is_reported_once_naming_the_step(toy_methods, capsys):
    """Not as `determinism: the same seed gives another loss` (NaN != NaN) and a TrainingDiverged without a name."""
    register_method("toy-not-a-number")(NaNLoss)
    results = lm_checks("toy-not-a-number")
    failed = [result for result in results if not result.passed]
    assert [result.name for result in failed] == ["finite loss"]
    assert failed[0].detail.startswith("AssertionError: non-finite loss at step 0: LossTerms.loss is nan for 4 of 4")
    skipped = {result.name for result in results if result.skipped}
    assert {"determinism", "training lowers the loss", "weights-only state round trip"} <= skipped
    assert not any("nan" in result.detail for result in results if result is not failed[0])
    assert main(["toy-not-a-number"]) == 1
    out = capsys.readouterr().out
    assert len(re.findall(r"\bnan\b", out)) == 1 and "another loss" not in out and ": :" not in out
    assert "SKIP  determinism" in out and "failed: finite loss" in out


def test_a_loss_that_diverges_during_training_names_the_method_and_the_step(toy_methods):
    register_method("toy-nan-later")(InfFromStep2)
    results = {result.name: result for result in lm_checks("toy-nan-later")}
    detail = results["finite loss"].detail
    assert not results["finite loss"].passed
    assert detail == "AssertionError: toy-nan-later (check_method's tiny model): non-finite loss inf at step 2"


def test_a_training_divergence_outside_a_run_has_no_empty_name():
    from harness.train.optim import Optimisation, TrainingDiverged
    from harness.core.config import TrainConfig

    parameter = torch.nn.Parameter(torch.ones(1))
    with pytest.raises(TrainingDiverged, match=r"^non-finite loss nan at step 7;"):
        Optimisation({"all": [parameter]}, TrainConfig()).minimise(parameter * float("nan"), 7)


def test_paper_protocol_terms_is_reported_overridden_only_by_a_class_of_the_method():
    """TWR-VAE and the baselines inherit SequenceVAE's hook (a shared layer): that is no override of the method."""
    from harness.methods.check_method import _defined_in, _is_shared

    for method in ("twr-vae", "vae-rnn", "cyclical-vae"):
        owner = _defined_in(get_method(method), "paper_protocol_terms")
        assert _is_shared(owner) and owner.__name__ == "SequenceVAE"
    for method in ("bn-vae", "sa-vae"):  # `paper_protocol_terms = TextVAE.paper_protocol_terms`: the default hook
        assert _defined_in(get_method(method), "paper_protocol_terms") is TextVAE

    class Own(BasicVAE):
        def paper_protocol_terms(self, batch, posterior=None):
            return super().paper_protocol_terms(batch, posterior)

    assert _defined_in(Own, "paper_protocol_terms") is Own and not _is_shared(Own)


def test_the_bf16_check_skips_with_the_reason(monkeypatch):
    """A method without a `compute_dtype` module is 'not supported by this method' (set_compute_precision would refuse
    it), a CPU without bf16 skips with its reason; neither fails the contract."""
    import harness.core.precision
    from harness.methods.check_method import _bf16_skip_reason

    reason = _bf16_skip_reason(torch.nn.Linear(2, 2))  # every shipped method has bf16 modules now
    assert reason.startswith("not supported by this method")
    with pytest.raises(ValueError, match="no module that supports it"):
        harness.core.precision.set_compute_precision(torch.nn.Linear(2, 2), "bfloat16")
    monkeypatch.setattr(harness.core.precision, "_cpu_bfloat16_unsupported", lambda: "no bf16 kernels on this test CPU")
    assert _bf16_skip_reason(tiny_model("twr-vae")) == "not run: no bf16 kernels on this test CPU"
