"""``scmm.pp.normalize(..., keep_counts=False)``: same values, normalised in place, no counts."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pytest
import scipy.sparse as sp

import scmm

METHODS = ("log_cp10k", "tfidf", "clr")


def _counts(n_obs=50, n_vars=30, *, seed=0) -> np.ndarray:
    """Sparse-ish float32 counts; every cell has counts, feature 3 has none."""
    rng = np.random.default_rng(seed)
    X = rng.poisson(0.4, (n_obs, n_vars)).astype(np.float32)
    X[:, 0] += 1
    X[:, 3] = 0
    return X


def _mdata(X) -> md.MuData:
    return md.MuData({"m": ad.AnnData(X)})


def _dense(X) -> np.ndarray:
    return X.toarray() if sp.issparse(X) else np.asarray(X)


@pytest.mark.parametrize("sparse", [True, False], ids=["csr", "dense"])
@pytest.mark.parametrize("method", METHODS)
def test_same_values_as_keep_counts(method, sparse):
    X = _counts()
    wrap = sp.csr_matrix if sparse else np.array
    kept, dropped = _mdata(wrap(X)), _mdata(wrap(X))
    scmm.pp.normalize(kept, "m", method=method)
    scmm.pp.normalize(dropped, "m", method=method, keep_counts=False)
    expected, got = _dense(kept["m"].X), _dense(dropped["m"].X)
    assert got.dtype == np.float32
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    if method != "clr":
        np.testing.assert_array_equal(got[:, 3], 0)  # the feature without counts
    assert "counts" not in dropped["m"].layers
    assert dropped["m"].uns["scmm_normalize"] == {
        "method": method,
        "layer": "counts",
        "keep_counts": False,
        "n_features": X.shape[1],
    }
    assert kept["m"].uns["scmm_normalize"]["keep_counts"] is True


@pytest.mark.parametrize("method", ["log_cp10k", "tfidf"])
def test_csr_normalised_in_its_own_memory(method):
    counts = sp.csr_matrix(_counts())
    data = counts.data
    mdata = _mdata(counts)
    scmm.pp.normalize(mdata, "m", method=method, keep_counts=False)
    X = mdata["m"].X
    assert sp.issparse(X)
    assert np.shares_memory(X.data, data)
    assert "counts" not in mdata["m"].layers


@pytest.mark.parametrize("method", ["log_cp10k", "tfidf"])
def test_dense_normalised_in_its_own_memory(method):
    counts = _counts()
    mdata = _mdata(counts)
    scmm.pp.normalize(mdata, "m", method=method, keep_counts=False)
    assert np.shares_memory(mdata["m"].X, counts)


def test_small_blocks_give_the_same_values(monkeypatch):
    """Several row blocks (bounded in rows and in stored entries) walk every entry once."""
    X = _counts(n_obs=97, n_vars=2_000)  # ~660 stored entries a row: over 512 per budget row
    expected = _mdata(sp.csr_matrix(X))
    scmm.pp.normalize(expected, "m", method="tfidf")
    # 8: blocks of ~6 rows (entries bound) or 8 columns of the CSC; 1: a row over the entry
    # budget is a block of its own; 10,000: one block
    for rows in (8, 1, 10_000):
        monkeypatch.setattr(scmm.settings, "block_rows", rows)
        for wrap in (sp.csr_matrix, sp.csc_matrix, np.array):
            mdata = _mdata(wrap(X))
            scmm.pp.normalize(mdata, "m", method="tfidf", keep_counts=False)
            np.testing.assert_allclose(
                _dense(mdata["m"].X), _dense(expected["m"].X), rtol=1e-5, atol=1e-6
            )


def test_blocks_cover_every_row_once():
    from scmm.pp._normalize import _blocks

    indptr = np.array([0, 0, 3, 3, 2**31 - 10, 2**31 - 5, 2**31 - 5], dtype=np.int32)
    # an int32 ``indptr`` near 2**31: the entry budget must not overflow; a row over the budget
    # is a block of its own
    assert list(_blocks(indptr)) == [(0, 3), (3, 4), (4, 6)]


def test_counts_layer_is_used_then_removed():
    X = _counts()
    adata = ad.AnnData(sp.csr_matrix(np.log1p(X)))
    adata.layers["counts"] = sp.csr_matrix(X)
    data = adata.layers["counts"].data
    mdata = md.MuData({"m": adata})
    expected = _mdata(sp.csr_matrix(X))
    scmm.pp.normalize(expected, "m", method="log_cp10k")

    scmm.pp.normalize(mdata, "m", method="log_cp10k", keep_counts=False)
    assert "counts" not in mdata["m"].layers
    assert np.shares_memory(mdata["m"].X.data, data)
    np.testing.assert_allclose(_dense(mdata["m"].X), _dense(expected["m"].X), rtol=1e-5, atol=1e-6)


def test_other_layer_is_removed():
    X = _counts()
    adata = ad.AnnData(np.zeros_like(X))
    adata.layers["raw"] = X.copy()
    mdata = md.MuData({"m": adata})
    scmm.pp.normalize(mdata, "m", method="tfidf", layer="raw", keep_counts=False)
    assert "raw" not in mdata["m"].layers
    assert "counts" not in mdata["m"].layers
    assert mdata["m"].uns["scmm_normalize"]["layer"] == "raw"
    assert mdata["m"].X.any()


@pytest.mark.parametrize("sparse", [True, False], ids=["csr", "dense"])
def test_negative_counts_leave_data_untouched(sparse):
    X = _counts()
    X[2, 5] = -1
    wrap = sp.csr_matrix if sparse else np.array
    mdata = _mdata(wrap(X))
    before = _dense(mdata["m"].X).copy()
    with pytest.raises(ValueError, match="has negative values"):
        scmm.pp.normalize(mdata, "m", method="log_cp10k", keep_counts=False)
    np.testing.assert_array_equal(_dense(mdata["m"].X), before)
    assert "counts" not in mdata["m"].layers
    assert "scmm_normalize" not in mdata["m"].uns


def test_cell_without_counts_leaves_data_untouched():
    X = _counts()
    X[4] = 0
    mdata = _mdata(sp.csr_matrix(X))
    with pytest.raises(ValueError, match="1 cells of `mod='m'` have no counts"):
        scmm.pp.normalize(mdata, "m", method="tfidf", keep_counts=False)
    np.testing.assert_array_equal(_dense(mdata["m"].X), X)


@pytest.mark.parametrize("sparse", [True, False], ids=["csr", "dense"])
@pytest.mark.parametrize("dtype", [np.int64, np.float64])
def test_other_dtypes_are_converted(dtype, sparse):
    X = _counts()
    wrap = sp.csr_matrix if sparse else np.array
    kept = _mdata(wrap(X))
    scmm.pp.normalize(kept, "m", method="tfidf")
    mdata = _mdata(wrap(X.astype(dtype)))
    scmm.pp.normalize(mdata, "m", method="tfidf", keep_counts=False)
    assert mdata["m"].X.dtype == np.float32
    np.testing.assert_allclose(_dense(mdata["m"].X), _dense(kept["m"].X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sparse", [True, False], ids=["csr", "dense"])
def test_view_raises_and_copy_works(sparse):
    X = _counts()
    wrap = sp.csr_matrix if sparse else np.array
    parent = _mdata(wrap(X))
    expected = _mdata(wrap(X[:20]))
    scmm.pp.normalize(expected, "m", method="log_cp10k")
    view = parent[:20]
    with pytest.raises(ValueError, match=r"`mdata\['m'\]` is a view; pass `copy=True`"):
        scmm.pp.normalize(view, "m", method="log_cp10k", keep_counts=False)
    out = scmm.pp.normalize(view, "m", method="log_cp10k", keep_counts=False, copy=True)
    np.testing.assert_array_equal(_dense(parent["m"].X), X)
    np.testing.assert_allclose(_dense(out["m"].X), _dense(expected["m"].X), rtol=1e-5, atol=1e-6)


def test_copy_leaves_the_original():
    X = _counts()
    mdata = _mdata(sp.csr_matrix(X))
    out = scmm.pp.normalize(mdata, "m", method="log_cp10k", keep_counts=False, copy=True)
    np.testing.assert_array_equal(_dense(mdata["m"].X), X)
    assert out["m"].uns["scmm_normalize"]["keep_counts"] is False


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("method", ["log_cp10k", "tfidf"])
def test_kept_counts_path_matches_scanpy_and_muon(method, fmt):
    """The default path (counts kept) gives scanpy's / muon's values on sparse counts."""
    import scanpy as sc

    X = _counts(80, 40, seed=3)
    mdata = _mdata(sp.csr_matrix(X).asformat(fmt))
    scmm.pp.normalize(mdata, "m", method=method)
    ref = ad.AnnData(sp.csr_matrix(X))
    if method == "log_cp10k":
        sc.pp.normalize_total(ref, target_sum=1e4)
        sc.pp.log1p(ref)
    else:
        import muon as mu

        with np.errstate(divide="ignore"):
            mu.atac.pp.tfidf(ref, log_tf=True, log_idf=True, log_tfidf=False)
    got = mdata["m"].X
    assert sp.issparse(got) and got.dtype == np.float32
    np.testing.assert_allclose(_dense(got), _dense(ref.X), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(_dense(mdata["m"].layers["counts"]), X)


@pytest.mark.parametrize("rows", [0, -1, 2.5, True])
def test_block_rows_must_be_a_positive_whole_number(rows):
    with pytest.raises(ValueError, match="block_rows"):
        scmm.settings.block_rows = rows
    assert scmm.settings.block_rows == 8_192
