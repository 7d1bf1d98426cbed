"""Scores of predicted against measured values.

All functions take ``(measured, predicted)`` matrices of shape ``(n_cells, n_features)``, dense
or scipy sparse, and accumulate in float64. A row (or column) whose measured or predicted values
have zero variance scores 0, as in the Open Problems 2022 competition and the openproblems
benchmark, instead of NaN.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

__all__ = ["pearson_per_cell", "pearson_per_feature", "rmse", "spearman_per_cell"]


def _as_float64(x, name: str) -> np.ndarray:
    if isinstance(x, np.ndarray):
        arr = x
    elif sp.issparse(x):
        arr = x.toarray()
    elif hasattr(x, "to_numpy"):
        arr = x.to_numpy()
    else:
        arr = np.asarray(x)
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        msg = f"`{name}` must be a 2-D matrix (cells × features), got {arr.ndim} dimensions."
        raise ValueError(msg)
    if not np.isfinite(arr).all():
        n_bad = int((~np.isfinite(arr)).sum())
        msg = f"`{name}` contains {n_bad} NaN or infinite values; remove or impute them first."
        raise ValueError(msg)
    return arr


def _pair(measured, predicted) -> tuple[np.ndarray, np.ndarray]:
    y = _as_float64(measured, "measured")
    p = _as_float64(predicted, "predicted")
    if y.shape != p.shape:
        msg = (
            f"`measured` has shape {y.shape} but `predicted` has shape {p.shape}; they must match."
        )
        raise ValueError(msg)
    return y, p


def _rowwise_pearson(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    yc = y - y.mean(axis=1, keepdims=True)
    pc = p - p.mean(axis=1, keepdims=True)
    num = (yc * pc).sum(axis=1)
    den = np.sqrt((yc * yc).sum(axis=1) * (pc * pc).sum(axis=1))
    out = np.zeros(len(y), dtype=np.float64)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


def pearson_per_cell(measured, predicted, *, average: bool = True) -> float | np.ndarray:
    """Pearson correlation of each cell's predicted and measured profile.

    This is the score of the Open Problems 2022 multimodal competition: the correlation across
    features within each cell, averaged over cells. A cell whose measured or predicted row has
    zero variance scores 0.

    Parameters
    ----------
    measured
        Measured values, cells × features.
    predicted
        Predicted values of the same shape.
    average
        Return the mean over cells; otherwise one value per cell.

    Returns
    -------
    The mean per-cell Pearson correlation, or an array of one value per cell.

    Examples
    --------
    >>> import numpy as np
    >>> from scmm.metrics import pearson_per_cell
    >>> y = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    >>> float(pearson_per_cell(y, 2 * y))
    0.5
    """
    y, p = _pair(measured, predicted)
    r = _rowwise_pearson(y, p)
    return float(r.mean()) if average else r


def pearson_per_feature(measured, predicted, *, average: bool = True) -> float | np.ndarray:
    """Pearson correlation of each feature across cells.

    Parameters
    ----------
    measured
        Measured values, cells × features.
    predicted
        Predicted values of the same shape.
    average
        Return the mean over features; otherwise one value per feature.

    Returns
    -------
    The mean per-feature Pearson correlation, or an array of one value per feature
    (0 for a feature with zero variance in the measured or predicted values).

    Examples
    --------
    >>> import numpy as np
    >>> from scmm.metrics import pearson_per_feature
    >>> y = np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    >>> pearson_per_feature(y, y, average=False).tolist()
    [1.0, 0.0]
    """
    y, p = _pair(measured, predicted)
    r = _rowwise_pearson(y.T, p.T)
    return float(r.mean()) if average else r


def spearman_per_cell(measured, predicted, *, average: bool = True) -> float | np.ndarray:
    """Spearman rank correlation of each cell's predicted and measured profile.

    Ties get average ranks; a constant row scores 0.

    Parameters
    ----------
    measured
        Measured values, cells × features.
    predicted
        Predicted values of the same shape.
    average
        Return the mean over cells; otherwise one value per cell.

    Returns
    -------
    The mean per-cell Spearman correlation, or one value per cell.

    Examples
    --------
    >>> import numpy as np
    >>> from scmm.metrics import spearman_per_cell
    >>> float(spearman_per_cell(np.array([[1.0, 5.0, 9.0]]), np.array([[0.0, 1.0, 100.0]])))
    1.0
    """
    y, p = _pair(measured, predicted)
    r = _rowwise_pearson(rankdata(y, axis=1), rankdata(p, axis=1))
    return float(r.mean()) if average else r


def rmse(measured, predicted) -> float:
    """Root mean squared error over all entries.

    Parameters
    ----------
    measured
        Measured values, cells × features.
    predicted
        Predicted values of the same shape.

    Returns
    -------
    The root of the mean squared difference.

    Examples
    --------
    >>> import numpy as np
    >>> from scmm.metrics import rmse
    >>> rmse(np.zeros((2, 2)), np.ones((2, 2)))
    1.0
    """
    y, p = _pair(measured, predicted)
    return float(np.sqrt(np.mean((y - p) ** 2)))
