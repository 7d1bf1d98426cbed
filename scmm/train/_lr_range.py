"""Learning-rate range test on top of lightning's ``Tuner.lr_find``."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.tuner import Tuner
from torch import nn

from ._config import TrainingConfig
from ._data import RowBatchDataset, make_loader
from ._module import PredictionModule
from ._trainer import _as_tuple, _cuda_devices, _ignore_harmless_warnings, _quiet_lightning, _seeds

__all__ = ["LRRangeResult", "lr_range_test"]


@dataclass
class LRRangeResult:
    """Result of :func:`lr_range_test`.

    Attributes
    ----------
    lrs
        Learning rates tried, increasing exponentially (one per optimiser step).
    losses
        Training loss after each step, exponentially smoothed (lightning's beta = 0.98, bias
        corrected).
    suggestion
        Learning rate at the steepest descent of the smoothed loss against log(lr), or None
        when too few steps ran.
    params
        The test's parameters (min_lr, max_lr, n_steps, ...).
    """

    lrs: np.ndarray
    losses: np.ndarray
    suggestion: float | None
    params: dict[str, Any] = field(default_factory=dict)


def steepest_descent(lrs: np.ndarray, losses: np.ndarray, *, skip_begin: int = 5, skip_end: int = 3):
    """Learning rate where the smoothed loss falls fastest against ``log(lr)`` (None if < 3 points)."""
    lrs = np.asarray(lrs, dtype=float)
    losses = np.asarray(losses, dtype=float)
    stop = len(lrs) - skip_end
    if stop - skip_begin < 3:
        skip_begin, stop = 0, len(lrs)
    idx = np.arange(skip_begin, stop)
    idx = idx[np.isfinite(losses[idx])]
    if len(idx) < 3:
        return None
    grad = np.gradient(losses[idx], np.log(lrs[idx]))
    return float(lrs[idx[int(np.argmin(grad))]])


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
    rng: int | np.random.Generator | None = None,
    decoder: np.ndarray | None = None,
    decoder_bias: np.ndarray | None = None,
) -> LRRangeResult:
    """Increase the learning rate exponentially from ``min_lr`` to ``max_lr`` and record the loss.

    Runs lightning's :meth:`~lightning.pytorch.tuner.Tuner.lr_find` (AdamW with the config's
    weight decay and loss; one-cycle, SWA, validation and early stopping are not used). The
    weights of ``net`` are restored afterwards. Batches cycle over the cells when ``n_steps``
    exceeds one epoch.

    Parameters
    ----------
    net, inputs, Y, decoder, decoder_bias
        As for :func:`~scmm.train.train`.
    config
        Training options (loss, batch size, penalties, device, precision).
    min_lr, max_lr
        Range of learning rates.
    n_steps
        Number of optimiser steps (one learning rate each).
    early_stop_threshold
        Stop when the smoothed loss exceeds this multiple of the best loss (None: never).
    rng
        Seed or generator for the batch order and dropout.
    """
    if not 0 < min_lr < max_lr:
        msg = f"Need 0 < `min_lr` < `max_lr`, got min_lr={min_lr}, max_lr={max_lr}."
        raise ValueError(msg)
    if int(n_steps) < 5:
        msg = f"`n_steps={n_steps}` must be >= 5."
        raise ValueError(msg)
    config = TrainingConfig() if config is None else config
    cfg = config.replace(one_cycle=False, swa=False, patience=None, lr=max_lr, min_lr=0.0)
    inputs = _as_tuple(inputs)
    loader_seed, torch_seed = _seeds(rng, 2)
    loader = make_loader(
        RowBatchDataset(inputs, Y),
        cfg.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(loader_seed),
    )
    module = PredictionModule(net, cfg, decoder=decoder, decoder_bias=decoder_bias)
    n_epochs = int(np.ceil(n_steps / max(len(loader), 1))) + 1
    with tempfile.TemporaryDirectory() as tmp:
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
                max_epochs=n_epochs,
                logger=False,
                enable_checkpointing=False,
                enable_model_summary=False,
                enable_progress_bar=bool(cfg.verbose),
                num_sanity_val_steps=0,
                default_root_dir=tmp,
            )
            torch.manual_seed(torch_seed)
            finder = Tuner(trainer).lr_find(
                module,
                train_dataloaders=loader,
                min_lr=min_lr,
                max_lr=max_lr,
                num_training=int(n_steps),
                mode="exponential",
                early_stop_threshold=early_stop_threshold,
                update_attr=False,
            )
    net.cpu()
    lrs = np.asarray(finder.results.get("lr", []), dtype=float)
    losses = np.asarray(finder.results.get("loss", []), dtype=float)
    params = {
        "min_lr": min_lr,
        "max_lr": max_lr,
        "n_steps": int(n_steps),
        "early_stop_threshold": early_stop_threshold,
        "batch_size": cfg.batch_size,
        "loss": cfg.loss,
    }
    return LRRangeResult(lrs, losses, steepest_descent(lrs, losses), params)
