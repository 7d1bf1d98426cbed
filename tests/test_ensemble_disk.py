"""The one fit path as fit_ensemble takes it: bounds on disk, backed sources, validation.

Also the contract that now holds for every model: held-out targets may be missing.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pytest

import scmm
from scmm.models import EnsembleModel

from .conftest import make_paired

KEYS = ("", "_lower", "_upper")
FAST = {"methods": ["ridge", "knn"], "n_folds": 3, "train": "train", "rng": 0}
TINY_MLP = {
    "mlp": {
        "hidden": [8],
        "n_components": 5,
        "max_epochs": 2,
        "training": {"verbose": False, "logger": None},
    }
}


def _permuted_target(mdata, seed=0):
    """The target modality's cells in another order than the source's."""
    perm = np.random.default_rng(seed).permutation(mdata["prot"].n_obs)
    mdata.mod["prot"] = mdata["prot"][perm].copy()
    mdata.update()
    return mdata


def _state(mdata):
    return set(mdata["prot"].layers), set(mdata.uns)


def test_predictions_and_bounds_on_disk_equal_in_memory(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SCMM_DISK_DIR", str(tmp_path))
    mdata = _permuted_target(make_paired(n_cells=150))
    mem = scmm.tl.fit_ensemble(mdata, "rna", "prot", key_added="mem", **FAST)
    assert list(tmp_path.iterdir()) == []
    # the three layers (150 × 6 float32 each) over the budget: to disk, blocks of 2 cells
    monkeypatch.setattr(scmm.settings, "memory_budget", 3 * 150 * 6 * 4 - 1)
    with caplog.at_level("WARNING", logger="scmm"):
        disk = scmm.tl.fit_ensemble(mdata, "rna", "prot", key_added="disk", **FAST)
    np.testing.assert_array_equal(disk.weights, mem.weights)
    layers = mdata["prot"].layers
    path = Path(mdata.uns["disk"]["predictions_path"])
    assert sorted(tmp_path.iterdir()) == sorted(
        path.with_name(path.stem + s + ".npy") for s in KEYS
    )
    for s in KEYS:
        values = layers["disk" + s]
        assert type(values) is np.ndarray and not values.flags.writeable  # a read-only map
        np.testing.assert_allclose(values, layers["mem" + s], rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(np.load(path.with_name(path.stem + s + ".npy")), values)
    scores, expected = mdata.uns["disk"]["scores"], mdata.uns["mem"]["scores"]
    assert list(scores) == list(expected)
    for k in ("pearson_per_cell", "rmse", "interval_coverage", "interval_width"):
        np.testing.assert_allclose(scores[k], expected[k], rtol=1e-6)
    # one line per layer says where it went
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(lines) == 3
    for s, line in zip(KEYS, lines, strict=True):
        assert f"layers['disk{s}']" in line and "150 × 6" in line
    mdata.write(tmp_path / "out.h5mu")
    back = md.read_h5mu(tmp_path / "out.h5mu")
    np.testing.assert_array_equal(back["prot"].layers["disk_upper"], layers["disk_upper"])


@pytest.mark.parametrize(("where", "n_ok"), [("derived_outputs", 1), ("extra_scores", 0)])
def test_a_failed_fit_leaves_no_file_and_the_mudata_untouched(where, n_ok, tmp_path, monkeypatch):
    """A failure while the bounds are written (after a first block), or while scoring."""
    monkeypatch.setenv("SCMM_DISK_DIR", str(tmp_path))
    mdata = make_paired(n_cells=120)
    before = _state(mdata)
    calls = []
    original = getattr(EnsembleModel, where)

    def broken(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > n_ok:
            raise RuntimeError("failed here")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(scmm.settings, "memory_budget", 8 * 4 * 6 * 3 * 5)  # blocks of 5 cells
    monkeypatch.setattr(EnsembleModel, where, broken)
    with pytest.raises(RuntimeError, match="failed here"):
        scmm.tl.fit_ensemble(mdata, "rna", "prot", write_predictions="disk", **FAST)
    assert list(tmp_path.iterdir()) == []
    assert _state(mdata) == before


def test_backed_source_is_read_in_row_blocks_never_loaded(tmp_path, monkeypatch):
    mdata = make_paired(n_cells=160, n_genes=60)
    mdata["rna"].obs["train"] = mdata.obs["train"].to_numpy()
    path = tmp_path / "rna.h5ad"
    mdata["rna"].write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    on_disk = md.MuData({"rna": backed, "prot": mdata["prot"].copy()})

    def fail(*args, **kwargs):
        pytest.fail("the backed matrix was loaded into memory")

    kw = {"methods": ["ridge", "mlp"], "n_folds": 2, "n_seeds": 1, "member_options": TINY_MLP}
    kw.update(train="train", rng=0)
    model = scmm.tl.fit_ensemble(mdata, "rna", "prot", **kw)
    assert model.reads_backed
    monkeypatch.setattr(type(backed.X), "to_memory", fail)
    scmm.tl.fit_ensemble(on_disk, "rna", "prot", **kw)
    for s in KEYS:
        np.testing.assert_allclose(
            on_disk["prot"].layers["scmm_ensemble" + s],
            mdata["prot"].layers["scmm_ensemble" + s],
            rtol=1e-3,
            atol=1e-3,
        )


def test_predict_agrees_with_fit_in_memory_and_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("SCMM_DISK_DIR", str(tmp_path))
    mdata = _permuted_target(make_paired(n_cells=120))
    model = scmm.tl.fit_ensemble(mdata, "rna", "prot", **FAST)
    query = md.MuData({"rna": mdata["rna"].copy(), "prot": mdata["prot"].copy()})
    scmm.tl.predict(model, query, key_added="mem")
    monkeypatch.setattr(scmm.settings, "memory_budget", 8 * 4 * 6 * 3 * 5)  # blocks of 5 cells
    scmm.tl.predict(model, query, key_added="disk")
    assert len(list(tmp_path.iterdir())) == 3
    for s in KEYS:
        fitted = mdata["prot"].layers["scmm_ensemble" + s]
        for key in ("mem", "disk"):  # the distances' float32 projection: rounding only
            np.testing.assert_allclose(query["prot"].layers[key + s], fitted, rtol=1e-5, atol=1e-6)
    assert not query["prot"].layers["disk_lower"].flags.writeable


def test_validation_reaches_the_neural_members():
    mdata = make_paired(n_cells=120)
    train = mdata.obs["train"].to_numpy()
    validation = train & (np.arange(120) % 3 == 0)
    kw = {"methods": ["ridge", "mlp"], "n_folds": 2, "n_seeds": 1, "member_options": TINY_MLP}
    model = scmm.tl.fit_ensemble(
        mdata, "rna", "prot", train="train", validation=validation, rng=0, **kw
    )
    assert model.fitted[1][0].history["val_loss"]  # the final MLP's validation loss
    plain = scmm.tl.fit_ensemble(mdata, "rna", "prot", train="train", key_added="p", rng=0, **kw)
    assert not plain.fitted[1][0].history["val_loss"]
    before = _state(mdata)
    with pytest.raises(ValueError, match="`validation` selects cells outside `train`"):
        scmm.tl.fit_ensemble(
            mdata, "rna", "prot", train="train", validation=~train, key_added="x", **kw
        )
    assert _state(mdata) == before


def test_every_model_reads_only_the_training_targets():
    """Missing (NaN) held-out targets change nothing but the scores, for any model."""
    mdata = make_paired(n_cells=120)
    nan = mdata.copy()
    nan["prot"].X[~nan.obs["train"].to_numpy()] = np.nan
    kw = {"method": "ridge", "n_components": 5, "train": "train", "rng": 0}
    scmm.tl.fit_baseline(mdata, "rna", "prot", **kw)
    scmm.tl.fit_baseline(nan, "rna", "prot", **kw)
    np.testing.assert_array_equal(
        nan["prot"].layers["scmm_ridge"], mdata["prot"].layers["scmm_ridge"]
    )
    assert "scores" in mdata.uns["scmm_ridge"] and "scores" not in nan.uns["scmm_ridge"]
    nan["prot"].X[1, 0] = np.nan  # a training cell's (cell 0 is held out)
    with pytest.raises(ValueError, match=r"target_layer=None \(.X\)` holds 1 NaN"):
        scmm.tl.fit_baseline(nan, "rna", "prot", key_added="x", **kw)
