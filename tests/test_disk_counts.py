"""``scmm.pp.normalize``: raw counts over the memory budget are kept on disk, not dropped."""

from __future__ import annotations

import logging

import anndata as ad
import mudata as md
import numpy as np
import pytest
import scipy.sparse as sp

import scmm


def _counts(n_obs=60, n_vars=25, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.poisson(0.5, (n_obs, n_vars)).astype(np.float32)
    X[:, 0] += 1  # every cell has counts
    return X


def _dense(X) -> np.ndarray:
    return X.toarray() if sp.issparse(X) else np.asarray(X)


@pytest.fixture
def disk_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SCMM_DISK_DIR", str(tmp_path / "disk"))
    return tmp_path / "disk"


@pytest.mark.parametrize("fmt", ["csr", "csc", "dense"])
@pytest.mark.parametrize("how", ["budget", "disk"])
def test_counts_over_budget_on_disk(fmt, how, disk_dir, monkeypatch, caplog):
    X = _counts()
    wrap = (lambda a: a) if fmt == "dense" else (lambda a: sp.csr_matrix(a).asformat(fmt))
    method = "log_cp10k"
    in_memory = md.MuData({"rna": ad.AnnData(wrap(X.copy()))})
    scmm.pp.normalize(in_memory, "rna", method=method, keep_counts="memory")
    mdata = md.MuData({"rna": ad.AnnData(wrap(X.copy()))})
    if how == "budget":
        monkeypatch.setattr(scmm.settings, "memory_budget", X.size // 4)  # under the counts' size
        keep = True
    else:
        keep = "disk"
    with caplog.at_level(logging.WARNING, logger="scmm"):
        scmm.pp.normalize(mdata, "rna", method=method, keep_counts=keep)
    layer = mdata["rna"].layers["counts"]
    np.testing.assert_array_equal(_dense(layer), X)
    buf = layer.data if sp.issparse(layer) else layer
    assert isinstance(buf, np.memmap) or isinstance(buf.base, np.memmap)
    assert str(disk_dir) in str(buf.filename)
    np.testing.assert_array_equal(_dense(mdata["rna"].X), _dense(in_memory["rna"].X))
    lines = [r.getMessage() for r in caplog.records if "written to disk" in r.getMessage()]
    assert len(lines) == 1
    assert "rna: raw counts for 60 × 25" in lines[0]
    assert "mdata['rna'].layers['counts']" in lines[0]
    # copy-on-write: changing the layer in the session never changes the file
    buf[...] = 0
    again = np.load(buf.filename, mmap_mode="r")
    assert np.asarray(again).any()


def test_counts_on_disk_write_and_read_back(disk_dir, tmp_path):
    X = _counts(seed=1)
    mdata = md.MuData({"atac": ad.AnnData(sp.csr_matrix(X))})
    scmm.pp.normalize(mdata, "atac", method="tfidf", keep_counts="disk")
    mdata.write(tmp_path / "out.h5mu")
    back = md.read_h5mu(tmp_path / "out.h5mu")
    np.testing.assert_array_equal(_dense(back["atac"].layers["counts"]), X)
    np.testing.assert_allclose(_dense(back["atac"].X), _dense(mdata["atac"].X))
    # a subset is an ordinary in-memory copy
    sub = mdata["atac"][:10].copy()
    np.testing.assert_array_equal(_dense(sub.layers["counts"]), X[:10])


def test_existing_counts_layer_stays_as_it_is(disk_dir):
    X = _counts()
    a = ad.AnnData(sp.csr_matrix(X))
    a.layers["counts"] = sp.csr_matrix(X)
    layer = a.layers["counts"]
    mdata = md.MuData({"rna": a})
    scmm.pp.normalize(mdata, "rna", keep_counts="disk")
    assert mdata["rna"].layers["counts"] is layer
    assert not disk_dir.exists()


def test_bad_keep_counts_changes_nothing(disk_dir):
    X = _counts()
    mdata = md.MuData({"rna": ad.AnnData(sp.csr_matrix(X))})
    with pytest.raises(ValueError, match="keep_counts='on disk'"):
        scmm.pp.normalize(mdata, "rna", keep_counts="on disk")
    np.testing.assert_array_equal(_dense(mdata["rna"].X), X)
    assert "counts" not in mdata["rna"].layers
    assert "scmm_normalize" not in mdata["rna"].uns


def test_failed_disk_write_changes_nothing(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SCMM_DISK_DIR", str(blocker))
    X = _counts()
    mdata = md.MuData({"rna": ad.AnnData(sp.csr_matrix(X))})
    with pytest.raises(OSError):
        scmm.pp.normalize(mdata, "rna", keep_counts="disk")
    np.testing.assert_array_equal(_dense(mdata["rna"].X), X)
    assert "counts" not in mdata["rna"].layers
    assert "scmm_normalize" not in mdata["rna"].uns
