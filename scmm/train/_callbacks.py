"""The lightning callbacks :func:`~scmm.train.train` adds to every run.

Best-epoch weights (with early stopping), per-batch dropout seeds, DDP sharding of the training
sampler, the history in checkpoints, and the ``last.ckpt`` / ``best.ckpt`` checkpoints. Each
keeps its state in checkpoints where a resumed run needs it.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from ._config import TrainingConfig
from ._data import EpochShuffleSampler

_LAST_CHECKPOINT = "last.ckpt"


class _BestWeights(Callback):
    """Keep a CPU copy of the weights of the epoch with the lowest validation loss.

    Its state goes into checkpoints, so a resumed run still returns the best epoch's weights.
    """

    def __init__(self) -> None:
        self.best: float = math.inf
        self.best_epoch: int | None = None
        self.state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        val = trainer.callback_metrics.get("val_loss")
        if val is None or trainer.sanity_checking:
            return
        val = float(val)
        if val < self.best:
            self.best = val
            self.best_epoch = int(trainer.current_epoch)
            self.state = {
                k: v.detach().cpu().clone() for k, v in pl_module.net.state_dict().items()
            }

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "state": self.state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = float(state_dict["best"])
        self.best_epoch = state_dict["best_epoch"]
        self.state = state_dict["state"]


class _BatchSeed(Callback):
    """Seed torch's global random state (dropout) before each batch from (seed, step, rank).

    Dropout masks then depend on the position in training only, not on how many steps ran in
    this process, so a resumed run draws the same masks as an uninterrupted one; ranks draw
    different masks. (Per batch rather than per epoch: lightning skips ``on_train_epoch_start``
    of the first epoch after resuming from an end-of-epoch checkpoint.)
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        key = [self.seed, trainer.current_epoch, batch_idx, trainer.global_rank]
        torch.manual_seed(int(np.random.default_rng(key).integers(0, 2**62)))


class _ShardTraining(Callback):
    """Give the training sampler this process's DDP rank once lightning has set the ranks."""

    def __init__(self) -> None:
        self.sampler: EpochShuffleSampler | None = None  # set once the loader is built

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.sampler is not None:
            self.sampler.set_shard(trainer.global_rank, trainer.world_size)


class _HistoryState(Callback):
    """Store :attr:`PredictionModule.history` in checkpoints and restore it on resume."""

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["scmm_history"] = copy.deepcopy(pl_module.history)

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if "scmm_history" in checkpoint:
            pl_module.history = copy.deepcopy(checkpoint["scmm_history"])


def _checkpoint_callbacks(config: TrainingConfig, has_validation: bool) -> list[ModelCheckpoint]:
    """``last.ckpt`` every epoch; with validation also ``best.ckpt`` (lowest ``val_loss``).

    Two callbacks, because lightning's ``save_last`` only saves when a top-k checkpoint was
    saved at that step. Both save at the end of each training epoch (after validation and the
    history update) and overwrite the files of an earlier run, so ``last.ckpt`` is always this
    run's latest.
    """
    common = {
        "dirpath": config.checkpoint_dir,
        "save_top_k": 1,
        "save_on_train_epoch_end": True,
        "enable_version_counter": False,
    }
    cbs = [ModelCheckpoint(filename=_LAST_CHECKPOINT.removesuffix(".ckpt"), **common)]
    if has_validation:
        cbs.append(ModelCheckpoint(filename="best", monitor="val_loss", mode="min", **common))
    return cbs
