"""The training engine: each TrainingConfig option does what it says (small CPU runs)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from lightning.pytorch.callbacks import Callback

from scmm.nn import MLP
from scmm.train import (
    TrainingConfig,
    correlation_loss,
    lr_range_test,
    predict,
    seeded,
    sparsity_penalty,
    train,
)


def _problem(n=300, n_in=16, n_out=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in)).astype(np.float32)
    W = rng.normal(size=(n_in, n_out)) / np.sqrt(n_in)
    Y = (np.tanh(X @ W) + 0.1 * rng.normal(size=(n, n_out))).astype(np.float32)
    return X, Y


def _net(n_in=16, n_out=8, seed=0, **kw):
    with seeded(seed):
        return MLP(n_in, n_out, hidden=kw.pop("hidden", (32, 16)), **kw)


def _cfg(**kw):
    base = {"max_epochs": 6, "batch_size": 64, "loss": "mse", "lr": 1e-2, "swa": False}
    return TrainingConfig(**{**base, **kw})


# --- losses -------------------------------------------------------------------------------------
def test_correlation_loss_matches_numpy_pearson():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(50, 30))
    b = a + rng.normal(size=(50, 30))
    ref = np.mean([np.corrcoef(a[i], b[i])[0, 1] for i in range(50)])
    got = correlation_loss(torch.tensor(a, dtype=torch.float32), torch.tensor(b))
    np.testing.assert_allclose(float(got), -ref, rtol=1e-5)


def test_correlation_loss_zero_variance_row_is_finite():
    a = torch.ones(2, 5)
    b = torch.randn(2, 5)
    assert torch.isfinite(correlation_loss(a, b))


# --- one-cycle ----------------------------------------------------------------------------------
def test_one_cycle_trace_peaks_at_lr_then_stays_at_min_lr():
    X, Y = _problem()
    cfg = _cfg(max_epochs=8, schedule_epochs=4, lr=5e-3, min_lr=1e-5)
    _, hist = train(_net(), X, Y, config=cfg, rng=0)
    lrs = np.asarray(hist["lr"])
    spe = hist["steps_per_epoch"]
    assert len(lrs) == 8 * spe
    np.testing.assert_allclose(lrs.max(), 5e-3, rtol=1e-6)
    assert lrs[0] < 5e-3 / 10  # warm-up starts low
    peak = int(np.argmax(lrs))
    assert 0 < peak < 4 * spe
    np.testing.assert_allclose(lrs[4 * spe - 1 :], 1e-5, rtol=1e-6)  # flat after schedule
    assert np.all(np.diff(lrs[peak : 4 * spe]) <= 1e-12)  # annealing is monotone


def test_no_one_cycle_keeps_constant_lr():
    X, Y = _problem()
    _, hist = train(_net(), X, Y, config=_cfg(one_cycle=False, lr=2e-3), rng=0)
    np.testing.assert_allclose(hist["lr"], 2e-3)


# --- SWA ----------------------------------------------------------------------------------------
class _Snapshots(Callback):
    def __init__(self):
        self.snaps = {}

    def on_train_epoch_start(self, trainer, pl_module):
        self.snaps[trainer.current_epoch] = {
            k: v.detach().clone() for k, v in pl_module.net.named_parameters()
        }


def test_swa_weights_are_mean_of_epoch_snapshots():
    X, Y = _problem(n=256)  # equal batches: BatchNorm's average of batch means = overall mean
    snaps = _Snapshots()
    cfg = _cfg(max_epochs=8, swa=True, swa_start=4, swa_lr=1e-3)
    net, hist = train(_net(), X, Y, config=cfg, rng=0, callbacks=[snaps])
    # SWA lr takes over from swa_start; one-cycle finished before it
    spe = hist["steps_per_epoch"]
    lrs = np.asarray(hist["lr"])
    np.testing.assert_allclose(lrs[4 * spe :], 1e-3, rtol=1e-6)
    assert lrs[: 4 * spe].max() == pytest.approx(1e-2, rel=1e-2)
    # averaged: the weights at the start of epochs 4..7 (lightning's convention)
    epochs = range(4, 8)
    params = dict(net.named_parameters())
    for name, p in params.items():
        mean = torch.stack([snaps.snaps[e][name] for e in epochs]).mean(0)
        torch.testing.assert_close(p.detach(), mean, rtol=1e-5, atol=1e-6)
    last = snaps.snaps[7]
    assert any(not torch.allclose(params[k].detach(), last[k]) for k in params)
    # BatchNorm statistics recomputed for the averaged weights: running mean of the first BN
    # equals the mean of the first block's linear output over the training cells
    lin, bn = net.trunk[0][0], net.trunk[0][1]
    with torch.no_grad():
        h = lin(torch.from_numpy(X))
    np.testing.assert_allclose(bn.running_mean.numpy(), h.mean(0).numpy(), rtol=1e-3, atol=1e-4)
    assert hist["epoch"] == list(range(8))


def test_one_epoch_is_trained_not_averaged_back_to_the_initial_weights():
    """SWA averages the weights at each SWA epoch's start: of one epoch, only the initial ones."""
    X, Y = _problem(n=256)
    start = {k: v.detach().clone() for k, v in _net().named_parameters()}
    net, hist = train(_net(), X, Y, config=_cfg(max_epochs=1, swa=True), rng=0)
    assert hist["swa_start_epoch"] is None  # nothing trained to average: SWA skipped
    moved = [not torch.allclose(p.detach(), start[k]) for k, p in net.named_parameters()]
    assert all(moved)
    with pytest.raises(ValueError, match=r"must be in \[1, max_epochs=4\)"):
        TrainingConfig(max_epochs=4, swa_start=0)


def test_default_swa_start_counts_optimiser_steps():
    cfg = TrainingConfig(max_epochs=40)
    assert cfg.swa_start_epoch(84) == 5  # ceil(400 / 84): a large training set
    assert cfg.swa_start_epoch(5) == 30  # 75% of the epochs at the latest
    assert cfg.swa_start_epoch() == 30
    assert TrainingConfig(max_epochs=40, swa_start=7).swa_start_epoch(84) == 7
    assert cfg.schedule_epochs_value(84) == 5  # the one-cycle ends where SWA starts
    # in a run: 256 cells in batches of 8 = 32 steps per epoch, SWA from epoch ceil(400/32) = 13
    X, Y = _problem(n=256)
    cfg = _cfg(max_epochs=20, batch_size=8, swa=True, swa_lr=1e-3)
    _, hist = train(_net(), X, Y, config=cfg, rng=0)
    assert (hist["steps_per_epoch"], hist["swa_start_epoch"]) == (32, 13)
    np.testing.assert_allclose(np.asarray(hist["lr"])[13 * 32 :], 1e-3, rtol=1e-6)
    assert np.asarray(hist["lr"])[13 * 32 - 1] != pytest.approx(1e-3)


# --- sparsity / weight penalties ----------------------------------------------------------------
def test_sparsity_penalty_has_gradient():
    pred = torch.randn(20, 5, requires_grad=True)
    for kind in ("kl", "l1"):
        (g,) = torch.autograd.grad(sparsity_penalty(pred, kind, 0.05), pred)
        assert g.abs().sum() > 0


def test_sparsity_lowers_mean_predicted_activation():
    X, Y = _problem()
    Y = Y + 1.0  # positive targets: a sparsity pull is visible
    base, _ = train(_net(), X, Y, config=_cfg(max_epochs=8), rng=0)
    sparse, _ = train(
        _net(), X, Y, config=_cfg(max_epochs=8, sparsity="kl", sparsity_weight=5.0), rng=0
    )
    act = lambda net: torch.sigmoid(torch.from_numpy(predict(net, X))).mean().item()  # noqa: E731
    assert act(sparse) < act(base) - 0.02


def test_l1_l2_penalties_shrink_weights():
    X, Y = _problem()
    cfg = {"max_epochs": 15, "weight_decay": 0.0}

    def weights(net):
        return torch.cat([p.detach().flatten() for p in net.parameters() if p.ndim >= 2])

    w0 = weights(train(_net(), X, Y, config=_cfg(**cfg), rng=0)[0])
    w2 = weights(train(_net(), X, Y, config=_cfg(l2=1e-2, **cfg), rng=0)[0])
    w1 = weights(train(_net(), X, Y, config=_cfg(l1=1e-2, **cfg), rng=0)[0])
    assert (w2**2).sum() < 0.8 * (w0**2).sum()
    assert w1.abs().sum() < 0.8 * w0.abs().sum()
    # L1 drives more weights near zero than no penalty
    assert (w1.abs() < 1e-3).float().mean() > (w0.abs() < 1e-3).float().mean()


# --- validation and early stopping --------------------------------------------------------------
def test_early_stopping_stops_and_restores_best_epoch():
    X, Y = _problem(n=200)
    rng = np.random.default_rng(3)
    Y_noise = rng.normal(size=Y.shape).astype(np.float32)  # pure noise: overfits immediately
    val = np.zeros(200, dtype=bool)
    val[:60] = True
    cfg = _cfg(max_epochs=60, patience=3, one_cycle=False, lr=3e-2, batch_size=32)
    net, hist = train(_net(hidden=(128, 128)), X, Y_noise, config=cfg, validation=val, rng=0)
    assert hist["stopped_epoch"] < 59
    best = int(np.argmin(hist["val_loss"]))
    assert hist["best_epoch"] == hist["epoch"][best]
    assert hist["stopped_epoch"] == hist["best_epoch"] + 3
    # restored weights give the best epoch's validation loss
    pred = predict(net, X[val])
    np.testing.assert_allclose(
        ((pred - Y_noise[val]) ** 2).mean(), min(hist["val_loss"]), rtol=1e-4
    )


def test_validation_fraction_and_mask_errors():
    X, Y = _problem(n=50)
    _, hist = train(_net(), X, Y, config=_cfg(validation_fraction=0.2, max_epochs=2), rng=0)
    assert hist["n_val"] == 10 and len(hist["val_loss"]) == 2
    with pytest.raises(ValueError, match="validation"):
        train(_net(), X, Y, config=_cfg(), validation=np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="patience"):
        train(_net(), X, Y, config=_cfg(patience=2))
    with pytest.raises(ValueError, match="swa"):
        TrainingConfig(swa=True, patience=3)
    with pytest.raises(ValueError, match="loss"):
        TrainingConfig(loss="huber")


# --- reproducibility ----------------------------------------------------------------------------
def test_same_rng_same_predictions_other_rng_differs():
    X, Y = _problem()
    cfg = _cfg(max_epochs=3, validation_fraction=0.1)
    state = torch.random.get_rng_state()
    a = predict(train(_net(dropout=0.2), X, Y, config=cfg, rng=7)[0], X)
    b = predict(train(_net(dropout=0.2), X, Y, config=cfg, rng=7)[0], X)
    c = predict(train(_net(dropout=0.2), X, Y, config=cfg, rng=8)[0], X)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-4
    assert torch.equal(state, torch.random.get_rng_state())  # global state untouched


# --- decoder (target SVD) -----------------------------------------------------------------------
def test_decoder_maps_coefficients_to_targets():
    X, Y = _problem(n_out=12)
    mean = Y.mean(0)
    _, _, vt = np.linalg.svd(Y - mean, full_matrices=False)
    comps = vt[:4].astype(np.float32)
    cfg = _cfg(loss="correlation", max_epochs=10)
    net, hist = train(_net(n_out=4), X, Y, config=cfg, rng=0, decoder=comps, decoder_bias=mean)
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    pred = predict(net, X, decoder=comps, decoder_bias=mean)
    assert pred.shape == Y.shape
    r = np.mean([np.corrcoef(pred[i], Y[i])[0, 1] for i in range(len(Y))])
    np.testing.assert_allclose(-r, hist["train_loss"][-1], atol=0.1)
    assert r > 0.5


# --- sparse raw input ---------------------------------------------------------------------------
def test_sparse_input_trains_without_densifying():
    n, p = 400, 50_000
    X = sp.random(n, p, density=0.002, format="csr", dtype=np.float32, random_state=0)
    w = np.random.default_rng(0).normal(size=(p, 4)).astype(np.float32)
    Y = np.asarray(X @ w, dtype=np.float32)
    with seeded(0):
        net = MLP(p, 4, hidden=(8,))
    dense_bytes = n * p * 4  # 80 MB
    weight_bytes = p * 8 * 4
    tracemalloc.start()
    net, hist = train(net, (X,), Y, config=_cfg(max_epochs=2, batch_size=100), rng=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert np.isfinite(hist["train_loss"]).all()
    # only weights, their gradients and Adam state (a few copies) plus sparse batches
    assert peak < dense_bytes / 4
    assert peak < 12 * weight_bytes + 5e6
    assert predict(net, X).shape == (n, 4)


def test_sparse_and_dense_inputs_agree():
    X, _ = _problem()
    Xs = sp.csr_matrix(X)
    net = _net()
    dense = predict(net, X)
    np.testing.assert_allclose(predict(net, Xs), dense, rtol=1e-5, atol=1e-5)


# --- LR range test ------------------------------------------------------------------------------
def test_lr_range_test_exponential_and_suggests_in_range():
    X, Y = _problem()
    net = _net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    res = lr_range_test(net, X, Y, config=_cfg(), min_lr=1e-5, max_lr=1.0, n_steps=40, rng=0)
    assert 10 <= len(res.lrs) <= 40 and len(res.losses) == len(res.lrs)
    np.testing.assert_allclose(res.lrs[0], 1e-5, rtol=1e-6)
    ratios = res.lrs[1:] / res.lrs[:-1]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-6)  # exponential
    assert 1e-5 <= res.suggestion <= 1.0
    for k, v in net.state_dict().items():  # weights restored
        torch.testing.assert_close(v, before[k])


def test_logger_csv_writes_metrics(tmp_path):
    X, Y = _problem(n=64)
    cfg = _cfg(max_epochs=2, log_dir=str(tmp_path), logger="csv")
    train(_net(), X, Y, config=cfg, rng=0)
    files = list(tmp_path.rglob("metrics.csv"))
    assert files and "train_loss" in files[0].read_text()


def test_module_standardises_each_batch_of_targets():
    from scmm.train import PredictionModule, TrainingConfig

    net = torch.nn.Linear(3, 4)
    mean, std = np.array([1.0, -2.0, 0.5, 0.0], np.float32), np.array([2.0, 1.0, 4.0, 0.5])
    config = TrainingConfig(loss="mse")
    module = PredictionModule(net, config, target_mean=mean, target_std=std)
    pred, y = torch.randn(5, 4), torch.randn(5, 4) * 3
    expected = torch.nn.functional.mse_loss(pred, (y - torch.from_numpy(mean)) / torch.tensor(std))
    torch.testing.assert_close(module.data_loss(pred, y), expected.float())
    assert "target_mean" in module.state_dict()
    with pytest.raises(ValueError, match="target_std"):
        PredictionModule(net, TrainingConfig(), target_mean=mean)
    with pytest.raises(ValueError, match="decoder"):
        PredictionModule(net, TrainingConfig(), decoder=np.eye(4), target_mean=mean, target_std=std)


@pytest.mark.parametrize(
    ("values", "flagged"),
    [
        ([1.0, -2.0], False),
        ([3e38, 3e38], False),  # finite values whose float32 sum overflows
        ([1.0, float("nan")], True),
        ([1.0, float("inf")], True),
        ([-float("inf"), 1.0], True),
        ([float("inf"), -float("inf")], True),
    ],
)
def test_nonfinite_tensors_names_exactly_the_nonfinite_weights(values, flagged):
    from scmm.train._callbacks import nonfinite_tensors

    net = torch.nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([values]))
        net.bias.fill_(0.0)
    assert nonfinite_tensors(net) == (["weight"] if flagged else [])
