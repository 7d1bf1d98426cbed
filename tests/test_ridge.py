"""The ridge baseline: exact leave-one-out penalty choice, sparse targets never densified."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import RidgeCV

import scmm
from scmm.models._baseline import ridge_loo

from .conftest import make_wide_target, spy_toarray

ALPHAS = list(np.logspace(-2, 4, 13))


def _problem(n=400, k=12, q=30, density=None, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, k)) * np.linspace(3, 0.2, k)
    Y = Z @ rng.normal(size=(k, q)) + 3 * rng.normal(size=(n, q)) + 2.0
    if density is not None:  # sparse, like log-normalised counts: the top values kept
        Y = sp.csr_matrix(np.maximum(Y - np.quantile(Y, 1 - density), 0.0))
    return Z, Y


@pytest.mark.parametrize("density", [None, 0.2])
def test_ridge_loo_matches_sklearn_ridgecv(density):
    Z, Y = _problem(density=density)
    dense = Y.toarray() if sp.issparse(Y) else Y
    ref = RidgeCV(alphas=ALPHAS).fit(Z, dense)
    coef, intercept, alpha = ridge_loo(Z, Y, ALPHAS)
    assert alpha == ref.alpha_
    assert ALPHAS[0] < alpha < ALPHAS[-1]  # an interior choice: the criterion matters
    np.testing.assert_allclose(coef, ref.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(intercept, ref.intercept_, rtol=1e-8, atol=1e-10)


def test_ridge_loo_ignores_null_directions():
    Z, Y = _problem()
    Z = np.hstack([Z, Z[:, :1]])  # a duplicated column: rank-deficient inputs
    ref = RidgeCV(alphas=ALPHAS).fit(Z, Y)
    coef, intercept, alpha = ridge_loo(Z, Y, ALPHAS)
    assert alpha == ref.alpha_
    np.testing.assert_allclose(Z @ coef.T + intercept, ref.predict(Z), rtol=1e-6, atol=1e-8)


@pytest.mark.filterwarnings("ignore:.*does not beat the mean profile")  # tiny synthetic fit
def test_fit_baseline_ridge_keeps_sparse_target_sparse(monkeypatch):
    mdata = make_wide_target(300, 2000, density=0.02, test_every=4)
    q = mdata["out"].n_vars
    dense = mdata.copy()
    dense["out"].X = dense["out"].X.toarray()
    densified = spy_toarray(monkeypatch)
    scmm.tl.fit_baseline(mdata, "rna", "out", method="ridge", n_components=8, train="train")
    monkeypatch.undo()
    n_test = int((~mdata.obs["train"]).sum())
    assert max(r for r, c in densified if c == q) == n_test  # only the held-out cells' scores
    scmm.tl.fit_baseline(dense, "rna", "out", method="ridge", n_components=8, train="train")
    np.testing.assert_allclose(
        mdata["out"].layers["scmm_ridge"], dense["out"].layers["scmm_ridge"], rtol=1e-5, atol=1e-6
    )
