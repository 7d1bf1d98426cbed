"""scmm.tl.calibrate: a query's level offsets and intervals from a few of its measured cells."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest

import scmm

OFFSET = np.array([2.0, -1.0, 0.5, 3.0])  # another lab's level of each protein


#: How each toy protein follows the genes (the same in both labs).
WEIGHTS = np.random.default_rng(5).normal(0.0, 1.0, (30, 4)) / np.sqrt(30)


def _follow_rna(mdata, offset, seed: int) -> None:
    """Make the toy proteins a function of the toy genes, plus ``offset`` and noise."""
    rna = mdata["rna"].X
    signal = (rna - rna.mean(axis=0)) @ WEIGHTS
    noise = np.random.default_rng(seed).normal(0.0, 0.5, signal.shape) * signal.std(axis=0)
    mdata["prot"].X = (signal + offset + noise).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    ref = scmm.datasets.toy_cite(300, rng=0)
    _follow_rna(ref, 0.0, seed=3)
    return scmm.tl.fit_baseline(ref, "rna", "prot", method="ridge", n_components=25, rng=0)


def _query(model, n_obs: int = 400):
    """Another lab's cells: the same dependence on the genes, every level offset."""
    query = scmm.datasets.toy_cite(n_obs, rng=1)
    _follow_rna(query, OFFSET, seed=4)
    scmm.tl.predict(model, query, key_added="r")
    query["prot"].obs["measured"] = np.arange(n_obs) < 100
    return query


def test_offsets_are_recovered_and_the_other_cells_covered(model):
    query = _query(model)
    scmm.tl.calibrate(query, "r", "prot", cells="measured")
    out = query.uns["r_calibrated"]
    assert out["params"]["n_cells"] == 100
    assert list(out["features"]) == list(query["prot"].var_names)
    np.testing.assert_allclose(out["offset"], OFFSET, atol=0.4)
    other = ~query["prot"].obs["measured"].to_numpy()
    layers = query["prot"].layers
    y = query["prot"].X[other]
    lower, upper = layers["r_calibrated_lower"][other], layers["r_calibrated_upper"][other]
    coverage = ((y >= lower) & (y <= upper)).mean()
    assert 0.85 <= coverage <= 0.95
    np.testing.assert_allclose(
        upper - lower, np.broadcast_to(2 * out["half_width"], y.shape), rtol=1e-5
    )

    def rmse(p):
        return float(np.sqrt(((p[other] - y) ** 2).mean()))

    assert rmse(layers["r_calibrated"]) < 0.6 * rmse(layers["r"])
    # an offset per target: per-target Pearson unchanged
    np.testing.assert_allclose(
        scmm.metrics.pearson_per_feature(y, layers["r_calibrated"][other]),
        scmm.metrics.pearson_per_feature(y, layers["r"][other]),
        atol=1e-5,
    )


def test_another_panel_is_calibrated_on_the_shared_targets(model):
    """Predictions in the source's .obsm (the query measured other proteins): shared only."""
    query = _query(model)
    prot = query["prot"]
    names = ["CD3_TotalSeqB", "CD8a", "IgG1_control", "CD45RA"]  # CD4, CD19 not measured
    values = np.column_stack([prot.X[:, 0], prot.X[:, 2], prot.X[:, 1], prot.X[:, 3]])
    other = md.MuData(
        {
            "rna": query["rna"].copy(),
            "adt": ad.AnnData(values, obs=prot.obs.copy(), var=pd.DataFrame(index=pd.Index(names))),
        }
    )
    scmm.tl.predict(model, other, key_added="r")  # no "prot" modality: into rna's .obsm
    with pytest.raises(KeyError, match=r"No predictions 'nokey'.*Run `scmm\.tl\.predict"):
        scmm.tl.calibrate(other, "nokey", "adt")
    other.mod["prot"] = other.mod.pop("adt")
    other.update()
    scmm.tl.calibrate(other, "r", "prot", cells="measured")
    frame = other["rna"].obsm["r_calibrated"]
    assert list(frame.columns) == ["CD3", "CD8"]
    assert list(other.uns["r_calibrated"]["left_out"]) == ["CD4", "CD19"]
    np.testing.assert_allclose(other.uns["r_calibrated"]["offset"], OFFSET[[0, 2]], atol=0.4)
    assert list(other["rna"].obsm["r_calibrated_upper"].columns) == ["CD3", "CD8"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"cells": np.arange(400) < 5}, ValueError, "at least 9 are needed"),
        ({"cells": np.ones(10, dtype=bool)}, ValueError, "boolean mask over the 400 cells"),
        ({"cells": "nope"}, KeyError, "not a column"),
        ({"interval": 1.0}, ValueError, "between 0 and 1"),
        ({"cells": np.arange(400) < 1, "interval": 0.5}, ValueError, "at least 2 are needed"),
    ],
)
def test_bad_input_is_refused_and_nothing_written(model, kwargs, error, match):
    query = _query(model)
    with pytest.raises(error, match=match):
        scmm.tl.calibrate(query, "r", "prot", **kwargs)
    assert "r_calibrated" not in query.uns
    assert "r_calibrated" not in query["prot"].layers


def test_measured_cells_without_predictions_are_refused(model):
    query = _query(model)
    later = md.MuData({"rna": query["rna"][100:].copy()})  # the measured cells not predicted
    scmm.tl.predict(model, later, key_added="r")
    prot = query["prot"].copy()
    del prot.layers["r"]  # the predictions are only those of the later cells, in rna's .obsm
    both = md.MuData({"rna": later["rna"], "prot": prot})
    with pytest.raises(ValueError, match="100 measured cells have no prediction"):
        scmm.tl.calibrate(both, "r", "prot", cells="measured")
    assert "r_calibrated" not in both["rna"].obsm


def test_raw_count_measurements_are_refused(model):
    """Counts against normalised predictions would give offsets in another space."""
    query = _query(model)
    counts = np.random.default_rng(0).poisson(20.0, query["prot"].shape).astype(np.float32)
    query["prot"].X = counts
    with pytest.raises(ValueError, match=r"holds raw counts .*method='clr'"):
        scmm.tl.calibrate(query, "r", "prot", cells="measured")
    assert "r_calibrated" not in query.uns
    assert "r_calibrated" not in query["prot"].layers


def test_targets_whose_predictions_do_not_follow_are_named(model):
    """REAP-seq's CD4 against the 5′ panel's: a target measured otherwise by the query."""
    query = _query(model)
    query["prot"].X[:, 1] = -query["prot"].X[:, 1]  # CD4 measured with the opposite sign
    weakly = r"1 of 4 targets follow the measured values weakly at best .*: CD4 -0\."
    with pytest.warns(UserWarning, match=weakly):
        scmm.tl.calibrate(query, "r", "prot", cells="measured")
    out = query.uns["r_calibrated"]
    assert list(out["weak"]) == ["CD4"]
    assert out["pearson"][1] < 0 < min(out["pearson"][[0, 2, 3]])
