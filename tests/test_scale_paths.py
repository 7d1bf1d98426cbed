"""Large-input paths: the synthetic generator, CSR batch slicing, backed (on-disk) inputs."""

from __future__ import annotations

import importlib.util
import sys
import tracemalloc
from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scmm
from scmm.pp._svd import fit_svd, project

_SYN = Path(__file__).resolve().parents[1] / "benchmarks" / "synthetic.py"


@pytest.fixture(scope="module")
def synthetic():
    spec = importlib.util.spec_from_file_location("scmm_bench_synthetic", _SYN)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_synthetic_shapes_density_seed(synthetic):
    cite = synthetic.make("cite", 0.01, rng=3)
    n = synthetic.n_cells_of(70_988, 0.01)
    assert cite["rna"].shape == (n, 22_050) and cite["prot"].shape == (n, 140)
    X = cite["rna"].X
    assert sp.issparse(X) and X.dtype == np.float32 and X.indices.dtype == np.int32
    assert 0.07 < X.nnz / np.prod(X.shape) < 0.13
    again = synthetic.make("cite", 0.01, rng=3)
    assert (again["rna"].X != X).nnz == 0
    np.testing.assert_array_equal(again["prot"].X, cite["prot"].X)
    other = synthetic.make("cite", 0.01, rng=4)
    assert (other["rna"].X != X).nnz > 0
    # low-rank structure: the proteins are predictable from the RNA
    emb = project(np.log1p(X), fit_svd(np.log1p(X), 12, rng=0))
    Y = cite["prot"].X
    half = n // 2
    A = np.c_[emb[:half], np.ones(half)]
    coef = np.linalg.lstsq(A, Y[:half], rcond=None)[0]
    pred = np.c_[emb[half:], np.ones(n - half)] @ coef
    r2 = 1 - ((pred - Y[half:]) ** 2).sum() / ((Y[half:] - Y[half:].mean(0)) ** 2).sum()
    assert r2 > 0.3


def test_synthetic_multiome(synthetic):
    multi = synthetic.make("multiome", 0.003, rng=0)
    n = synthetic.n_cells_of(105_942, 0.003)
    assert multi["atac"].shape == (n, 228_942) and multi["rna"].shape == (n, 23_418)
    density = multi["atac"].X.nnz / np.prod(multi["atac"].shape)
    assert 0.02 < density < 0.04
    assert multi["atac"].var_names[0].startswith("chr") and ":" in multi["atac"].var_names[0]
    with pytest.raises(ValueError, match="fraction"):
        synthetic.make("cite", 1.5)


def test_csr_batches_slice_only_their_rows():
    from scmm.train._data import RowBatchDataset, make_loader

    rng = np.random.default_rng(0)
    X = sp.random(20_000, 5_000, density=0.02, format="csr", dtype=np.float32, random_state=0)
    Y = rng.normal(size=(20_000, 3)).astype(np.float32)
    rows = np.sort(rng.choice(20_000, 5_000, replace=False))
    ds = RowBatchDataset([X], Y, rows)
    matrix_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    tracemalloc.start()
    batches = iter(make_loader(ds, 256, shuffle=False))
    (xb,), yb = next(batches)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < matrix_bytes / 10  # a batch, never a copy of the matrix
    np.testing.assert_array_equal(xb.to_dense().numpy(), X[rows[:256]].toarray())
    np.testing.assert_array_equal(yb.numpy(), Y[rows[:256]])


@pytest.fixture
def backed_pair(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    n, p = 400, 300
    z = rng.normal(size=(n, 5))
    X = sp.random(n, p, density=0.1, format="csr", dtype=np.float32, random_state=1)
    X = X + sp.csr_matrix(np.maximum(z @ rng.normal(size=(5, p)), 0) * (rng.random((n, p)) < 0.1))
    X = sp.csr_matrix(X, dtype=np.float32)
    Y = (z @ rng.normal(size=(5, 6))).astype(np.float32)
    obs = pd.DataFrame({"train": np.arange(n) % 4 != 0}, index=[f"c{i}" for i in range(n)])
    rna = ad.AnnData(X, obs=obs)
    prot = ad.AnnData(Y, obs=obs[[]].copy(), var=pd.DataFrame(index=[f"p{i}" for i in range(6)]))
    path = tmp_path / "rna.h5ad"
    rna.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    monkeypatch.setattr("scmm.pp._svd.BLOCK_ROWS", 64)  # several blocks
    return rna, prot, backed


def _no_loading(monkeypatch, backed):
    def fail(*a, **k):
        pytest.fail("the backed matrix was loaded into memory")

    monkeypatch.setattr(type(backed.X), "to_memory", fail)


def test_fit_svd_and_project_backed_match_memory(backed_pair, monkeypatch):
    rna, _, backed = backed_pair
    _no_loading(monkeypatch, backed)
    rows = np.flatnonzero(rna.obs["train"].to_numpy())
    for sel in (None, rows):
        mem = fit_svd(rna.X, 8, rng=0, rows=sel)
        disk = fit_svd(backed.X, 8, rng=0, rows=sel)
        np.testing.assert_allclose(disk, mem, atol=1e-4)
    np.testing.assert_allclose(project(backed.X, mem), project(rna.X, mem), rtol=1e-5, atol=1e-5)
    # the subset fit equals a fit on the subset's own matrix
    np.testing.assert_allclose(
        fit_svd(rna.X[rows], 8, rng=0), fit_svd(rna.X, 8, rng=0, rows=rows), atol=1e-5
    )


def test_pp_svd_and_fit_baseline_on_backed_source(backed_pair, monkeypatch):
    rna, prot, backed = backed_pair
    mem = md.MuData({"rna": rna.copy(), "prot": prot.copy()})
    disk = md.MuData({"rna": backed, "prot": prot.copy()})
    _no_loading(monkeypatch, backed)
    scmm.pp.svd(mem, "rna", n_components=8, rng=0)
    scmm.pp.svd(disk, "rna", n_components=8, rng=0)
    np.testing.assert_allclose(
        disk["rna"].obsm["X_svd_rna"], mem["rna"].obsm["X_svd_rna"], rtol=1e-4, atol=1e-4
    )
    mask = rna.obs["train"].to_numpy()
    m1 = scmm.tl.fit_baseline(mem, "rna", "prot", method="ridge", n_components=8, train=mask, rng=0)
    m2 = scmm.tl.fit_baseline(
        disk, "rna", "prot", method="ridge", n_components=8, rng=0, train=mask
    )
    np.testing.assert_allclose(
        disk["prot"].layers["scmm_ridge"], mem["prot"].layers["scmm_ridge"], rtol=1e-3, atol=1e-3
    )
    np.testing.assert_allclose(m2.encoder.components, m1.encoder.components, atol=1e-4)
    assert mem.uns["scmm_ridge"]["scores"]["rmse"] == pytest.approx(
        disk.uns["scmm_ridge"]["scores"]["rmse"], rel=1e-3
    )
