import numpy as np
import pytest
import scipy.sparse as sp

import scmm
from scmm._utils import fit_svd


def test_svd_writes_embedding_loadings_params(paired):
    scmm.pp.svd(paired, "rna", n_components=5, rng=0)
    rna = paired["rna"]
    assert rna.obsm["X_svd_rna"].shape == (rna.n_obs, 5)
    assert rna.varm["svd_rna"].shape == (rna.n_vars, 5)
    assert rna.uns["svd_rna"]["params"] == {"n_components": 5, "layer": None, "n_fit_cells": 120}
    # projection of every cell through the stored loadings
    np.testing.assert_allclose(
        rna.obsm["X_svd_rna"], rna.X @ rna.varm["svd_rna"], rtol=1e-4, atol=1e-4
    )


def test_svd_fit_on_subset_never_sees_excluded_cells(paired):
    fit_on = paired.obs["train"].to_numpy()
    sub = scmm.pp.svd(paired, "rna", n_components=5, fit_on=fit_on, rng=0, copy=True)
    full = scmm.pp.svd(paired, "rna", n_components=5, rng=0, copy=True)
    assert not np.allclose(sub["rna"].varm["svd_rna"], full["rna"].varm["svd_rna"], atol=1e-3)
    # changing the excluded cells does not change the fit
    other = paired.copy()
    X = other["rna"].X.toarray()
    X[~fit_on] = np.random.default_rng(5).poisson(3.0, size=X[~fit_on].shape)
    other["rna"].X = sp.csr_matrix(X)
    sub2 = scmm.pp.svd(other, "rna", n_components=5, fit_on=fit_on, rng=0, copy=True)
    np.testing.assert_allclose(sub["rna"].varm["svd_rna"], sub2["rna"].varm["svd_rna"], atol=1e-6)
    assert paired["rna"].uns.get("svd_rna") is None  # copy=True left the input alone


def test_svd_keeps_sparse_input_sparse(monkeypatch):
    X = sp.random(200, 500, density=0.02, format="csr", random_state=0, dtype=np.float32)
    monkeypatch.setattr(sp.csr_matrix, "toarray", lambda *a, **k: pytest.fail("densified"))
    comps = fit_svd(X, 4, rng=0)
    assert comps.shape == (4, 500)


def test_svd_same_rng_same_result_and_bad_args(paired):
    a = scmm.pp.svd(paired, "rna", n_components=4, rng=1, copy=True)
    b = scmm.pp.svd(paired, "rna", n_components=4, rng=1, copy=True)
    np.testing.assert_array_equal(a["rna"].obsm["X_svd_rna"], b["rna"].obsm["X_svd_rna"])
    with pytest.raises(ValueError, match="n_components=500"):
        scmm.pp.svd(paired, "rna", n_components=500)
    with pytest.raises(KeyError, match="`mod='atac'` is not a modality"):
        scmm.pp.svd(paired, "atac")
    with pytest.raises(ValueError, match="`fit_on` selects no cells"):
        scmm.pp.svd(paired, "rna", fit_on=np.zeros(paired.n_obs, bool))


def test_normalize_and_split(paired):
    scmm.pp.normalize(paired, "rna", method="log_cp10k")
    counts = paired["rna"].layers["counts"].toarray()
    expected = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4)
    np.testing.assert_allclose(paired["rna"].X.toarray(), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="`method='zscore'`"):
        scmm.pp.normalize(paired, "rna", method="zscore")
    scmm.pp.split_cells(paired, test_fraction=0.2, rng=0, key_added="split")
    test = np.random.default_rng(0).permutation(paired.n_obs)[:24]
    assert set(np.flatnonzero(~paired.obs["split"].to_numpy())) == set(test)
