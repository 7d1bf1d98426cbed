"""TF-IDF of new cells: the training cells' IDF, whatever cells are predicted together."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scmm

from .conftest import make_atac_rna


def _raw_query(mdata: md.MuData, cells) -> ad.AnnData:
    """The cells' raw ATAC counts, as a user brings them (no normalisation record)."""
    counts = mdata["atac"].layers["counts"][cells]
    return ad.AnnData(sp.csr_matrix(counts), var=pd.DataFrame(index=mdata["atac"].var_names))


def test_idf_kept_per_feature_as_muon_computes_it():
    import muon as mu

    mdata = make_atac_rna()
    ref = ad.AnnData(mdata["atac"].X.copy())
    scmm.pp.normalize(mdata, "atac", method="tfidf")
    with np.errstate(divide="ignore"):
        mu.atac.pp.tfidf(ref, log_tf=True, log_idf=True, log_tfidf=False)
    idf = mdata["atac"].var["scmm_idf"].to_numpy()
    assert idf.dtype == np.float32
    assert idf[-1] == 0  # the peak without counts: 0, not inf
    counts = mdata["atac"].layers["counts"]
    expected = np.log1p(counts.shape[0] / np.asarray(counts.sum(axis=0)).ravel()[:-1])
    np.testing.assert_allclose(idf[:-1], expected, rtol=1e-6)
    # the values are the term frequencies weighed by that IDF (muon's values)
    np.testing.assert_allclose(mdata["atac"].X.toarray(), ref.X.toarray(), rtol=1e-5, atol=1e-6)
    assert "scmm_idf" not in _log_normalised().var.columns


def _log_normalised() -> ad.AnnData:
    mdata = make_atac_rna()
    scmm.pp.normalize(mdata, "rna", method="log_cp10k", check_counts=False)
    return mdata["rna"]


@pytest.mark.parametrize("n_cells", [1, 3, 120])
def test_few_raw_cells_get_the_training_values(tfidf_ridge, n_cells):
    """One cell's raw counts predict what the same cell normalised with the others did."""
    mdata, model = tfidf_ridge
    cells = np.arange(n_cells)
    expected = model.predict_array(mdata["atac"].X[cells])
    query = _raw_query(mdata, cells)
    scmm.tl.predict(model, query, normalize=True)
    np.testing.assert_allclose(query.obsm["scmm_ridge"].to_numpy(), expected, rtol=1e-4, atol=1e-5)


def test_query_peaks_in_another_order_and_extra_peaks(tfidf_ridge):
    """Each cell's term frequencies are over the peaks the training cells' were: the model's
    own here (extra peaks stay out, as they were not among the training cells' peaks); the
    training IDF follows each peak by name.

    Before, the extra peaks counted in the query's totals: other values than the training
    cells' for the same counts."""
    mdata, model = tfidf_ridge
    counts = mdata["atac"].layers["counts"][:4].toarray()
    extra = np.full((4, 2), 3.0, np.float32)
    names = [*mdata["atac"].var_names, "chr2:1-500", "chr2:900-1500"]
    full = np.hstack([counts, extra])
    query = ad.AnnData(sp.csr_matrix(full[:, ::-1]), var=pd.DataFrame(index=names[::-1]))
    scmm.tl.predict(model, query, normalize=True)
    np.testing.assert_allclose(
        query.obsm["scmm_ridge"].to_numpy(),
        model.predict_array(mdata["atac"].X[:4]),  # the training cells' own TF-IDF
        rtol=1e-4,
        atol=1e-5,
    )
    assert query.uns["scmm_ridge"]["features"]["n_ignored"] == 2


def test_totals_over_more_features_than_the_model_reads():
    """Normalised over every peak, fitted on some: the query's own peaks make its totals."""
    mdata = make_atac_rna()
    scmm.pp.normalize(mdata, "atac", method="tfidf")  # over all 40 peaks
    mdata.mod["atac"] = mdata["atac"][:, :15].copy()  # the model reads 15 of them
    mdata.update()
    model = scmm.tl.fit_baseline(mdata, "atac", "rna", n_components=6, write_predictions=False)
    counts = mdata["atac"].layers["counts"]
    whole = make_atac_rna()["atac"]  # all 40 peaks' counts, as the training cells had them
    scmm.tl.predict(model, whole, normalize=True)
    np.testing.assert_allclose(
        whole.obsm["scmm_ridge"].to_numpy(),
        model.predict_array(mdata["atac"].X),
        rtol=1e-4,
        atol=1e-5,
    )
    cut = ad.AnnData(counts.copy(), obs=whole.obs[[]], var=mdata["atac"].var[[]])
    with pytest.warns(
        UserWarning, match=r"normalised over 40 features of 'atac'.*these cells over their 15"
    ):
        scmm.tl.predict(model, cut, normalize=True)


def test_training_idf_saved_with_the_model(tfidf_ridge, tmp_path):
    mdata, model = tfidf_ridge
    np.testing.assert_array_equal(model.input_arrays["idf"], mdata["atac"].var["scmm_idf"])
    model.save(tmp_path / "m")
    loaded = scmm.models.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.input_arrays["idf"], model.input_arrays["idf"])
    query = _raw_query(mdata, [5])
    scmm.tl.predict(loaded, query, normalize=True)
    np.testing.assert_allclose(
        query.obsm["scmm_ridge"].to_numpy(),
        model.predict_array(mdata["atac"].X[[5]]),
        rtol=1e-4,
        atol=1e-5,
    )


def test_model_without_a_training_idf_warns(tfidf_ridge):
    mdata, model = tfidf_ridge
    del model.input_arrays["idf"]  # as saved by an earlier scmm
    query = _raw_query(mdata, np.arange(10))
    with pytest.warns(UserWarning, match="stores no IDF of its training cells"):
        scmm.tl.predict(model, query, normalize=True)
    assert query.obsm["scmm_ridge"].shape == (10, 5)


def test_query_normalised_on_its_own_warns(tfidf_ridge):
    """A handful of cells TF-IDF-normalised alone: weighed by their own IDF, which is said."""
    mdata, model = tfidf_ridge
    query = md.MuData({"atac": _raw_query(mdata, np.arange(3))})
    scmm.pp.normalize(query, "atac", method="tfidf")
    with pytest.warns(UserWarning, match="weighed its peaks by its own cells' IDF"):
        scmm.tl.predict(model, query)
    # cells normalised with the training cells carry the training IDF: nothing to say
    same = md.MuData({"atac": mdata["atac"][:3].copy()})
    scmm.tl.predict(model, same)
    np.testing.assert_allclose(
        same["atac"].obsm["scmm_ridge"].to_numpy(),
        model.predict_array(mdata["atac"].X[:3]),
        rtol=1e-5,
    )
