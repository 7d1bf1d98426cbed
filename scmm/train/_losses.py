"""Losses and penalties used by the trainer.

All functions take ``pred`` and ``target`` of shape ``(n_cells, n_features)`` and return a scalar
tensor. They compute in float32 even under bf16 autocast: per-cell Pearson correlations over
thousands of features lose too much precision in bf16.

Each loss is finite with finite gradients for any finite input, including rows that are constant
(a cell with no counts on a small protein panel has equal CLR values): a square root or log never
sees 0 on a path that carries gradient.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "LOSSES",
    "correlation_loss",
    "informative_rows",
    "mixed_loss",
    "mse_loss",
    "sparsity_penalty",
    "weight_penalty",
]

_EPS = 1e-8
# a target row whose centred sum of squares is below this fraction of its sum of squares is
# constant up to float32 rounding (the mean of equal values may differ from them by an ulp)
_REL_VARIANCE = 1e-10
# ``1 - 2**-24`` is the largest float32 below 1 (``1 - 1e-8`` rounds to 1.0 in float32)
_GAP_BELOW_ONE = 2.0**-24


def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all entries."""
    return torch.mean((pred.float() - target.float()) ** 2)


def informative_rows(target: torch.Tensor) -> torch.Tensor:
    """Bool mask of the rows (cells) of ``target`` whose values vary.

    A row counts as constant when its centred sum of squares is at most ``1e-10`` times its
    sum of squares (equal values up to float32 rounding), or it is all zeros. Such a row has
    no per-cell correlation to fit.
    """
    t = target.float()
    tc = t - t.mean(dim=1, keepdim=True)
    return (tc * tc).sum(dim=1) > _REL_VARIANCE * (t * t).sum(dim=1)


def correlation_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Negative mean per-cell Pearson correlation (the competition's score, negated).

    Each row (cell) of ``pred`` and ``target`` is centred and scaled. Rows whose target is
    constant (see ``informative_rows``) carry no information and are left out of the mean;
    a row whose prediction is constant contributes a correlation of 0 (as in the openproblems
    metrics) with a zero gradient. The square root only ever sees positive values, so the loss
    and its gradient stay finite (``sqrt``'s gradient at 0 is infinite, and ``0 * inf`` is NaN).
    A batch without informative rows gives 0.
    """
    p = pred.float()
    t = target.float()
    p = p - p.mean(dim=1, keepdim=True)
    tc = t - t.mean(dim=1, keepdim=True)
    num = (p * tc).sum(dim=1)  # before den2, as before rows were left out: same gradient bits
    tt = (tc * tc).sum(dim=1)
    den2 = (p * p).sum(dim=1) * tt
    informative = tt > _REL_VARIANCE * (t * t).sum(dim=1)
    ok = informative & (den2 > _EPS * _EPS)
    den = torch.sqrt(torch.where(ok, den2, torch.ones_like(den2)))
    corr = torch.where(ok, num / den, torch.zeros_like(num))
    # the plain mean when every row is informative (the same numbers as before rows were left
    # out), else the mean over informative rows; `where`, not `if`: no device sync
    n_informative = informative.sum()
    partial = corr.sum() / n_informative.clamp_min(1)
    return -torch.where(n_informative == corr.shape[0], corr.mean(), partial)


def mixed_loss(
    pred: torch.Tensor, target: torch.Tensor, correlation_weight: float = 0.5
) -> torch.Tensor:
    """``(1 - correlation_weight) * mse + correlation_weight * correlation`` loss."""
    w = float(correlation_weight)
    return (1.0 - w) * mse_loss(pred, target) + w * correlation_loss(pred, target)


LOSSES = {"mse": mse_loss, "correlation": correlation_loss, "mixed": mixed_loss}


def sparsity_penalty(pred: torch.Tensor, kind: str, rho: float = 0.05) -> torch.Tensor:
    """Sparsity penalty on predicted target values.

    Parameters
    ----------
    pred
        Predictions ``(n_cells, n_features)`` in the target space.
    kind
        ``"kl"``: mean over features of KL(rho ‖ rho_hat_j), with rho_hat_j the batch mean of
        ``sigmoid(pred[:, j])`` (the sparse-autoencoder penalty; it has a gradient, unlike the
        original code's penalty on detached values). ``"l1"``: mean absolute prediction.
    rho
        Target mean activation for ``"kl"``, in (0, 1).
    """
    p = pred.float()
    if kind == "l1":
        return p.abs().mean()
    if kind == "kl":
        # clamped away from 0 and 1 (the largest float32 below 1): the logs stay finite
        rho_hat = torch.sigmoid(p).mean(dim=0).clamp(_EPS, 1 - _GAP_BELOW_ONE)
        kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
        return kl.mean()
    msg = f"`sparsity={kind!r}` is not supported; use None, 'kl' or 'l1'."
    raise ValueError(msg)


def weight_penalty(net: nn.Module, l1: float = 0.0, l2: float = 0.0) -> torch.Tensor | None:
    """``l1 * sum |w| + l2 * sum w**2`` over weight matrices (parameters with >= 2 dims).

    Biases and BatchNorm parameters are not penalised. Returns None when both are 0.
    """
    if not l1 and not l2:
        return None
    total = None
    for p in net.parameters():
        if p.ndim < 2 or not p.requires_grad:
            continue
        term = 0.0
        if l1:
            term = term + l1 * p.abs().sum()
        if l2:
            term = term + l2 * (p * p).sum()
        total = term if total is None else total + term
    return total
