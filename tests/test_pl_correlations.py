"""scmm.pl.feature_correlations (Agg backend, set in conftest)."""

from __future__ import annotations

import anndata as ad
import matplotlib.pyplot as plt
import mudata as md
import numpy as np
import pytest
from matplotlib.axes import Axes

import scmm


def _data(n_vars=5, n_obs=80):
    rng = np.random.default_rng(0)
    y = rng.normal(size=(n_obs, n_vars)).astype(np.float32)
    prot = ad.AnnData(y)
    prot.var_names = [f"p{i}" for i in range(n_vars)]
    prot.layers["good"] = y + 0.3 * rng.normal(size=y.shape).astype(np.float32)
    prot.layers["bad"] = y + 3.0 * rng.normal(size=y.shape).astype(np.float32)
    prot.layers["const"] = np.zeros_like(y)
    return md.MuData({"prot": prot})


def test_one_series_per_key_sorted_and_labelled():
    m = _data()
    ax = scmm.pl.feature_correlations(m, "prot", ["good", "bad"])
    assert isinstance(ax, Axes)
    assert len(ax.collections) == 2
    good, bad = (c.get_offsets() for c in ax.collections)
    assert good.shape == bad.shape == (5, 2)
    # per-feature r of "good" is higher everywhere; features sorted by mean r (descending)
    assert (good[:, 1] > bad[:, 1]).all()
    mean_r = (good[:, 1] + bad[:, 1]) / 2
    assert (np.diff(mean_r) <= 1e-12).all()
    r_good = scmm.metrics.pearson_per_feature(m["prot"].X, m["prot"].layers["good"], average=False)
    np.testing.assert_allclose(np.sort(good[:, 1]), np.sort(r_good), rtol=1e-6)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("good (mean 0.9") and labels[1].startswith("bad")
    assert ax.get_xticklabels()[0].get_text() in m["prot"].var_names
    plt.close("all")


def test_cells_subset_single_key_and_given_ax():
    m = _data(n_vars=70)
    fig, ax = plt.subplots()
    cells = np.arange(m["prot"].n_obs) < 40
    out = scmm.pl.feature_correlations(m, "prot", "const", cells=cells, ax=ax)
    assert out is ax
    assert len(ax.collections) == 1
    np.testing.assert_array_equal(ax.collections[0].get_offsets()[:, 1], 0.0)  # constant: r = 0
    assert "70 features" in ax.get_xlabel()  # too many to write their names
    plt.close(fig)


def _overlaps_points(ax) -> int:
    """Number of drawn points inside the legend's box, in display coordinates."""
    ax.figure.canvas.draw()
    box = ax.get_legend().get_window_extent()
    n = 0
    for coll in ax.collections:
        xy = ax.transData.transform(coll.get_offsets())
        inside = (xy[:, 0] >= box.x0) & (xy[:, 0] <= box.x1)
        n += int((inside & (xy[:, 1] >= box.y0) & (xy[:, 1] <= box.y1)).sum())
    return n


@pytest.mark.parametrize("n_vars", [5, 134])
def test_legend_off_the_points(n_vars):
    # 'const' scores r = 0 for every feature: its points run along the bottom of the axes,
    # 'good' along the top, 'bad' in between; a legend inside the axes sits on some of them
    m = _data(n_vars=n_vars)
    ax = scmm.pl.feature_correlations(m, "prot", ["good", "bad", "const"])
    assert _overlaps_points(ax) == 0
    assert ax.figure.get_figwidth() <= 7.0  # legible at a page's width
    plt.close("all")


def test_errors():
    m = _data()
    with pytest.raises(KeyError, match=r"No predictions 'nope': looked in mdata\['prot'\]\.layers"):
        scmm.pl.feature_correlations(m, "prot", ["good", "nope"])
    with pytest.raises(ValueError, match="empty"):
        scmm.pl.feature_correlations(m, "prot", [])
    with pytest.raises(ValueError, match="boolean mask"):
        scmm.pl.feature_correlations(m, "prot", "good", cells=np.ones(3, bool))
    plt.close("all")
