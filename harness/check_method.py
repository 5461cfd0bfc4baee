"""The method contract, run on a tiny instance of one registered method (plugins included):

    python -m harness.check_method NAME [--plugin MODULE ...]

Language modelling: determinism, shapes, padding invariance, the importance-weighted bound against the exact
log-likelihood (1-d latent, quadrature), evaluation and model selection that never call the training loss (and,
with the default hook, report the posterior's own KL), training steps that lower the loss, and a weights-only
state round trip (what resuming and evaluation load). Dialogue: the same where it applies, plus generation.
The method's option defaults are checked against their fields' types first, as config values are. Exit status
0 = every check passed, 1 = a check failed, 2 = a config error (one line, `config error: <key>: ...`, as the
workflow's config check prints one). docs/adding_a_method.md tells method authors to run it.
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

from harness.config import ArchitectureConfig, ExperimentConfig, TrainConfig
from harness.contract import ConfigError, check_defaults, config_error_line
from harness.data.lm_dataset import Batch
from harness.dialogue_api import DialogueVAE
from harness.methods import get_method, registered_methods
from harness.model_api import TextVAE
from harness.optim import Optimisation
from metrics.lm import importance_weighted_log_marginal

SENTENCES = [[4], [5, 4], [4, 5, 5], [6, 7, 4, 5]]  # word ids >= 4 (0-3 are <pad> <unk> <s> </s>)
TINY_ARCHITECTURE = dict(emb_dim=8, hidden_dim=16, num_layers=1, dropout=0.0)


@dataclass
class CheckResult:
    name: str
    passed: bool
    detail: str
    seconds: float = 0.0


def _checker(results: list[CheckResult]):
    """A decorator that runs a check at once and records it: a failed assertion or a crash fails it, with the
    reason; what the check returns is its detail."""
    def check(name: str):
        def wrap(function):
            started = time.perf_counter()
            try:
                passed, detail = True, function() or "ok"
            except Exception as error:
                passed, detail = False, f"{type(error).__name__}: {error}"
            results.append(CheckResult(name, passed, detail, time.perf_counter() - started))
        return wrap
    return check


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


def _train_steps(model, batch, steps: int, lr: float = 0.01) -> None:
    model.train()
    optimisation = Optimisation(model.parameter_groups(), TrainConfig(lr=lr, weight_decay=0.0))
    optimisation.random_batch = lambda: batch
    if hasattr(model, "on_train_start"):
        model.on_train_start(1)
    for step in range(steps):
        model.training_step(batch, step, optimisation)


def _eval_loss(model, batch) -> float:
    model.eval()
    torch.manual_seed(1)
    with torch.no_grad():
        return float(model.loss(batch, 10**6).loss.mean())


def _assert_deterministic(build: Callable[[], torch.nn.Module], batch) -> None:
    a, b = build(), build()
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values())), \
        "two builds with the same seed differ"
    assert _eval_loss(a, batch) == _eval_loss(b, batch), "the same seed gives another loss"


def _assert_training_lowers_the_loss(model, batch, steps: int) -> str:
    before = _eval_loss(model, batch)
    _train_steps(model, batch, steps)
    after = _eval_loss(model, batch)
    assert after < before, f"{steps} steps on one batch: loss {before:.3f} -> {after:.3f}"
    return f"{before:.2f} -> {after:.2f}"


def _round_trip(model, build: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """The state dict saved and read back as harness.runs reads checkpoints (weights_only) into a fresh build."""
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


# ----------------------------------------------------------------------------------- language-model checks
def lm_checks(method: str) -> list[CheckResult]:
    results: list[CheckResult] = []
    check = _checker(results)
    batch = make_batch(SENTENCES)

    @check("determinism")
    def _():
        _assert_deterministic(lambda: tiny_model(method), batch)

    @check("shapes")
    def _():
        model = tiny_model(method).eval()
        terms = model.loss(batch, 0)
        for field in ("loss", "recon", "kl"):
            value = getattr(terms, field)
            assert value.shape == (batch.size,), f"LossTerms.{field} has shape {tuple(value.shape)}, not [B]"
            assert torch.isfinite(value).all(), f"LossTerms.{field} is not finite"
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
        from harness.lm_evaluate import evaluate_model
        from harness.tasks import task_of

        model = tiny_model(method)
        _forbid_loss(model)
        with tempfile.TemporaryDirectory() as folder:
            dataset, run = _tiny_split(Path(folder))
            metrics = evaluate_model(model, dataset, run, torch.device("cpu"), progress=False)
            with torch.no_grad():
                terms = task_of(run).selection_terms(model, batch)
        assert torch.isfinite(terms.recon + terms.kl).all(), "the model-selection criterion is not finite"
        paper_kl, uniform_kl = metrics["paper"]["KL"], metrics["uniform"]["KL"]
        assert paper_kl >= -1e-6, f"paper-protocol KL {paper_kl} < 0"
        if type(model).paper_protocol_terms is TextVAE.paper_protocol_terms:
            assert abs(paper_kl - uniform_kl) < 1e-4, (
                f"paper-protocol KL {paper_kl} is not the posterior's KL {uniform_kl} under the default hook")
            return "default paper_protocol_terms: the paper KL is the posterior's KL"
        return "paper_protocol_terms overridden: its KL is the method's documented protocol KL"

    @check("training lowers the loss")
    def _():
        return _assert_training_lowers_the_loss(tiny_model(method), batch, 40)

    @check("weights-only state round trip")
    def _():
        model = tiny_model(method)
        _train_steps(model, batch, 5)
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

    return results


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


# ----------------------------------------------------------------------------------------- dialogue checks
def dialogue_checks(method: str) -> list[CheckResult]:
    results: list[CheckResult] = []
    check = _checker(results)
    batch = make_dialogue_batch(DIALOGUES)

    @check("determinism")
    def _():
        _assert_deterministic(lambda: tiny_dialogue_model(method), batch)

    @check("shapes")
    def _():
        terms = tiny_dialogue_model(method).loss(batch, 0)
        assert terms.loss.shape == (batch.size,) and torch.isfinite(terms.loss).all(), "loss is not [B] and finite"

    @check("generation without training-only terms")
    def _():
        model = tiny_dialogue_model(method).eval()
        _forbid_loss(model)
        with torch.no_grad():
            tokens, lengths = model.generate(batch, num_samples=3, max_len=6)
        assert tokens.shape == (batch.size, 3, 6) and lengths.shape == (batch.size, 3), "generate's shapes"
        assert ((lengths >= 0) & (lengths <= 6)).all(), "response lengths out of range"

    @check("training lowers the loss")
    def _():
        return _assert_training_lowers_the_loss(tiny_dialogue_model(method), batch, 60)

    @check("weights-only state round trip")
    def _():
        model = tiny_dialogue_model(method)
        _train_steps(model, batch, 5)
        fresh = _round_trip(model, lambda: tiny_dialogue_model(method, seed=1))
        assert _eval_loss(model, batch) == _eval_loss(fresh, batch), "a reloaded model computes another loss"

    return results


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
        for module in args.plugin:
            importlib.import_module(module)
        if args.list or not args.method:
            print("\n".join(registered_methods()))
            return 0 if args.list else 2
        # the defaults are what a config without options gets: they must have their fields' types too
        options = get_method(args.method).Options
        check_defaults(options, f"{args.method}: {options.__name__}")
        results = run_checks(args.method)
    except ConfigError as error:  # reported as the workflow's config check reports one: one line, no traceback
        print(config_error_line(error), file=sys.stderr)
        return 2
    for result in results:
        print(f"{'PASS' if result.passed else 'FAIL'}  {result.name} ({result.seconds:.1f} s): {result.detail}")
    failed = [result.name for result in results if not result.passed]
    print(f"{args.method}: {len(results) - len(failed)} of {len(results)} checks passed"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
