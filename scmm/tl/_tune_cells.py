"""The cells of a ``tune_mlp`` run: which training cells are held out to score the trials.

Only the training cells are ever read: the tuning cells are chosen among them (whole groups of
an ``.obs`` column, a given mask, or a random fraction), and the trials' data are copies of the
source and target values at the fitting and tuning rows alone.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from mudata import MuData

from .._validate import _listing, cell_mask, get_matrix, obs_columns_listing


def _obs_column(mdata: MuData, src: AnnData, name: str, arg: str) -> pd.Series:
    """Return ``.obs[name]`` of the MuData (or the source modality) in the source's cell order."""
    if name in mdata.obs.columns:
        return mdata.obs[name].reindex(src.obs_names)
    if name in src.obs.columns:
        return src.obs[name]
    mods = [m for m, adata in mdata.mod.items() if adata is src]
    msg = (
        f"`{arg}={name!r}` is not a column of `mdata.obs` or of the source's `.obs` "
        f"({obs_columns_listing(mdata, mods)})."
    )
    raise KeyError(msg)


def _tuning_mask(
    mdata: MuData,
    src: AnnData,
    train: np.ndarray,
    validation,
    groupby: str | None,
    validation_fraction: float,
    gen: np.random.Generator,
) -> tuple[np.ndarray, list[str] | None]:
    """Return the bool mask of the tuning cells (within ``train``) and the held-out groups."""
    n = src.n_obs
    if groupby is not None:
        labels = _obs_column(mdata, src, groupby, "groupby")
        in_train = labels[train]
        groups = sorted(pd.unique(in_train.dropna()).tolist(), key=str)
        if validation is None:
            if len(groups) < 2:
                msg = (
                    f"`groupby={groupby!r}` has {len(groups)} group(s) among the training cells; "
                    "holding one out needs at least two."
                )
                raise ValueError(msg)
            chosen = [groups[int(gen.integers(len(groups)))]]
        else:
            chosen = list(validation) if isinstance(validation, list | tuple) else [validation]
            for label in chosen:
                if label not in groups:
                    msg = (
                        f"`validation={label!r}` is not a group of `.obs[{groupby!r}]` among the "
                        f"training cells (has: {_listing(groups)})."
                    )
                    raise ValueError(msg)
            if set(chosen) >= set(groups):
                msg = "`validation` holds out every group; leave at least one to fit on."
                raise ValueError(msg)
        mask = labels.isin(chosen).to_numpy() & train
        return mask, [str(g) for g in chosen]
    if validation is None:
        if not 0 < validation_fraction < 1:
            msg = f"`validation_fraction={validation_fraction}` must be in (0, 1)."
            raise ValueError(msg)
        train_idx = np.flatnonzero(train)
        n_tune = max(1, round(validation_fraction * len(train_idx)))
        mask = np.zeros(n, dtype=bool)
        mask[gen.choice(train_idx, size=n_tune, replace=False)] = True
        return mask, None
    if isinstance(validation, str):
        col = _obs_column(mdata, src, validation, "validation")
        if col.dtype != bool:
            msg = f"`.obs[{validation!r}]` must be boolean (True = tuning cell), got {col.dtype}."
            raise ValueError(msg)
        mask = col.to_numpy()
    elif isinstance(validation, list | tuple):
        msg = "`validation` as a list of groups needs `groupby`, the `.obs` column they are in."
        raise ValueError(msg)
    else:
        where = ", the name of a boolean `.obs` column, or (with `groupby`) group labels"
        mask = cell_mask(validation, src.obs_names, "validation", where)
    if (mask & ~train).any():
        msg = (
            f"`validation` selects {int((mask & ~train).sum())} cells outside `train`; the test "
            "cells are never used for tuning, so pick tuning cells among the training cells."
        )
        raise ValueError(msg)
    return mask.copy(), None


def _rows(adata: AnnData, rows: np.ndarray, layer: str | None, arg: str):
    """Return the values of ``adata`` (``.X`` or ``layer``) at ``rows`` only, checked, copied."""
    X = get_matrix(adata[rows], layer, arg)  # only these rows are read and checked
    return sp.csr_matrix(X) if sp.issparse(X) else np.array(X)


def _fit_and_tune_rows(train: np.ndarray, tune_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the rows to fit on (training cells not held out) and the rows to score on."""
    fit_idx = np.flatnonzero(train & ~tune_mask)
    tune_idx = np.flatnonzero(tune_mask)
    if len(tune_idx) == 0 or len(fit_idx) < 2:
        msg = (
            f"The tuning split leaves {len(fit_idx)} cells to fit on and {len(tune_idx)} to "
            "score on; need at least 2 and 1. Hold out fewer (or more) training cells."
        )
        raise ValueError(msg)
    return fit_idx, tune_idx


def _trial_data(
    src: AnnData,
    tgt: AnnData,
    source: str,
    target: str,
    rows: tuple[np.ndarray, np.ndarray, np.ndarray],
    layer: str | None,
    target_layer: str | None,
) -> tuple[MuData, np.ndarray | sp.csr_matrix, np.ndarray]:
    """Return the private MuData of the fitting cells, and the tuning cells' source and target.

    ``rows`` holds the fitting rows, the tuning rows and, for each source row, the target's.
    """
    fit_idx, tune_idx, order = rows
    names = src.obs_names
    X_fit = _rows(src, fit_idx, layer, "layer")
    X_tune = _rows(src, tune_idx, layer, "layer")
    Y_fit = _rows(tgt, order[fit_idx], target_layer, "target_layer")
    Y_tune = _rows(tgt, order[tune_idx], target_layer, "target_layer")
    Y_fit = (Y_fit.toarray() if sp.issparse(Y_fit) else Y_fit).astype(np.float32)
    Y_tune = (Y_tune.toarray() if sp.issparse(Y_tune) else Y_tune).astype(np.float32)
    with warnings.catch_warnings():
        # a private container: mudata's notices about it (e.g. shared var names) are noise
        warnings.simplefilter("ignore")
        fit_data = MuData(
            {
                source: AnnData(
                    X_fit,
                    obs=pd.DataFrame(index=names[fit_idx].copy()),
                    var=pd.DataFrame(index=src.var_names.copy()),
                ),
                target: AnnData(
                    Y_fit,
                    obs=pd.DataFrame(index=names[fit_idx].copy()),
                    var=pd.DataFrame(index=tgt.var_names.copy()),
                ),
            }
        )
    return fit_data, X_tune, Y_tune
