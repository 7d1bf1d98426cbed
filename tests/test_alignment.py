"""predict(..., align=...): a query from another dataset aligned to the reference (issue 30)."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest

import scmm
from scmm.tl._align import ALIGN_METHODS, symphony_map


def _data(n_cells: int, *, seed: int, n_genes: int = 40):
    """Three cell types; proteins follow the type. Same type programmes in every call."""
    programmes = np.random.default_rng(11).gamma(0.6, 3.0, size=(3, n_genes))
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n_cells)
    rna = np.log1p(rng.poisson(programmes[labels] + 0.5)).astype(np.float32)
    prot = (programmes[labels][:, :3] / 3 + 0.2 * rng.normal(size=(n_cells, 3))).astype(np.float32)
    names = [f"s{seed}_{i}" for i in range(n_cells)]
    return md.MuData(
        {
            "rna": ad.AnnData(
                rna,
                obs=pd.DataFrame(index=names),
                var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]),
            ),
            "prot": ad.AnnData(
                prot, obs=pd.DataFrame(index=names), var=pd.DataFrame(index=["A", "B", "C"])
            ),
        }
    )


@pytest.fixture(scope="module")
def fitted():
    ref = _data(600, seed=0)
    model = scmm.tl.fit_baseline(ref, "rna", "prot", method="ridge", n_components=8, rng=0)
    return model


def _shifted(seed: int):
    """Another 'lab': every gene scaled and offset (a batch effect), same cell types."""
    query = _data(300, seed=seed)
    gen = np.random.default_rng(99)
    scale = gen.uniform(0.6, 1.4, query["rna"].n_vars).astype(np.float32)
    offset = gen.uniform(0.0, 0.8, query["rna"].n_vars).astype(np.float32)
    query["rna"].X = query["rna"].X * scale + offset
    return query


def test_align_none_keeps_todays_numbers(fitted):
    a, b = _data(50, seed=1), _data(50, seed=1)
    scmm.tl.predict(fitted, a)
    scmm.tl.predict(fitted, b, align=None)
    np.testing.assert_array_equal(a["prot"].layers["scmm_ridge"], b["prot"].layers["scmm_ridge"])
    assert "align" not in b.uns["scmm_ridge"]["params"]


def test_unknown_method_names_the_choices(fitted):
    with pytest.raises(ValueError, match=r"align='harmony'.*standardize"):
        scmm.tl.predict(fitted, _data(20, seed=2), align="harmony")


@pytest.mark.parametrize("method", ALIGN_METHODS)
def test_alignment_brings_a_shifted_query_back_to_the_reference(fitted, method):
    plain, aligned = _shifted(3), _shifted(3)
    with pytest.warns(UserWarning, match="farther from the reference"):
        scmm.tl.predict(fitted, plain)
    # the distance (and its warning) is measured before the alignment, which would hide it
    with pytest.warns(UserWarning, match="farther from the reference"):
        scmm.tl.predict(fitted, aligned, align=method)
    key = "scmm_ridge_reference_distance"
    np.testing.assert_array_equal(aligned["rna"].obs[key], plain["rna"].obs[key])
    assert aligned.uns["scmm_ridge"]["params"]["align"] == method
    y = plain["prot"].X

    def error(m):
        return float(np.mean((m["prot"].layers["scmm_ridge"] - y) ** 2))

    assert error(aligned) < error(plain)


def test_symphony_leaves_a_query_like_the_reference_almost_unchanged():
    gen = np.random.default_rng(0)
    centres = gen.normal(scale=5.0, size=(4, 6))
    ref = centres[gen.integers(0, 4, 1000)] + gen.normal(size=(1000, 6))
    query = centres[gen.integers(0, 4, 200)] + gen.normal(size=(200, 6))
    moved = symphony_map(query, ref)
    assert np.abs(moved - query).mean() < 0.2
    shifted = symphony_map(query + 3.0, ref)  # a shift common to all cells is removed
    assert np.abs(shifted - query).mean() < 0.25 * 3.0
