"""A model fitted through ``scmm.models`` knows its data as one of ``scmm.tl.fit_*`` does."""

import anndata as ad
import mudata as md
import numpy as np
import pytest

import scmm

from .conftest import make_paired

MODELS = {
    "ridge": (
        lambda: scmm.models.BaselineModel("ridge", n_components=5),
        lambda m, **kw: scmm.tl.fit_baseline(
            m, "rna", "prot", method="ridge", n_components=5, **kw
        ),
    ),
    "mlp": (
        lambda: scmm.models.MLPModel(
            hidden=[8], n_components=5, training={"max_epochs": 2, "verbose": False}
        ),
        lambda m, **kw: scmm.tl.fit_mlp(
            m, "rna", "prot", hidden=[8], n_components=5, max_epochs=2,
            training={"verbose": False}, **kw,
        ),
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def normalised():
    mdata = make_paired(n_cells=150)
    scmm.pp.normalize(mdata, "rna", method="log_cp10k")
    assert 0 < mdata.obs["train"].sum() < mdata.n_obs
    return mdata


@pytest.mark.parametrize("name", MODELS)
def test_fit_mudata_predicts_through_tl_predict_with_every_check(normalised, name):
    build, fit = MODELS[name]
    model = build().fit_mudata(normalised, "rna", "prot", train="train", rng=0)
    assert repr(model).startswith(f"{type(model).__name__}(rna→prot")
    assert model.input_space["source"]["normalize"]["method"] == "log_cp10k"
    ref = fit(normalised, train="train", rng=0, write_predictions=False, key_added="ref")
    assert model.input_space == ref.input_space
    query = md.MuData({"rna": normalised["rna"][:20].copy()})
    scmm.tl.predict(model, query)
    scmm.tl.predict(ref, query, key_added="ref")
    key = f"scmm_{model.name}"
    np.testing.assert_array_equal(query["rna"].obsm[key], query["rna"].obsm["ref"])
    # and how far the new cells lie from the training cells, as for the tl-fitted model
    np.testing.assert_allclose(
        query["rna"].obs[f"{key}_reference_distance"], query["rna"].obs["ref_reference_distance"]
    )
    counts = ad.AnnData(
        normalised["rna"].layers["counts"][:20].copy(), var=normalised["rna"].var[[]].copy()
    )
    with pytest.raises(ValueError, match="like raw counts"):
        scmm.tl.predict(model, counts)  # the input checks of a tl-fitted model
    scmm.tl.predict(model, counts, normalize=True)  # and its recorded normalisation


def test_fit_mudata_argument_errors(normalised):
    model = scmm.models.BaselineModel("ridge", n_components=5)
    with pytest.raises(KeyError, match="target='adt'"):
        model.fit_mudata(normalised, "rna", "adt")
    with pytest.raises(ValueError, match="both 'rna'"):
        model.fit_mudata(normalised, "rna", "rna")
    assert not model.is_fitted


def test_a_refit_replaces_the_reference_distance(normalised):
    model = scmm.models.BaselineModel("ridge", n_components=5)
    model.fit_mudata(normalised, "rna", "prot", train="train", rng=0)
    first = model.reference_distance
    train = normalised.obs["train"].to_numpy()
    model.fit_mudata(normalised, "rna", "prot", train=~train, rng=0)
    assert model.reference_distance is not first
    assert len(model.reference_distance.reference) == (~train).sum()


def test_fit_mudata_is_the_fit_path_of_scmm_tl(normalised):
    """Same keywords, same result: ``svd_fit_on="all"`` included; misspelt keywords refused."""
    build, fit = MODELS["ridge"]
    model = build().fit_mudata(normalised, "rna", "prot", train="train", svd_fit_on="all", rng=0)
    ref = fit(normalised, train="train", svd_fit_on="all", rng=0, write_predictions=False)
    np.testing.assert_array_equal(model.predict(normalised), ref.predict(normalised))
    other = build().fit_mudata(normalised, "rna", "prot", train="train", rng=0)
    assert not np.array_equal(model.predict(normalised), other.predict(normalised))
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['trian'\\]"):
        build().fit_mudata(normalised, "rna", "prot", trian="train")
    with pytest.raises(ValueError, match="svd_fit_on='test'"):
        build().fit_mudata(normalised, "rna", "prot", svd_fit_on="test")
