"""Losses and penalties used by the trainer.

All functions take ``pred`` and ``target`` of shape ``(n_cells, n_features)`` and return a scalar
tensor. They compute in float32 even under bf16 autocast: per-cell Pearson correlations over
thousands of features lose too much precision in bf16.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "LOSSES",
    "correlation_loss",
    "mixed_loss",
    "mse_loss",
    "sparsity_penalty",
    "weight_penalty",
]

_EPS = 1e-8


def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all entries."""
    return torch.mean((pred.float() - target.float()) ** 2)


def correlation_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Negative mean per-cell Pearson correlation (the competition's score, negated).

    Each row (cell) of ``pred`` and ``target`` is centred and scaled; a row with zero variance
    contributes a correlation of 0 (as in the openproblems metrics) instead of NaN.
    """
    p = pred.float()
    t = target.float()
    p = p - p.mean(dim=1, keepdim=True)
    t = t - t.mean(dim=1, keepdim=True)
    num = (p * t).sum(dim=1)
    den = torch.sqrt((p * p).sum(dim=1) * (t * t).sum(dim=1))
    corr = num / den.clamp_min(_EPS)
    return -corr.mean()


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
        rho_hat = torch.sigmoid(p).mean(dim=0).clamp(_EPS, 1 - _EPS)
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
