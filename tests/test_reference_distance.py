"""predict says how far new cells lie from the reference; intervals widen with it (issue 30)."""

from __future__ import annotations

import warnings

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest

import scmm
from scmm.datasets import load_task
from scmm.models._preprocess import InputEncoder
from scmm.models._reference_distance import (
    WARN_SHARE,
    ReferenceDistance,
    embed,
    knn_statistic,
)

KEY = "scmm_ridge_reference_distance"


def _cell_types(n_per_type: int, types: list[int], *, seed: int, n_genes: int = 60):
    """Cells of types ``types``: Poisson counts around type-specific gene means, log1p.

    The type programmes are drawn from a fixed seed, so type 3 is the same type in every call.
    """
    programmes = np.random.default_rng(123).gamma(0.5, 4.0, size=(5, n_genes))
    rng = np.random.default_rng(seed)
    labels = np.repeat(types, n_per_type)
    counts = rng.poisson(programmes[labels] + 0.5)
    rna = np.log1p(counts).astype(np.float32)
    prot = (programmes[labels][:, :4] / 4 + 0.3 * rng.normal(size=(len(labels), 4))).astype(
        np.float32
    )
    names = [f"s{seed}_c{i}" for i in range(len(labels))]
    return md.MuData(
        {
            "rna": ad.AnnData(
                rna,
                obs=pd.DataFrame({"type": labels.astype(str)}, index=names),
                var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]),
            ),
            "prot": ad.AnnData(
                prot,
                obs=pd.DataFrame(index=names),
                var=pd.DataFrame(index=["CD3", "CD4", "CD8", "CD19"]),
            ),
        }
    )


@pytest.fixture(scope="module")
def reference():
    mdata = _cell_types(150, [0, 1, 2], seed=0)
    model = scmm.tl.fit_baseline(mdata, "rna", "prot", method="ridge", n_components=10, rng=0)
    return mdata, model


def test_unseen_cell_type_is_farther_than_held_out_cells_and_warns(reference):
    _, model = reference
    held_out = _cell_types(60, [0, 1, 2], seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # held-out cells of the reference: silent
        scmm.tl.predict(model, held_out["rna"])
    near = held_out["rna"].obs[KEY].to_numpy()
    summary = held_out["rna"].uns["scmm_ridge"]["reference_distance"]
    assert summary["share_beyond_reference_99"] < WARN_SHARE
    assert 0.5 < summary["median_ratio"] < 1.5
    unseen = _cell_types(60, [3], seed=2)
    with pytest.warns(UserWarning, match=r"farther from the reference than 99%.*median"):
        scmm.tl.predict(model, unseen["rna"])
    far = unseen["rna"].obs[KEY].to_numpy()
    assert np.median(far) > 2 * np.median(near)
    assert far.min() > np.quantile(near, 0.9)
    assert unseen["rna"].uns["scmm_ridge"]["reference_distance"]["share_beyond_reference_99"] > 0.9


def test_distance_is_saved_with_the_model(reference, tmp_path):
    _, model = reference
    query = _cell_types(20, [0, 2], seed=4)
    scmm.tl.predict(model, query, key_added="a")
    model.save(tmp_path / "m")
    loaded = scmm.models.load(tmp_path / "m")
    assert loaded.reference_distance.reference.shape == (450, 10)
    scmm.tl.predict(loaded, query["rna"], key_added="b")
    np.testing.assert_allclose(
        query["rna"].obs["a_reference_distance"],
        query["rna"].obs["b_reference_distance"],
        rtol=1e-5,
    )
    query.write(tmp_path / "q.h5mu")  # the summary is h5mu-writable


def test_model_without_svd_input_writes_no_distance():
    mdata = _cell_types(40, [0, 1], seed=5)
    model = scmm.tl.fit_baseline(mdata, "rna", "prot", method="mean")
    query = _cell_types(10, [3], seed=6)
    scmm.tl.predict(model, query["rna"])
    assert "scmm_mean_reference_distance" not in query["rna"].obs
    assert "reference_distance" not in query["rna"].uns["scmm_mean"]


def test_leave_one_out_statistic_excludes_the_cell_itself():
    Z = np.array([[0.0], [1.0], [3.0]])
    own = np.array([0, 1, 2])
    stat = knn_statistic(Z, Z, exclude=own)  # 3 cells: at most 2 neighbours each
    np.testing.assert_allclose(stat, [(1 + 3) / 2, (1 + 2) / 2, (2 + 3) / 2])
    Z = np.array([[0.0], [1.0], [3.0], [6.0]])
    labels = np.array([0, 0, 1, 1])
    groups = knn_statistic(Z, Z, groups=(labels, labels))  # only cells of the other group
    np.testing.assert_allclose(groups, [(3 + 6) / 2, (2 + 5) / 2, (3 + 2) / 2, (6 + 5) / 2])


def test_ensemble_intervals_widen_far_from_the_reference_and_keep_coverage():
    mdata = _cell_types(300, [0, 1, 2], seed=7)
    mdata.obs["train"] = np.arange(mdata.n_obs) % 3 != 0
    model = scmm.tl.fit_ensemble(
        mdata, "rna", "prot", methods=["ridge", "knn"], n_folds=3, train="train", rng=0
    )
    coverage = mdata.uns["scmm_ensemble"]["scores"]["interval_coverage"]
    assert 0.85 <= coverage <= 0.95  # exchangeable held-out cells: about the nominal 90%
    near = _cell_types(50, [0, 1, 2], seed=8)
    far = _cell_types(50, [3], seed=9)
    scmm.tl.predict(model, near)
    with pytest.warns(UserWarning, match="farther from the reference"):
        scmm.tl.predict(model, far)
    width = {
        name: (q["prot"].layers["scmm_ensemble_upper"] - q["prot"].layers["scmm_ensemble_lower"])
        for name, q in (("near", near), ("far", far))
    }
    assert model.sigma_slope >= 0
    assert np.median(width["far"]) > 1.5 * np.median(width["near"])
    # the point predictions are the members' weighted sum, whatever the intervals
    np.testing.assert_array_equal(
        far["prot"].layers["scmm_ensemble"], model.predict_array(far["rna"].X)
    )


# -- false positives: held-out cells of every bundled dataset, split as the benchmarks do -----
@pytest.mark.parametrize(
    "task",
    [
        "bmmc_cite",
        "bmmc_cite_rev",
        "pbmc10k_cite",
        "pbmc10k_protein_200",
        "mop_snare2",
        "pbmc_multiome",
    ],
)
@pytest.mark.parametrize("n_components", [16, 64])
def test_held_out_cells_of_the_reference_do_not_warn(task, n_components, data_dir):
    mdata, t = load_task(task, data_dir=data_dir)
    X = mdata[t.source].X
    train = mdata.obs["train"].reindex(mdata[t.source].obs_names).to_numpy().astype(bool)
    encoder = InputEncoder("svd", n_components, scale=False).fit(X[train], rng=0)
    state, _, _ = ReferenceDistance.fit(embed(encoder, X[train]))
    summary = state.summary(state.ratio(embed(encoder, X[~train])))
    assert summary["share_beyond_reference_99"] < WARN_SHARE / 2
