"""scmm.pl: training curves, LR range test and per-cell-type accuracy plots (Agg backend)."""

from __future__ import annotations

import anndata as ad
import matplotlib
import matplotlib.pyplot as plt
import mudata as md
import numpy as np
import pandas as pd
import pytest

import scmm
from scmm.train import LRRangeResult
from scmm.train._lr_range import smooth, steepest_descent

from .conftest import make_paired

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _history(*, val=True, best=1, n_epochs=4, steps=3):
    rng = np.random.default_rng(0)
    return {
        "epoch": list(range(n_epochs)),
        "train_loss": list(np.linspace(1.0, 0.3, n_epochs)),
        "val_loss": list(np.linspace(1.1, 0.5, n_epochs) + 0.05 * rng.random(n_epochs))
        if val
        else [],
        "lr": list(np.linspace(1e-3, 1e-2, n_epochs * steps)),
        "best_epoch": best,
        "stopped_epoch": n_epochs - 1,
        "steps_per_epoch": steps,
    }


# --- training_curves -----------------------------------------------------------------------------
def test_training_curves_lines_and_best_epoch():
    h = _history()
    ax = scmm.pl.training_curves(h)
    assert isinstance(ax, plt.Axes)
    assert len(ax.lines) == 3  # train, validation, best epoch
    train, val, best = ax.lines
    np.testing.assert_allclose(train.get_xdata(), np.arange(1, 5))  # epochs from 1
    np.testing.assert_allclose(train.get_ydata(), h["train_loss"])
    np.testing.assert_allclose(val.get_ydata(), h["val_loss"])
    np.testing.assert_allclose(best.get_xdata(), [2, 2])  # best_epoch 1 -> epoch 2
    assert len(ax.figure.axes) == 1
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["train", "validation"]


def test_training_curves_without_validation_or_best():
    ax = scmm.pl.training_curves(_history(val=False, best=None))
    assert len(ax.lines) == 1


def test_training_curves_show_lr_twin_axis():
    h = _history(steps=3)
    ax = scmm.pl.training_curves(h, show_lr=True)
    assert len(ax.lines) == 3
    (twin,) = [a for a in ax.figure.axes if a is not ax]
    assert len(twin.lines) == 1
    assert twin.get_yscale() == "log"
    x = twin.lines[0].get_xdata()
    assert len(x) == len(h["lr"])
    np.testing.assert_allclose(x[[0, -1]], [1 / 3, 4.0])  # steps at fractional epochs
    assert "learning rate" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_training_curves_draws_into_given_axes():
    _, ax = plt.subplots()
    assert scmm.pl.training_curves(_history(), ax=ax) is ax


def test_training_curves_accepts_object_with_history():
    class Fitted:
        history = _history()

    assert len(scmm.pl.training_curves(Fitted()).lines) == 3


def test_training_curves_bad_inputs():
    with pytest.raises(ValueError, match="no training history"):
        scmm.pl.training_curves({})
    with pytest.raises(TypeError, match="model_or_history"):
        scmm.pl.training_curves([1.0, 0.5])
    h = _history()
    h["val_loss"] = h["val_loss"][:2]
    with pytest.raises(ValueError, match="'val_loss' has 2 values for 4 epochs"):
        scmm.pl.training_curves(h)
    h = _history()
    h["lr"] = []
    with pytest.raises(ValueError, match="show_lr"):
        scmm.pl.training_curves(h, show_lr=True)


def test_training_curves_of_real_fit_and_baseline_error():
    mdata = make_paired()
    model = scmm.tl.fit_mlp(
        mdata,
        "rna",
        "prot",
        n_components=8,
        hidden=[16],
        max_epochs=2,
        training={"validation_fraction": 0.25, "batch_size": 32, "device": "cpu", "verbose": False},
        train="train",
        rng=0,
    )
    ax = scmm.pl.training_curves(model, show_lr=True)
    assert len(ax.lines) == 2  # train and validation; no early stopping, so no best epoch
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [1, 2])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), model.history["val_loss"])
    (twin,) = [a for a in ax.figure.axes if a is not ax]
    assert len(twin.lines[0].get_xdata()) == len(model.history["lr"]) > 0

    baseline = scmm.tl.fit_baseline(mdata, "rna", "prot", key_added="base", train="train")
    with pytest.raises(ValueError, match="no training history"):
        scmm.pl.training_curves(baseline)


# --- lr_range ------------------------------------------------------------------------------------
def _lr_result(suggestion=1e-3):
    lrs = np.logspace(-6, 0, 40)
    losses = 1.0 / (1.0 + 1e3 * lrs) + 5 * lrs**2
    losses[-1] = np.inf  # diverged on the last step
    return LRRangeResult(lrs, losses, losses.copy(), suggestion, {"n_steps": 40})


def test_lr_range_lines_log_axis_and_suggestion():
    res = _lr_result()
    ax = scmm.pl.lr_range(res)
    assert isinstance(ax, plt.Axes)
    assert ax.get_xscale() == "log"
    assert len(ax.lines) == 3  # raw, smoothed, suggestion
    raw, _, sugg = ax.lines
    np.testing.assert_allclose(raw.get_xdata(), res.lrs)
    assert np.isnan(raw.get_ydata()[-1])  # the infinite loss is not drawn
    np.testing.assert_allclose(sugg.get_xdata(), [1e-3, 1e-3])
    assert any("suggested lr = 0.001" in t.get_text() for t in ax.get_legend().get_texts())
    # the blow-up (5 at lr=1) is cut off so the descent stays readable
    assert ax.get_ylim()[1] < 2.0


def test_lr_range_without_suggestion():
    ax = scmm.pl.lr_range(_lr_result(suggestion=None))
    assert len(ax.lines) == 2


def test_lr_range_of_real_test():
    mdata = make_paired()
    res = scmm.tl.lr_range_test(
        mdata,
        "rna",
        "prot",
        n_steps=12,
        n_components=8,
        hidden=[16],
        batch_size=32,
        device="cpu",
        train="train",
        rng=0,
    )
    ax = scmm.pl.lr_range(res)
    assert len(ax.lines) == (3 if res.suggestion is not None else 2)
    assert len(ax.lines[0].get_xdata()) == len(res.lrs)


def test_lr_range_smoothed_curve_tracks_the_loss():
    # a noisy loss that falls steeply at lr = 1e-3, over 60 exponentially spaced steps
    rng = np.random.default_rng(0)
    lrs = np.logspace(-6, 0, 60)
    clean = 1.0 / (1.0 + (lrs / 1e-3) ** 2) + 0.1
    losses = clean * (1 + 0.05 * rng.normal(size=60))
    smoothed = smooth(losses)
    res = LRRangeResult(lrs, losses, smoothed, steepest_descent(lrs, smoothed))
    ax = scmm.pl.lr_range(res)
    drawn = ax.lines[1].get_ydata()
    # within 0.1 of the noise-free loss at every step (a causal beta-0.98 average trails the
    # drop and is off by 0.7), and the suggestion at the drop (that average: 0.46 decades late)
    assert np.max(np.abs(drawn - clean)) < 0.1
    assert abs(np.log10(res.suggestion / 1e-3)) < 0.25


def test_smooth_keeps_non_finite_losses_out():
    losses = np.array([1.0, 1.0, 1.0, 1.0, np.nan, 1.0, np.inf])
    out = smooth(losses, sigma=2.0)
    np.testing.assert_allclose(out[[0, 1, 2, 3, 5]], 1.0)  # renormalised around the gaps
    assert np.isnan(out[4]) and np.isnan(out[6])
    np.testing.assert_allclose(smooth(np.arange(5.0), sigma=1.0)[2], 2.0)  # centred: no lag


def test_lr_range_bad_inputs():
    with pytest.raises(TypeError, match="LRRangeResult"):
        scmm.pl.lr_range({"lrs": [1e-3], "losses": [1.0]})
    with pytest.raises(ValueError, match="same non-zero number"):
        scmm.pl.lr_range(
            LRRangeResult(np.array([1e-3, 1e-2]), np.array([1.0]), np.array([1.0]), None)
        )
    with pytest.raises(ValueError, match="positive"):
        scmm.pl.lr_range(LRRangeResult(np.array([0.0, 1e-2]), np.ones(2), np.ones(2), None))


# --- accuracy_by_cell_type -----------------------------------------------------------------------
def _typed(n_per=(30, 20, 10), n_feat=8, seed=0):
    """Cell types 'A', 'B', 'C' of the given sizes; 'good' is accurate on A, noisy on C."""
    rng = np.random.default_rng(seed)
    types = np.repeat(["A", "B", "C"], n_per)
    n = len(types)
    x = rng.normal(size=(n, n_feat)).astype(np.float32)
    noise = np.select([types == "A", types == "B"], [0.2, 1.0], 3.0)[:, None]
    prot = ad.AnnData(x, obs=pd.DataFrame(index=[f"c{i}" for i in range(n)]))
    prot.layers["good"] = x + noise * rng.normal(size=x.shape).astype(np.float32)
    prot.layers["bad"] = x + 3.0 * rng.normal(size=x.shape).astype(np.float32)
    mdata = md.MuData({"prot": prot})
    return mdata, pd.Categorical(types)


def test_accuracy_by_cell_type_boxes_and_medians():
    mdata, types = _typed()
    mdata["prot"].obs["cell_type"] = types
    ax = scmm.pl.accuracy_by_cell_type(mdata, "prot", ["good", "bad"])
    assert isinstance(ax, plt.Axes)
    assert len(ax.patches) == 2 * 3  # one box per key and group
    assert len(ax.lines) == 6 * 2 * 3  # 2 whiskers, 2 caps, median, fliers per box
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["A (30)", "B (20)", "C (10)"]  # by size
    # the median line of the first box (key 'good', group A) is the median per-cell r
    prot = mdata["prot"]
    r = scmm.metrics.pearson_per_cell(prot.X, prot.layers["good"], average=False)
    # the median spans the whole box (caps are narrower): 'good' of group A is at x = -0.2
    # (2 keys: offsets -0.2, +0.2), box width 0.85 * 0.4
    (median,) = [
        line
        for line in ax.lines
        if len(line.get_xdata()) == 2
        and np.allclose(line.get_xdata(), [-0.2 - 0.17, -0.2 + 0.17])
        and line.get_ydata()[0] == line.get_ydata()[1]
    ]
    np.testing.assert_allclose(median.get_ydata()[0], np.median(r[:30]), rtol=1e-6)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0].startswith("good (median") and len(legend) == 2


def test_accuracy_by_cell_type_sort_by_median_and_strip():
    mdata, types = _typed(n_per=(10, 20, 30))  # C largest, but A best predicted
    mdata["prot"].obs["cell_type"] = types
    ax = scmm.pl.accuracy_by_cell_type(mdata, "prot", "good", sort="median")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A (10)", "B (20)", "C (30)"]
    plt.close("all")
    ax = scmm.pl.accuracy_by_cell_type(mdata, "prot", "good", sort="size")
    assert ax.get_xticklabels()[0].get_text() == "C (30)"
    plt.close("all")
    ax = scmm.pl.accuracy_by_cell_type(mdata, "prot", ["good", "bad"], kind="strip")
    assert len(ax.collections) == 2 and len(ax.patches) == 0
    assert [len(c.get_offsets()) for c in ax.collections] == [60, 60]


def test_accuracy_by_cell_type_groupby_from_mdata_obs_and_cells():
    mdata, types = _typed()
    mdata.obs["celltype_l1"] = np.asarray(types)
    cells = np.arange(60) % 2 == 0
    ax = scmm.pl.accuracy_by_cell_type(mdata, "prot", "good", groupby="celltype_l1", cells=cells)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A (15)", "B (10)", "C (5)"]
    assert len(ax.patches) == 3


def test_accuracy_by_cell_type_drops_unlabelled_cells():
    mdata, types = _typed()
    labels = pd.Series(np.asarray(types), dtype=object, index=mdata["prot"].obs_names)
    labels.iloc[:10] = None
    mdata["prot"].obs["cell_type"] = labels
    ax = scmm.pl.accuracy_by_cell_type(mdata, "prot", "good", kind="strip")
    assert len(ax.collections[0].get_offsets()) == 50


def test_accuracy_by_cell_type_pools_groups_past_max_groups():
    # 41 cell types of 41, 40, ..., 1 cells: the 11 largest drawn, the other 30 pooled
    rng = np.random.default_rng(0)
    sizes = np.arange(41, 0, -1)
    types = np.repeat([f"t{i:02d}" for i in range(41)], sizes)
    x = rng.normal(size=(len(types), 6)).astype(np.float32)
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical(types)}, index=[f"c{i}" for i in range(len(types))]
    )
    prot = ad.AnnData(x, obs=obs)
    prot.layers["p"] = x + rng.normal(size=x.shape).astype(np.float32)
    mdata = md.MuData({"prot": prot})
    ax = scmm.pl.accuracy_by_cell_type(mdata, "prot", "p")
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert len(labels) == len(ax.patches) == 12
    assert labels[0] == "t00 (41)" and labels[10] == "t10 (31)"
    assert labels[11] == f"30 others ({sizes[11:].sum()})"
    assert ax.figure.get_figwidth() <= 7.0  # legible at a page's width
    plt.close("all")
    ax = scmm.pl.accuracy_by_cell_type(mdata, "prot", "p", kind="strip", max_groups=None)
    assert len(ax.get_xticklabels()) == 41
    assert len(ax.collections[0].get_offsets()) == sizes.sum()  # every cell still drawn
    with pytest.raises(ValueError, match="max_groups"):
        scmm.pl.accuracy_by_cell_type(mdata, "prot", "p", max_groups=1)


@pytest.mark.parametrize(("n", "shape"), [(1, (1, 1)), (3, (1, 3)), (4, (2, 2)), (7, (3, 3))])
def test_predicted_vs_measured_panels_in_rows_of_three(n, shape):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8)).astype(np.float32)
    prot = ad.AnnData(x)
    prot.var_names = [f"p{i}" for i in range(8)]
    prot.layers["pred"] = x + 0.5 * rng.normal(size=x.shape).astype(np.float32)
    fig = scmm.pl.predicted_vs_measured(md.MuData({"prot": prot}), "prot", "pred", n_features=n)
    assert len(fig.axes) == n  # the unused cells of the grid are removed
    rows = sorted({round(ax.get_position().y0, 3) for ax in fig.axes})
    cols = sorted({round(ax.get_position().x0, 3) for ax in fig.axes})
    assert (len(rows), len(cols)) == shape
    assert fig.get_figwidth() <= 7.2  # legible at a page's width
    r = scmm.metrics.pearson_per_feature(x, prot.layers["pred"], average=False)
    best = f"p{int(np.argmax(r))} (r = {r.max():.2f})"
    assert fig.axes[0].get_title() == best  # best predicted first


def test_accuracy_by_cell_type_bad_inputs():
    mdata, types = _typed()
    with pytest.raises(KeyError, match="groupby='cell_type'"):
        scmm.pl.accuracy_by_cell_type(mdata, "prot", "good")
    mdata["prot"].obs["cell_type"] = types
    with pytest.raises(KeyError, match=r"No predictions 'nope': looked in mdata\['prot'\]\.layers"):
        scmm.pl.accuracy_by_cell_type(mdata, "prot", ["good", "nope"])
    with pytest.raises(KeyError, match="mod='rna'"):
        scmm.pl.accuracy_by_cell_type(mdata, "rna", "good")
    with pytest.raises(ValueError, match="kind="):
        scmm.pl.accuracy_by_cell_type(mdata, "prot", "good", kind="violin")
    with pytest.raises(ValueError, match="sort="):
        scmm.pl.accuracy_by_cell_type(mdata, "prot", "good", sort="name")
    with pytest.raises(ValueError, match="boolean mask"):
        scmm.pl.accuracy_by_cell_type(mdata, "prot", "good", cells=np.ones(5, dtype=bool))
    with pytest.raises(ValueError, match="No cells"):
        scmm.pl.accuracy_by_cell_type(mdata, "prot", "good", cells=np.zeros(60, dtype=bool))


def test_plots_read_predictions_of_another_panel_from_obsm():
    """`predict` for a query with another panel writes rna.obsm: plots pair names and cells.

    The query measures CD3, PD-1 and an isotype control in its own order; the predictions
    (CD279, CD3_TotalSeqB, CD8) are for the RNA's cells in another order. Each plot must show
    what it shows for the same values laid out as a layer of the shared proteins.
    """
    rng = np.random.default_rng(0)
    n = 40
    truth = rng.normal(size=(n, 2))  # CD3, PD-1
    cells = [f"c{i}" for i in range(n)]
    prot = ad.AnnData(
        np.column_stack([truth, rng.normal(size=n)]).astype(np.float32),
        obs=pd.DataFrame({"cell_type": pd.Categorical(["B", "T"] * (n // 2))}, index=cells),
        var=pd.DataFrame(index=["CD3", "PD-1", "IgG1_isotype"]),
    )
    order = rng.permutation(n)
    pred = truth + 0.5 * rng.normal(size=(n, 2))
    width = np.abs(rng.normal(size=(n, 2))) + 0.5
    rna = ad.AnnData(np.zeros((n, 1), np.float32), obs=pd.DataFrame(index=np.array(cells)[order]))
    frame = {  # columns CD279, CD3_TotalSeqB, CD8; rows in the RNA's order
        "p": pred,
        "p_lower": pred - width,
        "p_upper": pred + width,
    }
    for key, values in frame.items():
        rna.obsm[key] = pd.DataFrame(
            np.column_stack([values[:, 1], values[:, 0], rng.normal(size=n)])[order],
            index=rna.obs_names,
            columns=["CD279", "CD3_TotalSeqB", "CD8"],
        )
    query = md.MuData({"rna": rna, "prot": prot})
    shared = ad.AnnData(
        truth.astype(np.float32), obs=prot.obs.copy(), var=pd.DataFrame(index=["CD3", "PD-1"])
    )
    for key, values in frame.items():
        shared.layers[key] = values.astype(np.float32)
    expected = md.MuData({"prot": shared})

    fig = scmm.pl.predicted_vs_measured(query, "prot", "p", features=["PD-1", "CD3"])
    ref = scmm.pl.predicted_vs_measured(expected, "prot", "p", features=["PD-1", "CD3"])
    assert [a.get_title() for a in fig.axes] == [a.get_title() for a in ref.axes]
    np.testing.assert_allclose(
        fig.axes[0].collections[0].get_offsets(),
        ref.axes[0].collections[0].get_offsets(),
        rtol=1e-6,
    )
    ax = scmm.pl.interval_coverage(query, "prot", "p")
    assert ax.get_title() == scmm.pl.interval_coverage(expected, "prot", "p").get_title()
    ax = scmm.pl.feature_correlations(query, "prot", "p")
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        t.get_text() for t in scmm.pl.feature_correlations(expected, "prot", "p").get_xticklabels()
    ]
    ax = scmm.pl.accuracy_by_cell_type(query, "prot", "p")
    ref_ax = scmm.pl.accuracy_by_cell_type(expected, "prot", "p")
    assert ax.get_legend_handles_labels()[1] == ref_ax.get_legend_handles_labels()[1]
    with pytest.raises(
        ValueError, match=r"3 of the selected cells of 'prot' have no prediction 'p'"
    ):
        scmm.pl.predicted_vs_measured(md.MuData({"rna": rna[3:].copy(), "prot": prot}), "prot", "p")
    with pytest.raises(KeyError, match=r"`features` \['CD8'\] are not predicted features"):
        scmm.pl.predicted_vs_measured(query, "prot", "p", features=["CD8"])
    # calibrated predictions hold the shared targets only: compared on those both have
    rna.obsm["q"] = rna.obsm["p"][["CD3_TotalSeqB"]] + 1.0
    ax = scmm.pl.feature_correlations(query, "prot", ["p", "q"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["CD3"]
    query["prot"].layers["counts"] = np.rint(np.exp(query["prot"].X) * 5)  # not normalised
    with pytest.raises(ValueError, match=r"mdata\['prot'\]\.layers\['counts'\] holds raw counts"):
        scmm.pl.interval_coverage(query, "prot", "p", layer="counts")
