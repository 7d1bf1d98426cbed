"""Checkpoints and resuming: an interrupted run resumed with ``resume=True`` ends where an
uninterrupted run ends (weights, optimiser, schedule, epoch, data order, dropout, history)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback

import scmm
from scmm.nn import MLP
from scmm.train import TrainingConfig, predict, seeded, train

from .conftest import make_paired


class _Crash(Callback):
    """Raise in the middle of epoch ``epoch`` (after the checkpoint of the epoch before)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == 1:
            msg = "simulated crash"
            raise RuntimeError(msg)


def _problem(n=240, n_in=12, n_out=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in)).astype(np.float32)
    W = rng.normal(size=(n_in, n_out)) / np.sqrt(n_in)
    Y = (np.tanh(X @ W) + 0.1 * rng.normal(size=(n, n_out))).astype(np.float32)
    return X, Y


def _net(seed=0):
    # dropout and BatchNorm: the resumed run must also restore the random masks and buffers
    with seeded(seed):
        return MLP(12, 6, hidden=(24, 12), dropout=0.2)


CASES = {
    "one_cycle": {"swa": False},
    "validation_early_stopping": {"validation_fraction": 0.2, "patience": 3, "swa": False},
    "swa": {"swa": True, "swa_start": 2, "max_epochs": 5},
}


@pytest.mark.parametrize("case", list(CASES))
def test_resume_after_crash_matches_uninterrupted_run(tmp_path, case):
    X, Y = _problem()
    base = {"max_epochs": 4, "batch_size": 32, "loss": "mixed", "lr": 1e-2, **CASES[case]}
    ref_net, ref_hist = train(_net(), X, Y, config=TrainingConfig(**base), rng=3)
    ref = predict(ref_net, X)

    ckpt = tmp_path / "ckpt"
    cfg = TrainingConfig(**base, checkpoint_dir=str(ckpt))
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(_net(), X, Y, config=cfg, rng=3, callbacks=[_Crash(epoch=3)])
    saved = torch.load(ckpt / "last.ckpt", weights_only=True)
    assert saved["epoch"] == 2  # epochs 0, 1 and 2 completed before the crash
    assert (ckpt / "best.ckpt").is_file() == ("validation_fraction" in base)

    # a fresh network of another seed: everything must come from the checkpoint
    net, hist = train(_net(seed=9), X, Y, config=cfg.replace(resume=True), rng=3)
    assert hist["resumed_from"] == str(ckpt / "last.ckpt")
    assert hist["epoch"] == ref_hist["epoch"]
    assert hist["best_epoch"] == ref_hist["best_epoch"]
    assert hist["lr"] == ref_hist["lr"]
    assert hist["train_loss"] == ref_hist["train_loss"]
    # the same computations in the same order: bit-identical on CPU (on GPU, cuBLAS/atomics
    # may differ in the last bits between any two runs, resumed or not)
    np.testing.assert_array_equal(predict(net, X), ref)


def test_resume_changes_nothing_when_the_run_had_finished(tmp_path):
    X, Y = _problem()
    cfg = TrainingConfig(max_epochs=3, batch_size=32, checkpoint_dir=str(tmp_path))
    net, hist = train(_net(), X, Y, config=cfg, rng=0)
    again, hist2 = train(_net(seed=5), X, Y, config=cfg.replace(resume=True), rng=0)
    np.testing.assert_array_equal(predict(again, X), predict(net, X))
    assert hist2["epoch"] == hist["epoch"] == [0, 1, 2]


def test_resume_without_checkpoint_trains_from_scratch(tmp_path, caplog):
    X, Y = _problem()
    cfg = TrainingConfig(max_epochs=2, batch_size=32, loss="mse")
    net, _ = train(_net(), X, Y, config=cfg, rng=0)
    resumed, hist = train(
        _net(), X, Y, config=cfg.replace(checkpoint_dir=str(tmp_path), resume=True), rng=0
    )
    assert hist["resumed_from"] is None
    assert "training from scratch" in caplog.text
    np.testing.assert_array_equal(predict(resumed, X), predict(net, X))
    assert (tmp_path / "last.ckpt").is_file()


def test_resume_needs_checkpoint_dir():
    with pytest.raises(ValueError, match="`resume=True` needs `checkpoint_dir`"):
        TrainingConfig(resume=True)


def test_rerun_overwrites_checkpoints(tmp_path):
    X, Y = _problem()
    cfg = TrainingConfig(
        max_epochs=2,
        batch_size=32,
        validation_fraction=0.2,
        checkpoint_dir=str(tmp_path),
        swa=False,  # lightning's SWA adds an epoch (BatchNorm update): 3 epochs, not 2
    )
    train(_net(), X, Y, config=cfg, rng=0)
    train(_net(), X, Y, config=cfg.replace(max_epochs=3), rng=0)
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["best.ckpt", "last.ckpt"]
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["epoch"] == 2


def test_fit_mlp_passes_checkpoint_dir_and_resume(tmp_path):
    mdata = make_paired(n_cells=100)
    kw = {
        "n_components": 6,
        "hidden": [16],
        "max_epochs": 3,
        "rng": 0,
    }
    training = {"batch_size": 32, "device": "cpu", "verbose": False}
    training["checkpoint_dir"] = str(tmp_path)
    model = scmm.tl.fit_mlp(mdata, "rna", "prot", training=training, **kw)
    assert (tmp_path / "last.ckpt").is_file()
    first = mdata["prot"].layers["scmm_mlp"].copy()
    resumed = scmm.tl.fit_mlp(mdata, "rna", "prot", training={**training, "resume": True}, **kw)
    assert resumed.history["resumed_from"] == str(tmp_path / "last.ckpt")
    assert model.history["resumed_from"] is None
    np.testing.assert_array_equal(mdata["prot"].layers["scmm_mlp"], first)
