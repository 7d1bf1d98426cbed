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
from scmm._utils import fit_svd, project

from .conftest import make_paired

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
    monkeypatch.setattr(scmm.settings, "block_rows", 64)  # several blocks
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
        disk["rna"].obsm["X_svd_rna"], mem["rna"].obsm["X_svd_rna"], rtol=1e-3, atol=1e-3
    )  # 64-row blocks on disk sum in another order than the whole matrix in memory
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


def test_row_subset_svd_is_the_copys_svd_exactly():
    from scmm._utils import RowSubset

    X = sp.random(3_000, 400, density=0.05, format="csr", dtype=np.float32, random_state=2)
    rows = np.flatnonzero(np.arange(3_000) % 5 != 0)
    copy = fit_svd(X[rows], 12, rng=0)
    # the same sums in the same order: bit-identical, not merely close
    np.testing.assert_array_equal(fit_svd(RowSubset(X, rows), 12, rng=0), copy)
    np.testing.assert_array_equal(fit_svd(X, 12, rng=0, rows=rows), copy)
    np.testing.assert_array_equal(project(RowSubset(X, rows), copy), project(X[rows], copy))
    with pytest.raises(ValueError, match="sorted and unique"):
        RowSubset(X, rows[::-1])


def test_input_encoder_reads_a_row_subset_like_the_copy(monkeypatch):
    from scmm._utils import RowSubset
    from scmm.models._preprocess import InputEncoder

    monkeypatch.setattr(scmm.settings, "block_rows", 100)  # several blocks
    X = sp.random(1_000, 500, density=0.05, format="csr", dtype=np.float32, random_state=3)
    X.data = np.log1p(10 * X.data)
    rows = np.flatnonzero(np.arange(1_000) % 3 != 0)
    a = InputEncoder("svd+raw", 8, max_raw_features=50).fit(X[rows], rng=0)
    b = InputEncoder("svd+raw", 8, max_raw_features=50).fit(RowSubset(X, rows), rng=0)
    np.testing.assert_array_equal(a.raw_columns, b.raw_columns)
    np.testing.assert_array_equal(a.components, b.components)
    (sa, ra), (sb, rb) = a.transform(X[rows]), b.transform(RowSubset(X, rows))
    np.testing.assert_array_equal(sa, sb)
    assert sp.isspmatrix_csr(rb) and rb.shape == (len(rows), 50)
    assert (ra != rb).nnz == 0


def test_fit_trains_on_row_views_not_copies(monkeypatch):
    """The contract hands a sparse source's training rows over as a view, with equal results."""
    from scmm._utils import RowSubset
    from scmm.models import MLPModel

    mdata = make_paired(n_cells=300, n_genes=60)
    seen = []
    fit = MLPModel.fit

    def spy(self, X, *args, **kwargs):
        seen.append(type(X))
        return fit(self, X, *args, **kwargs)

    monkeypatch.setattr(MLPModel, "fit", spy)
    kw = {"n_components": 8, "max_raw_features": 20, "max_epochs": 2, "rng": 0}
    scmm.tl.fit_mlp(
        mdata, "rna", "prot", train="train", training={"verbose": False, "logger": None}, **kw
    )
    assert seen == [RowSubset]
    monkeypatch.undo()
    # the same fit on a copy of the training rows (what the contract did before): a MuData
    # of the training cells alone, all of them training cells, is identical
    train = mdata.obs["train"].to_numpy()
    copied = md.MuData({m: mdata[m][train].copy() for m in ("rna", "prot")})
    copy = scmm.tl.fit_mlp(copied, "rna", "prot", training={"verbose": False, "logger": None}, **kw)
    assert copy.encoder.raw_columns is not None
    np.testing.assert_array_equal(mdata["prot"].layers["scmm_mlp"], copy.predict(mdata))


def test_write_predictions_false_scores_without_the_layer():
    mdata = make_paired(n_cells=300, n_genes=60)
    kw = {"method": "ridge", "n_components": 8, "train": "train", "rng": 0}
    scmm.tl.fit_baseline(mdata, "rna", "prot", key_added="full", **kw)
    scmm.tl.fit_baseline(mdata, "rna", "prot", key_added="lean", write_predictions=False, **kw)
    assert "full" in mdata["prot"].layers and "lean" not in mdata["prot"].layers
    assert mdata.uns["lean"]["params"]["write_predictions"] is False
    for k in ("pearson_per_cell", "pearson_per_feature", "rmse", "n_cells"):
        assert mdata.uns["lean"]["scores"][k] == pytest.approx(mdata.uns["full"]["scores"][k])


def test_fit_mlp_raw_inputs_on_backed_train_subset(backed_pair, monkeypatch):
    """svd+raw inputs from a backed source with a `train` subset: never loaded, same fit."""
    rna, prot, backed = backed_pair
    mem = md.MuData({"rna": rna.copy(), "prot": prot.copy()})
    disk = md.MuData({"rna": backed, "prot": prot.copy()})
    _no_loading(monkeypatch, backed)
    kw = {"n_components": 8, "max_raw_features": 40, "max_epochs": 2, "train": "train"}
    for m in (mem, disk):
        scmm.tl.fit_mlp(m, "rna", "prot", training={"verbose": False, "logger": None}, rng=0, **kw)
    np.testing.assert_allclose(
        disk["prot"].layers["scmm_mlp"], mem["prot"].layers["scmm_mlp"], rtol=1e-3, atol=1e-3
    )


def test_synthetic_gene_annotation_pairs_genes_with_peaks(synthetic):
    multi = synthetic.make("multiome", 0.003, rng=0)
    ann = synthetic.gene_annotation(rng=0)
    assert list(ann["gene_name"][:2]) == ["g00000", "g00001"] and len(ann) == 23_418
    assert (ann["end"] > ann["start"]).all()
    w = synthetic.WINDOW
    scmm.pp.gene_peak_windows(multi, annotation=ann, upstream=w, downstream=w, check_assembly=False)
    n_pairs = multi.uns["windows"]["pairs"].nnz
    assert 15 < n_pairs / 23_418 < 25  # about 20 peaks per gene, as in the competition data


def test_row_subset_batches_read_their_rows(backed_pair):
    """Training batches read rows of a view of an in-memory matrix; a backed one is not."""
    from scmm._utils import RowSubset
    from scmm.train._data import RowBatchDataset

    rna, _, backed = backed_pair
    rows = np.flatnonzero(rna.obs["train"].to_numpy())
    view = RowSubset(rna.X, rows)
    xs, _ = RowBatchDataset([view], np.zeros((len(rows), 1))).__getitems__([5, 0, 17])
    np.testing.assert_array_equal(xs[0].to_dense().numpy(), rna.X[rows[[5, 0, 17]]].toarray())
    with pytest.raises(TypeError, match="slices"):
        RowSubset(backed.X, rows)[np.array([0, 1])]


def _permuted_target(mdata, seed=0):
    """The target modality's cells in another order than the source's."""
    perm = np.random.default_rng(seed).permutation(mdata["prot"].n_obs)
    mdata.mod["prot"] = mdata["prot"][perm].copy()
    mdata.update()
    return mdata


@pytest.mark.parametrize("fit", ["ridge", "mlp"])
def test_predictions_on_disk_equal_in_memory(fit, tmp_path, monkeypatch, caplog):
    """``write_predictions='disk'``: the same values, a read-only layer mapped from the file."""
    monkeypatch.setenv("SCMM_DISK_DIR", str(tmp_path))
    # blocks of 7 cells: a block's predictions take at most 1/8 of the memory budget
    monkeypatch.setattr(scmm.settings, "memory_budget", 8 * 4 * 6 * 7)
    mdata = _permuted_target(make_paired(n_cells=150, n_genes=40))
    kw = {"n_components": 8, "train": "train", "rng": 0}
    if fit == "ridge":
        run = lambda **k: scmm.tl.fit_baseline(mdata, "rna", "prot", method="ridge", **kw, **k)  # noqa: E731
    else:
        kw.update(max_epochs=2, training={"verbose": False, "logger": None})
        run = lambda **k: scmm.tl.fit_mlp(mdata, "rna", "prot", **kw, **k)  # noqa: E731
    run(key_added="mem", write_predictions="memory")
    with caplog.at_level("WARNING", logger="scmm"):
        run(key_added="disk", write_predictions="disk")
    mem, disk = mdata["prot"].layers["mem"], mdata["prot"].layers["disk"]
    np.testing.assert_allclose(disk, mem, rtol=1e-6, atol=1e-6)
    assert isinstance(mem, np.ndarray) and mem.flags.writeable
    assert type(disk) is np.ndarray and not disk.flags.writeable  # h5mu-writable, read-only
    path = Path(mdata.uns["disk"]["predictions_path"])
    assert path.parent == tmp_path and path.suffix == ".npy"
    np.testing.assert_array_equal(np.load(path), disk)
    assert np.shares_memory(disk, np.asarray(disk))
    assert "predictions_path" not in mdata.uns["mem"]
    for k in ("pearson_per_cell", "pearson_per_feature", "rmse"):
        np.testing.assert_allclose(mdata.uns["disk"]["scores"][k], mdata.uns["mem"]["scores"][k])
    # one line tells the user where the predictions went
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert str(path) in lines[0] and "150 × 6" in lines[0] and "layers['disk']" in lines[0]
    # the MuData with the mapped layer writes and reads back
    mdata.write(tmp_path / "out.h5mu")
    back = md.read_h5mu(tmp_path / "out.h5mu")
    np.testing.assert_array_equal(back["prot"].layers["disk"], disk)


def test_write_predictions_auto_uses_the_memory_budget(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SCMM_DISK_DIR", str(tmp_path))
    mdata = make_paired(n_cells=120, n_genes=40)
    kw = {"method": "ridge", "n_components": 8, "train": "train", "rng": 0}
    with caplog.at_level("WARNING", logger="scmm"):
        scmm.tl.fit_baseline(mdata, "rna", "prot", key_added="small", **kw)  # default True
    assert not caplog.records and "predictions_path" not in mdata.uns["small"]
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(scmm.settings, "memory_budget", 120 * 6 * 4 - 1)
    with caplog.at_level("WARNING", logger="scmm"):
        scmm.tl.fit_baseline(mdata, "rna", "prot", key_added="big", write_predictions="auto", **kw)
    assert len(caplog.records) == 1 and "in-memory budget" in caplog.records[0].getMessage()
    assert Path(mdata.uns["big"]["predictions_path"]).is_file()
    np.testing.assert_allclose(
        mdata["prot"].layers["big"], mdata["prot"].layers["small"], rtol=1e-6, atol=1e-6
    )
    with pytest.raises(ValueError, match="write_predictions='yes'"):
        scmm.tl.fit_baseline(mdata, "rna", "prot", key_added="x", write_predictions="yes", **kw)
    assert "x" not in mdata.uns


def test_failed_fit_leaves_no_prediction_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SCMM_DISK_DIR", str(tmp_path))
    mdata = make_paired(n_cells=120, n_genes=40)

    def broken(*args, **kwargs):
        raise RuntimeError("scoring failed")

    monkeypatch.setattr(scmm.metrics, "held_out_scores", broken)
    with pytest.raises(RuntimeError, match="scoring failed"):
        scmm.tl.fit_baseline(
            mdata, "rna", "prot", method="ridge", n_components=8, train="train",
            write_predictions="disk", key_added="d", rng=0,
        )  # fmt: skip
    assert list(tmp_path.iterdir()) == []
    assert "d" not in mdata["prot"].layers and "d" not in mdata.uns


@pytest.mark.parametrize("into", ["layer", "obsm"])
def test_predict_over_the_budget_writes_to_disk(into, tmp_path, monkeypatch, caplog):
    """``scmm.tl.predict`` keeps predictions over the memory budget on disk: same values."""
    monkeypatch.setenv("SCMM_DISK_DIR", str(tmp_path))
    mdata = _permuted_target(make_paired(n_cells=150, n_genes=40))
    model = scmm.tl.fit_baseline(
        mdata, "rna", "prot", method="ridge", n_components=8, write_predictions=False, rng=0
    )
    query = mdata if into == "layer" else md.MuData({"rna": mdata["rna"].copy()})
    scmm.tl.predict(model, query, key_added="mem")
    assert list(tmp_path.iterdir()) == [] and "predictions_path" not in query.uns["mem"]
    # just under the predictions' size: to disk, in blocks of 18 cells (1/8 of the budget)
    monkeypatch.setattr(scmm.settings, "memory_budget", 150 * 6 * 4 - 1)
    with caplog.at_level("WARNING", logger="scmm"):
        scmm.tl.predict(model, query, key_added="disk")
    if into == "layer":  # target cells in another order than the source's
        mem, disk = query["prot"].layers["mem"], query["prot"].layers["disk"]
        assert type(disk) is np.ndarray and not disk.flags.writeable
    else:
        mem, disk = query["rna"].obsm["mem"], query["rna"].obsm["disk"]
        assert list(disk.columns) == list(mem.columns) and disk.index.equals(mem.index)
        mem, disk = mem.to_numpy(), disk.to_numpy()
        assert not disk.flags.writeable  # the mapped file's values, not a copy in memory
    np.testing.assert_allclose(disk, mem, rtol=1e-6, atol=1e-6)
    path = Path(query.uns["disk"]["predictions_path"])
    assert path.parent == tmp_path
    np.testing.assert_array_equal(np.load(path), disk)
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(lines) == 1 and str(path) in lines[0] and "150 × 6" in lines[0]
    assert ("layers['disk']" if into == "layer" else "mdata['rna'].obsm['disk']") in lines[0]
    query.write(tmp_path / "out.h5mu")  # the mapped predictions write like any array
