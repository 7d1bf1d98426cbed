"""``scmm.tl.tune_mlp`` (Optuna architecture search) and ``scmm.pl.tune_trials``."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes

import scmm

from .conftest import make_paired

optuna = pytest.importorskip("optuna")

SMALL = {"n_layers": [1, 2], "width": [8, 16]}  # tiny networks: each trial takes ~0.1 s
PARAM_COLUMNS = ["hidden", "skip", "dropout", "lr", "weight_decay", "loss"]


def _paired(*, sparse: bool = True):
    mdata = make_paired(sparse=sparse)
    mdata.obs["donor"] = np.array(["d1", "d2", "d3"])[np.arange(mdata.n_obs) % 3]
    return mdata


def _tune(mdata, **kw):
    args = {
        "n_trials": 3,
        "n_components": 5,
        "max_epochs": 1,
        "search_space": SMALL,
        "train": "train",
        "verbose": False,
        "rng": 0,
    }
    return scmm.tl.tune_mlp(mdata, "rna", "prot", **{**args, **kw})


def _snapshot(mdata):
    return {
        "obs": mdata.obs.copy(),
        "uns": set(mdata.uns),
        "mods": {
            name: {
                "X": mod.X.copy(),
                "layers": {k: v.copy() for k, v in mod.layers.items()},
                "obsm": set(mod.obsm),
                "varm": set(mod.varm),
                "uns": set(mod.uns),
                "obs": mod.obs.copy(),
            }
            for name, mod in mdata.mod.items()
        },
    }


def _dense(x):
    return x.toarray() if hasattr(x, "toarray") else np.asarray(x)


def _assert_same_except_uns(before, after, new_uns=()):
    pd.testing.assert_frame_equal(before["obs"], after["obs"])
    assert after["uns"] == before["uns"] | set(new_uns)
    for name, mod in before["mods"].items():
        other = after["mods"][name]
        np.testing.assert_array_equal(_dense(mod["X"]), _dense(other["X"]))
        assert mod["layers"].keys() == other["layers"].keys()
        for k in mod["layers"]:
            np.testing.assert_array_equal(_dense(mod["layers"][k]), _dense(other["layers"][k]))
        for part in ("obsm", "varm", "uns"):
            assert mod[part] == other[part], f"{name}.{part} changed"
        pd.testing.assert_frame_equal(mod["obs"], other["obs"])


def test_result_and_trials_table():
    mdata = _paired()
    result = _tune(mdata, n_trials=4)
    assert isinstance(result, scmm.tl.TuneResult)
    trials = result.trials
    assert len(trials) == 4
    assert list(trials.columns) == ["number", "score", "duration", "state", *PARAM_COLUMNS]
    assert trials["number"].tolist() == [0, 1, 2, 3]
    assert (trials["state"] == "COMPLETE").all()
    assert (trials["duration"] > 0).all()
    assert result.best_score == trials["score"].max()
    assert -1 <= result.best_score <= 1
    best_row = trials.loc[trials["score"].idxmax()]
    assert best_row["hidden"] == ",".join(map(str, result.best_params["hidden"]))
    assert best_row["loss"] == result.best_params["loss"]
    np.testing.assert_allclose(best_row["lr"], result.best_params["lr"], rtol=0)
    assert sorted(result.best_params) == sorted(PARAM_COLUMNS)
    assert set(result.best_params["hidden"]) <= {8, 16}
    assert 1 <= len(result.best_params["hidden"]) <= 2
    fixed = {
        "input": "svd+raw",
        "n_components": 5,
        "max_epochs": 1,
        "training": {"batch_size": 64},
    }
    assert result.fixed == fixed
    # the uns entry mirrors the result
    uns = mdata.uns["scmm_tune_mlp"]
    assert uns["best_score"] == result.best_score
    pd.testing.assert_frame_equal(uns["trials"], trials)
    assert uns["params"]["n_tuning_cells"] == len(result.tuning_cells)
    assert uns["params"]["n_fit_cells"] + len(result.tuning_cells) == mdata.obs["train"].sum()


def test_same_rng_same_trials_other_rng_other_trials():
    a = _tune(_paired(), rng=3)
    b = _tune(_paired(), rng=3)
    c = _tune(_paired(), rng=4)
    pd.testing.assert_frame_equal(
        a.trials.drop(columns="duration"), b.trials.drop(columns="duration")
    )
    assert a.best_params == b.best_params
    assert a.tuning_cells.equals(b.tuning_cells)
    assert not a.trials[PARAM_COLUMNS].equals(c.trials[PARAM_COLUMNS])


def test_test_cells_are_never_used():
    clean = _paired(sparse=False)
    reference = _tune(clean)
    train = clean.obs["train"].to_numpy()
    assert train[clean["rna"].obs_names.get_indexer(reference.tuning_cells)].all()

    dirty = _paired(sparse=False)
    rna, prot = dirty["rna"], dirty["prot"]
    rna.X[~train] = np.nan  # the test cells' source and target values are garbage
    prot.X[~train] = np.nan
    assert np.isnan(dirty["rna"].X).any() and np.isnan(dirty["prot"].X).any()
    result = _tune(dirty)
    pd.testing.assert_frame_equal(
        result.trials.drop(columns="duration"), reference.trials.drop(columns="duration")
    )
    assert result.tuning_cells.equals(reference.tuning_cells)


def test_groupby_holds_out_whole_groups():
    mdata = _paired()
    donor = mdata.obs["donor"]
    train = mdata.obs["train"]
    result = _tune(mdata, n_trials=1, groupby="donor")
    (group,) = set(donor[result.tuning_cells])
    expected = mdata.obs_names[(donor == group).to_numpy() & train.to_numpy()]
    assert set(result.tuning_cells) == set(expected)  # the whole group, its training cells only
    assert list(mdata.uns["scmm_tune_mlp"]["params"]["tuning_groups"]) == [group]

    chosen = _tune(mdata, n_trials=1, groupby="donor", validation=["d1", "d3"])
    assert set(donor[chosen.tuning_cells]) == {"d1", "d3"}
    assert len(chosen.tuning_cells) == int((donor.isin(["d1", "d3"]) & train).sum())


def test_validation_mask_and_fraction():
    mdata = _paired()
    train = mdata.obs["train"].to_numpy()
    mask = train & (np.arange(mdata.n_obs) < 40)
    result = _tune(mdata, n_trials=1, validation=mask)
    assert set(result.tuning_cells) == set(mdata.obs_names[mask])
    result = _tune(mdata, n_trials=1, validation_fraction=0.5)
    assert len(result.tuning_cells) == round(0.5 * train.sum())


def test_bad_arguments():
    mdata = _paired()
    with pytest.raises(ValueError, match="'depth'"):
        _tune(mdata, search_space={"depth": [2]})
    with pytest.raises(ValueError, match="range"):
        _tune(mdata, search_space={"loss": ("mse", "mixed")})
    with pytest.raises(ValueError, match="low > 0"):
        _tune(mdata, search_space={"lr": (0.0, 0.1)})
    with pytest.raises(ValueError, match="'huber'"):
        _tune(mdata, search_space={"loss": ["mse", "huber"]})
    with pytest.raises(KeyError, match="groupby='batch'"):
        _tune(mdata, groupby="batch")
    with pytest.raises(ValueError, match="'d9'"):
        _tune(mdata, groupby="donor", validation="d9")
    with pytest.raises(ValueError, match="outside `train`"):
        _tune(mdata, validation=np.ones(mdata.n_obs, dtype=bool))
    with pytest.raises(ValueError, match="needs `groupby`"):
        _tune(mdata, validation=["d1"])
    with pytest.raises(ValueError, match="searched"):
        _tune(mdata, fit_kwargs={"lr": 1e-3})
    with pytest.raises(ValueError, match="sets itself"):
        _tune(mdata, fit_kwargs={"rng": 1})
    with pytest.raises(ValueError, match="searches or sets"):
        _tune(mdata, fit_kwargs={"training": {"batch_size": 8}})
    with pytest.raises(ValueError, match="not an argument"):
        _tune(mdata, fit_kwargs={"lerning_rate": 1e-3})
    with pytest.raises(ValueError, match="timeout"):
        _tune(mdata, n_trials=None)
    with pytest.raises(KeyError, match="target='atac'"):
        scmm.tl.tune_mlp(mdata, "rna", "atac", n_trials=1)
    assert "scmm_tune_mlp" not in mdata.uns


def test_fixed_values_and_fit_kwargs():
    mdata = _paired()
    result = _tune(
        mdata,
        n_trials=2,
        search_space={"n_layers": 1, "width": [8], "skip": "all", "loss": "mse", "lr": 1e-3},
        fit_kwargs={"training": {"swa": False}},
    )
    assert (result.trials["hidden"] == "8").all()
    assert (result.trials["skip"] == "all").all()
    assert (result.trials["loss"] == "mse").all()
    assert result.best_params["lr"] == 1e-3
    assert result.fixed["training"] == {"batch_size": 64, "swa": False}
    assert mdata.uns["scmm_tune_mlp"]["params"]["fixed"]["training"]["swa"] is False


def test_mdata_unchanged_except_uns_and_writable(tmp_path):
    mdata = _paired()
    before = _snapshot(mdata)
    result = _tune(mdata, n_trials=2, groupby="donor", key_added="tuned")
    _assert_same_except_uns(before, _snapshot(mdata), new_uns={"tuned"})
    mdata.write(tmp_path / "tuned.h5mu")
    import mudata as md

    back = md.read_h5mu(tmp_path / "tuned.h5mu").uns["tuned"]
    np.testing.assert_allclose(back["best_score"], result.best_score, rtol=1e-12)
    np.testing.assert_allclose(back["trials"]["score"], result.trials["score"], rtol=1e-12)
    assert list(back["best_params"]["hidden"]) == result.best_params["hidden"]


def test_failed_trials_leave_mdata_untouched(monkeypatch):
    from scmm.models import MLPModel

    mdata = _paired()
    before = _snapshot(mdata)

    def diverged(self, X):
        return np.full((X.shape[0], len(self.target_features)), np.nan, dtype=np.float32)

    monkeypatch.setattr(MLPModel, "predict_array", diverged)
    with pytest.raises(RuntimeError, match="All 2 trials failed"):
        _tune(mdata, n_trials=2)
    _assert_same_except_uns(before, _snapshot(mdata))


@pytest.mark.filterwarnings("ignore:.*does not beat the mean profile")  # tiny synthetic fit
def test_best_params_refit_with_fit_mlp():
    mdata = _paired()
    result = _tune(mdata, n_trials=2)
    kwargs = result.fit_kwargs
    assert kwargs["training"]["lr"] == result.best_params["lr"]
    kwargs["training"]["verbose"] = False
    model = scmm.tl.fit_mlp(mdata, "rna", "prot", **kwargs, train="train")
    assert model.params["hidden"] == result.best_params["hidden"]
    assert model.params["training"]["loss"] == result.best_params["loss"]
    assert model.params["training"]["batch_size"] == result.fixed["training"]["batch_size"]
    assert mdata["prot"].layers["scmm_mlp"].shape == mdata["prot"].shape


def test_optuna_logging_restored_and_missing_optuna(monkeypatch):
    optuna.logging.set_verbosity(optuna.logging.INFO)
    _tune(_paired(), n_trials=1)
    assert optuna.logging.get_verbosity() == optuna.logging.INFO

    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` now fails
    with pytest.raises(ImportError, match=r"pip install -e '\.\[tune\]'"):
        _tune(_paired(), n_trials=1)


def test_tune_trials_plot(tmp_path):
    import matplotlib.pyplot as plt

    mdata = _paired()
    result = _tune(mdata, n_trials=3)
    ax = scmm.pl.tune_trials(result)
    assert isinstance(ax, Axes)
    assert len(ax.collections) == 1 and len(ax.lines) == 2
    running = ax.lines[0].get_ydata()
    np.testing.assert_allclose(running, np.maximum.accumulate(result.trials["score"]))
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [result.best_score])
    _, given = plt.subplots()
    assert scmm.pl.tune_trials(mdata.uns["scmm_tune_mlp"], ax=given) is given
    with pytest.raises(TypeError, match="TuneResult"):
        scmm.pl.tune_trials([0.1, 0.2])
    with pytest.raises(ValueError, match="no completed trial"):
        scmm.pl.tune_trials(pd.DataFrame({"number": [0], "score": [np.nan]}))
    plt.close("all")
