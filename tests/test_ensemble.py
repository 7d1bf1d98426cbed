"""fit_ensemble: test cells never reach the weights, save/load/predict, interval coverage."""

from __future__ import annotations

import anndata as ad
import matplotlib.pyplot as plt
import mudata as md
import numpy as np
import pandas as pd
import pytest

import scmm
from scmm.models import EnsembleModel
from scmm.models._ensemble import make_folds
from scmm.models._stacking import (
    SHRINKAGE_GRID,
    convex_weights,
    seed_noise_reduction,
    simplex_minimiser,
    stacking_weights,
)

from .conftest import make_paired

TINY_MLP = {
    "mlp": {"hidden": [8], "n_components": 5, "max_epochs": 2, "training": {"verbose": False}}
}


def _linear(n_cells: int, *, noise: float, seed: int = 0, n_genes: int = 50, n_prot: int = 4):
    """Gaussian inputs with a low-rank structure; proteins linear in it plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n_cells, 5))
    rna = z @ rng.normal(size=(5, n_genes)) + 0.1 * rng.normal(size=(n_cells, n_genes))
    prot = z @ rng.normal(size=(5, n_prot)) + noise * rng.normal(size=(n_cells, n_prot))
    names = [f"c{i}" for i in range(n_cells)]
    mdata = md.MuData(
        {
            "rna": ad.AnnData(
                rna.astype(np.float32),
                obs=pd.DataFrame(index=names),
                var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]),
            ),
            "prot": ad.AnnData(
                prot.astype(np.float32),
                obs=pd.DataFrame(index=names),
                var=pd.DataFrame(index=[f"p{i}" for i in range(n_prot)]),
            ),
        }
    )
    mdata.obs["train"] = np.arange(n_cells) % 2 == 0
    return mdata


def test_test_targets_never_used_nan_there_changes_nothing():
    mdata = make_paired(n_cells=160)
    nan = mdata.copy()
    test = ~nan.obs["train"].to_numpy()
    nan["prot"].X[test] = np.nan
    kwargs = {"methods": ["mean", "ridge", "knn"], "n_folds": 4, "train": "train", "rng": 3}
    model = scmm.tl.fit_ensemble(mdata, "rna", "prot", **kwargs)
    model_nan = scmm.tl.fit_ensemble(nan, "rna", "prot", **kwargs)
    np.testing.assert_array_equal(model.weights, model_nan.weights)
    np.testing.assert_array_equal(model.half_width, model_nan.half_width)
    for suffix in ("", "_lower", "_upper"):
        np.testing.assert_array_equal(
            mdata["prot"].layers[f"scmm_ensemble{suffix}"],
            nan["prot"].layers[f"scmm_ensemble{suffix}"],
        )
    assert np.isfinite(nan["prot"].layers["scmm_ensemble"]).all()
    # held-out scores need the held-out targets: present with them, absent without
    assert "interval_coverage" in mdata.uns["scmm_ensemble"]["scores"]
    assert "scores" not in nan.uns["scmm_ensemble"]
    # but NaN among the training targets is an error naming the argument
    bad = nan.copy()
    bad["prot"].X[np.flatnonzero(~test)[0], 0] = np.nan
    with pytest.raises(ValueError, match=r"target_layer.*NaN"):
        scmm.tl.fit_ensemble(bad, "rna", "prot", **kwargs)


def test_weights_convex_per_target_and_outputs_written(tmp_path):
    mdata = make_paired(n_cells=160)
    model = scmm.tl.fit_ensemble(
        mdata, "rna", "prot", methods=["mean", "ridge"], n_folds=3, train="train", rng=0
    )
    assert model.weights.shape == (2, mdata["prot"].n_vars)
    assert (model.weights >= 0).all()
    np.testing.assert_allclose(model.weights.sum(axis=0), 1.0, atol=1e-9)
    # proteins depend on the RNA: ridge outweighs the mean everywhere
    assert (model.weights[1] > model.weights[0]).all()
    uns = mdata.uns["scmm_ensemble"]
    assert set(uns["weights"]) == {"mean", "ridge"}
    assert set(uns["oof_scores"]) == {"mean", "ridge", "ensemble"}
    layers = mdata["prot"].layers
    # half-width per target times the cell's scale (≥ 1, growing with its reference distance)
    scale = (layers["scmm_ensemble_upper"] - layers["scmm_ensemble"]) / model.half_width
    np.testing.assert_allclose(scale, scale[:, :1] * np.ones_like(scale), rtol=1e-4)
    assert (scale >= 1 - 1e-5).all()
    assert (layers["scmm_ensemble_lower"] < layers["scmm_ensemble_upper"]).all()
    mdata.write(tmp_path / "out.h5mu")  # everything written is h5mu-writable
    back = md.read_h5mu(tmp_path / "out.h5mu")
    np.testing.assert_allclose(
        back.uns["scmm_ensemble"]["weights"]["ridge"], model.weights[1], rtol=1e-6
    )


def test_convex_weights_recovers_the_true_mixture():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 500, 3))
    y = 0.3 * a + 0.7 * b
    W = convex_weights(np.stack([a, b]), y)
    np.testing.assert_allclose(W, [[0.3] * 3, [0.7] * 3], atol=1e-6)


def test_weights_trust_a_seed_averaged_member_for_the_noise_it_averages_away():
    # member 0: the truth plus seed noise (variance 1), which averaging 3 seeds cuts to 1/3;
    # member 1: the truth plus other noise (variance 0.5), fitted once
    rng = np.random.default_rng(0)
    n, n_seeds = 20_000, 3
    y = rng.normal(size=(n, 2))
    one_fit, other_seed = y + rng.normal(size=(2, n, 2))
    single = y + np.sqrt(0.5) * rng.normal(size=(n, 2))
    oof = np.stack([one_fit, single])
    # inverse-variance weights: 0.5 / (1 + 0.5) for one fit, 0.5 / (1/3 + 0.5) for the average
    np.testing.assert_allclose(convex_weights(oof, y)[0], 1 / 3, atol=0.02)
    reduction = seed_noise_reduction(one_fit, other_seed, n_seeds)
    np.testing.assert_allclose(reduction, 2 / 3, atol=0.03)
    noise = np.stack([reduction, np.zeros(2)])
    W = convex_weights(oof, y, noise)
    np.testing.assert_allclose(W[0], 0.6, atol=0.02)
    np.testing.assert_allclose(W.sum(axis=0), 1.0, atol=1e-9)
    # the average of 3 seeds, mixed with those weights, beats the weights fitted without
    final = np.stack([(one_fit + other_seed + y + rng.normal(size=(n, 2))) / n_seeds, single])
    mse = [
        ((y - np.einsum("mij,mj->ij", final, w)) ** 2).mean() for w in (convex_weights(oof, y), W)
    ]
    assert mse[1] < mse[0]


def test_a_correction_larger_than_the_error_still_gives_convex_weights():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(300, 3))
    oof = np.stack([y + rng.normal(size=y.shape), y + 2 * rng.normal(size=y.shape)])
    W = convex_weights(oof, y, np.stack([np.full(3, 50.0), np.zeros(3)]))
    assert np.isfinite(W).all() and (W >= 0).all()
    np.testing.assert_allclose(W.sum(axis=0), 1.0, atol=1e-9)
    assert (W[0] > 0.99).all()  # its error is corrected to (almost) none


def test_simplex_minimiser_is_exact():
    # against a fine grid over the 3-member simplex, for random PSD and indefinite matrices
    rng = np.random.default_rng(0)
    A = rng.normal(size=(20, 3, 3))
    G = np.concatenate([A @ A.transpose(0, 2, 1), A + A.transpose(0, 2, 1)])
    W = simplex_minimiser(G)
    assert (W >= 0).all()
    np.testing.assert_allclose(W.sum(axis=1), 1.0)
    step = np.linspace(0, 1, 201)
    a, b = np.meshgrid(step, step)
    keep = a + b <= 1
    grid = np.stack([a[keep], b[keep], 1 - a[keep] - b[keep]], axis=1)
    for j in range(20):  # PSD: the minimiser is no worse than any grid point
        obj = np.einsum("gi,ij,gj->g", grid, G[j], grid)
        assert W[j] @ G[j] @ W[j] <= obj.min() + 1e-9


def _members_with_target_noise(n_cells, gaps, seed):
    """Two members, the first better on every target by ``gaps`` (relative error variance)."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n_cells, len(gaps)))
    first = y + rng.normal(size=y.shape)
    second = y + np.sqrt(1.0 + np.asarray(gaps)) * rng.normal(size=y.shape)
    return np.stack([first, second]), y


def test_stacking_weights_share_what_the_targets_share():
    # the same members on 200 targets and few cells: per-target weights follow the noise,
    # the folds choose to pull them towards the shared ones, which are nearer the truth
    oof, y = _members_with_target_noise(60, np.full(200, 0.5), seed=0)
    folds = make_folds(60, 5, None, np.random.default_rng(0))
    W, lam, losses = stacking_weights(oof, y, folds)
    assert lam > 0 and losses[lam] < losses[0.0]
    best = 1.5 / 2.5  # inverse-variance weight of the first member
    per_target = convex_weights(oof, y)
    assert np.abs(W[0] - best).mean() < np.abs(per_target[0] - best).mean()
    np.testing.assert_allclose(W.sum(axis=0), 1.0)
    # λ = 0 alone is the per-target solution
    np.testing.assert_allclose(stacking_weights(oof, y, folds, grid=(0.0,))[0], per_target)


def test_stacking_weights_keep_targets_apart_when_they_differ():
    # the first member better on half the targets, the second on the others, many cells
    oof, y = _members_with_target_noise(2000, np.full(20, 3.0), seed=1)
    oof[:, :, 10:] = oof[::-1, :, 10:]
    folds = make_folds(2000, 5, None, np.random.default_rng(1))
    W, lam, _ = stacking_weights(oof, y, folds)
    assert lam < 0.5
    assert (W[0, :10] > 0.7).all() and (W[0, 10:] < 0.3).all()


def test_stacking_weights_on_targets_without_variance(recwarn):
    # a target constant on the training cells (an unexpressed gene) keeps the member that
    # predicts it; all-zero errors give uniform weights; no division warnings
    rng = np.random.default_rng(2)
    y = np.column_stack([rng.normal(size=40), np.ones(40), np.zeros(40)])
    oof = y[None] + rng.normal(size=(3, 40, 3))
    oof[1, :, 1] = 1.0
    oof[:, :, 2] = 0.0
    folds = make_folds(40, 4, None, rng)
    W, _, losses = stacking_weights(oof, y, folds)
    np.testing.assert_allclose(W[:, 1], [0, 1, 0], atol=1e-6)
    np.testing.assert_allclose(W[:, 2], 1 / 3)
    assert np.isfinite(list(losses.values())).all()
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_save_load_predict_round_trip(tmp_path):
    mdata = make_paired(n_cells=120)
    model = scmm.tl.fit_ensemble(
        mdata,
        "rna",
        "prot",
        methods=["ridge", "mlp"],
        n_seeds=2,
        n_folds=3,
        member_options=TINY_MLP,
        train="train",
        rng=0,
    )
    assert [len(m) for m in model.fitted] == [1, 2]  # two seeds of the neural member
    model.save(tmp_path / "ens")
    assert (tmp_path / "ens" / "members" / "1_1" / "model.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left
    with pytest.raises(FileExistsError, match="overwrite=True"):
        model.save(tmp_path / "ens")
    loaded = scmm.models.load(tmp_path / "ens")
    assert isinstance(loaded, EnsembleModel)
    np.testing.assert_array_equal(loaded.weights, model.weights)
    assert loaded.shrinkage == model.shrinkage == mdata.uns["scmm_ensemble"]["shrinkage"]
    assert model.shrinkage in SHRINKAGE_GRID
    query = md.MuData({"rna": mdata["rna"].copy(), "prot": mdata["prot"].copy()})
    scmm.tl.predict(loaded, query, key_added="again")
    np.testing.assert_array_equal(
        query["prot"].layers["again"], mdata["prot"].layers["scmm_ensemble"]
    )
    for suffix in ("_lower", "_upper"):  # the distances' float32 projection: rounding only
        np.testing.assert_allclose(
            query["prot"].layers[f"again{suffix}"],
            mdata["prot"].layers[f"scmm_ensemble{suffix}"],
            rtol=1e-5,
            atol=1e-6,
        )
    rna_only = md.MuData({"rna": mdata["rna"][:7].copy()})
    scmm.tl.predict(loaded, rna_only)
    obsm = rna_only["rna"].obsm
    # 7 rows instead of 120: BLAS may sum in another order (float32 rounding only)
    np.testing.assert_allclose(
        obsm["scmm_ensemble_upper"].to_numpy(),
        mdata["prot"].layers["scmm_ensemble_upper"][:7],
        rtol=1e-6,
        atol=1e-6,
    )
    assert list(obsm["scmm_ensemble_lower"].columns) == list(mdata["prot"].var_names)


def test_n_seeds_averages_final_fits_only():
    mdata = make_paired(n_cells=120)
    kwargs = {
        "methods": ["ridge", "mlp"],
        "n_folds": 3,
        "member_options": TINY_MLP,
        "train": "train",
        "rng": 0,
    }
    one = scmm.tl.fit_ensemble(mdata, "rna", "prot", n_seeds=1, key_added="one", **kwargs)
    three = scmm.tl.fit_ensemble(mdata, "rna", "prot", n_seeds=3, key_added="three", **kwargs)
    # the cross-fitting (weights, intervals) is the same; the final MLP is a 3-seed average
    np.testing.assert_array_equal(one.weights, three.weights)
    np.testing.assert_array_equal(one.half_width, three.half_width)
    assert [len(m) for m in three.fitted] == [1, 3]
    X = mdata["rna"].X
    np.testing.assert_allclose(
        three.fitted[1][0].predict_array(X), one.fitted[1][0].predict_array(X), rtol=1e-5
    )
    mean = np.mean([m.predict_array(X) for m in three.fitted[1]], axis=0)
    expected = three.fitted[0][0].predict_array(X) * three.weights[0] + mean * three.weights[1]
    np.testing.assert_allclose(three.predict_array(X), expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(mean, one.fitted[1][0].predict_array(X))  # other seeds, other fits


def test_same_rng_same_result_other_rng_other():
    mdata = make_paired(n_cells=120)
    kwargs = {"methods": ["ridge", "knn"], "n_folds": 3}
    a = scmm.tl.fit_ensemble(mdata, "rna", "prot", rng=1, **kwargs).weights
    b = scmm.tl.fit_ensemble(mdata, "rna", "prot", rng=1, **kwargs).weights
    c = scmm.tl.fit_ensemble(mdata, "rna", "prot", rng=2, **kwargs).weights
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("level", [0.9, 0.8])
def test_interval_coverage_on_known_noise(level):
    mdata = _linear(4000, noise=0.5)
    scmm.tl.fit_ensemble(
        mdata, "rna", "prot", methods=["mean", "ridge"], interval=level, train="train", rng=0
    )
    scores = mdata.uns["scmm_ensemble"]["scores"]
    assert abs(scores["interval_coverage"] - level) <= 0.03
    # the half-width matches the noise's quantile: Gaussian sd 0.5
    z = {0.9: 1.645, 0.8: 1.2816}[level]
    np.testing.assert_allclose(mdata.uns["scmm_ensemble"]["half_width"], z * 0.5, rtol=0.1)


def test_groupby_keeps_groups_whole_and_covers_a_held_out_group():
    mdata = _linear(3000, noise=0.5, seed=1)
    mdata.obs["donor"] = np.repeat([f"d{i}" for i in range(6)], 500)
    mdata.obs["train"] = (mdata.obs["donor"] != "d5").to_numpy()
    scmm.tl.fit_ensemble(
        mdata, "rna", "prot", methods=["ridge"], groupby="donor", train="train", rng=0
    )
    assert abs(mdata.uns["scmm_ensemble"]["scores"]["interval_coverage"] - 0.9) <= 0.03
    groups = np.repeat(np.arange(7), [40, 10, 30, 25, 5, 50, 20])
    folds = make_folds(len(groups), 3, groups, np.random.default_rng(0))
    assert sorted(np.concatenate(folds)) == list(range(len(groups)))
    owners = [{k for k, f in enumerate(folds) if g in groups[f]} for g in range(7)]
    assert all(len(o) == 1 for o in owners)


def test_bad_inputs_raise_and_leave_mdata_untouched():
    mdata = make_paired(n_cells=80)
    layers, uns = set(mdata["prot"].layers), set(mdata.uns)
    cases = [
        ({"methods": ["ridge", "forest"]}, ValueError, "not among"),
        ({"methods": []}, ValueError, "empty"),
        ({"methods": ["ridge", "ridge"]}, ValueError, "twice"),
        ({"member_options": {"ridge": {"depth": 3}}}, ValueError, "unknown options"),
        ({"member_options": {"knn": {}}}, ValueError, "not in `methods"),
        ({"interval": 1.5}, ValueError, "strictly between 0 and 1"),
        ({"n_folds": 1}, ValueError, "at least 2"),
        ({"n_seeds": 0}, ValueError, "at least 1"),
        ({"groupby": "donor"}, KeyError, "groupby='donor'"),
        ({"svd_fit_on": "test"}, ValueError, "svd_fit_on"),
        ({"n_folds": 50}, ValueError, "lower `n_folds`"),
    ]
    for kwargs, error, match in cases:
        kwargs = {"methods": ["ridge"], **kwargs}
        with pytest.raises(error, match=match):
            scmm.tl.fit_ensemble(mdata, "rna", "prot", train="train", **kwargs)
    mdata.obs["donor"] = np.where(np.arange(80) < 40, "a", "b")
    with pytest.raises(ValueError, match=r"pass `n_folds=2` or fewer"):
        scmm.tl.fit_ensemble(mdata, "rna", "prot", methods=["ridge"], groupby="donor")
    assert set(mdata["prot"].layers) == layers
    assert set(mdata.uns) == uns


def test_interval_coverage_plot():
    mdata = make_paired(n_cells=120)
    scmm.tl.fit_ensemble(mdata, "rna", "prot", methods=["ridge"], n_folds=3, train="train")
    test = ~mdata.obs["train"].to_numpy()
    ax = scmm.pl.interval_coverage(mdata, "prot", cells=test)
    assert len(ax.collections[0].get_offsets()) == mdata["prot"].n_vars
    assert ax.lines[0].get_ydata()[0] == pytest.approx(0.9)  # nominal, read from .uns
    assert "coverage" in ax.get_title()
    plt.close("all")
    with pytest.raises(KeyError, match="fit_"):
        scmm.pl.interval_coverage(mdata, "prot", "scmm_mlp")
    with pytest.raises(ValueError, match="boolean mask"):
        scmm.pl.interval_coverage(mdata, "prot", cells=test[:5])


def test_deepsets_joins_where_the_data_has_windows(tmp_path):
    """ATAC → RNA with gene–peak windows: the default members add DeepSets; saved and loaded."""
    from .test_deepsets import make_multiome

    mdata = make_multiome(n_cells=90, n_genes=6, n_peaks=30)
    tiny = {"max_epochs": 2, "training": {"verbose": False, "logger": None}}
    options = {
        "mlp": {"hidden": (16,), "n_components": 4, **tiny},
        "deepsets": {"n_components": 4, "hidden": 8, "context_hidden": 16, **tiny},
        "ridge": {"n_components": 4},
        "knn": {"n_components": 4},
        "kernel_ridge": {"n_components": 4},
    }
    kw = {"n_folds": 2, "n_seeds": 1, "member_options": options, "train": "train", "rng": 0}
    model = scmm.tl.fit_ensemble(mdata, "atac", "rna", **kw)
    assert model.member_names[-1] == "deepsets" and len(model.member_names) == 5
    assert mdata.uns["scmm_ensemble"]["params"]["methods"][-1] == "deepsets"
    assert np.isfinite(mdata["rna"].layers["scmm_ensemble"]).all()
    model.save(tmp_path / "ens")
    loaded = scmm.models.load(tmp_path / "ens")
    query = md.MuData({"atac": mdata["atac"].copy()})
    scmm.tl.predict(loaded, query)
    np.testing.assert_allclose(
        query["atac"].obsm["scmm_ensemble"].to_numpy(),
        mdata["rna"].layers["scmm_ensemble"],
        rtol=1e-5,
        atol=1e-5,
    )
    # without windows the defaults are the four; asking for DeepSets says what is missing
    del mdata.uns["windows"]
    options.pop("deepsets")
    model = scmm.tl.fit_ensemble(mdata, "atac", "rna", key_added="four", **kw)
    assert model.member_names == ["ridge", "knn", "kernel_ridge", "mlp"]
    with pytest.raises(ValueError, match=r"gene_peak_windows"):
        scmm.tl.fit_ensemble(mdata, "atac", "rna", methods=["ridge", "deepsets"], key_added="x")
    assert "x" not in mdata.uns
