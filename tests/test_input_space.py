"""A model knows the input space it was trained in, and says when new cells are not in it.

The silent wrong answers of issue 15, each now loud, and each check's false-positive test:
real normalised data of every bundled dataset fits and predicts without a warning (the test
suite turns warnings into errors).
"""

from __future__ import annotations

import json
import re
import warnings

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scmm
from scmm.datasets import load_task

from .conftest import make_paired


@pytest.fixture(scope="module")
def bmmc(data_dir):
    mdata, _ = load_task("bmmc_cite", data_dir=data_dir)
    return mdata


@pytest.fixture(scope="module")
def ridge(bmmc):
    return scmm.tl.fit_baseline(
        bmmc, "rna", "prot", method="ridge", train="train", write_predictions=False, rng=0
    )


def _copy(mdata: md.MuData) -> md.MuData:
    """A copy; MuData warns that a gene and a protein share a name (CD44), as it may."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "var_names are not unique", UserWarning)
        return mdata.copy()


def _query(bmmc, values: str = "X") -> ad.AnnData:
    """The held-out donor's RNA, as a new user's AnnData (``values``: ``"X"`` or ``"counts"``)."""
    rna = bmmc["rna"][~bmmc.obs["train"].to_numpy()]
    X = rna.X if values == "X" else rna.layers["counts"]
    return ad.AnnData(X.copy(), obs=rna.obs[[]].copy(), var=rna.var[["gene_ids"]].copy())


# -- 1. the model records its input space -------------------------------------------------------
def test_record_of_the_training_values(ridge):
    space = ridge.input_space
    assert space["source"]["normalize"] == {
        "method": "log_cp10k",
        "layer": "counts",
        "keep_counts": True,
        "n_features": 1000,
    }
    assert space["target"]["normalize"]["method"] == "clr"
    assert space["source"]["integer_fraction"] < 0.05  # log-normalised values
    assert space["source"]["n_cells"] == 311  # donor s1d1
    assert ridge.input_arrays["mean"].shape == (1000,)
    assert ridge.source_feature_ids[0].startswith("ENSG")


def test_raw_counts_to_a_log_normalised_model_raise(ridge, bmmc):
    with pytest.raises(ValueError, match=r"like raw counts.*method='log_cp10k'.*normalize=True"):
        scmm.tl.predict(ridge, _query(bmmc, "counts"))


def test_normalize_option_equals_normalising_first(ridge, bmmc):
    raw = _query(bmmc, "counts")
    before = raw.X.copy()
    scmm.tl.predict(ridge, raw, normalize=True)
    assert (raw.X != before).nnz == 0  # the user's counts are left as they were
    first = md.MuData({"rna": _query(bmmc, "counts")})
    scmm.pp.normalize(first, "rna", method="log_cp10k")
    scmm.tl.predict(ridge, first)
    np.testing.assert_allclose(
        raw.obsm["scmm_ridge"].to_numpy(),
        first["rna"].obsm["scmm_ridge"].to_numpy(),
        rtol=1e-5,
        atol=1e-5,
    )
    assert raw.uns["scmm_ridge"]["params"]["normalize"] is True


def test_other_genes_of_the_query_stay_out_of_its_totals(ridge, bmmc):
    """Trained on 1,000 genes normalised as such; a query with the rest of its transcriptome.

    Before, the other genes entered each cell's total (`normalize=True`): per-cell Pearson
    0.824 instead of 0.838 on donor s1d2 with 8,000 more genes, and a warning that only said
    they were ignored.
    """
    assert ridge.input_space["source"]["normalize"]["n_features"] == 1000
    genes = _query(bmmc, "counts")
    scmm.tl.predict(ridge, genes, normalize=True)
    rng = np.random.default_rng(0)
    rest = sp.csr_matrix(rng.poisson(0.3, size=(genes.n_obs, 3000)).astype(np.float32))
    whole = ad.AnnData(
        sp.hstack([genes.X, rest]).tocsr(),
        obs=genes.obs[[]].copy(),
        var=pd.DataFrame(
            {"gene_ids": [*genes.var["gene_ids"], *(f"ENSG9{i:010d}" for i in range(3000))]},
            index=[*genes.var_names, *(f"other{i}" for i in range(3000))],
        ),
    )
    scmm.tl.predict(ridge, whole, normalize=True)
    np.testing.assert_allclose(
        whole.obsm["scmm_ridge"].to_numpy(),
        genes.obsm["scmm_ridge"].to_numpy(),
        rtol=1e-5,
        atol=1e-5,
    )
    assert whole.uns["scmm_ridge"]["features"]["n_ignored"] == 3000
    # a cell with counts in the other genes only cannot be normalised as the training cells
    empty = whole.copy()
    X = empty.X.tolil()
    X[0, :1000] = 0
    X[0, 1000:1005] = 3
    empty.X = X.tocsr()
    with pytest.raises(
        ValueError, match=r"1 cells .* have no counts in the model's 1,000 features"
    ):
        scmm.tl.predict(ridge, empty, normalize=True)


def test_record_survives_save_and_load(ridge, bmmc, tmp_path):
    ridge.save(tmp_path / "m")
    loaded = scmm.models.load(tmp_path / "m")
    assert loaded.input_space == ridge.input_space
    np.testing.assert_array_equal(loaded.input_arrays["mean"], ridge.input_arrays["mean"])
    with pytest.raises(ValueError, match="like raw counts"):
        loaded.predict(_query(bmmc, "counts"))
    np.testing.assert_array_equal(loaded.predict(_query(bmmc)), ridge.predict(_query(bmmc)))


def test_model_saved_before_the_record_still_loads(ridge, bmmc, tmp_path):
    """No record: "unknown", nothing checked, missing features filled at 0 as before."""
    from safetensors.numpy import load_file, save_file

    ridge.save(tmp_path / "old")
    doc = json.loads((tmp_path / "old" / "model.json").read_text())
    del doc["input_space"], doc["source_feature_ids"], doc["checksums"]
    (tmp_path / "old" / "model.json").write_text(json.dumps(doc))
    arrays = load_file(str(tmp_path / "old" / "arrays.safetensors"))
    arrays = {k: v for k, v in arrays.items() if not k.startswith("input_space.")}
    save_file(arrays, str(tmp_path / "old" / "arrays.safetensors"))
    with pytest.warns(UserWarning, match="before model files recorded checksums"):
        old = scmm.models.load(tmp_path / "old")
    assert old.input_space is None and old.input_arrays == {}
    np.testing.assert_array_equal(old.predict(_query(bmmc)), ridge.predict(_query(bmmc)))
    with pytest.raises(ValueError, match="does not know it"):
        old.predict(_query(bmmc, "counts"), normalize=True)


def test_inputs_far_outside_training_warn(ridge, bmmc):
    query = _query(bmmc)
    query.X = query.X * 4  # e.g. log of counts per million instead of per 10,000
    # (such cells also lie far from the reference cells: the shift warning comes too)
    with pytest.warns(UserWarning) as record:
        scmm.tl.predict(ridge, query)
    assert any(re.search(r"far outside.*median per-cell sum", str(w.message)) for w in record)
    scaled = _query(bmmc)
    scaled.X = scaled.X.toarray() - 1.0
    with pytest.warns(UserWarning) as record:
        scmm.tl.predict(ridge, scaled)
    assert any("negative values" in str(w.message) for w in record)


def test_fit_on_raw_counts_warns(bmmc):
    m = bmmc
    with pytest.warns(UserWarning, match=r"source values `mdata\['rna'\].layers\['counts'\]`"):
        scmm.tl.fit_baseline(
            m, "rna", "prot", layer="counts", train="train", write_predictions=False
        )
    with pytest.warns(UserWarning, match=r"target values .*look like raw counts.*method='clr'"):
        scmm.tl.fit_baseline(
            m, "rna", "prot", target_layer="counts", train="train", write_predictions=False
        )


# -- 2. normalize never mislabels data ----------------------------------------------------------
def test_normalising_twice_raises():
    counts = np.random.default_rng(0).poisson(3.0, (20, 8)).astype(np.float32) + 1
    m = md.MuData({"m": ad.AnnData(counts.copy())})  # normalised in its own memory
    scmm.pp.normalize(m, "m", keep_counts=False)
    before = m["m"].X.copy()
    with pytest.raises(ValueError, match=r"already normalised.*check_counts=False"):
        scmm.pp.normalize(m, "m")
    np.testing.assert_array_equal(m["m"].X, before)
    # with the counts kept, normalising again starts from them: same values
    kept = md.MuData({"m": ad.AnnData(counts.copy())})
    scmm.pp.normalize(kept, "m")
    scmm.pp.normalize(kept, "m")
    np.testing.assert_allclose(kept["m"].X, before, rtol=1e-6)


def test_log_normalised_values_are_not_counts():
    """The silent case: a log-normalised `.X`, no counts layer, was logged again."""
    logged = np.log1p(np.random.default_rng(0).poisson(3.0, (20, 8))).astype(np.float32)
    m = md.MuData({"m": ad.AnnData(sp.csr_matrix(logged))})
    with pytest.raises(ValueError, match=r"non-integer values.*not raw counts"):
        scmm.pp.normalize(m, "m")
    assert "counts" not in m["m"].layers and "scmm_normalize" not in m["m"].uns
    scmm.pp.normalize(m, "m", check_counts=False)  # counts with fractions, on purpose
    assert m["m"].uns["scmm_normalize"]["method"] == "log_cp10k"


# -- 3. feature overlap ---------------------------------------------------------------------------
@pytest.mark.parametrize("fraction", [0.0, 0.3])
def test_low_feature_overlap_refuses(ridge, bmmc, fraction):
    query = _query(bmmc)
    keep = int(fraction * query.n_vars)
    query.var_names = [n if i < keep else f"other{i}" for i, n in enumerate(query.var_names)]
    query.var["gene_ids"] = [
        g if i < keep else f"id{i}" for i, g in enumerate(query.var["gene_ids"])
    ]
    with pytest.raises(ValueError, match=rf"Only {keep} of the model's 1000 features.*0\.5"):
        scmm.tl.predict(ridge, query, allow_missing_features=True)
    query = query[:, :keep].copy() if keep else query
    if keep:  # the threshold is the user's to lower
        with pytest.warns(UserWarning, match="training means"):
            scmm.tl.predict(ridge, query, allow_missing_features=True, min_feature_overlap=0.2)


def test_missing_features_filled_at_training_means(ridge, bmmc):
    query = _query(bmmc)[:, 200:].copy()  # 800 of 1000 genes
    with pytest.raises(
        KeyError, match=r"200 of the model's 1000 features are missing.*refit the model on the"
    ):
        scmm.tl.predict(ridge, query)
    with pytest.warns(UserWarning, match=r"Filling 200 features .* at their training means"):
        X = ridge.source_matrix(query, allow_missing_features=True)
    X = X.toarray()
    np.testing.assert_allclose(
        X[:, :200], np.broadcast_to(ridge.input_arrays["mean"][:200], (len(X), 200))
    )
    with pytest.warns(UserWarning, match="training means"):
        scmm.tl.predict(ridge, query, allow_missing_features=True)
    report = query.uns["scmm_ridge"]["features"]
    assert report["n_found"] == 800 and report["fraction_found"] == pytest.approx(0.8)


def test_ensembl_ids_match_when_names_do_not(ridge, bmmc):
    expected = ridge.predict(_query(bmmc))
    renamed = _query(bmmc)
    renamed.var_names = [f"renamed{i}" for i in range(renamed.n_vars)]  # e.g. H3F3A → H3-3A
    scmm.tl.predict(ridge, renamed)
    np.testing.assert_array_equal(renamed.obsm["scmm_ridge"].to_numpy(), expected)
    assert renamed.uns["scmm_ridge"]["features"]["n_matched_by_id"] == 1000
    by_id = _query(bmmc)  # genes indexed by versioned Ensembl ids, no `gene_ids` column
    by_id.var_names = [f"{g}.3" for g in by_id.var["gene_ids"]]
    del by_id.var["gene_ids"]
    np.testing.assert_array_equal(ridge.predict(by_id), expected)


def test_a_name_the_model_has_twice_is_found_by_id_only(bmmc):
    """Cell Ranger's symbols repeat (two genes, one name): which column is which is in the ids.

    Before, both model features took the query's first column of that name (scanpy's
    `var_names_make_unique` names the second one `NAME-1`): one gene read twice, one never.
    """
    m = _copy(bmmc)
    names = m["rna"].var_names.tolist()
    names[5] = names[4]  # genes 4 and 5: one symbol, two Ensembl ids
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "(var_names|Variable names) are not unique", UserWarning)
        m["rna"].var_names = names
        model = scmm.tl.fit_baseline(
            m, "rna", "prot", method="ridge", n_components=10, train="train"
        )
        query = _query(m)
        expected = model.predict(query)  # names as the model's: both found by their ids
    query.var_names_make_unique()
    assert query.var_names[5] == f"{names[4]}-1"
    np.testing.assert_array_equal(model.predict(query), expected)
    idx, _, by_id = scmm._validate.match_features(
        query.var, model.source_features, model.source_feature_ids
    )
    assert list(idx[4:6]) == [4, 5] and by_id == 2
    del query.var["gene_ids"]  # no ids: the two are missing, not guessed
    with pytest.raises(KeyError, match=r"2 of the model's 1000 features are missing"):
        model.predict(query)


# -- 4. scores against the mean profile ---------------------------------------------------------
def test_scores_carry_the_mean_profile_and_the_gain(bmmc):
    m = bmmc
    scmm.tl.fit_baseline(m, "rna", "prot", method="ridge", train="train", rng=0)
    scores = m.uns["scmm_ridge"]["scores"]
    test = ~m.obs["train"].to_numpy()
    y = m["prot"].X[test]
    mean = m["prot"].X[~test].mean(axis=0)
    ref = np.broadcast_to(mean, y.shape)
    assert scores["mean_profile_pearson_per_cell"] == pytest.approx(
        scmm.metrics.pearson_per_cell(y, ref)
    )
    assert scores["mean_profile_pearson_per_feature"] == 0.0
    assert scores["mean_profile_rmse"] == pytest.approx(scmm.metrics.rmse(y, ref))
    assert scores["gain_pearson_per_cell"] == pytest.approx(
        scores["pearson_per_cell"] - scores["mean_profile_pearson_per_cell"]
    )
    assert scores["gain_pearson_per_cell"] > 0.1 and scores["rmse_reduction"] > 0
    assert "n_controls" not in scores  # no isotype controls among bmmc's 134 proteins
    assert pd.Series(scores).dtype == np.float64  # one flat table of numbers


def test_model_below_the_mean_profile_warns():
    m = make_paired(seed=1)
    noise = np.random.default_rng(0).normal(size=m["prot"].shape).astype(np.float32)
    m["prot"].X = noise + np.arange(m["prot"].n_vars, dtype=np.float32)  # unrelated to RNA
    with pytest.warns(
        UserWarning, match=r"`scmm_knn` does not beat the mean profile.*per-cell Pearson"
    ):
        scmm.tl.fit_baseline(m, "rna", "prot", method="knn", n_neighbors=1, train="train")
    # the mean profile itself is not warned about
    scmm.tl.fit_baseline(m, "rna", "prot", method="mean", train="train")


def test_isotype_controls_reported_apart(tmp_path):
    m = make_paired()
    names = list(m["prot"].var_names)
    names[0], names[1] = "Mouse-IgG1", "Rat_IgG2b_isotype_Ctrl"
    m["prot"].var_names = names
    scmm.tl.fit_baseline(m, "rna", "prot", method="ridge", n_components=5, train="train")
    scores = m.uns["scmm_ridge"]["scores"]
    test = ~m.obs["train"].to_numpy()
    y, p = m["prot"].X[test], m["prot"].layers["scmm_ridge"][test]
    params = m.uns["scmm_ridge"]["params"]
    assert params["control_features"] == ["Mouse-IgG1", "Rat_IgG2b_isotype_Ctrl"]
    assert scores["n_controls"] == 2
    m.write(tmp_path / "m.h5mu")  # the records stay writable
    assert (
        list(md.read_h5mu(tmp_path / "m.h5mu").uns["scmm_ridge"]["params"]["control_features"])
        == params["control_features"]
    )
    assert scores["pearson_per_feature"] == pytest.approx(
        scmm.metrics.pearson_per_feature(y[:, 2:], p[:, 2:])
    )
    assert scores["controls_pearson_per_feature"] == pytest.approx(
        scmm.metrics.pearson_per_feature(y[:, :2], p[:, :2])
    )
    scmm.tl.fit_baseline(
        m, "rna", "prot", method="ridge", n_components=5, train="train", control_features=None
    )
    assert "n_controls" not in m.uns["scmm_ridge"]["scores"]
    assert m.uns["scmm_ridge"]["scores"]["pearson_per_feature"] == pytest.approx(
        scmm.metrics.pearson_per_feature(y, p)
    )
    with pytest.raises(KeyError, match="control_features"):
        scmm.tl.fit_baseline(m, "rna", "prot", train="train", control_features=["nope"])


# -- false positives: every bundled dataset, normalised as documented ---------------------------
@pytest.mark.parametrize(
    "task", ["bmmc_cite", "pbmc10k_cite", "pbmc10k_protein_200", "mop_snare2", "pbmc_multiome"]
)
def test_real_normalised_data_passes_without_a_warning(task, data_dir):
    mdata, t = load_task(task, data_dir=data_dir)
    test = ~mdata.obs["train"].to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = scmm.tl.fit_baseline(
            mdata, t.source, t.target, method="ridge", train="train", n_components=16, rng=0
        )
        scores = mdata.uns["scmm_ridge"]["scores"]
        assert scores["gain_pearson_per_cell"] > 0
        query = _copy(mdata[test])
        scmm.tl.predict(model, query, key_added="query")
        np.testing.assert_allclose(
            query[t.target].layers["query"], mdata[t.target].layers["scmm_ridge"][test], atol=1e-5
        )
        few = md.MuData({t.source: mdata[t.source][np.flatnonzero(test)[:5]].copy()})
        scmm.tl.predict(model, few)  # a handful of new cells is no distribution shift
        # raw counts of the held-out cells (TF-IDF: weighed by the training cells' IDF)
        raw = query[t.source].copy()
        raw.X = raw.layers["counts"]
        del raw.uns["scmm_normalize"]
        scmm.tl.predict(model, raw, normalize=True, key_added="raw")
    np.testing.assert_allclose(
        raw.obsm["raw"].to_numpy(), query[t.target].layers["query"], rtol=1e-4, atol=1e-4
    )
