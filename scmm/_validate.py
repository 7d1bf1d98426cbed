"""Input checks shared by every ``pp`` and ``tl`` function."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from mudata import MuData


def _listing(names: Sequence[str], limit: int = 10) -> str:
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")


def check_modality(mdata: MuData, mod: str, arg: str) -> AnnData:
    """Return ``mdata[mod]``, or raise a ``KeyError`` naming the argument and the modalities."""
    if not isinstance(mdata, MuData):
        msg = f"Expected a MuData object, got {type(mdata).__name__}."
        raise TypeError(msg)
    if mod not in mdata.mod:
        msg = f"`{arg}={mod!r}` is not a modality of this MuData (has: {_listing(mdata.mod)})."
        raise KeyError(msg)
    return mdata.mod[mod]


def get_matrix(adata: AnnData, layer: str | None, arg: str = "layer", *, backed: bool = False):
    """Return ``adata.X`` or ``adata.layers[layer]``, checked for NaN/inf, never copied.

    An on-disk (backed) sparse matrix is loaded into memory unless ``backed=True``, for callers
    that read it a block of rows at a time (:func:`scmm.pp.fit_svd`, :func:`scmm.pp.project`).
    """
    if layer is None:
        X = adata.X
        if X is None:
            msg = (
                f"`.X` is empty; pass `{arg}=` to use one of the layers ({_listing(adata.layers)})."
            )
            raise ValueError(msg)
    else:
        if layer not in adata.layers:
            msg = f"`{arg}={layer!r}` is not a layer (has: {_listing(adata.layers) or 'none'})."
            raise KeyError(msg)
        X = adata.layers[layer]
    if hasattr(X, "to_memory"):  # backed sparse dataset
        if backed:
            data = X.group["data"]
            step = 1 << 24
            for start in range(0, data.shape[0], step):
                check_finite(data[start : start + step], arg)
            return X
        X = X.to_memory()
    check_finite(X, arg if layer is not None else f"{arg}=None (.X)")
    return X


def check_finite(X, name: str) -> None:
    """Raise a ``ValueError`` if ``X`` holds NaN or infinite values."""
    data = X.data if sp.issparse(X) else np.asarray(X)
    if np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
        n_bad = int((~np.isfinite(data)).sum())
        msg = f"`{name}` holds {n_bad} NaN or infinite values; impute or drop them first."
        raise ValueError(msg)


def check_nonnegative(X, name: str) -> None:
    """Raise a ``ValueError`` if ``X`` (expected to hold counts) has negative values."""
    data = X.data if sp.issparse(X) else np.asarray(X)
    if data.size and data.min() < 0:
        msg = (
            f"`{name}` has negative values but counts are expected; pass the raw counts "
            "(e.g. `layer='counts'`)."
        )
        raise ValueError(msg)


def check_cells_have_counts(X, name: str) -> None:
    """Raise a ``ValueError`` if some cells (rows) of ``X`` have no counts at all."""
    totals = np.asarray(X.sum(axis=1)).ravel()
    n_empty = int((totals == 0).sum())
    if n_empty:
        msg = (
            f"{n_empty} cells of `{name}` have no counts, so they cannot be normalised; drop "
            "them first, e.g. `scanpy.pp.filter_cells(adata, min_counts=1)`."
        )
        raise ValueError(msg)


def prediction_layers(adata: AnnData, keys, mod: str) -> list[str]:
    """``keys`` (one layer name or several) as a list, each checked to be a layer of ``adata``."""
    keys = [keys] if isinstance(keys, str) else list(keys)
    if not keys:
        msg = "`keys` is empty; pass the prediction layer(s) to compare."
        raise ValueError(msg)
    missing = [k for k in keys if k not in adata.layers]
    if missing:
        msg = (
            f"`keys` {missing} are not layers of {mod!r} (has: {list(adata.layers)}); run a "
            "`scmm.tl.fit_*` call first."
        )
        raise KeyError(msg)
    return keys


def warn_constant_rows(Y, name: str) -> None:
    """Warn when every row of ``Y`` is constant (per-cell Pearson is 0 for all of them)."""
    import warnings

    if not Y.shape[0]:
        return
    high, low = Y.max(axis=1), Y.min(axis=1)
    if sp.issparse(Y):
        high, low = high.toarray(), low.toarray()
    if np.all(high == low):
        warnings.warn(
            f"All {len(Y)} {name} have constant target values: their per-cell Pearson is 0 "
            "and says nothing about the model. Check `target_layer` and the normalisation.",
            UserWarning,
            stacklevel=3,
        )


def align_cells(source: AnnData, target: AnnData, source_arg: str, target_arg: str) -> np.ndarray:
    """Positions in ``target`` of each cell of ``source``, matched by ``obs_names``.

    Raises a ``ValueError`` with the count of unmatched cells when the modalities do not hold
    the same cells.
    """
    if source.obs_names.equals(target.obs_names):
        return np.arange(source.n_obs)
    if not source.obs_names.is_unique or not target.obs_names.is_unique:
        msg = "Cell names (`obs_names`) must be unique; call `.obs_names_make_unique()` first."
        raise ValueError(msg)
    idx = target.obs_names.get_indexer(source.obs_names)
    n_missing = int((idx < 0).sum())
    n_extra = target.n_obs - (source.n_obs - n_missing)
    if n_missing or n_extra:
        msg = (
            f"`{source_arg}` and `{target_arg}` hold different cells: {n_missing} cells of "
            f"{source_arg} are not in {target_arg} and {n_extra} cells of {target_arg} are not in "
            f"{source_arg}. Subset the MuData to the paired cells (e.g. `mu.pp.intersect_obs`)."
        )
        raise ValueError(msg)
    return idx


def resolve_train(train, obs: pd.DataFrame, *, arg: str = "train") -> np.ndarray:
    """Turn ``train`` (None, a bool array or an ``obs`` column name) into a bool mask."""
    n = len(obs)
    if train is None:
        return np.ones(n, dtype=bool)
    if isinstance(train, str):
        if train not in obs.columns:
            msg = f"`{arg}={train!r}` is not a column of `.obs` (has: {_listing(obs.columns)})."
            raise KeyError(msg)
        col = obs[train]
        if col.dtype != bool:
            msg = f"`.obs[{train!r}]` must be boolean (True = training cell), got {col.dtype}."
            raise ValueError(msg)
        mask = col.to_numpy()
    else:
        mask = np.asarray(train)
        if mask.dtype != bool:
            msg = (
                f"`{arg}` must be a boolean mask or an `.obs` column name, got dtype {mask.dtype}."
            )
            raise ValueError(msg)
    if mask.shape != (n,):
        msg = f"`{arg}` has {mask.shape[0] if mask.ndim else 0} entries but there are {n} cells."
        raise ValueError(msg)
    if not mask.any():
        msg = f"`{arg}` selects no cells; select at least a few training cells."
        raise ValueError(msg)
    return mask


def align_features(
    X, var_names: pd.Index, features: Sequence[str], *, allow_missing: bool, arg: str
):
    """Reorder the columns of ``X`` to ``features`` by name.

    Missing features raise a ``KeyError`` listing them, unless ``allow_missing`` (then they are
    zero-filled with a warning); extra features are dropped with a warning.
    """
    import warnings

    features = pd.Index(features)
    if var_names.equals(features):
        return X
    idx = var_names.get_indexer(features)
    missing = features[idx < 0]
    extra = var_names.difference(features)
    if len(missing) and not allow_missing:
        msg = (
            f"{len(missing)} of the model's {len(features)} features are missing from `{arg}`: "
            f"{_listing(missing)}. Pass `allow_missing_features=True` to zero-fill them."
        )
        raise KeyError(msg)
    if len(missing):
        warnings.warn(
            f"Zero-filling {len(missing)} features missing from `{arg}`: {_listing(missing)}.",
            UserWarning,
            stacklevel=3,
        )
    if len(extra):
        warnings.warn(
            f"Ignoring {len(extra)} features of `{arg}` the model was not trained on: "
            f"{_listing(extra)}.",
            UserWarning,
            stacklevel=3,
        )
    present = idx >= 0
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        cols = X[:, idx[present]]
        if present.all():
            return cols
        out = sp.lil_matrix((X.shape[0], len(features)), dtype=X.dtype)
        out[:, np.flatnonzero(present)] = cols
        return out.tocsr()
    X = np.asarray(X)
    out = np.zeros((X.shape[0], len(features)), dtype=X.dtype)
    out[:, present] = X[:, idx[present]]
    return out
