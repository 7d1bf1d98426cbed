"""Training diagnostics: loss curves of a fit and the learning-rate range test."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

if TYPE_CHECKING:
    from ..train import LRRangeResult


def _get_history(model_or_history: Any) -> Mapping[str, Any]:
    if isinstance(model_or_history, Mapping):
        history = model_or_history
        name = "the history"
    elif hasattr(model_or_history, "history"):
        history = model_or_history.history
        name = f"this {type(model_or_history).__name__}"
    else:
        msg = (
            "`model_or_history` must be a fitted model with a `.history` (e.g. the return value "
            f"of `scmm.tl.fit_mlp`) or its history dict, got {type(model_or_history).__name__}."
        )
        raise TypeError(msg)
    if not isinstance(history, Mapping) or not history.get("epoch"):
        msg = (
            f"`model_or_history`: {name} has no training history (no epochs recorded); "
            "baselines and other closed-form models are not trained by epochs. Pass a model "
            "from `scmm.tl.fit_mlp` (or another neural `fit_*`) or its `model.history`."
        )
        raise ValueError(msg)
    return history


def training_curves(
    model_or_history: Any,
    *,
    show_lr: bool = False,
    ax: Axes | None = None,
) -> Axes:
    """Training and validation loss per epoch, with the best epoch and optionally the lr.

    Epochs are numbered from 1 (``history['epoch']`` + 1, lightning counts from 0), so an
    epoch's losses sit at its end. The learning rate, recorded per optimiser step, is drawn at
    fractional epochs ``(step + 1) / steps_per_epoch`` on a log-scaled twin axis.

    Parameters
    ----------
    model_or_history
        A fitted neural model (anything with a ``.history``, e.g. the return value of
        :func:`scmm.tl.fit_mlp`) or its history dict as returned by :func:`scmm.train.train`
        (keys ``epoch``, ``train_loss``, ``val_loss``; ``lr``, ``steps_per_epoch`` and
        ``best_epoch`` are optional).
    show_lr
        Also draw the learning rate on a twin y axis (right, log scale).
    ax
        Axes to draw into; default a new figure.

    Returns
    -------
    The Axes of the losses: a line for the training loss, one for the validation loss when
    the fit had validation cells, and a dotted vertical line at the best epoch when early
    stopping restored it. With ``show_lr`` the learning-rate line is on a twin Axes, found in
    ``ax.figure.axes``.

    Examples
    --------
    >>> import scmm
    >>> history = {
    ...     "epoch": [0, 1, 2],
    ...     "train_loss": [1.0, 0.6, 0.5],
    ...     "val_loss": [1.1, 0.7, 0.75],
    ...     "lr": [1e-3, 2e-3, 3e-3, 2e-3, 1e-3, 1e-4],
    ...     "steps_per_epoch": 2,
    ...     "best_epoch": 1,
    ... }
    >>> ax = scmm.pl.training_curves(history, show_lr=True)
    >>> len(ax.lines), len(ax.figure.axes)
    (3, 2)
    """
    history = _get_history(model_or_history)
    epochs = np.asarray(history["epoch"], dtype=float) + 1
    train = np.asarray(history.get("train_loss", []), dtype=float)
    val = np.asarray(history.get("val_loss", []) or [], dtype=float)
    if len(train) != len(epochs):
        msg = (
            f"`model_or_history`: 'train_loss' has {len(train)} values for {len(epochs)} epochs;"
            " pass the history dict of `scmm.train.train` unchanged."
        )
        raise ValueError(msg)
    if len(val) not in (0, len(epochs)):
        msg = (
            f"`model_or_history`: 'val_loss' has {len(val)} values for {len(epochs)} epochs "
            "(expected one per epoch, or none without validation cells)."
        )
        raise ValueError(msg)
    lrs = np.asarray(history.get("lr", []) or [], dtype=float)
    if show_lr and len(lrs) == 0:
        msg = "`show_lr=True` but the history records no learning rates ('lr' is empty)."
        raise ValueError(msg)

    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 3.5), layout="constrained")
    ax.plot(epochs, train, marker="o", ms=3, label="train")
    if len(val):
        ax.plot(epochs, val, marker="o", ms=3, label="validation")
    best = history.get("best_epoch")
    if best is not None:
        ax.axvline(int(best) + 1, color="grey", ls=":", lw=1.0, label=f"best epoch ({best + 1})")
    ax.set(xlabel="epoch", ylabel="loss")
    handles, labels = ax.get_legend_handles_labels()
    if show_lr:
        steps = history.get("steps_per_epoch") or len(lrs) / len(epochs)
        x = (np.arange(len(lrs)) + 1) / float(steps)
        twin = ax.twinx()
        (line,) = twin.plot(x, lrs, color="tab:green", lw=1.0, alpha=0.7, label="learning rate")
        if np.all(lrs > 0):
            twin.set_yscale("log")
        twin.set_ylabel("learning rate")
        handles.append(line)
        labels.append(line.get_label())
    ax.legend(handles, labels, fontsize=8, loc="upper right")
    return ax


def lr_range(result: LRRangeResult, *, ax: Axes | None = None) -> Axes:
    """Loss against learning rate from a learning-rate range test, with the suggested rate.

    The y range is cut where the loss diverges (above the first smoothed loss plus half its
    drop), so the descent stays readable; non-finite losses are not drawn.

    Parameters
    ----------
    result
        The :class:`~scmm.train.LRRangeResult` of :func:`scmm.tl.lr_range_test` or
        :func:`scmm.train.lr_range_test`.
    ax
        Axes to draw into; default a new figure.

    Returns
    -------
    The Axes (log-scaled x): a thin line for the raw losses, a line for the smoothed losses,
    and, when the test gave a suggestion, a dashed vertical line at it.

    Examples
    --------
    >>> import numpy as np, scmm
    >>> from scmm.train import LRRangeResult
    >>> lrs = np.logspace(-5, 0, 30)
    >>> losses = 1 / (1 + 1e3 * lrs) + lrs**2
    >>> ax = scmm.pl.lr_range(LRRangeResult(lrs, losses, losses, 1e-3))
    >>> len(ax.lines), ax.get_xscale()
    (3, 'log')
    """
    for field in ("lrs", "losses", "smoothed", "suggestion"):
        if not hasattr(result, field):
            msg = (
                "`result` must be a `scmm.train.LRRangeResult` (from `scmm.tl.lr_range_test`), "
                f"got {type(result).__name__} without `.{field}`."
            )
            raise TypeError(msg)
    lrs = np.asarray(result.lrs, dtype=float)
    losses = np.asarray(result.losses, dtype=float)
    smoothed = np.asarray(result.smoothed, dtype=float)
    if len(lrs) == 0 or not len(lrs) == len(losses) == len(smoothed):
        msg = (
            f"`result` has {len(lrs)} learning rates, {len(losses)} losses and {len(smoothed)} "
            "smoothed losses; expected the same non-zero number of each."
        )
        raise ValueError(msg)
    if not np.all(lrs > 0):
        msg = "`result.lrs` must be positive (the x axis is logarithmic)."
        raise ValueError(msg)
    losses = np.where(np.isfinite(losses), losses, np.nan)
    smoothed = np.where(np.isfinite(smoothed), smoothed, np.nan)

    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 3.5), layout="constrained")
    ax.plot(lrs, losses, color="tab:blue", lw=0.8, alpha=0.4, label="loss")
    ax.plot(lrs, smoothed, color="tab:blue", lw=1.6, label="smoothed")
    if result.suggestion is not None:
        ax.axvline(
            float(result.suggestion),
            color="tab:red",
            ls="--",
            lw=1.0,
            label=f"suggested lr = {result.suggestion:.2g}",
        )
    ax.set_xscale("log")
    ax.set(xlabel="learning rate", ylabel="training loss")
    finite = smoothed[np.isfinite(smoothed)]
    if finite.size:
        start, low = finite[0], finite.min()
        drop = start - low
        raw_max = np.nanmax(losses) if np.isfinite(losses).any() else start
        if drop > 0 and raw_max > start + 0.5 * drop:
            raw_min = np.nanmin(losses)
            ax.set_ylim(raw_min - 0.05 * drop, start + 0.5 * drop)
    ax.legend(fontsize=8)
    return ax
