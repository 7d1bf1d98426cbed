"""Training options, one dataclass shared by every fit function."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["TrainingConfig"]

_LOSSES = ("mse", "correlation", "mixed")
_SPARSITY = (None, "kl", "l1")
_LOGGERS = (None, "csv", "tensorboard")
_DEVICES = ("auto", "cpu", "cuda")
#: Optimiser steps before SWA starts when ``swa_start`` is None (see :class:`TrainingConfig`).
SWA_WARMUP_STEPS = 400


@dataclass
class TrainingConfig:
    """Options of :func:`scmm.train.train`; each is a keyword of the ``fit_*`` functions.

    Defaults aim at a CITE-seq SVD → MLP (a few hundred to 100k cells, 64–512 SVD inputs,
    ~140 protein targets). The optimiser is always AdamW.

    Attributes
    ----------
    lr
        Learning rate of AdamW; with ``one_cycle`` the peak (``max_lr``) of the schedule.
    weight_decay
        AdamW's decoupled weight decay.
    max_epochs
        Number of passes over the training cells.
    batch_size
        Cells per optimiser step (clipped to the number of training cells).
    one_cycle
        Use :class:`torch.optim.lr_scheduler.OneCycleLR` (``max_lr=lr``), stepped per batch.
        When False, the learning rate stays at ``lr``.
    schedule_epochs
        Epochs the one-cycle schedule spans; afterwards the learning rate stays at ``min_lr``
        (the original code's behaviour). None: ``max_epochs`` (or ``swa_start`` with ``swa``).
    min_lr
        Learning rate at the end of the one-cycle schedule (and after it).
    swa
        Stochastic weight averaging (lightning's ``StochasticWeightAveraging`` callback). The
        one-cycle schedule ends at ``swa_start`` at the latest; from then on the SWA learning
        rate ``swa_lr`` takes over. The returned weights are the average of the weights at the
        start of each epoch from ``swa_start`` on (lightning's convention), with BatchNorm
        statistics recomputed in one extra pass over the training cells. With
        ``max_epochs=1`` there is nothing trained to average (the only such weights are the
        initial ones), so SWA is skipped (:meth:`uses_swa`).
    swa_start
        First (0-based) epoch of the SWA phase, at least 1. None: the first epoch after
        400 optimiser steps (``SWA_WARMUP_STEPS``), at ``int(0.75 * max_epochs)`` at the latest.
        Counting steps rather than epochs lets larger training sets average over more of the
        run: on ``pbmc10k_cite`` (84 steps per epoch) SWA from epoch 5 instead of 30 gave
        +0.003 per-cell Pearson, while on ``bmmc_cite`` (5 steps per epoch) an early start cost
        0.005–0.010 (see the MLP page of the docs).
    swa_lr
        Constant learning rate during SWA. None: ``lr / 10``.
    sparsity
        Penalty on the predicted target values: None, ``"kl"`` (KL(rho ‖ batch-mean
        sigmoid(pred)) per feature, averaged) or ``"l1"`` (mean absolute prediction).
    sparsity_weight
        Weight of the sparsity penalty.
    sparsity_rho
        Target mean activation of the ``"kl"`` penalty.
    l1, l2
        Penalties ``l1 * sum |w|`` and ``l2 * sum w**2`` over weight matrices (not biases or
        BatchNorm parameters), added to the loss.
    loss
        ``"mse"``, ``"correlation"`` (negative mean per-cell Pearson, the competition's score)
        or ``"mixed"``: ``(1 - correlation_weight) * mse + correlation_weight * correlation``.
    correlation_weight
        Weight of the correlation term of ``"mixed"``, in [0, 1].
    validation_fraction
        Fraction of the training cells held out (chosen with ``rng``) to compute a validation
        loss each epoch; 0 disables it. A bool mask passed to :func:`~scmm.train.train` as
        ``validation`` takes precedence.
    patience
        Early stopping: stop when the validation loss has not improved for ``patience`` epochs,
        then restore the weights of the best epoch. None: no early stopping (with validation,
        the last weights are kept). Needs validation cells; not combinable with ``swa``.
    device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``.
    precision
        Lightning precision. None: ``"bf16-mixed"`` on CUDA, ``"32-true"`` on CPU.
    devices
        Passed to :class:`lightning.Trainer` (``"auto"``: one device on CPU, all GPUs on CUDA
        — set 1 unless you mean DDP). With several devices (or nodes), each DDP rank trains on
        its shard of the training cells and ``batch_size`` is per rank: the effective batch is
        ``batch_size * world_size``.
    strategy
        Passed to :class:`lightning.Trainer` (``"auto"``, ``"ddp"``...). Use ``"ddp"`` (one
        process per device, started by lightning, ``torchrun`` or ``srun``); ``"ddp_spawn"``
        returns rank 0's weights but not the training history. See the scale-out docs page.
    num_nodes
        Passed to :class:`lightning.Trainer`: machines of a multi-node DDP run (e.g. SLURM's
        ``--nodes``); ``devices`` is then the number of devices per node.
    verbose
        Show lightning's progress bar.
    log_dir
        Folder for loggers and checkpoints. None: no logger.
    logger
        ``"csv"`` or ``"tensorboard"`` (needs ``pip install -e '.[logging]'`` in the scmm
        repository) under ``log_dir``; None for no logger.
    checkpoint_dir
        When set, lightning's ``ModelCheckpoint`` writes ``last.ckpt`` at the end of every epoch
        (and, with validation, ``best.ckpt`` for the lowest ``val_loss``) there, overwriting
        the files of an earlier run in the same folder.
    resume
        Continue from ``checkpoint_dir/last.ckpt`` (weights, optimiser, schedule, epoch,
        early-stopping/SWA state, history) with the same data and ``rng``; the result equals
        an uninterrupted run. Without that file training starts from scratch (so a job script
        can always pass ``resume=True``). Lightning checkpoints are pickles: they are loaded
        with ``weights_only=True`` (no arbitrary objects), but resume only from folders you
        wrote yourself. Needs ``checkpoint_dir``.
    """

    lr: float = 3e-3
    weight_decay: float = 1e-2
    max_epochs: int = 40
    batch_size: int = 64
    one_cycle: bool = True
    schedule_epochs: int | None = None
    min_lr: float = 1e-6
    swa: bool = True
    swa_start: int | None = None
    swa_lr: float | None = None
    sparsity: str | None = None
    sparsity_weight: float = 1e-3
    sparsity_rho: float = 0.05
    l1: float = 0.0
    l2: float = 0.0
    loss: str = "mixed"
    correlation_weight: float = 0.5
    validation_fraction: float = 0.0
    patience: int | None = None
    device: str = "auto"
    precision: str | None = None
    devices: Any = 1
    strategy: Any = "auto"
    num_nodes: int = 1
    verbose: bool = False
    log_dir: str | None = None
    logger: str | None = "csv"
    checkpoint_dir: str | None = None
    resume: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check the options; raise ValueError naming the option and the fix."""
        if self.lr <= 0:
            msg = f"`lr={self.lr}` must be > 0."
            raise ValueError(msg)
        if self.min_lr < 0 or self.min_lr > self.lr:
            msg = f"`min_lr={self.min_lr}` must be in [0, lr={self.lr}]."
            raise ValueError(msg)
        if int(self.max_epochs) < 1:
            msg = f"`max_epochs={self.max_epochs}` must be >= 1."
            raise ValueError(msg)
        if int(self.batch_size) < 2:
            msg = f"`batch_size={self.batch_size}` must be >= 2 (BatchNorm needs 2 cells)."
            raise ValueError(msg)
        if self.schedule_epochs is not None and int(self.schedule_epochs) < 1:
            msg = f"`schedule_epochs={self.schedule_epochs}` must be >= 1 or None."
            raise ValueError(msg)
        if self.loss not in _LOSSES:
            msg = f"`loss={self.loss!r}` is not supported; use one of {_LOSSES}."
            raise ValueError(msg)
        if not 0.0 <= self.correlation_weight <= 1.0:
            msg = f"`correlation_weight={self.correlation_weight}` must be in [0, 1]."
            raise ValueError(msg)
        if self.sparsity not in _SPARSITY:
            msg = f"`sparsity={self.sparsity!r}` is not supported; use None, 'kl' or 'l1'."
            raise ValueError(msg)
        if not 0.0 < self.sparsity_rho < 1.0:
            msg = f"`sparsity_rho={self.sparsity_rho}` must be in (0, 1)."
            raise ValueError(msg)
        if self.l1 < 0 or self.l2 < 0 or self.sparsity_weight < 0:
            msg = "`l1`, `l2` and `sparsity_weight` must be >= 0."
            raise ValueError(msg)
        if not 0.0 <= self.validation_fraction < 1.0:
            msg = f"`validation_fraction={self.validation_fraction}` must be in [0, 1)."
            raise ValueError(msg)
        if self.patience is not None and int(self.patience) < 1:
            msg = f"`patience={self.patience}` must be >= 1 or None."
            raise ValueError(msg)
        if self.swa and self.patience is not None:
            msg = (
                "`swa=True` (the default) cannot be combined with early stopping: pass "
                "`swa=False` to use `patience`."
            )
            raise ValueError(msg)
        if self.swa and self.max_epochs > 1 and not 1 <= self.swa_start_epoch() < self.max_epochs:
            msg = (
                f"`swa_start={self.swa_start}` must be in [1, max_epochs={self.max_epochs}): the "
                "average takes the weights at the start of each SWA epoch, so from epoch 0 it "
                "would average in the untrained initial weights."
            )
            raise ValueError(msg)
        if int(self.num_nodes) < 1:
            msg = f"`num_nodes={self.num_nodes}` must be >= 1."
            raise ValueError(msg)
        if self.device not in _DEVICES:
            msg = f"`device={self.device!r}` is not supported; use one of {_DEVICES}."
            raise ValueError(msg)
        if self.resume and self.checkpoint_dir is None:
            msg = "`resume=True` needs `checkpoint_dir` (the folder holding last.ckpt)."
            raise ValueError(msg)
        if self.logger not in _LOGGERS:
            msg = f"`logger={self.logger!r}` is not supported; use one of {_LOGGERS}."
            raise ValueError(msg)

    # derived values -------------------------------------------------------------------------
    def uses_swa(self) -> bool:
        """Whether training averages weights: ``swa``, and more than one epoch to average."""
        return bool(self.swa) and int(self.max_epochs) > 1

    def swa_start_epoch(self, steps_per_epoch: int | None = None) -> int:
        """0-based first SWA epoch for ``steps_per_epoch`` optimiser steps per epoch.

        ``swa_start``, or the first epoch after ``SWA_WARMUP_STEPS`` steps and at
        ``int(0.75 * max_epochs)`` at the latest (the latter when ``steps_per_epoch`` is None).
        """
        if self.swa_start is not None:
            return int(self.swa_start)
        latest = int(0.75 * self.max_epochs)
        if not steps_per_epoch:
            return latest
        return min(latest, math.ceil(SWA_WARMUP_STEPS / int(steps_per_epoch)))

    @property
    def swa_lr_value(self) -> float:
        """SWA learning rate (``swa_lr`` or ``lr / 10``)."""
        return self.lr / 10 if self.swa_lr is None else float(self.swa_lr)

    def schedule_epochs_value(self, steps_per_epoch: int | None = None) -> int:
        """Epochs spanned by the one-cycle schedule (it ends where SWA starts)."""
        n = self.max_epochs if self.schedule_epochs is None else int(self.schedule_epochs)
        if self.swa:
            n = min(n, max(self.swa_start_epoch(steps_per_epoch), 1))
        return min(n, self.max_epochs)

    def accelerator(self) -> str:
        """Lightning accelerator name for ``device``."""
        if self.device == "auto":
            return "gpu" if torch.cuda.is_available() else "cpu"
        if self.device == "cuda":
            if not torch.cuda.is_available():
                msg = "`device='cuda'` but CUDA is not available; use device='auto' or 'cpu'."
                raise ValueError(msg)
            return "gpu"
        return "cpu"

    def precision_value(self) -> str:
        """Lightning precision (``precision`` or the device default)."""
        if self.precision is not None:
            return self.precision
        return "bf16-mixed" if self.accelerator() == "gpu" else "32-true"

    def replace(self, **changes: Any) -> TrainingConfig:
        """Copy with some options changed (unknown names raise TypeError)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Options as a JSON-serialisable dict."""
        return dataclasses.asdict(self)
