"""Intervals on a shifted query: the shift warning says they under-cover (issue 30 part 4)."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest

import scmm
from scmm.models._reference_distance import MEASURED_COVERAGE


def _cells(n_per_type: int, types: list[int], *, seed: int, n_genes: int = 60) -> md.MuData:
    """Poisson counts (log1p) around type-specific gene means; type programmes fixed."""
    programmes = np.random.default_rng(123).gamma(0.5, 4.0, size=(5, n_genes))
    rng = np.random.default_rng(seed)
    labels = np.repeat(types, n_per_type)
    rna = np.log1p(rng.poisson(programmes[labels] + 0.5)).astype(np.float32)
    prot = programmes[labels][:, :4] / 4 + 0.3 * rng.normal(size=(len(labels), 4))
    names = [f"s{seed}_c{i}" for i in range(len(labels))]
    return md.MuData(
        {
            "rna": ad.AnnData(
                rna,
                obs=pd.DataFrame(index=names),
                var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]),
            ),
            "prot": ad.AnnData(
                prot.astype(np.float32),
                obs=pd.DataFrame(index=names),
                var=pd.DataFrame(index=["CD3", "CD4", "CD8", "CD19"]),
            ),
        }
    )


@pytest.fixture(scope="module")
def reference():
    return _cells(120, [0, 1, 2], seed=0)


def test_shift_warning_of_a_model_with_intervals_says_they_under_cover(reference):
    model = scmm.tl.fit_ensemble(
        reference, "rna", "prot", methods=["ridge", "knn"], n_folds=3, rng=0
    )
    unseen = _cells(60, [3], seed=2)
    with pytest.warns(UserWarning, match="farther from the reference") as record:
        scmm.tl.predict(model, unseen)
    (message,) = [str(w.message) for w in record if "farther" in str(w.message)]
    assert "90% intervals `scmm_ensemble_lower` / `scmm_ensemble_upper`" in message
    assert "calibrated on the reference's cells and under-cover on shifted cells" in message
    for what, coverage in MEASURED_COVERAGE:  # the measured numbers, each a percentage
        assert f"{what}: {coverage}" in message
        assert coverage.endswith("%")


def test_shift_warning_of_a_model_without_intervals_says_nothing_of_them(reference):
    model = scmm.tl.fit_baseline(reference, "rna", "prot", method="ridge", n_components=10)
    unseen = _cells(60, [3], seed=2)
    with pytest.warns(UserWarning, match="farther from the reference") as record:
        scmm.tl.predict(model, unseen)
    assert not any("intervals" in str(w.message) for w in record)
