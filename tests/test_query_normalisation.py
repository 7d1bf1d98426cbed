"""A query prepared in another space than the model's recorded normalisation is refused.

Issue 32: for a model trained on ln(CP10k + 1), a query normalised as log2(CP10k + 1) gave no
message (per-cell Pearson 0.861 instead of 0.871), CP10k without the log (0.46) and z-scored
input (0.78) only warned. Each case is now an error naming the ``scmm.pp.normalize`` call (or
repaired by ``normalize=True`` from raw counts), and correctly normalised held-out cells of
every bundled dataset still pass without a warning (the suite turns warnings into errors).
"""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

import scmm
from scmm.datasets import load_task

_CALL = r"scmm\.pp\.normalize\(mdata, 'rna', method='log_cp10k'\)"


@pytest.fixture(scope="module")
def bmmc(data_dir):
    mdata, _ = load_task("bmmc_cite", data_dir=data_dir)
    return mdata


@pytest.fixture(scope="module")
def ridge(bmmc):
    return scmm.tl.fit_baseline(
        bmmc, "rna", "prot", method="ridge", train="train", write_predictions=False, rng=0
    )


def _prepared(bmmc, how: str, *, counts: bool = True) -> ad.AnnData:
    """The held-out donor's RNA, normalised ``how``, as a new user's AnnData."""
    rna = bmmc["rna"][~bmmc.obs["train"].to_numpy()]
    raw = rna.layers["counts"].toarray().astype(np.float64)
    cp = raw / raw.sum(axis=1, keepdims=True)
    values = {
        "ln": lambda: np.log1p(1e4 * cp),
        "log2": lambda: np.log2(1e4 * cp + 1),
        "log10": lambda: np.log10(1e4 * cp + 1),
        "no_log": lambda: 1e4 * cp,
        "ln_cpm": lambda: np.log1p(1e6 * cp),  # counts per million, then ln
        "ln_median": lambda: np.log1p(np.median(raw.sum(axis=1)) * cp),  # scanpy's default
        "zscore": lambda: _zscore(np.log1p(1e4 * cp)),
        "ln_raw": lambda: np.log1p(raw),  # sc.pp.log1p without normalize_total
        # Seurat SCTransform's `data`: ln(1 + corrected counts at the median depth)
        "ln_sct": lambda: np.log1p(np.round(np.median(raw.sum(axis=1)) * cp)),
        # scran's logNormCounts: log2 of counts over deconvolution size factors (not totals)
        "log2_scran": lambda: np.log2(raw / _size_factors(raw)[:, None] + 1),
    }[how]()
    query = ad.AnnData(
        sp.csr_matrix(values.astype(np.float32)) if how != "zscore" else values.astype("f4"),
        obs=rna.obs[[]].copy(),
        var=rna.var[["gene_ids"]].copy(),
    )
    if counts:
        query.layers["counts"] = rna.layers["counts"].copy()
    return query


def _size_factors(raw: np.ndarray) -> np.ndarray:
    """Size factors like scran's deconvolution ones: library size times a per-cell spread."""
    total = raw.sum(axis=1)
    spread = np.exp(np.random.default_rng(0).normal(0.0, 0.3, len(total)))
    return total / total.mean() * spread


def _zscore(X: np.ndarray) -> np.ndarray:
    """``sc.pp.scale`` of ``X``: each feature centred and scaled to sd 1 (ddof 1), clipped at 10."""
    sd = X.std(axis=0, ddof=1)
    sd[sd == 0] = 1
    return np.clip((X - X.mean(axis=0)) / sd, None, 10)


CASES = {
    "log2": r"log2\(x \+ 1\) of counts scaled to 10,000 per cell",
    "log10": r"log10\(x \+ 1\) of counts scaled to 10,000 per cell",
    "no_log": r"x without a log of counts scaled to 10,000 per cell",
    "ln_cpm": r"ln\(x \+ 1\) of counts scaled to 1,000,000 per cell",
    "ln_median": r"ln\(x \+ 1\) of counts scaled to [0-9,]+ per cell",
    "zscore": r"values standardised per feature",
    "ln_raw": r"ln\(x \+ 1\) of counts not scaled to a common total \(e\*\*v − 1 are whole",
    "ln_sct": r"ln\(x \+ 1\) of counts not scaled to .*SCTransform's `data`",
    "log2_scran": r"log2\(x \+ 1\) of counts scaled by a per-cell factor .*`logNormCounts`",
}


@pytest.mark.parametrize("how", list(CASES))
def test_query_in_another_space_refused_with_the_call(ridge, bmmc, how):
    with pytest.raises(ValueError, match=CASES[how] + r".*trained on ln\(counts scaled") as err:
        scmm.tl.predict(ridge, _prepared(bmmc, how))
    assert f"Run `{_CALL.replace(chr(92), '')}`" in str(err.value)
    assert "pass `normalize=True`" in str(err.value)  # the query holds raw counts
    with pytest.raises(ValueError, match=_CALL + r"` on the query's raw counts instead\.$"):
        scmm.tl.predict(ridge, _prepared(bmmc, how, counts=False))


@pytest.mark.parametrize("how", list(CASES))
def test_normalize_true_repairs_from_raw_counts(ridge, bmmc, how):
    expected = ridge.predict(_prepared(bmmc, "ln"))
    np.testing.assert_allclose(
        ridge.predict(_prepared(bmmc, how), normalize=True), expected, rtol=1e-4, atol=1e-4
    )


def test_correct_query_accepted(ridge, bmmc):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ridge.predict(_prepared(bmmc, "ln"))
        ridge.predict(_prepared(bmmc, "ln")[:12])  # few cells
        ridge.predict(_prepared(bmmc, "log2")[:3])  # too few cells to conclude: not refused


def test_unknown_provenance_only_warns(bmmc):
    """A model fitted on a layer does not know how its values were made: warnings only."""
    with warnings.catch_warnings():  # a gene and a protein share a name (CD44), as they may
        warnings.filterwarnings("ignore", "var_names are not unique", UserWarning)
        m = bmmc.copy()
    m["rna"].layers["lognorm"] = m["rna"].X.copy()
    model = scmm.tl.fit_baseline(
        m, "rna", "prot", method="ridge", layer="lognorm", write_predictions=False, rng=0
    )
    assert model.input_space["source"]["normalize"] is None
    query = _prepared(bmmc, "zscore")
    query.layers["lognorm"] = query.X
    with pytest.warns(UserWarning, match="far outside"):
        model.predict(query)
    query = _prepared(bmmc, "log2")
    query.layers["lognorm"] = query.X
    model.predict(query)  # no record: nothing to compare with, no message


# -- false positives: held-out cells of every bundled dataset, normalised as documented --------
@pytest.mark.parametrize(
    "task", ["bmmc_cite", "pbmc10k_cite", "pbmc10k_protein_200", "mop_snare2", "pbmc_multiome"]
)
def test_correctly_normalised_held_out_cells_accepted(task, data_dir):
    mdata, t = load_task(task, data_dir=data_dir)
    test = np.flatnonzero(~mdata.obs["train"].to_numpy())
    # both directions: log_cp10k RNA, CLR proteins and TF-IDF peaks are each a source once
    for source, target in ((t.source, t.target), (t.target, t.source)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model = scmm.tl.fit_baseline(
                mdata,
                source,
                target,
                method="ridge",
                train="train",
                n_components=8,
                write_predictions=False,
                rng=0,
            )
            query = mdata[source][test].copy()
            model.predict(query)
            model.predict(query[:12].copy())
