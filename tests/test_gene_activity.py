"""The gene-activity baseline: window sums weighted by distance, per-gene linear fit."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import mudata as md
import numpy as np
import pytest
import scipy.sparse as sp

import scmm
from scmm.models import GeneActivityModel

# the synthetic multiome of test_deepsets.py (tests are not a package: load it by path)
_spec = importlib.util.spec_from_file_location(
    "_deepsets_fixtures", Path(__file__).with_name("test_deepsets.py")
)
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
make_multiome = _fixtures.make_multiome


def manual_fit(mdata):
    """Per-gene least squares of RNA on exp(-|d|/5000)-weighted window sums (numpy only)."""
    w = mdata.uns["windows"]["distance"]
    weights = sp.csr_matrix(
        (np.exp(-np.abs(w.data) / 5000), w.indices, w.indptr), shape=w.shape
    ).toarray()
    train = mdata.obs["train"].to_numpy()
    act = mdata["atac"].X.toarray() @ weights.T
    y = mdata["rna"].X
    pred = np.empty_like(y)
    for g in range(y.shape[1]):
        a = act[train, g]
        if a.var() > 0:
            slope, intercept = np.polyfit(a, y[train, g], 1)
        else:
            slope, intercept = 0.0, y[train, g].mean()
        pred[:, g] = slope * act[:, g] + intercept
    return pred


def test_matches_per_gene_least_squares():
    mdata = make_multiome(n_cells=120, seed=5)
    model = scmm.tl.fit_baseline(mdata, "atac", "rna", method="gene_activity", train="train")
    assert isinstance(model, GeneActivityModel)
    pred = mdata["rna"].layers["scmm_gene_activity"]
    np.testing.assert_allclose(pred, manual_fit(mdata), rtol=1e-4, atol=1e-4)
    # gene0 has no peaks: its training mean
    train = mdata.obs["train"].to_numpy()
    np.testing.assert_allclose(pred[:, 0], mdata["rna"].X[train, 0].mean(), rtol=1e-5)
    # the window peaks drive RNA in this data: positive held-out per-gene correlation
    assert mdata.uns["scmm_gene_activity"]["scores"]["pearson_per_feature"] > 0.2


def test_save_load_and_new_cells(tmp_path):
    mdata = make_multiome(seed=6)
    model = scmm.tl.fit_baseline(mdata, "atac", "rna", method="gene_activity", train="train")
    model.save(tmp_path / "ga")
    loaded = scmm.models.load(tmp_path / "ga")
    np.testing.assert_array_equal(loaded.predict(mdata), model.predict(mdata))
    # explicit zero distances survive saving (a peak on the TSS keeps weight 1)
    assert loaded.windows["distance"].size == mdata.uns["windows"]["distance"].nnz
    perm = np.random.default_rng(1).permutation(mdata["atac"].n_vars)
    query = md.MuData({"atac": mdata["atac"][:, perm].copy()})
    np.testing.assert_allclose(loaded.predict(query), model.predict(mdata), rtol=1e-6)


def test_needs_windows():
    mdata = make_multiome()
    del mdata.uns["windows"]
    with pytest.raises(ValueError, match="gene_peak_windows"):
        scmm.tl.fit_baseline(mdata, "atac", "rna", method="gene_activity")
    with pytest.raises(ValueError, match="decay"):
        GeneActivityModel(decay=0)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # TF-IDF of empty peaks
def test_real_mop_snare2(data_dir):
    """On real nuclei gene activity alone is weak but well defined (no NaN, finite)."""
    mdata, _ = scmm.datasets.load_task("mop_snare2", windows=True, data_dir=data_dir)
    assert mdata.uns["windows"]["params"]["rna"] == "rna"  # the task's windows, mm10 genes
    assert mdata.uns["windows"]["pairs"].shape == (mdata["rna"].n_vars, mdata["atac"].n_vars)
    scmm.tl.fit_baseline(mdata, "atac", "rna", method="gene_activity", train="train")
    pred = mdata["rna"].layers["scmm_gene_activity"]
    assert np.isfinite(pred).all()
    scores = mdata.uns["scmm_gene_activity"]["scores"]
    assert -0.05 < scores["pearson_per_feature"] < 0.1
