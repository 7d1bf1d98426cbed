"""Learning-rate range test: a short lightning run with an exponentially rising learning rate.

Lightning's ``Tuner.lr_find`` does the same but always shows a progress bar, writes a checkpoint
to disk to restore the weights, and takes the gradient against the linear learning rate; this
uses the same Trainer with a per-step ``LambdaLR`` and a small recording callback instead.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

from .._utils import SeedLike
from ._config import TrainingConfig
from ._data import RowBatchDataset, make_loader
from ._module import PredictionModule
from ._runtime import _cuda_devices, _ignore_harmless_warnings, _quiet_lightning, _seeds
from ._trainer import _as_tuple

__all__ = ["LRRangeResult", "lr_range_test", "steepest_descent"]

_BETA = 0.98  # causal smoothing of the loss for the early stop (as in fastai / lightning's lr_find)


@dataclass
class LRRangeResult:
    """Result of :func:`lr_range_test`.

    Attributes
    ----------
    lrs
        Learning rates tried, increasing exponentially (one per optimiser step).
    losses
        Training loss (with penalties) at each step.
    smoothed
        ``losses`` smoothed by a centred Gaussian (no lag, so it tracks ``losses``), NaN where the
        loss is not finite.
    suggestion
        Learning rate at the steepest descent of ``smoothed`` against log(lr), or None when
        too few steps ran.
    params
        The test's parameters (min_lr, max_lr, n_steps, ...).
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggestion: float | None
    params: dict[str, Any] = field(default_factory=dict)


def smooth(losses: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Centred Gaussian smoothing of the losses: no lag, so it tracks the raw loss.

    A causal moving average (fastai's beta 0.98) trails the loss by tens of steps, which over an
    exponential range of 50-100 steps moves the curve, and the steepest descent read from it, by
    up to decades of learning rate. Here each point is the Gaussian-weighted mean of its
    neighbours on both sides (``sigma`` steps; default ``max(1, n / 40)``), the weights
    renormalised where the window passes the ends or a non-finite loss. Non-finite losses stay
    NaN.
    """
    x = np.asarray(losses, dtype=float)
    n = len(x)
    sigma = max(1.0, n / 40) if sigma is None else float(sigma)
    finite = np.isfinite(x)
    radius = int(np.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    total = np.convolve(np.where(finite, x, 0.0), kernel, mode="full")[radius : radius + n]
    weight = np.convolve(finite.astype(float), kernel, mode="full")[radius : radius + n]
    out = np.full(n, np.nan)
    out[finite] = total[finite] / weight[finite]
    return out


def steepest_descent(
    lrs: np.ndarray, smoothed: np.ndarray, *, skip_begin: int = 5, skip_end: int = 3
) -> float | None:
    """Learning rate where ``smoothed`` falls fastest against ``log(lr)`` (None if < 3 points)."""
    lrs = np.asarray(lrs, dtype=float)
    smoothed = np.asarray(smoothed, dtype=float)
    stop = len(lrs) - skip_end
    if stop - skip_begin < 3:
        skip_begin, stop = 0, len(lrs)
    idx = np.arange(skip_begin, stop)
    idx = idx[np.isfinite(smoothed[idx])]
    if len(idx) < 3:
        return None
    grad = np.gradient(smoothed[idx], np.log(lrs[idx]))
    return float(lrs[idx[int(np.argmin(grad))]])


class _RangeRecorder(Callback):
    def __init__(self, threshold: float | None) -> None:
        self.threshold = threshold
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self._avg = 0.0
        self._best = math.inf

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.lrs.append(float(trainer.optimizers[0].param_groups[0]["lr"]))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        v = float(loss)
        self.losses.append(v)
        n = len(self.losses)
        self._avg = _BETA * self._avg + (1 - _BETA) * v
        sm = self._avg / (1 - _BETA**n)
        self._best = min(self._best, sm)
        if not math.isfinite(v) or (
            self.threshold is not None and n > 1 and sm > self.threshold * self._best
        ):
            trainer.should_stop = True


def lr_range_test(
    net: nn.Module,
    inputs: Sequence[Any] | Any,
    Y: Any,
    *,
    config: TrainingConfig | None = None,
    min_lr: float = 1e-6,
    max_lr: float = 1.0,
    n_steps: int = 100,
    early_stop_threshold: float | None = 4.0,
    rng: SeedLike | np.random.Generator | None = None,
    decoder: np.ndarray | None = None,
    decoder_bias: np.ndarray | None = None,
    target_mean: np.ndarray | None = None,
    target_std: np.ndarray | None = None,
) -> LRRangeResult:
    """Increase the learning rate exponentially from ``min_lr`` to ``max_lr`` and record the loss.

    AdamW with the config's weight decay, loss and penalties; one-cycle, SWA, validation and
    early stopping are not used. Batches cycle over the cells when ``n_steps`` exceeds one epoch.
    The weights of ``net`` are restored afterwards.

    Parameters
    ----------
    net, inputs, Y, decoder, decoder_bias, target_mean, target_std
        As for :func:`~scmm.train.train`.
    config
        Training options (loss, batch size, penalties, device, precision).
    min_lr, max_lr
        Range of learning rates.
    n_steps
        Number of optimiser steps (one learning rate each).
    early_stop_threshold
        Stop when the smoothed loss exceeds this multiple of its best value, or is not finite
        (None: only on non-finite losses).
    rng
        Seed or generator for the batch order and dropout.

    Returns
    -------
    LRRangeResult
        Learning rates, losses and the suggested learning rate.
    """
    if not 0 < min_lr < max_lr:
        msg = f"Need 0 < `min_lr` < `max_lr`, got min_lr={min_lr}, max_lr={max_lr}."
        raise ValueError(msg)
    if int(n_steps) < 5:
        msg = f"`n_steps={n_steps}` must be >= 5."
        raise ValueError(msg)
    n_steps = int(n_steps)
    config = TrainingConfig() if config is None else config
    cfg = config.replace(
        one_cycle=False,
        swa=False,
        patience=None,
        lr=max_lr,
        min_lr=0.0,
        checkpoint_dir=None,
        resume=False,
    )
    inputs = _as_tuple(inputs)
    loader_seed, torch_seed = _seeds(rng, 2)
    loader = make_loader(
        RowBatchDataset(inputs, Y),
        cfg.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(loader_seed),
    )
    module = PredictionModule(
        net,
        cfg,
        decoder=decoder,
        decoder_bias=decoder_bias,
        target_mean=target_mean,
        target_std=target_std,
    )
    ratio = max_lr / min_lr
    # multiplier of lr=max_lr: min_lr at step 0, max_lr at step n_steps - 1
    module.lr_lambda = lambda step: ratio ** (min(step, n_steps - 1) / (n_steps - 1) - 1.0)
    recorder = _RangeRecorder(early_stop_threshold)
    initial = copy.deepcopy(net.state_dict())
    with (
        _quiet_lightning(cfg.verbose),
        torch.random.fork_rng(devices=_cuda_devices()),
        warnings.catch_warnings(),
    ):
        _ignore_harmless_warnings()
        trainer = L.Trainer(
            accelerator=cfg.accelerator(),
            devices=cfg.devices,
            strategy=cfg.strategy,
            precision=cfg.precision_value(),
            max_steps=n_steps,
            max_epochs=-1,
            logger=False,
            callbacks=[recorder],
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=bool(cfg.verbose),
            num_sanity_val_steps=0,
            limit_val_batches=0,
        )
        torch.manual_seed(torch_seed)
        trainer.fit(module, train_dataloaders=loader)
    net.load_state_dict(initial)
    net.cpu()
    lrs = np.asarray(recorder.lrs[: len(recorder.losses)], dtype=float)
    losses = np.asarray(recorder.losses, dtype=float)
    smoothed = smooth(losses)
    params = {
        "min_lr": min_lr,
        "max_lr": max_lr,
        "n_steps": n_steps,
        "early_stop_threshold": early_stop_threshold,
        "batch_size": cfg.batch_size,
        "loss": cfg.loss,
    }
    return LRRangeResult(lrs, losses, smoothed, steepest_descent(lrs, smoothed), params)
