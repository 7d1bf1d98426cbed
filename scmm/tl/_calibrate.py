"""``calibrate``: shift predictions and set their intervals on a few of the query's own cells.

Across labs each antibody's level is offset (titration, clone), which no model of the
reference's cells can know and no interval built from the reference covers (docs, *Across
datasets*). With the proteins of some of the query's cells measured, the offset of each
protein is their mean residual, and split-conformal intervals on their residuals are honest
for the query's other cells.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from mudata import MuData

from .._keys import INTERVAL_SUFFIXES
from .._validate import (
    cell_mask,
    check_measured_normalised,
    check_modality,
    check_output_keys,
    find_predictions,
    holds_genes,
)
from ..metrics import match_targets, pearson_per_feature
from ._contract import _h5_safe

#: A target's predictions "follow the measured values weakly at best" when the one-sided 95%
#: upper confidence bound of their Pearson over the measured cells (Fisher's z) is below
#: ``WEAK``. On the transfer pairs (ridge, 3 seeds, 50 cells) the flagged proteins' Pearson
#: on the query's other cells was at most 0.22 (median −0.18 to 0.19); "no evidence above 0"
#: instead flagged proteins up to 0.48 (``benchmarks/query_calibration.py``).
WEAK = 0.3
_Z_95 = 1.6449  # one-sided 5% normal quantile


def _weak(r: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return each Pearson's 95% upper bound over ``n`` cells, and whether it is below WEAK."""
    if n <= 3:
        return np.ones(len(r)), np.zeros(len(r), dtype=bool)
    upper = np.tanh(np.arctanh(np.clip(r, -0.999999, 0.999999)) + _Z_95 / math.sqrt(n - 3))
    return upper, upper < WEAK


def offsets_and_half_widths(residual: np.ndarray, interval: float) -> tuple[np.ndarray, np.ndarray]:
    """Return each target's offset and interval half-width from measured − predicted values.

    ``residual`` is cells × targets. The offset is the mean residual; the half-width the
    ⌈(n + 1)·``interval``⌉-th smallest of ``|residual − offset without the cell|`` over the
    ``n`` cells (split conformal; infinite when ``n`` is too small for the level).
    """
    n = len(residual)
    offset = residual.mean(axis=0)
    leave_one_out = (residual.sum(axis=0) - residual) / (n - 1)
    scores = np.sort(np.abs(residual - leave_one_out), axis=0)
    k = math.ceil(round((n + 1) * interval, 9))
    half = scores[k - 1] if k <= n else np.full(residual.shape[1], np.inf)
    return offset, half


def _cell_mask(adata, cells) -> np.ndarray:
    if cells is None:
        return np.ones(adata.n_obs, dtype=bool)
    if isinstance(cells, str):
        if cells not in adata.obs:
            msg = f"`cells={cells!r}` is not a column of the measured modality's `.obs`."
            raise KeyError(msg)
        cells = adata.obs[cells]
    where = " of the measured modality (or the name of such an `.obs` column)"
    return cell_mask(cells, adata.obs_names, "cells", where)


def calibrate(
    mdata: MuData,
    key: str,
    measured: str,
    *,
    cells: str | Sequence[bool] | None = None,
    interval: float = 0.9,
    key_added: str | None = None,
) -> None:
    """Calibrate predictions to the query with the measured targets of some of its cells.

    For each target both the predictions and ``mdata[measured]`` have (names harmonised by
    :func:`scmm.pp.harmonize_protein_names`, isotype controls left out), the mean residual
    (measured − predicted) over the measured cells is added to every cell's prediction (the
    query's level offset, e.g. another lab's antibody titration), and split-conformal
    intervals are set from the same cells: the half-width of a target is the
    ⌈(n + 1)·``interval``⌉-th smallest of the absolute residuals, each less the offset
    computed without its own cell. On the other cells of a query measured like these, they
    cover about ``interval`` of the values (90% intervals covered 90–91% of a 10x 5′ PBMC
    query's proteins with 50 cells measured, from a REAP-seq or a 10x 3′ reference; see the
    docs' *Across datasets* page). Per-target Pearson across cells does not change. The
    measured cells must be a random sample of the query (not one cluster or a sorted
    population): the offsets and intervals hold for cells like them.

    Parameters
    ----------
    mdata
        The query, with predictions from :func:`scmm.tl.predict` (in
        ``mdata[measured].layers[key]`` or a modality's ``.obsm[key]``) and the measured
        modality, normalised as the model's training targets were (e.g. ``"clr"``; raw counts
        against normalised predictions are refused).
    key
        The predictions' key (``key_added`` of :func:`scmm.tl.predict`).
    measured
        The modality holding the measured values (``.X``) of some cells, e.g. ``"prot"``.
    cells
        Which of its cells were measured: a boolean mask over them or the name of a boolean
        ``.obs`` column; None (default): all of them. Each must also have a prediction.
    interval
        Nominal coverage of the intervals, between 0 and 1. At least
        ``interval / (1 - interval)`` measured cells (and two) are needed (9 for 0.9).
    key_added
        Output key; default ``key + "_calibrated"``.

    Returns
    -------
    ``None``. Writes, where the predictions are (a layer of ``mdata[measured]``, or a
    DataFrame in the same ``.obsm``, restricted to the shared targets),

    ``key_added``, ``key_added + '_lower'``, ``key_added + '_upper'``
        The shifted predictions and the interval bounds for every predicted cell. Those of
        the measured cells themselves are in-sample: score the others.
    ``mdata.uns[key_added]`` : dict
        ``params`` (``key``, ``measured``, ``interval``, ``n_cells``), ``features`` (the
        shared targets, as the predictions name them), ``offset`` and ``half_width`` (per
        target), ``pearson`` (per target, across the measured cells: how well the
        predictions follow them, which the offset does not change), ``weak`` (the targets
        whose ``pearson`` has a one-sided 95% upper bound below 0.3 by Fisher's z: they
        follow the measured values weakly at best; a warning names them) and ``left_out``
        (targets of the predictions without a measurement).

    Examples
    --------
    >>> import mudata as md, numpy as np, scmm
    >>> ref = scmm.datasets.toy_cite(80)
    >>> model = scmm.tl.fit_baseline(ref, "rna", "prot", method="ridge", n_components=5)
    >>> query = scmm.datasets.toy_cite(60, rng=1)
    >>> query["prot"].X = query["prot"].X + 2.0  # another lab: every level offset
    >>> scmm.tl.predict(model, query, key_added="ridge")
    >>> query["prot"].obs["measured"] = np.arange(60) < 40
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:  # toy proteins are random
    ...     warnings.simplefilter("always")
    ...     scmm.tl.calibrate(query, "ridge", "prot", cells="measured")
    >>> bool(np.all(query.uns["ridge_calibrated"]["offset"] > 1))
    True
    >>> print(str(caught[0].message)[:70])  # random toy proteins: some shown weak
    On the 40 measured cells, the predictions of 2 of 4 targets follow the
    """
    if not 0 < interval < 1:
        msg = f"`interval={interval}` must be between 0 and 1 (e.g. 0.9 for 90% intervals)."
        raise ValueError(msg)
    key_added = key_added or f"{key}_calibrated"
    target = check_modality(mdata, measured, "measured")
    holder, pred, _ = find_predictions(mdata, key, measured)
    mask = _cell_mask(target, cells)
    names = target.obs_names[mask]
    rows = pred.index.get_indexer(names)
    if (rows < 0).any():
        msg = (
            f"{int((rows < 0).sum())} measured cells have no prediction {key!r}; predict them "
            "too (or leave them out with `cells`)."
        )
        raise ValueError(msg)
    # ⌈(n + 1)·interval⌉ ≤ n, and two cells for a leave-one-out offset
    n_needed = max(2, math.ceil(round(interval / (1 - interval), 9)))
    if len(rows) < n_needed:
        msg = (
            f"{len(rows)} measured cells are too few for {interval:.0%} intervals: at least "
            f"{n_needed} are needed (more give steadier offsets; 50 were enough across labs)."
        )
        raise ValueError(msg)
    match = match_targets(
        list(pred.columns), list(target.var_names), proteins=not holds_genes(target, measured)
    )
    if not match["shared"]:
        msg = (
            f"The predictions {key!r} and mdata[{measured!r}] share no target (predicted: "
            f"{list(pred.columns)[:10]}; measured: {list(target.var_names)[:10]})."
        )
        raise ValueError(msg)
    X = target.X[np.flatnonzero(mask)][:, match["measured_index"]]
    y = np.asarray(X.toarray() if sp.issparse(X) else X, np.float64)
    if not np.isfinite(y).all():
        msg = f"mdata[{measured!r}].X holds NaN or infinite values in the measured cells."
        raise ValueError(msg)
    p_all = pred.to_numpy(np.float64)[:, match["model_index"]]
    check_measured_normalised(
        y,
        p_all,
        f"mdata[{measured!r}].X of the measured cells",
        f"`scmm.pp.normalize(mdata, {measured!r}, method='clr')`",
    )
    offset, half = offsets_and_half_widths(y - p_all[rows], interval)
    n = len(rows)
    pearson = pearson_per_feature(y, p_all[rows], average=False)  # the offset does not move it
    upper, weak = _weak(pearson, n)
    shifted = p_all + offset
    outputs = {
        key_added: shifted,
        key_added + INTERVAL_SUFFIXES[0]: shifted - half,
        key_added + INTERVAL_SUFFIXES[1]: shifted + half,
    }
    columns = pred.columns[match["model_index"]]
    adata = mdata[holder]
    in_layers = holder == measured and key in adata.layers and len(columns) == adata.n_vars
    store = adata.layers if in_layers else adata.obsm
    where = f"mdata[{holder!r}]." + ("layers" if in_layers else "obsm")
    check_output_keys(store, list(outputs), mdata.uns, key_added, where)
    for name, values in outputs.items():
        if in_layers:
            adata.layers[name] = values.astype(np.float32)
        else:
            adata.obsm[name] = pd.DataFrame(values, index=pred.index.copy(), columns=columns)
    mdata.uns[key_added] = {
        "params": _h5_safe(
            {"key": key, "measured": measured, "interval": interval, "n_cells": int(n)}
        ),
        "features": np.array(list(columns), dtype=str),
        "offset": offset,
        "half_width": half,
        "pearson": pearson,
        "weak": np.array(list(columns[weak]), dtype=str),
        "left_out": np.array(match["left_out_model"], dtype=str),
    }
    if weak.any():
        pairs = zip(columns[weak], pearson[weak], upper[weak], strict=True)
        listed = ", ".join(f"{c} {r:.2f} (≤ {u:.2f})" for c, r, u in pairs)
        warnings.warn(
            f"On the {n} measured cells, the predictions of {int(weak.sum())} of "
            f"{len(columns)} targets follow the measured values weakly at best (Pearson, and "
            f"its 95% upper bound below {WEAK}): {listed}. The reference may measure these "
            "targets otherwise (another antibody clone or panel): their calibrated levels and "
            "intervals hold, but not which cells express more. Listed in "
            f"`.uns[{key_added!r}]['weak']`.",
            UserWarning,
            stacklevel=2,
        )
