"""The method contract, run on a tiny instance of one registered method (plugins included):

    python -m harness.methods.check_method NAME [--plugin MODULE ...]

It calls every entry point a workflow job calls for the method's task. Language modelling: a finite loss (NaN/inf
reported once, naming the step), determinism, shapes, padding invariance, the importance-weighted bound against the
exact log-likelihood (1-d latent, quadrature), evaluation and model selection that never call the training loss
(and, with the default hook, report the posterior's own KL), greedy decoding (the evaluation's reconstructions,
harness.evaluate.lm_evaluate.reconstructions) and the latent interpolation job's decoding (harness.evaluate.interpolation), training
steps that lower the loss, a weights-only state round trip (what resuming and evaluation load), and a bfloat16
training step and evaluation (harness.core.precision) where the CPU and the method support it. Dialogue: the same where
it applies, with response sampling as the evaluation samples (harness.evaluate.dialogue_evaluate.generate_responses).
The method's option defaults are checked against their fields' types first, as config values are. A check that
cannot run here says why (SKIP) and does not fail the contract. Exit status 0 = every check passed, 1 = a check
failed, 2 = a config error, an unknown method or a plugin that cannot be imported (one line, `config error: ...`,
as the workflow's config check prints one). docs/adding_a_method.md tells method authors to run it.
"""
from __future__ import annotations

import argparse
import importlib
import io
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import torch

from harness.core.config import ArchitectureConfig, ExperimentConfig, InterpolateConfig, TrainConfig
from harness.core.contract import ConfigError, check_defaults, config_error_line
from harness.data.lm_dataset import Batch
from harness.methods.dialogue_api import DialogueVAE
from harness.methods.lookup import get_method, load_plugins, registered_methods
from harness.methods.model_api import TextVAE
from harness.train.optim import Optimisation, TrainingDiverged
from harness.core.precision import bfloat16_unsupported, set_compute_precision
from metrics.lm import gaussian_kl_standard_normal, importance_weighted_log_marginal

SENTENCES = [[4], [5, 4], [4, 5, 5], [6, 7, 4, 5]]  # word ids >= 4 (0-3 are <pad> <unk> <s> </s>)
TINY_ARCHITECTURE = dict(emb_dim=8, hidden_dim=16, num_layers=1, dropout=0.0)


@dataclass
class CheckResult:
    name: str
    passed: bool
    detail: str
    seconds: float = 0.0
    skipped: bool = False  # not run here (the detail says why); a skipped check does not fail the contract


class Skipped(Exception):
    """Raised by a check that cannot run here (bfloat16 on a CPU without it, a method without greedy decoding)."""


class _Checks:
    """A decorator that runs a check at once and records it: a failed assertion or a crash fails it, with the
    reason; `Skipped` skips it; what the check returns is its detail. Once the "finite loss" check has found a
    NaN/inf loss (`loss_problem`), the checks that compute the loss (`uses_loss`) are not run, so that the one
    cause is reported once, by that check, and not again as a determinism or training failure."""

    def __init__(self):
        self.results: list[CheckResult] = []
        self.loss_problem: str | None = None

    def ran_and_passed(self, name: str) -> bool:
        return any(r.name == name and r.passed and not r.skipped for r in self.results)

    def __call__(self, name: str, uses_loss: bool = False):
        def wrap(function):
            if uses_loss and self.loss_problem is not None:
                self.results.append(CheckResult(name, True, f"not run: {self.loss_problem}", skipped=True))
                return
            started = time.perf_counter()
            skipped = False
            try:
                passed, detail = True, function() or "ok"
            except Skipped as reason:
                passed, detail, skipped = True, str(reason), True
            except Exception as error:
                passed, detail = False, f"{type(error).__name__}: {error}"
            self.results.append(CheckResult(name, passed, detail, time.perf_counter() - started, skipped))
        return wrap


# ------------------------------------------------------------------------------------------- tiny instances
def make_batch(rows: list[list[int]]) -> Batch:
    """A language-modelling Batch from word-id rows (ids >= 4): <s>=2 ... </s>=3, padded with 0."""
    seqs = [[2, *row, 3] for row in rows]
    width = max(len(s) for s in seqs)
    tokens = torch.tensor([s + [0] * (width - len(s)) for s in seqs], dtype=torch.long)
    return Batch(tokens=tokens, lengths=torch.tensor([len(s) for s in seqs], dtype=torch.long))


def tiny_model(method: str = "twr-vae", vocab_size: int = 12, z_dim: int = 4, seed: int = 0, **options) -> TextVAE:
    torch.manual_seed(seed)
    arch = ArchitectureConfig(z_dim=z_dim, **TINY_ARCHITECTURE)
    return get_method(method).build(vocab_size, arch, options)


def make_dialogue_batch(dialogues: list[tuple[list[list[int]], list[int]]], floors=None) -> SimpleNamespace:
    """A dialogue batch from (context utterances as word-id rows, response row) pairs; ids >= 4.
    Utterances are wrapped in <s>=2 ... </s>=3 and padded with 0; absent context slots have length 0."""
    j = max(len(context) for context, _ in dialogues)
    u = max(len(utt) + 2 for context, _ in dialogues for utt in context)
    b = len(dialogues)
    context = torch.zeros(b, j, u, dtype=torch.long)
    context_lengths = torch.zeros(b, j, dtype=torch.long)
    for i, (utts, _) in enumerate(dialogues):
        for k, utt in enumerate(utts):
            row = [2, *utt, 3]
            context[i, k, : len(row)] = torch.tensor(row)
            context_lengths[i, k] = len(row)
    responses = [[2, *response, 3] for _, response in dialogues]
    width = max(len(r) for r in responses)
    response = torch.tensor([r + [0] * (width - len(r)) for r in responses], dtype=torch.long)
    if floors is None:
        floors = torch.tensor([[k % 2 for k in range(j)] for _ in dialogues], dtype=torch.long)
    return SimpleNamespace(context=context, context_lengths=context_lengths,
                           num_utterances=torch.tensor([len(c) for c, _ in dialogues]), floors=floors,
                           response=response, response_lengths=torch.tensor([len(r) for r in responses]),
                           size=b)


def tiny_dialogue_model(method: str = "cvae", vocab_size: int = 12, seed: int = 0, **options) -> DialogueVAE:
    import dataclasses

    torch.manual_seed(seed)
    cls = get_method(method)
    sizes = dict(emb_dim=8, hidden_dim=6, z_dim=3, dropout=0.0)
    if "kl_warmup_steps" in {field.name for field in dataclasses.fields(cls.Options)}:
        sizes["kl_warmup_steps"] = 0  # no annealing in the tiny models, for methods that have a KL term
    return cls.build(vocab_size, None, {**sizes, **options})


DIALOGUES = [([[4, 5], [6]], [7, 4]), ([[5]], [6, 6, 7]), ([[7, 7, 4], [4], [5, 6]], [4]), ([[6, 4]], [5, 7])]


# ------------------------------------------------------------------------------------------------- helpers
def _exact_log_marginal(model: TextVAE, batch: Batch, grid: int = 4001, bound: float = 10.0) -> torch.Tensor:
    """log p(x) = log int p(x|z) N(z; 0, 1) dz by the trapezoid rule, for a one-dimensional latent."""
    z = torch.linspace(-bound, bound, grid, dtype=torch.float64)
    log_joint = model.log_likelihood(batch, z.view(grid, 1, 1).expand(grid, batch.size, 1)) \
        - 0.5 * (math.log(2 * math.pi) + z.pow(2)).unsqueeze(1)
    step = z[1] - z[0]
    weights = torch.full((grid, 1), math.log(step), dtype=torch.float64)
    weights[0] = weights[-1] = math.log(step / 2)
    return torch.logsumexp(log_joint + weights, dim=0)


EVAL_STEP = 10**6  # the step the evaluation-mode loss is computed at: every warm-up and schedule over


def _train_steps(model, batch, steps: int, lr: float = 0.01, where: str = "") -> None:
    """`steps` training steps on `batch` as harness.train.training takes them; a NaN/inf loss raises TrainingDiverged, its
    message starting with `where` (check_method passes the method's name)."""
    model.train()
    optimisation = Optimisation(model.parameter_groups(), TrainConfig(lr=lr, weight_decay=0.0))
    optimisation.random_batch = lambda: batch
    optimisation.where = where
    if hasattr(model, "on_train_start"):
        model.on_train_start(1)
    for step in range(steps):
        model.training_step(batch, step, optimisation)


def _eval_loss(model, batch) -> float:
    model.eval()
    torch.manual_seed(1)
    with torch.no_grad():
        return float(model.loss(batch, EVAL_STEP).loss.mean())


def _assert_deterministic(build: Callable[[], torch.nn.Module], batch) -> None:
    a, b = build(), build()
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values())), \
        "two builds with the same seed differ"
    first, second = _eval_loss(a, batch), _eval_loss(b, batch)
    # finiteness first: NaN != NaN, so a NaN loss would otherwise read as "another loss"
    assert math.isfinite(first), f"non-finite loss {first} at step {EVAL_STEP} (evaluation mode)"
    assert first == second, "the same seed gives another loss"


def _non_finite_terms(terms) -> str | None:
    """Which LossTerms fields hold NaN/inf, with the first such value and for how many sentences; None if none."""
    found = []
    for field in ("loss", "recon", "kl"):
        value = getattr(terms, field)
        if not torch.is_tensor(value):
            continue
        bad = ~torch.isfinite(value.detach())
        if bad.any():
            found.append(f"LossTerms.{field} is {float(value.detach()[bad].flatten()[0])} for {int(bad.sum())} of "
                         f"{value.numel()} sentences")
    return "; ".join(found) or None


def _check_finite_loss(checks: _Checks, model, batch, method: str, steps: int = 3) -> str:
    """The training loss at step 0 and `steps` training steps: a NaN/inf loss fails here, naming the step, and the
    checks that compute the loss are then not run (`_Checks.loss_problem`)."""
    model.train()
    torch.manual_seed(1)
    problem = _non_finite_terms(model.loss(batch, 0))
    if problem is None:
        try:
            _train_steps(model, batch, steps, where=f"{method} (check_method's tiny model)")
        except TrainingDiverged as error:
            problem = str(error).removesuffix("; no result was written")
        else:
            return f"finite at step 0 and over {steps} training steps"
    else:
        problem = f"non-finite loss at step 0: {problem}"
    checks.loss_problem = "the loss is not finite (see the check 'finite loss')"
    raise AssertionError(problem)


def _bf16_skip_reason(model) -> str | None:
    """Why the bf16 check cannot run: the method has no module that computes in bfloat16 (harness.core.precision: one
    with a `compute_dtype`), or this CPU cannot; None where it can run."""
    if not any(hasattr(module, "compute_dtype") for module in model.modules()):
        return ("not supported by this method (no module has a `compute_dtype`, harness.core.precision): its configs keep "
                "train.precision and evaluate.precision at float32")
    reason = bfloat16_unsupported("cpu")
    return None if reason is None else f"not run: {reason}"


SHARED_PACKAGES = ("harness", "layers")  # the harness's own classes, which a method extends


def _defined_in(cls: type, attribute: str) -> type:
    """The class of `cls`'s MRO that defines the `attribute` `cls` has: the first, from the base classes down, to
    hold it (a class that re-selects a base's function, `paper_protocol_terms = TextVAE.paper_protocol_terms` as
    BN-VAE and SA-VAE do, does not define it)."""
    resolved = getattr(cls, attribute)
    return next(klass for klass in reversed(cls.__mro__) if vars(klass).get(attribute) is resolved)


def _is_shared(klass: type) -> bool:
    return klass.__module__.split(".")[0] in SHARED_PACKAGES


def _assert_training_lowers_the_loss(model, batch, steps: int, method: str) -> str:
    before = _eval_loss(model, batch)
    _train_steps(model, batch, steps, where=f"{method} (check_method's tiny model)")
    after = _eval_loss(model, batch)
    assert after < before, f"{steps} steps on one batch: loss {before:.3f} -> {after:.3f}"
    return f"{before:.2f} -> {after:.2f}"


def _round_trip(model, build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """The state dict saved and read back as harness.core.runs reads checkpoints (weights_only) into a fresh build."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    fresh = build()
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    return fresh


class _LossCalled(RuntimeError):
    pass


def _forbid_loss(model) -> None:
    def loss(*_args, **_kwargs):
        raise _LossCalled("evaluation called the training loss")
    model.loss = loss


DECODER_HOOKS = ("a change of the decoder's inputs belongs in its `hidden_states` (or `logits`), which greedy decoding "
                 "calls too: docs/adding_a_method.md, 'Changing the decoder'")


def _greedy_or_skip(model, z: torch.Tensor, max_length: int, vocab_size: int, job: str) -> list[list[int]]:
    """`model.greedy_decode(z, max_length)` checked for what the workflow's jobs read from it; `Skipped` where the
    method has none (optional: its reconstructions are null and the interpolation job must leave it out)."""
    try:
        decoded = model.greedy_decode(z, max_length)
    except NotImplementedError:
        raise Skipped("not run: the method has no greedy_decode (optional: samples.jsonl's reconstructions are null, "
                      "and the model must be left out of the config's interpolate.models)") from None
    except Exception as error:
        raise AssertionError(f"greedy_decode, as {job} calls it, fails: {type(error).__name__}: {error} ("
                             f"{DECODER_HOOKS})") from error
    assert isinstance(decoded, list) and len(decoded) == z.size(0), (
        f"greedy_decode of {z.size(0)} latents returned {type(decoded).__name__} of length "
        f"{len(decoded) if hasattr(decoded, '__len__') else '?'}, not a list of {z.size(0)} rows")
    for row in decoded:
        assert isinstance(row, list) and all(isinstance(i, int) and 0 <= i < vocab_size for i in row), (
            f"greedy_decode's rows must be lists of word ids in [0, {vocab_size}), got {row!r}")
        assert len(row) <= max_length, f"greedy_decode gave {len(row)} words, more than max_length = {max_length}"
    return decoded


# ----------------------------------------------------------------------------------- language-model checks
def lm_checks(method: str) -> list[CheckResult]:
    check = _Checks()
    batch = make_batch(SENTENCES)

    @check("finite loss")
    def _():
        return _check_finite_loss(check, tiny_model(method), batch, method)

    @check("determinism", uses_loss=True)
    def _():
        _assert_deterministic(lambda: tiny_model(method), batch)

    @check("shapes")
    def _():
        model = tiny_model(method).eval()
        terms = model.loss(batch, 0)
        for field in ("loss", "recon", "kl"):
            value = getattr(terms, field)
            assert value.shape == (batch.size,), f"LossTerms.{field} has shape {tuple(value.shape)}, not [B]"
        with torch.no_grad():
            mu, logvar = model.posterior(batch)
            assert mu.shape == logvar.shape == (batch.size, 4), f"posterior shape {tuple(mu.shape)}, not [B, Z]"
            loglik = model.log_likelihood(batch, torch.randn(3, batch.size, 4))
        assert loglik.shape == (3, batch.size), f"log_likelihood shape {tuple(loglik.shape)}, not [S, B]"
        assert (loglik <= 1e-6).all(), "log p(x|z) of discrete tokens must be <= 0"

    @check("padding invariance")
    def _():
        model = tiny_model(method).double().eval()
        wider = Batch(tokens=torch.cat([batch.tokens, torch.zeros(batch.size, 3, dtype=torch.long)], 1),
                      lengths=batch.lengths)  # the same sentences with three more padding columns
        z = torch.randn(2, batch.size, 4, dtype=torch.float64)
        with torch.no_grad():
            outputs = []
            for candidate in (batch, wider):
                torch.manual_seed(2)  # the same draws for methods with a stochastic posterior (SA-VAE's SVI)
                outputs.append((*model.posterior(candidate), model.log_likelihood(candidate, z)))
        (mu_a, logvar_a, ll_a), (mu_p, logvar_p, ll_p) = outputs
        assert torch.allclose(mu_a, mu_p, atol=1e-6) and torch.allclose(logvar_a, logvar_p, atol=1e-6), \
            "the posterior changes when the batch has more padding"
        assert torch.allclose(ll_a, ll_p, atol=1e-6), "log p(x|z) changes when the batch has more padding"

    @check("IW bound vs exact log-likelihood")
    def _():
        model = tiny_model(method, vocab_size=8, z_dim=1).double().eval()
        with torch.no_grad():
            exact = _exact_log_marginal(model, batch)
            mu, logvar = model.posterior(batch)
            mu, logvar = mu + 0.7, logvar + 0.5  # a proposal clearly unlike the prior and the posterior
            generator = torch.Generator().manual_seed(0)
            gaps = {k: (exact - torch.stack([importance_weighted_log_marginal(
                lambda z: model.log_likelihood(batch, z), mu, logvar, k, 500, generator) for _ in range(20)]
            ).mean(0)) for k in (1, 1000)}
        assert (gaps[1] > -0.01).all(), f"K=1 estimate above the exact log p(x) by {(-gaps[1]).max():.4f} nats"
        assert gaps[1000].abs().max() < 0.05, f"K=1000 estimate {gaps[1000].abs().max():.4f} nats from exact"
        assert (gaps[1000] <= gaps[1] + 0.01).all(), "more samples loosened the bound"
        return f"gap K=1 {gaps[1].mean():.3f}, K=1000 {gaps[1000].mean():.4f} nats"

    @check("evaluation without training-only terms")
    def _():
        from harness.evaluate.lm_evaluate import evaluate_model
        from harness.tasks import task_of

        model = tiny_model(method)
        _forbid_loss(model)
        with tempfile.TemporaryDirectory() as folder:
            dataset, run = _tiny_split(Path(folder))
            metrics = evaluate_model(model, dataset, run, torch.device("cpu"), progress=False)
            with torch.no_grad():
                terms = task_of(run).selection_terms(model, batch)
        assert torch.isfinite(terms.recon + terms.kl).all(), "the model-selection criterion is not finite"
        paper_kl = metrics["paper"]["KL"]
        assert paper_kl >= -1e-6, f"paper-protocol KL {paper_kl} < 0"
        owner = _defined_in(type(model), "paper_protocol_terms")
        if owner is TextVAE:
            # on the same posterior, as evaluation passes it: the two protocols batch the test set differently, so a
            # stochastic posterior (SA-VAE's SVI) gives them other draws
            with torch.no_grad():
                torch.manual_seed(4)
                mu, logvar = model.posterior(batch)
                hook_kl = model.paper_protocol_terms(batch, (mu, logvar)).kl
            posterior_kl = gaussian_kl_standard_normal(mu, logvar)
            assert torch.allclose(hook_kl, posterior_kl, atol=1e-5), (
                f"paper-protocol KL {hook_kl.tolist()} is not the posterior's KL {posterior_kl.tolist()} under the "
                "default hook")
            return "default paper_protocol_terms: the paper KL is the posterior's KL"
        if _is_shared(owner):  # e.g. layers.sequence_vae.SequenceVAE's, which TWR-VAE and the baselines inherit
            return (f"paper_protocol_terms not overridden by the method: {owner.__module__}.{owner.__qualname__}'s "
                    "(its KL is the KL term that class trains with)")
        return (f"paper_protocol_terms overridden in {owner.__module__}.{owner.__qualname__}: its KL is the method's "
                "documented protocol KL")

    @check("greedy decoding")
    def _():
        from harness.evaluate.lm_evaluate import reconstructions

        model = tiny_model(method).eval()
        with torch.no_grad():
            _greedy_or_skip(model, torch.randn(3, 4), 5, 12, "the evaluation's reconstructions")
        with tempfile.TemporaryDirectory() as folder:
            dataset, run = _tiny_split(Path(folder))
            records = reconstructions(model, dataset, dataset.vocab, run, torch.device("cpu"))
        assert len(records) == len(SENTENCES) and all(r["reconstruction"] is not None for r in records), \
            "reconstructions (harness.evaluate.lm_evaluate) did not decode every test sentence"
        return f"{len(records)} reconstructions, as samples.jsonl has them"

    @check("interpolation")
    def _():
        from harness.evaluate.interpolation import interpolate_pairs, random_pairs

        model = tiny_model(method).eval()
        with torch.no_grad():
            _greedy_or_skip(model, torch.randn(2, 4), 5, 12, "the interpolation job")
        settings = InterpolateConfig(steps=2, max_length=5, batch_size=2)
        with tempfile.TemporaryDirectory() as folder:
            dataset, run = _tiny_split(Path(folder))
            pairs = random_pairs(len(dataset), None, run.seed)
            try:
                records = interpolate_pairs(model, dataset, dataset.vocab, pairs, settings, torch.device("cpu"),
                                            progress=False)
            except Exception as error:
                raise AssertionError(f"interpolate_pairs (the interpolation job) fails: {type(error).__name__}: "
                                     f"{error}") from error
        assert len(records) == len(pairs) and all(len(r["sentences"]) == len(settings.alphas) for r in records), \
            "interpolate_pairs did not decode every point of every pair"
        return f"{len(pairs)} pairs x {len(settings.alphas)} points decoded (harness.evaluate.interpolation)"

    @check("training lowers the loss", uses_loss=True)
    def _():
        return _assert_training_lowers_the_loss(tiny_model(method), batch, 40, method)

    @check("weights-only state round trip", uses_loss=True)
    def _():
        model = tiny_model(method)
        _train_steps(model, batch, 5, where=f"{method} (check_method's tiny model)")
        model.on_epoch_end(1, lambda: iter([batch]))
        fresh = _round_trip(model, lambda: tiny_model(method, seed=1))
        for m in (model, fresh):
            m.eval()
        with torch.no_grad():
            torch.manual_seed(3)
            a = model.posterior(batch)
            torch.manual_seed(3)
            b = fresh.posterior(batch)
            z = torch.randn(2, batch.size, 4)
            same_ll = torch.allclose(model.log_likelihood(batch, z), fresh.log_likelihood(batch, z))
        assert all(torch.allclose(x, y) for x, y in zip(a, b)) and same_ll, (
            "a model loaded from its state dict evaluates differently: keep all state in parameters or buffers")

    @check("bf16", uses_loss=True)
    def _():
        from harness.evaluate.lm_evaluate import evaluate_model, reconstructions

        model = tiny_model(method)
        reason = _bf16_skip_reason(model)
        if reason is not None:
            raise Skipped(reason)
        set_compute_precision(model, "bfloat16", "train.precision")  # as harness.train.training and harness.core.runs set it
        _train_steps(model, batch, 2, where=f"{method} (check_method's tiny model, bfloat16)")
        with tempfile.TemporaryDirectory() as folder:
            dataset, run = _tiny_split(Path(folder))
            metrics = evaluate_model(model, dataset, run, torch.device("cpu"), progress=False)
            decodes = check.ran_and_passed("greedy decoding")  # a failure there is reported there, not again here
            if decodes:
                try:
                    decoded = reconstructions(model, dataset, dataset.vocab, run, torch.device("cpu"))
                except Exception as error:
                    raise AssertionError(f"greedy decoding in bfloat16 fails: {type(error).__name__}: "
                                         f"{error}") from error
                assert len(decoded) == len(SENTENCES), "bfloat16 reconstructions are missing sentences"
        values = {f"{protocol} {key}": metrics[protocol][key] for protocol in ("uniform", "paper")
                  for key in ("NLL", "KL")}
        bad = {key: value for key, value in values.items() if not math.isfinite(value)}
        assert not bad, f"bfloat16 evaluation gives non-finite {bad}"
        return (f"2 training steps, both protocols{' and greedy decoding' if decodes else ''} in bfloat16: NLL "
                f"{values['uniform NLL']:.2f} (uniform), {values['paper NLL']:.2f} (paper)")

    return check.results


def _tiny_split(folder: Path):
    """A processed split of SENTENCES on disk and a run config with a small evaluation budget."""
    from harness.data.lm_dataset import LMDataset
    from harness.data.vocab import Vocab

    words = [f"w{i}" for i in range(4, 12)]
    (folder / "test.txt").write_text("".join(" ".join(words[i - 4] for i in row) + "\n" for row in SENTENCES))
    vocab = Vocab.build([words], max_size=None)
    run = ExperimentConfig.from_mapping({
        "models": ["m"], "model_defs": {"m": {"method": "twr-vae"}}, "device": "cpu",
        "evaluate": {"iw_samples": 5, "iw_chunk": 5, "batch_size": 2, "mi_samples": 2}}).runs()[0]
    return LMDataset(folder / "test.txt", vocab), run


def _tiny_dialogue_split(folder: Path):
    """DIALOGUES as a processed dialogue split on disk, its vocabulary and a run config with a small evaluation."""
    import json

    from harness.data.dialogue_dataset import DialogueDataset
    from harness.data.vocab import Vocab

    words = [f"w{i}" for i in range(4, 12)]
    examples = [{"context": [[words[i - 4] for i in utterance] for utterance in context],
                 "speakers": [k % 2 for k in range(len(context))], "response": [words[i - 4] for i in response],
                 "response_speaker": len(context) % 2} for context, response in DIALOGUES]
    (folder / "test.jsonl").write_text("".join(json.dumps(example) + "\n" for example in examples))
    vocab = Vocab.build([words], max_size=None)
    run = ExperimentConfig.from_mapping({
        "datasets": ["dailydialog"], "models": ["m"], "model_defs": {"m": {"method": "cvae"}}, "device": "cpu",
        "evaluate": {"batch_size": 3, "responses_per_context": 2, "max_response_length": 5}}).runs()[0]
    return DialogueDataset(folder / "test.jsonl", vocab), vocab, run


# ----------------------------------------------------------------------------------------- dialogue checks
def dialogue_checks(method: str) -> list[CheckResult]:
    check = _Checks()
    batch = make_dialogue_batch(DIALOGUES)

    @check("finite loss")
    def _():
        return _check_finite_loss(check, tiny_dialogue_model(method), batch, method)

    @check("determinism", uses_loss=True)
    def _():
        _assert_deterministic(lambda: tiny_dialogue_model(method), batch)

    @check("shapes")
    def _():
        terms = tiny_dialogue_model(method).loss(batch, 0)
        assert terms.loss.shape == (batch.size,), f"loss has shape {tuple(terms.loss.shape)}, not [B]"

    @check("generation without training-only terms")
    def _():
        model = tiny_dialogue_model(method).eval()
        _forbid_loss(model)
        with torch.no_grad():
            tokens, lengths = model.generate(batch, num_samples=3, max_len=6)
        assert tokens.shape == (batch.size, 3, 6) and lengths.shape == (batch.size, 3), "generate's shapes"
        assert ((lengths >= 0) & (lengths <= 6)).all(), "response lengths out of range"

    @check("response sampling")
    def _():
        records = _sampled_responses(tiny_dialogue_model(method))
        return f"{len(records)} contexts x 2 responses, as harness.evaluate.dialogue_evaluate samples them"

    @check("training lowers the loss", uses_loss=True)
    def _():
        return _assert_training_lowers_the_loss(tiny_dialogue_model(method), batch, 60, method)

    @check("weights-only state round trip", uses_loss=True)
    def _():
        model = tiny_dialogue_model(method)
        _train_steps(model, batch, 5, where=f"{method} (check_method's tiny model)")
        fresh = _round_trip(model, lambda: tiny_dialogue_model(method, seed=1))
        assert _eval_loss(model, batch) == _eval_loss(fresh, batch), "a reloaded model computes another loss"

    @check("bf16", uses_loss=True)
    def _():
        model = tiny_dialogue_model(method)
        reason = _bf16_skip_reason(model)
        if reason is not None:
            raise Skipped(reason)
        set_compute_precision(model, "bfloat16", "train.precision")
        _train_steps(model, batch, 2, where=f"{method} (check_method's tiny model, bfloat16)")
        records = _sampled_responses(model)
        return f"2 training steps and response sampling ({len(records)} contexts) in bfloat16"

    return check.results


def _sampled_responses(model) -> list[dict]:
    """What the evaluation of a dialogue run calls (harness.evaluate.dialogue_evaluate.generate_responses: `generate` on the
    test split's batches), on a tiny split, with the training loss forbidden; the records checked."""
    from harness.evaluate.dialogue_evaluate import generate_responses

    _forbid_loss(model)
    with tempfile.TemporaryDirectory() as folder:
        dataset, vocab, run = _tiny_dialogue_split(Path(folder))
        torch.manual_seed(run.seed)
        try:
            records = generate_responses(model, dataset, vocab, run, torch.device("cpu"), progress=False)
        except _LossCalled:
            raise
        except Exception as error:
            raise AssertionError(f"generate_responses (the evaluation's response sampling) fails: "
                                 f"{type(error).__name__}: {error}") from error
    cfg = run.evaluate
    assert len(records) == len(DIALOGUES), f"{len(records)} records for {len(DIALOGUES)} contexts"
    for record in records:
        assert len(record["samples"]) == cfg.responses_per_context, "not responses_per_context responses"
        assert all(len(sample) <= cfg.max_response_length for sample in record["samples"]), \
            "a response longer than max_response_length"
    return records


# -------------------------------------------------------------------------------------------------- driver
def run_checks(method: str) -> list[CheckResult]:
    cls = get_method(method)
    return lm_checks(method) if issubclass(cls, TextVAE) else dialogue_checks(method)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the method contract on a tiny instance of a registered method.")
    parser.add_argument("method", help="registered method name (see --list)", nargs="?")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import this module first (a config's `plugins:` entry); repeatable")
    parser.add_argument("--list", action="store_true", help="list the registered methods and exit")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path.cwd()))  # plugins beside the user's config, as the workflow's jobs find them
    try:
        load_plugins(args.plugin)  # a module that cannot be imported: harness.methods.lookup.PluginNotFound, a ConfigError
        if args.list or not args.method:
            print("\n".join(registered_methods()))
            return 0 if args.list else 2
        # an unknown name: harness.methods.lookup.UnknownMethod, a ConfigError that hints at --plugin
        # the defaults are what a config without options gets: they must have their fields' types too
        options = get_method(args.method).Options
        check_defaults(options, f"{args.method}: {options.__name__}")
        results = run_checks(args.method)
    except ConfigError as error:  # reported as the workflow's config check reports one: one line, no traceback
        print(config_error_line(error), file=sys.stderr)
        return 2
    for result in results:
        mark = "SKIP" if result.skipped else "PASS" if result.passed else "FAIL"
        print(f"{mark}  {result.name} ({result.seconds:.1f} s): {result.detail}")
    failed = [result.name for result in results if not result.passed]
    skipped = [result.name for result in results if result.skipped]
    ran = len(results) - len(skipped)
    print(f"{args.method}: {ran - len(failed)} of {ran} checks passed"
          + (f"; failed: {', '.join(failed)}" if failed else "")
          + (f"; not run: {', '.join(skipped)}" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
