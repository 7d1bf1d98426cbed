"""Peaks named `chr1:100-200`, `chr1-100-200` or `chr1_100_200` are the same peaks."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scmm
from scmm._validate import match_features


def _renamed(names, sep: str, *, chr_prefix: bool = True) -> list[str]:
    """`chr1:1000-1500` written as `chr1{sep}1000{sep2}1500`, with or without `chr`."""
    out = []
    for name in names:
        chrom, rest = name.split(":")
        start, end = rest.split("-")
        chrom = chrom if chr_prefix else chrom.removeprefix("chr")
        out.append(f"{chrom}{sep}{start}{'_' if sep == '_' else '-'}{end}")
    return out


def _query(mdata, names, order) -> ad.AnnData:
    """The training cells' raw counts, peaks renamed and in another order."""
    counts = sp.csr_matrix(mdata["atac"].layers["counts"])[:, order]
    return ad.AnnData(counts, var=pd.DataFrame(index=np.asarray(names)[order]))


@pytest.mark.parametrize(("sep", "chr_prefix"), [("-", True), ("_", True), (":", False)])
def test_peaks_named_otherwise_predict_as_the_training_names(tfidf_ridge, sep, chr_prefix):
    mdata, model = tfidf_ridge
    order = np.random.default_rng(0).permutation(mdata["atac"].n_vars)
    same = _query(mdata, mdata["atac"].var_names, order)
    other = _query(mdata, _renamed(mdata["atac"].var_names, sep, chr_prefix=chr_prefix), order)
    scmm.tl.predict(model, same, normalize=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no feature is reported missing or ignored
        scmm.tl.predict(model, other, normalize=True)
    np.testing.assert_array_equal(other.obsm["scmm_ridge"], same.obsm["scmm_ridge"])
    report = other.uns["scmm_ridge"]["features"]
    assert report["n_found"] == report["n_features"] == mdata["atac"].n_vars
    assert report["n_matched_by_coordinates"] == mdata["atac"].n_vars
    assert same.uns["scmm_ridge"]["features"]["n_matched_by_coordinates"] == 0


def test_other_peaks_are_refused_naming_the_fix(tfidf_ridge):
    mdata, model = tfidf_ridge
    names = [f"chr1-{i * 1000 + 7}-{i * 1000 + 480}" for i in range(mdata["atac"].n_vars)]
    query = _query(mdata, names, np.arange(mdata["atac"].n_vars))
    with pytest.raises(ValueError, match=r"Count their fragments on the model's peaks"):
        scmm.tl.predict(model, query, normalize=True)
    assert "scmm_ridge" not in query.obsm


def test_peaks_written_one_based_are_named(tfidf_ridge):
    """The model's `chr1:0-500` is `chr1-1-500` in a GRanges export (1-based): say so."""
    mdata, model = tfidf_ridge
    names = [f"chr1-{i * 1000 + 1}-{i * 1000 + 500}" for i in range(mdata["atac"].n_vars)]
    query = _query(mdata, names, np.arange(mdata["atac"].n_vars))
    with pytest.raises(
        ValueError, match=r"with a start 1 bp higher \('chr1:0-500' here is 'chr1:1-500'\).*minus 1"
    ):
        scmm.tl.predict(model, query, normalize=True)
    fixed = _query(mdata, [f"chr1-{i * 1000}-{i * 1000 + 500}" for i in range(len(names))],
                   np.arange(len(names)))  # fmt: skip
    scmm.tl.predict(model, fixed, normalize=True)  # the named fix
    back = [f"chr1:{i * 1000 - 1}-{i * 1000 + 500}" for i in range(1, len(names))]
    query = _query(mdata, ["chr1:0-500", *back], np.arange(len(names)))  # 0-based from 1-based
    with pytest.raises(ValueError, match=r"start 1 bp lower.*0-based \(BED, 10x\).*plus 1"):
        scmm.tl.predict(model, query, normalize=True)


def test_matching_by_coordinates_is_unambiguous():
    model_peaks = ["chr1:100-200", "chr1:300-400", "chr2:100-200"]
    var = pd.DataFrame(index=["chr1-100-200", "chr1_100_200", "chr2-100-200", "chr1:300-400"])
    idx, by_peak, by_id = match_features(var, model_peaks)
    # chr1:100-200 is written twice in the query: it matches neither; the others match
    assert idx.tolist() == [-1, 3, 2]
    assert (by_peak, by_id) == (1, 0)


def test_peaks_named_otherwise_are_found_by_their_coordinate_columns():
    var = pd.DataFrame(
        {"chrom": ["chr2", "chr1", "chr1"], "start": [100, 300, 100], "end": [200, 400, 250]},
        index=["peak_1", "peak_2", "peak_3"],
    )
    idx, by_peak, _ = match_features(var, ["chr1:300-400", "chr2:100-200", "chr1:100-200"])
    assert idx.tolist() == [1, 0, -1]  # chr1:100-200 is not chr1:100-250
    assert by_peak == 2


def test_genes_are_never_matched_as_peaks():
    """Gene names with dashes and digits stay names: no coordinates are read into them."""
    var = pd.DataFrame(index=["HLA-A", "MT-ND1", "LINC-00-12"])
    idx, by_peak, _ = match_features(var, ["HLA-A", "MT-ND1", "LINC:00-12", "CD4"])
    assert idx.tolist() == [0, 1, -1, -1]
    assert by_peak == 0


def test_idf_check_reads_a_query_with_duplicated_peak_names(tfidf_ridge):
    """A query's own TF-IDF is checked even where two of its peaks share a name."""
    mdata, model = tfidf_ridge
    names = ["chr1:0-500", *mdata["atac"].var_names[1:]]
    names[1] = names[0]  # the first two peaks share a name: neither can be matched
    idf = 2 * mdata["atac"].var["scmm_idf"].to_numpy()
    with pytest.warns(UserWarning, match="Variable names are not unique"):
        query = ad.AnnData(
            mdata["atac"].X[:5].copy(), var=pd.DataFrame({"scmm_idf": idf}, index=names)
        )
    with (
        pytest.warns(UserWarning, match="weighed its peaks by its own cells' IDF"),
        pytest.raises(KeyError, match=r"2 of the model's 40 features are missing"),
    ):
        scmm.tl.predict(model, query)
