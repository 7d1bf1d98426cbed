"""The fit contract (fit_baseline stands for every fit_*), predict on new cells, save/load."""

import anndata as ad
import mudata as md
import numpy as np
import pytest

import scmm
from scmm.models._baseline import METHODS

from .conftest import make_paired


def _snapshot(mdata):
    return {
        "uns": set(mdata.uns),
        **{f"{m}.layers": set(a.layers) for m, a in mdata.mod.items()},
        **{f"{m}.obsm": set(a.obsm) for m, a in mdata.mod.items()},
        **{f"{m}.X": a.X.copy() for m, a in mdata.mod.items()},
    }


def _assert_unchanged(before, after):
    assert before.keys() == after.keys()
    for k, v in before.items():
        if isinstance(v, set):
            assert v == after[k], k
        else:
            a, b = (x.toarray() if hasattr(x, "toarray") else x for x in (v, after[k]))
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", METHODS)
def test_fit_baseline_writes_predictions_params_scores(paired, method):
    model = scmm.tl.fit_baseline(
        paired, "rna", "prot", method=method, n_components=5, n_neighbors=5, train="train"
    )
    key = f"scmm_{method}"
    pred = paired["prot"].layers[key]
    assert pred.shape == paired["prot"].shape and pred.dtype == np.float32
    uns = paired.uns[key]
    assert uns["params"]["model"] == "baseline" and uns["params"]["method"] == method
    assert uns["params"]["n_train_cells"] == 90
    assert "torch" in uns["params"]["versions"]
    assert uns["scores"]["n_cells"] == 30
    test = ~paired.obs["train"].to_numpy()
    r = scmm.metrics.pearson_per_cell(paired["prot"].X[test], pred[test])
    assert uns["scores"]["pearson_per_cell"] == pytest.approx(r)
    if method != "mean":  # the synthetic proteins follow the RNA factors
        assert r > uns["scores"]["pearson_per_cell"] - 1e-9 and r > 0.5
    assert model.source_features == list(paired["rna"].var_names)
    assert model.target_features == list(paired["prot"].var_names)


def test_train_accepts_mask_or_column_and_same_rng_same_result(paired):
    mask = paired.obs["train"].to_numpy()
    scmm.tl.fit_baseline(
        paired,
        "rna",
        "prot",
        method="kernel_ridge",
        n_components=5,
        train=mask,
        key_added="a",
        rng=3,
    )
    scmm.tl.fit_baseline(
        paired,
        "rna",
        "prot",
        method="kernel_ridge",
        n_components=5,
        train="train",
        key_added="b",
        rng=3,
    )
    np.testing.assert_array_equal(paired["prot"].layers["a"], paired["prot"].layers["b"])


def test_svd_fit_on_all_uses_query_inputs(paired):
    scmm.tl.fit_baseline(paired, "rna", "prot", n_components=5, train="train", key_added="t")
    scmm.tl.fit_baseline(
        paired, "rna", "prot", n_components=5, train="train", key_added="a", svd_fit_on="all"
    )
    assert paired.uns["a"]["params"]["svd_fit_on"] == "all"
    assert not np.allclose(paired["prot"].layers["t"], paired["prot"].layers["a"])


def test_svd_fit_on_all_fits_the_svd_on_every_cell(paired):
    kw = {"n_components": 5, "rng": 3}
    some = scmm.tl.fit_baseline(paired, "rna", "prot", train="train", svd_fit_on="all", **kw)
    every = scmm.tl.fit_baseline(paired, "rna", "prot", key_added="every", **kw)
    np.testing.assert_allclose(some.encoder.components, every.encoder.components, rtol=1e-5)
    np.testing.assert_allclose(some.encoder.std, every.encoder.std, rtol=1e-5)


def test_cells_in_other_order_are_aligned_by_name(paired):
    scmm.tl.fit_baseline(paired, "rna", "prot", n_components=5, train="train", key_added="x")
    shuffled = paired.copy()
    order = np.random.default_rng(0).permutation(paired.n_obs)
    shuffled.mod["prot"] = paired["prot"][order].copy()
    shuffled.update()
    scmm.tl.fit_baseline(
        shuffled, "rna", "prot", n_components=5, train=paired.obs["train"].to_numpy(), key_added="x"
    )
    np.testing.assert_allclose(
        shuffled["prot"].layers["x"], paired["prot"].layers["x"][order], rtol=1e-5, atol=1e-6
    )


def test_predict_on_rna_only_cells_with_reordered_genes(paired):
    model = scmm.tl.fit_baseline(paired, "rna", "prot", n_components=5, train="train")
    query_rna = paired["rna"][:, ::-1].copy()  # same genes, reversed order
    query = md.MuData({"rna": query_rna})
    scmm.tl.predict(model, query, key_added="pred")
    out = query["rna"].obsm["pred"]
    assert list(out.columns) == model.target_features
    np.testing.assert_allclose(
        out.to_numpy(), paired["prot"].layers["scmm_ridge"], rtol=1e-4, atol=1e-5
    )
    assert query.uns["pred"]["params"]["target"] == "prot"
    # into the target's layer when the target modality is present
    scmm.tl.predict(model, paired, key_added="again")
    np.testing.assert_allclose(
        paired["prot"].layers["again"], paired["prot"].layers["scmm_ridge"], rtol=1e-5, atol=1e-6
    )


def test_predict_missing_features_listed_or_zero_filled(paired):
    model = scmm.tl.fit_baseline(paired, "rna", "prot", n_components=5)
    query = md.MuData({"rna": paired["rna"][:, 3:].copy()})
    with pytest.raises(KeyError, match=r"3 of the model's 40 features are missing.*'g0'"):
        scmm.tl.predict(model, query)
    assert "scmm_ridge" not in query["rna"].obsm
    with pytest.warns(UserWarning, match=r"Filling 3 features .* training means \(37 of"):
        scmm.tl.predict(model, query, allow_missing_features=True)
    assert query["rna"].obsm["scmm_ridge"].shape == (120, 6)
    assert query.uns["scmm_ridge"]["features"]["n_found"] == 37


def test_save_load_round_trip_identical(paired, tmp_path):
    for method in METHODS:
        model = scmm.tl.fit_baseline(
            paired, "rna", "prot", method=method, n_components=5, n_neighbors=5, train="train"
        )
        model.save(tmp_path / method)
        loaded = scmm.models.load(tmp_path / method)
        assert type(loaded) is type(model) and loaded.params == model.params
        np.testing.assert_array_equal(loaded.predict(paired), model.predict(paired))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        model.save(tmp_path / "ridge")
    model.save(tmp_path / "ridge", overwrite=True)
    with pytest.raises(ValueError, match="not an scmm model folder"):
        scmm.models.load(tmp_path)


BAD_FITS = [
    ({"source": "atac"}, KeyError, "`source='atac'` is not a modality"),
    ({"target": "rna"}, ValueError, "both 'rna'"),
    ({"train": np.ones(5, bool)}, ValueError, "`train` has 5 entries but there are 120 cells"),
    ({"train": np.zeros(120, bool)}, ValueError, "`train` selects no cells"),
    ({"train": "nope"}, KeyError, "`train='nope'` is not a column"),
    ({"layer": "raw"}, KeyError, "`layer='raw'` is not a layer"),
    ({"method": "lasso"}, ValueError, "`method='lasso'`"),
    ({"svd_fit_on": "test"}, ValueError, "`svd_fit_on='test'`"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_FITS)
def test_bad_fit_inputs_raise_and_leave_mdata_unchanged(paired, kwargs, error, match):
    args = {"source": "rna", "target": "prot", **kwargs}
    before = _snapshot(paired)
    with pytest.raises(error, match=match):
        scmm.tl.fit_baseline(paired, args.pop("source"), args.pop("target"), n_components=5, **args)
    _assert_unchanged(before, _snapshot(paired))


def test_nan_and_unpaired_cells_are_errors():
    mdata = make_paired()
    mdata["prot"].X[2, 1] = np.nan
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        scmm.tl.fit_baseline(mdata, "rna", "prot", n_components=5)
    mdata = make_paired()
    unpaired = md.MuData({"rna": mdata["rna"], "prot": mdata["prot"][:100].copy()})
    with pytest.raises(ValueError, match="20 cells of source='rna' are not in target='prot'"):
        scmm.tl.fit_baseline(unpaired, "rna", "prot", n_components=5)


def test_predict_from_anndata(paired):
    model = scmm.tl.fit_baseline(paired, "rna", "prot", n_components=5)
    adata = ad.AnnData(
        paired["rna"].X.copy(), obs=paired["rna"].obs.copy(), var=paired["rna"].var.copy()
    )
    scmm.tl.predict(model, adata)
    assert adata.obsm["scmm_ridge"].shape == (120, 6)
