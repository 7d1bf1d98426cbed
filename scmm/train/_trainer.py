"""`train`: fit any prediction network with lightning, and batched inference.

Reproducibility: ``rng`` is turned into seeds once. The training order of each epoch is a
function of a seed and the epoch (``EpochShuffleSampler``), and torch's global
random state (dropout) is re-seeded before each batch from a seed, the epoch, the batch and the
rank, inside :func:`torch.random.fork_rng`, so the global torch random state is the same before
and after :func:`train`, and a run resumed from a checkpoint (``resume=True``) continues exactly
as the uninterrupted run would have. Weight initialisation happens when the caller builds the
network: do it inside :func:`seeded` to make it reproducible too. On CPU the same ``rng`` gives
bit-identical weights; on CUDA, cuBLAS and atomics make results close but not always
bit-identical.

Scale-out: ``devices`` and ``strategy`` go to :class:`lightning.Trainer`. Under DDP each rank
trains on its shard of the training cells (``EpochShuffleSampler.set_shard``, set when lightning
has assigned the ranks; lightning's sampler replacement is off so that the ranks' batches at a
step are exactly the cells of the single-process batch of ``batch_size * world_size``); every rank
evaluates all validation cells. ``batch_size`` is per rank. After training, rank 0's final state
(including BatchNorm running statistics, which DDP does not average) is broadcast, so every rank
returns identical weights.

The callbacks this adds to every run live in ``_callbacks.py``; seeding, device lists and the
quieting of lightning's logs and warnings (shared with the LR range test) in ``_runtime.py``.
"""

from __future__ import annotations

import copy
import logging
import math
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import (
    Callback,
    EarlyStopping,
    ModelCheckpoint,
    StochasticWeightAveraging,
)
from torch import nn

from .._utils import SeedLike
from .._validate import cell_mask
from ._callbacks import (
    _LAST_CHECKPOINT,
    _BatchSeed,
    _BestWeights,
    _checkpoint_callbacks,
    _EpochProgressBar,
    _FiniteTraining,
    _HistoryState,
    _ShardTraining,
    nonfinite_message,
    nonfinite_tensors,
)
from ._config import TrainingConfig
from ._data import (
    RowBatchDataset,
    batch_plan,
    make_loader,
    to_torch_batch,
)
from ._module import PredictionModule
from ._runtime import _cuda_devices, _ignore_harmless_warnings, _quiet_lightning, _seeds

__all__ = ["predict", "split_validation", "train"]

log = logging.getLogger(__name__)


def split_validation(
    n_cells: int,
    *,
    validation: np.ndarray | None = None,
    fraction: float = 0.0,
    rng: SeedLike | np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation row indices.

    ``validation`` (bool mask of length ``n_cells``) takes precedence over ``fraction``; a
    fraction picks ``round(fraction * n_cells)`` cells (at least 1) at random with ``rng``.
    """
    if validation is not None:  # rows of the training cells: by position
        rows = pd.RangeIndex(n_cells)
        mask = cell_mask(np.asarray(validation), rows, "validation", " (the training cells)")
    elif fraction > 0:
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng or 0)
        n_val = max(1, round(fraction * n_cells))
        mask = np.zeros(n_cells, dtype=bool)
        mask[gen.permutation(n_cells)[:n_val]] = True
    else:
        mask = np.zeros(n_cells, dtype=bool)
    train_rows, val_rows = np.flatnonzero(~mask), np.flatnonzero(mask)
    if len(train_rows) < 2:
        msg = f"Only {len(train_rows)} training cells left after the validation split; need 2."
        raise ValueError(msg)
    return train_rows, val_rows


def _resume_path(config: TrainingConfig) -> str | None:
    """``checkpoint_dir/last.ckpt`` when resuming and it exists, else None (start afresh)."""
    if not config.resume:
        return None
    path = Path(config.checkpoint_dir) / _LAST_CHECKPOINT
    if path.is_file():
        return str(path)
    log.warning("`resume=True` but %s does not exist: training from scratch.", path)
    return None


def _sync_from_rank0(trainer: L.Trainer, net: nn.Module) -> None:
    """Give every DDP rank rank 0's final state (BatchNorm statistics differ per rank)."""
    if trainer.world_size <= 1:
        return
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    net.load_state_dict(trainer.strategy.broadcast(state, src=0))


def _make_logger(config: TrainingConfig):
    if config.log_dir is None or config.logger is None:
        return False
    if config.logger == "csv":
        from lightning.pytorch.loggers import CSVLogger

        return CSVLogger(config.log_dir, name="scmm")
    try:
        import tensorboard  # noqa: F401
    except ImportError as e:
        msg = (
            "`logger='tensorboard'` needs tensorboard: from the scmm repository, "
            "`pip install -e '.[logging]'`."
        )
        raise ImportError(msg) from e
    from lightning.pytorch.loggers import TensorBoardLogger

    return TensorBoardLogger(config.log_dir, name="scmm")


def _as_tuple(inputs: Any) -> tuple:
    if isinstance(inputs, tuple | list):
        return tuple(inputs)
    return (inputs,)


def train(
    net: nn.Module,
    inputs: Sequence[Any] | Any,
    Y: Any,
    *,
    config: TrainingConfig | None = None,
    validation: np.ndarray | None = None,
    rng: SeedLike | np.random.Generator | None = None,
    decoder: np.ndarray | None = None,
    decoder_bias: np.ndarray | None = None,
    target_mean: np.ndarray | None = None,
    target_std: np.ndarray | None = None,
    callbacks: Sequence[Callback] = (),
) -> tuple[nn.Module, dict[str, Any]]:
    """Train ``net`` to predict ``Y`` from ``inputs`` with lightning.

    Parameters
    ----------
    net
        Network; ``net(*batch_inputs)`` returns predictions (in the space of ``decoder``'s rows
        when a decoder is given, else in the space of ``Y``).
    inputs
        One matrix or a tuple of matrices (cells x features), each a dense array or a scipy
        sparse matrix; sparse ones reach ``net`` as torch sparse CSR batches.
    Y
        Targets (cells x targets), dense or sparse (densified per batch).
    config
        Training options; None: :class:`~scmm.train.TrainingConfig` defaults.
    validation
        Bool mask over the cells marking validation cells; overrides
        ``config.validation_fraction``.
    rng
        Seed or generator for the validation split, the batch order and dropout (None: 0).
    decoder, decoder_bias
        Fixed map from network outputs to target values, see
        :class:`~scmm.train.PredictionModule`.
    target_mean, target_std
        Standardise the targets of each batch (the network predicts ``(Y - mean) / std``), see
        :class:`~scmm.train.PredictionModule`.
    callbacks
        Extra lightning callbacks.

    Returns
    -------
    net
        The trained network on CPU in eval mode: SWA-averaged weights with ``swa``, the best
        validation epoch's weights with ``patience``, else the last weights. Under DDP every
        rank returns (identical weights: rank 0's are broadcast); only write files from the
        rank with ``history["global_rank"] == 0``.
    history
        ``epoch``, ``train_loss``, ``val_loss`` (per epoch; empty without validation), ``lr``
        (per optimiser step), ``best_epoch`` (int or None), ``stopped_epoch``, ``n_train``,
        ``n_val``, ``steps_per_epoch`` (per rank), ``swa_start_epoch`` (None without SWA),
        ``time_s`` (this process),
        ``resumed_from`` (checkpoint path or None), ``global_rank`` and ``world_size``. Under
        DDP, ``train_loss`` is rank-local; ``val_loss`` and the early-stopping decisions use
        the mean over ranks.

    Raises
    ------
    FloatingPointError
        When the training or validation loss, or the weights, turn NaN or infinite (checked
        at the end of each epoch, and on the returned weights), naming the epoch and the
        likely causes (learning rate too high, non-finite inputs or targets, cells with
        constant targets). Training stops there; no checkpoint of that epoch is written.

    Notes
    -----
    Training cells whose targets are constant (no per-cell correlation to fit, e.g. no counts
    on a small protein panel) are left out of the correlation term of the loss; their count
    is logged once, after the first epoch.
    """
    config = TrainingConfig() if config is None else config
    config.validate()
    inputs = _as_tuple(inputs)
    n_cells = inputs[0].shape[0] if inputs else 0
    split_seed, loader_seed, torch_seed = _seeds(rng, 3)
    train_rows, val_rows = split_validation(
        n_cells, validation=validation, fraction=config.validation_fraction, rng=split_seed
    )
    if config.patience is not None and len(val_rows) == 0:
        msg = "`patience` needs validation cells: set `validation_fraction` or `validation`."
        raise ValueError(msg)

    module = PredictionModule(
        net,
        config,
        decoder=decoder,
        decoder_bias=decoder_bias,
        target_mean=target_mean,
        target_std=target_std,
    )
    shard = _ShardTraining()
    cbs: list[Callback] = [
        *callbacks,
        shard,
        _BatchSeed(torch_seed),
        _HistoryState(),
        _FiniteTraining(),
    ]
    best = None
    if config.patience is not None:
        cbs.append(EarlyStopping(monitor="val_loss", patience=int(config.patience), mode="min"))
        best = _BestWeights()
        cbs.append(best)
    if config.verbose:
        cbs.append(_EpochProgressBar(int(config.max_epochs)))
    if config.checkpoint_dir is not None:
        cbs.extend(_checkpoint_callbacks(config, has_validation=len(val_rows) > 0))
    ckpt_path = _resume_path(config)

    start = time.perf_counter()
    with (
        _quiet_lightning(config.verbose),
        torch.random.fork_rng(devices=_cuda_devices()),
        warnings.catch_warnings(),
    ):
        _ignore_harmless_warnings()
        trainer = L.Trainer(
            accelerator=config.accelerator(),
            devices=config.devices,
            strategy=config.strategy,
            num_nodes=int(config.num_nodes),
            precision=config.precision_value(),
            max_epochs=int(config.max_epochs),
            logger=_make_logger(config),
            callbacks=cbs,
            enable_checkpointing=config.checkpoint_dir is not None,
            enable_model_summary=False,
            enable_progress_bar=bool(config.verbose),
            num_sanity_val_steps=0,
            log_every_n_steps=max(1, min(50, math.ceil(len(train_rows) / config.batch_size))),
            use_distributed_sampler=False,  # `_ShardTraining` shards the training cells
            default_root_dir=config.log_dir,
        )
        # DDP ranks (known before launch); batch_size is per rank
        world_size = int(trainer.num_nodes) * int(trainer.num_devices)
        loader = make_loader(
            RowBatchDataset(inputs, Y, train_rows),
            config.batch_size,
            shuffle=True,
            seed=loader_seed,
            world_size=world_size,
        )
        shard.sampler = loader.sampler
        val_loader = None
        if len(val_rows):  # not sharded: every rank evaluates all validation cells
            val_loader = make_loader(
                RowBatchDataset(inputs, Y, val_rows), max(config.batch_size, 1024), shuffle=False
            )
        steps_per_epoch = batch_plan(
            len(train_rows), config.batch_size, shuffle=True, world_size=world_size
        )[2]
        module.total_steps = steps_per_epoch * config.schedule_epochs_value(steps_per_epoch)
        swa_start = config.swa_start_epoch(steps_per_epoch) if config.uses_swa() else None
        if config.uses_swa():  # its start depends on the steps per epoch, known only now
            swa = StochasticWeightAveraging(
                swa_lrs=config.swa_lr_value,
                swa_epoch_start=swa_start + 1,  # lightning: 1-based
                annealing_epochs=0,  # constant swa_lr from swa_start on
                device=None,
            )
            # before the checkpoint callbacks, which lightning keeps last
            last = [i for i, cb in enumerate(trainer.callbacks) if isinstance(cb, ModelCheckpoint)]
            trainer.callbacks.insert(last[0] if last else len(trainer.callbacks), swa)
        trainer.fit(
            module,
            train_dataloaders=loader,
            val_dataloaders=val_loader,
            ckpt_path=ckpt_path,
            weights_only=True if ckpt_path is not None else None,
        )
    elapsed = time.perf_counter() - start

    net = module.net
    best_epoch = None
    if best is not None and best.state is not None:
        net.load_state_dict(best.state)
        best_epoch = best.best_epoch
    _sync_from_rank0(trainer, net)
    net = net.cpu().eval()
    bad = nonfinite_tensors(net)
    if bad:  # e.g. SWA averaged a weight that overflowed
        what = (
            f"After training, {len(bad)} weight tensors hold NaN or infinite values ({bad[0]}, ...)"
        )
        msg = nonfinite_message(what, lr=float(config.lr), report=module.data_report())
        raise FloatingPointError(msg)
    history: dict[str, Any] = copy.deepcopy(module.history)
    history.update(
        best_epoch=best_epoch,
        stopped_epoch=int(history["epoch"][-1]) if history["epoch"] else 0,
        n_train=len(train_rows),
        n_val=len(val_rows),
        steps_per_epoch=steps_per_epoch,
        swa_start_epoch=swa_start,
        time_s=elapsed,
        resumed_from=ckpt_path,
        global_rank=int(trainer.global_rank),
        world_size=int(trainer.world_size),
    )
    return net, history


@torch.no_grad()
def predict(
    net: nn.Module,
    inputs: Sequence[Any] | Any,
    *,
    batch_size: int = 4096,
    device: str = "auto",
    decoder: np.ndarray | None = None,
    decoder_bias: np.ndarray | None = None,
) -> np.ndarray:
    """Predictions of ``net`` (eval mode) for all rows of ``inputs``, as float32 numpy.

    Batches are moved to ``device`` one at a time and their predictions back to CPU, so large
    outputs never accumulate on the GPU. With ``decoder``, returns ``pred @ decoder +
    decoder_bias``.
    """
    inputs = _as_tuple(inputs)
    dev = torch.device(
        "cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu"
    )
    was_training = net.training
    net = net.to(dev).eval()
    dec = None if decoder is None else torch.as_tensor(np.asarray(decoder), dtype=torch.float32)
    dec = None if dec is None else dec.to(dev)
    n = inputs[0].shape[0]
    res = None  # filled a batch at a time: the output exists once, never as pieces + a copy
    bias = None if decoder_bias is None else np.asarray(decoder_bias, np.float32).reshape(1, -1)
    for start in range(0, n, batch_size):
        rows = np.arange(start, min(n, start + batch_size))
        xs = tuple(to_torch_batch(x, rows).to(dev) for x in inputs)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            pred = net(*xs)
        pred = pred.float()
        if dec is not None:
            pred = pred @ dec
        if res is None:
            res = np.empty((n, pred.shape[1]), dtype=np.float32)
        res[rows[0] : rows[-1] + 1] = pred.cpu().numpy()
        if bias is not None:
            res[rows[0] : rows[-1] + 1] += bias
    net.train(was_training)
    net.cpu()
    return res if res is not None else np.zeros((0, 0), dtype=np.float32)
