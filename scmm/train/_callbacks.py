"""The lightning callbacks :func:`~scmm.train.train` adds to every run.

Best-epoch weights (with early stopping), per-batch dropout seeds, DDP sharding of the training
sampler, the history in checkpoints, the ``last.ckpt`` / ``best.ckpt`` checkpoints, and the
check that stops a run whose loss or weights turn NaN or infinite. Each keeps its state in
checkpoints where a resumed run needs it.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, TQDMProgressBar

from ._config import TrainingConfig
from ._data import EpochShuffleSampler

_LAST_CHECKPOINT = "last.ckpt"

log = logging.getLogger(__name__)


class _EpochProgressBar(TQDMProgressBar):
    """Lightning's progress bar, counting epochs as the user set them: "Epoch 3/40".

    With SWA on a network with BatchNorm, lightning adds one pass over the data after the last
    epoch to recompute the BatchNorm statistics of the averaged weights; its bar says so
    instead of showing an epoch beyond ``max_epochs``.
    """

    def __init__(self, max_epochs: int):
        super().__init__()
        self._max_epochs = int(max_epochs)

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        """Describe the epoch starting, 1-based, out of ``max_epochs``."""
        from lightning.pytorch.callbacks.progress.tqdm_progress import convert_inf

        if self._leave:
            self.train_progress_bar = self.init_train_tqdm()
        epoch = trainer.current_epoch
        bar = self.train_progress_bar
        bar.set_description(
            f"Epoch {epoch + 1}/{self._max_epochs}"
            if epoch < self._max_epochs
            else "SWA: BatchNorm statistics of the averaged weights",
            refresh=False,
        )
        bar.reset(total=convert_inf(self.total_train_batches))
        bar.initial = 0


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
        seed = int(np.random.default_rng(key).integers(0, 2**62))
        if pl_module.device.type == "cpu":
            # the generator dropout draws from on CPU; `torch.manual_seed` also queues seeds
            # for CUDA, XPU and MTIA, formatting a stack trace for each (0.2 ms a batch)
            torch.default_generator.manual_seed(seed)
        else:
            torch.manual_seed(seed)


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


def _has_nonfinite(value: torch.Tensor) -> bool:
    """Whether ``value`` holds NaN or infinite values.

    A NaN or infinite value makes the sum NaN or infinite, so a finite sum (one pass, no
    mask) proves every value finite; only a non-finite sum (also reached by finite values
    that overflow) takes the elementwise test. Run every epoch: for the default MLP's 1.3 M
    weights on one CPU thread, 0.9 ms instead of the elementwise test's 7 ms.
    """
    with torch.no_grad():
        return not bool(torch.isfinite(value.sum())) and not bool(torch.isfinite(value).all())


def nonfinite_tensors(net: torch.nn.Module) -> list[str]:
    """Names of the parameters and buffers of ``net`` that hold NaN or infinite values."""
    named = [*net.named_parameters(), *net.named_buffers()]
    return [name for name, value in named if value.is_floating_point() and _has_nonfinite(value)]


def nonfinite_message(what: str, *, lr: float, report: dict[str, int]) -> str:
    """Error text for a run stopped on NaN or infinite values: where, and the likely causes."""
    causes = []
    if report["n_nonfinite_batches"]:
        causes.append(
            f"non-finite input or target values ({report['n_nonfinite_batches']} batches of the "
            "first epoch held NaN or infinite values: impute or drop them)"
        )
    causes.append(
        f"a learning rate too high (`lr={lr:g}`: try a tenth of it, or pick one with "
        "`scmm.tl.lr_range_test`)"
    )
    if report["n_constant_targets"]:
        causes.append(
            f"cells whose targets carry no information ({report['n_constant_targets']} of "
            f"{report['n_cells']} training cells have constant targets, e.g. no counts on the "
            "target panel: drop them)"
        )
    if not report["n_nonfinite_batches"]:
        causes.append("extreme input values (no NaN or infinite ones were seen)")
    return f"{what}. Training was stopped. Likely causes: " + "; ".join(causes) + "."


class _FiniteTraining(Callback):
    """Stop training (``FloatingPointError``) when its loss or weights turn NaN or infinite.

    Checked at the end of each epoch (a few device syncs), before any checkpoint of the epoch
    is written. At the end of the first epoch, also logs how many training cells have constant
    targets (left out of the correlation term of the loss), once per run.
    """

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Log the first epoch's data report; raise on a non-finite loss or weights."""
        epoch, max_epochs = int(trainer.current_epoch), int(pl_module.config.max_epochs)
        report = pl_module.data_report()
        if epoch == 0 and report["n_constant_targets"] and pl_module.config.loss != "mse":
            level = (
                logging.WARNING
                if 2 * report["n_constant_targets"] > report["n_cells"]
                else logging.INFO
            )
            log.log(
                level,
                "%d of %d training cells have constant targets: they carry no per-cell "
                "correlation and are left out of the correlation term of the loss.",
                report["n_constant_targets"],
                report["n_cells"],
            )
        problems = []
        for name, total in (("training", pl_module._loss_sum), ("validation", pl_module._val_sum)):
            if total is not None and not bool(torch.isfinite(total)):
                problems.append(f"the {name} loss is {float(total)}")
        bad = nonfinite_tensors(pl_module.net)
        if bad:
            problems.append(
                f"{len(bad)} weight tensors hold NaN or infinite values ({bad[0]}, ...)"
            )
        # under DDP every rank stops together (one rank raising alone would leave the others
        # waiting); the loss is rank-local, the weights are the same on every rank
        if trainer.strategy.reduce_boolean_decision(bool(problems), all=False) and not problems:
            problems.append("another DDP rank's loss or weights are NaN or infinite")
        if problems:
            where = (
                f"epoch {epoch + 1} of {max_epochs}"
                if epoch < max_epochs
                else "the BatchNorm pass over the SWA-averaged weights"
            )
            msg = nonfinite_message(
                f"In {where}, " + " and ".join(problems),
                lr=float(pl_module.config.lr),
                report=report,
            )
            raise FloatingPointError(msg)
