"""The importance-weighted NLL of every registered method is a valid bound that converges (He et al. 2019 protocol).

A one-dimensional latent makes log p(x) = log int p(x|z) p(z) dz computable by quadrature, so the estimator can be
checked against the exact value for each method family. A new method is covered by registering it.
"""

import pytest
import torch

from conftest import make_batch, tiny_model
from harness.methods.check_method import _exact_log_marginal
from harness.methods.lookup import registered_methods
from metrics.lm import importance_weighted_log_marginal


exact_log_marginal = _exact_log_marginal  # the method contract's quadrature (harness.methods.check_method)


@pytest.mark.parametrize("method", registered_methods(task="lm"))
def test_importance_weighted_nll_bounds_the_exact_nll_and_converges(method):
    model = tiny_model(method, vocab_size=6, z_dim=1).double().eval()
    with torch.no_grad():  # make p(x|z) depend strongly on z, so that the bound has something to bound
        model.decoder.z_to_hidden.weight.mul_(3.0)
    batch = make_batch([[4], [5, 4], [4, 5, 5]])
    with torch.no_grad():
        exact = exact_log_marginal(model, batch)
        mu, logvar = model.posterior(batch)
        mu, logvar = mu + 0.7, logvar + 0.5  # an untrained encoder is close to the prior: use a clearly different (wider) q
        loglik = lambda z: model.log_likelihood(batch, z)  # noqa: E731
        generator = torch.Generator().manual_seed(0)
        gaps = {}
        for k in (1, 10, 1000):
            estimates = torch.stack([importance_weighted_log_marginal(loglik, mu, logvar, k, 500, generator)
                                     for _ in range(30)])
            gaps[k] = (exact - estimates.mean(0))  # >= 0 in expectation: -estimate is an upper bound on NLL
        assert (gaps[1] > 0).all() and (gaps[10] > -0.01).all() and (gaps[1000] > -0.01).all()
        assert (gaps[1000] < gaps[10]).all() and (gaps[10] < gaps[1]).all()
        assert gaps[1000].abs().max() < 0.02


