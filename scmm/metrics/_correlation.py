"""Scores of predicted against measured values.

All functions take ``(measured, predicted)`` matrices of shape ``(n_cells, n_features)``, dense
or scipy sparse, and accumulate in float64, reading the matrices a block of rows at a time (a
float64 copy of 26,000 held-out cells × 23,418 genes would be 4.9 GB per array). A row (or
column) whose measured or predicted values have zero variance scores 0, as in the Open Problems
2022 competition and the openproblems benchmark, instead of NaN.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

from .._docs import doc_params
from .._settings import settings
from .._utils import row_blocks

#: The arguments every score takes, documented once.
_PAIR = """\
    measured
        Measured values, cells × features.
    predicted
        Predicted values of the same shape.
"""
_PER_CELL = (
    _PAIR
    + """\
    average
        Return the mean over cells; otherwise one value per cell.
"""
)
_MAX_BLOCK_ROWS = 2048  # at most (float64 copies), and at most `scmm.settings.block_rows`


def _matrix(x, name: str):
    """``x`` as a 2-D numpy array or CSR matrix, without copying the values."""
    if sp.issparse(x):
        x = x.tocsr()
    elif hasattr(x, "to_numpy"):
        x = x.to_numpy()
    elif not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        msg = f"`{name}` must be a 2-D matrix (cells × features), got {x.ndim} dimensions."
        raise ValueError(msg)
    return x


def _float64(x, name: str) -> np.ndarray:
    arr = np.asarray(x.toarray() if sp.issparse(x) else x, dtype=np.float64)
    if not np.isfinite(arr).all():
        n_bad = int((~np.isfinite(arr)).sum())
        msg = f"`{name}` contains {n_bad} NaN or infinite values; remove or impute them first."
        raise ValueError(msg)
    return arr


def _pair(measured, predicted):
    """Both matrices (numpy or CSR, not copied), their shapes checked to match."""
    y = _matrix(measured, "measured")
    p = _matrix(predicted, "predicted")
    if y.shape != p.shape:
        msg = (
            f"`measured` has shape {y.shape} but `predicted` has shape {p.shape}; they must match."
        )
        raise ValueError(msg)
    return y, p


def _row_blocks(y, p):
    """Float64, finite-checked ``(measured, predicted)`` blocks of rows, a bounded number."""
    rows = min(settings.block_rows, _MAX_BLOCK_ROWS)
    blocks = zip(row_blocks(y, block=rows), row_blocks(p, block=rows), strict=True)
    for (_, yb), (_, pb) in blocks:
        yield _float64(yb, "measured"), _float64(pb, "predicted")


def _correlation(num: np.ndarray, var_y: np.ndarray, var_p: np.ndarray) -> np.ndarray:
    """``num / sqrt(var_y · var_p)``, 0 where either variance is 0."""
    den = np.sqrt(var_y * var_p)
    out = np.zeros(len(num), dtype=np.float64)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


def _rowwise_pearson(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    yc = y - y.mean(axis=1, keepdims=True)
    pc = p - p.mean(axis=1, keepdims=True)
    return _correlation((yc * pc).sum(axis=1), (yc * yc).sum(axis=1), (pc * pc).sum(axis=1))


def _rowwise(measured, predicted, transform=None) -> np.ndarray:
    """Per-row Pearson, a block of rows at a time (after ``transform``, e.g. ranks)."""
    out = []
    for y, p in _row_blocks(*_pair(measured, predicted)):
        if transform is not None:
            y, p = transform(y), transform(p)
        out.append(_rowwise_pearson(y, p))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float64)


@doc_params(per_cell=_PER_CELL)
def pearson_per_cell(measured, predicted, *, average: bool = True) -> float | np.ndarray:
    """Pearson correlation of each cell's predicted and measured profile.

    This is the score of the Open Problems 2022 multimodal competition: the correlation across
    features within each cell, averaged over cells. A cell whose measured or predicted row has
    zero variance scores 0.

    Parameters
    ----------
    {per_cell}

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
    r = _rowwise(measured, predicted)
    return float(r.mean()) if average else r


@doc_params(pair=_PAIR)
def pearson_per_feature(measured, predicted, *, average: bool = True) -> float | np.ndarray:
    """Pearson correlation of each feature across cells.

    Parameters
    ----------
    {pair}
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
    n, q = y.shape
    # two passes over the row blocks: column means, then centred cross-products
    sums = np.zeros((2, q))
    for yb, pb in _row_blocks(y, p):
        sums += (yb.sum(axis=0), pb.sum(axis=0))
    mean_y, mean_p = sums / max(n, 1)
    acc = np.zeros((3, q))
    for yb, pb in _row_blocks(y, p):
        yc, pc = yb - mean_y, pb - mean_p
        acc += ((yc * pc).sum(axis=0), (yc * yc).sum(axis=0), (pc * pc).sum(axis=0))
    r = _correlation(*acc)
    return float(r.mean()) if average else r


@doc_params(per_cell=_PER_CELL)
def spearman_per_cell(measured, predicted, *, average: bool = True) -> float | np.ndarray:
    """Spearman rank correlation of each cell's predicted and measured profile.

    Ties get average ranks; a constant row scores 0.

    Parameters
    ----------
    {per_cell}

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
    r = _rowwise(measured, predicted, transform=lambda x: rankdata(x, axis=1))
    return float(r.mean()) if average else r


@doc_params(pair=_PAIR)
def rmse(measured, predicted) -> float:
    """Root mean squared error over all entries.

    Parameters
    ----------
    {pair}

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
    n, q = y.shape
    total = 0.0
    for yb, pb in _row_blocks(y, p):
        d = yb - pb
        total += float((d * d).sum())
    return float(np.sqrt(total / (n * q))) if n * q else float("nan")
