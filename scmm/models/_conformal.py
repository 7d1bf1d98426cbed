"""Conformal interval half-widths, normalised by a scale that grows with the reference distance.

Used by :class:`scmm.models.EnsembleModel` (see its docstring for the method).
"""

from __future__ import annotations

import numpy as np


def conformal_half_width(residuals: np.ndarray, level: float) -> np.ndarray:
    """Per-target split-conformal half-width: the ⌈(n + 1)·level⌉-th smallest ``|residual|``."""
    r = np.sort(np.abs(residuals), axis=0)
    n = r.shape[0]
    rank = int(np.ceil((n + 1) * level))
    return r[min(rank, n) - 1]


#: Quantile of the OOF cells' reference distance beyond which the intervals widen.
EDGE_QUANTILE = 0.99


def sigma_slope(relative: np.ndarray, residuals: np.ndarray) -> float:
    """``β ≥ 1`` of the scale ``1 + β·max(r − 1, 0)`` (``r`` the distance over its edge).

    Each target's absolute OOF residuals are divided by their mean (every target counts
    alike), averaged over the targets per cell, and regressed (least squares) on
    ``max(r − 1, 0)``: ``β`` is the slope over the intercept (the intercept at least a tenth
    of the mean), and at least 1.
    """
    r = np.abs(np.asarray(residuals, np.float64))
    mean = r.mean(axis=0)
    x = np.clip(np.asarray(relative, np.float64) - 1.0, 0.0, None)
    if not (mean > 0).any() or x.var() == 0:
        return 1.0
    u = (r[:, mean > 0] / mean[mean > 0]).mean(axis=1)
    slope = float(np.cov(x, u, bias=True)[0, 1] / x.var())
    intercept = max(float(u.mean() - slope * x.mean()), 0.1 * float(u.mean()))
    return max(slope / intercept, 1.0)


def interval_scale(distance: np.ndarray, slope: float, edge: float) -> np.ndarray:
    """``σ(d) = 1 + slope·max(d / edge − 1, 0)`` per cell."""
    return 1.0 + slope * np.clip(np.asarray(distance, np.float64) / edge - 1.0, 0.0, None)
