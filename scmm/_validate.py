"""Input checks shared by every ``pp`` and ``tl`` function."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from mudata import MuData

from ._settings import use_mudata_options

use_mudata_options()  # every pp, tl, pl and models module reads MuData through here


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
    that read it a block of rows at a time (``scmm._utils.fit_svd``, ``scmm._utils.project``).
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


def warn_constant_rows(Y, name: str) -> bool:
    """Warn when every row of ``Y`` is constant (per-cell Pearson is 0 for all of them).

    Returns whether it warned.
    """
    import warnings

    if not Y.shape[0]:
        return False
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
        return True
    return False


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


def obs_columns_listing(mdata: MuData, mods: Sequence[str] | None = None) -> str:
    """List the ``.obs`` columns of ``mdata`` and of its modalities ``mods`` (all: ``None``)."""
    parts = [f"`mdata.obs` has: {_listing(mdata.obs.columns) or 'none'}"]
    for mod in mdata.mod if mods is None else mods:
        parts.append(f"`mdata[{mod!r}].obs` has: {_listing(mdata[mod].obs.columns) or 'none'}")
    return "; ".join(parts)


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


def _strip_version(ids) -> pd.Index:
    """Ensembl-style ids without their version suffix (``ENSG00000127054.5`` → ``…054``)."""
    return pd.Index([str(i) for i in ids]).str.replace(r"^(ENS[A-Z]*\d+)\.\d+$", r"\1", regex=True)


PEAK_NAME_RE = re.compile(r"^(.+?)[:_-](\d+)[_-](\d+)$")
"""A peak name ``chr1:100-200``, ``chr1-100-200`` or ``chr1_100_200``: chrom, start, end."""


#: Feature names that are positions only (``gene_0``, ``protein_13``, ``0``), not names.
_PLACEHOLDER = re.compile(r"(gene|protein|feature|peak)_\d+|\d+")


def _placeholders(names) -> bool:
    """Whether every one of ``names`` is a position-only placeholder (see ``_PLACEHOLDER``)."""
    return len(names) > 0 and all(_PLACEHOLDER.fullmatch(str(n)) for n in names)


def _peak_keys(names: pd.Index) -> pd.Index:
    """``chrom:start-end`` of each peak name, ``chr`` prefix dropped (NaN where not a peak)."""
    parts = pd.Series(names, dtype=object).str.extract(PEAK_NAME_RE)
    chrom = parts[0].str.replace(r"^chr", "", regex=True, case=False)
    return pd.Index(chrom + ":" + parts[1] + "-" + parts[2])


def _unique_lookup(keys: pd.Index) -> pd.Index:
    """``keys`` with duplicated entries made unmatchable, so ``get_indexer`` skips them."""
    dup = keys.duplicated(keep=False)
    if not dup.any():
        return keys
    out = np.asarray(keys, dtype=object).copy()
    out[dup] = [f"\0ambiguous {i}" for i in np.flatnonzero(dup)]
    return pd.Index(out)


def match_features(
    var: pd.DataFrame, features: Sequence[str], feature_ids: Sequence[str] | None = None
) -> tuple[np.ndarray, int, int]:
    """Position in ``var`` of each of the model's ``features`` (``-1``: missing).

    Names are matched first. When every feature of the model is a peak name, a peak still
    missing is then matched by its coordinates, whatever the separators and ``chr`` prefix
    (``chr1:100-200``, ``chr1-100-200``, ``chr1_100_200`` and ``1:100-200`` are one peak),
    read from the names or, for names that are not coordinates, from ``var`` columns
    ``chrom``, ``start`` and ``end``.
    A feature still missing is then matched through the Ensembl-style ids of
    ``var['gene_ids']`` (against the model's stored ids, or its names when those are ids), or
    the model's stored ids against ``var_names``. Version suffixes of ids are ignored and
    ambiguous (duplicated) names, coordinates or ids never match.

    Returns
    -------
    The positions, how many features were matched by peak coordinates and how many by id.
    """
    features = pd.Index([str(f) for f in features])
    names = pd.Index([str(v) for v in var.index])
    idx = _unique_lookup(names).get_indexer(features)
    if (idx >= 0).all():
        return idx, 0, 0
    by_peak = 0
    wanted_peaks = _peak_keys(features)
    if len(features) and wanted_peaks.notna().all():
        keys = _peak_keys(names)
        if keys.isna().any() and {"chrom", "start", "end"} <= set(var.columns):
            # peaks named otherwise (`peak_1`) but with coordinate columns
            coords = var["chrom"].astype(str) + "_" + var["start"].astype(str)
            coords = coords + "_" + var["end"].astype(str)
            keys = pd.Index(np.where(keys.isna(), _peak_keys(pd.Index(coords)), keys))
        keys = pd.Index(
            np.where(keys.isna(), [f"\0not a peak {i}" for i in range(len(keys))], keys)
        )
        found = _unique_lookup(keys).get_indexer(_unique_lookup(wanted_peaks))
        taken = np.zeros(len(names), dtype=bool)
        taken[idx[idx >= 0]] = True
        take = (idx < 0) & (found >= 0)
        take[take] &= ~taken[found[take]]
        idx[take] = found[take]
        by_peak = int(take.sum())
    if (idx >= 0).all():
        return idx, by_peak, 0
    n_before_ids = int((idx >= 0).sum())
    wanted = [_strip_version(features)]
    if feature_ids is not None:
        wanted.insert(0, _strip_version(feature_ids))
    columns = [_unique_lookup(_strip_version(names))]
    if "gene_ids" in var.columns:
        columns.insert(0, _unique_lookup(_strip_version(var["gene_ids"].astype(str))))
    used = np.zeros(len(names), dtype=bool)
    used[idx[idx >= 0]] = True
    for keys in wanted:
        for lookup in columns:
            found = lookup.get_indexer(keys)
            take = (idx < 0) & (found >= 0)
            take[take] &= ~used[found[take]]
            # one var column for one feature: keep the first feature asking for it
            cols = found[take]
            first = np.zeros(len(take), dtype=bool)
            _, keep = np.unique(cols, return_index=True)
            first[np.flatnonzero(take)[keep]] = True
            idx[first] = found[first]
            used[found[first]] = True
    return idx, by_peak, int((idx >= 0).sum()) - n_before_ids


def align_features(
    X,
    var: pd.DataFrame,
    features: Sequence[str],
    *,
    feature_ids: Sequence[str] | None = None,
    allow_missing: bool,
    min_overlap: float,
    arg: str,
):
    """Reorder the columns of ``X`` to the model's ``features`` (see :func:`match_features`).

    Below ``min_overlap`` (fraction of the features found) this raises a ``ValueError``; other
    missing features raise a ``KeyError`` listing them unless ``allow_missing``, when they are
    left at 0 here with a warning (the caller fills them); extra features are dropped with a
    warning.

    Returns
    -------
    The aligned matrix and a report: ``n_features``, ``n_found``, ``fraction_found``,
    ``n_matched_by_coordinates`` (peaks), ``n_matched_by_id`` and the bool array ``found``
    (not JSON).
    """
    import warnings

    if not 0 <= min_overlap <= 1:
        msg = f"`min_feature_overlap={min_overlap}` must be a fraction between 0 and 1."
        raise ValueError(msg)

    features = pd.Index([str(f) for f in features])
    n = len(features)
    idx, by_peak, by_id = match_features(var, features, feature_ids)
    present = idx >= 0
    n_found = int(present.sum())
    report = {
        "n_features": n,
        "n_found": n_found,
        "fraction_found": n_found / n if n else 1.0,
        "n_matched_by_coordinates": by_peak,
        "n_matched_by_id": by_id,
        "found": present,
    }
    missing = features[~present]
    share = f"{n_found} of the model's {n} features ({100 * report['fraction_found']:.0f}%)"
    if report["fraction_found"] < min_overlap:
        unnamed = next(
            ((who, names) for who, names in (("model's", features), (f"`{arg}`'s", var.index))
             if _placeholders(names)),
            None,
        )  # fmt: skip
        if unnamed is not None:
            hint = (
                f" The {unnamed[0]} features have no names, only positions ({unnamed[1][0]!r}, "
                f"{unnamed[1][1 % len(unnamed[1])]!r}, …): such data (e.g. "
                "`scmm.datasets.pbmc10k_cite`) cannot be matched to named features. Train and "
                "predict on data with real feature names."
            )
        elif _peak_keys(features).notna().all():
            hint = (
                " Peaks were matched by their coordinates too (`chr1:100-200`, `chr1-100-200` "
                "and `chr1_100_200` alike): these cells were counted on other peaks (or another "
                "genome build). Count their fragments on the model's peaks "
                "(`model.source_features`)."
            )
        elif "gene_ids" in var.columns:
            hint = " Ids in `var['gene_ids']` were used where names differ."
        else:
            hint = (
                " If the training data named genes differently (symbols vs Ensembl ids), add "
                "the ids as `var['gene_ids']`."
            )
        msg = (
            f"Only {share} are in `{arg}`, below `min_feature_overlap={min_overlap}`: "
            f"predictions would rest on filled-in values. Missing: {_listing(missing)}.{hint} "
            "Use data measuring the model's features, or lower `min_feature_overlap` knowingly."
        )
        raise ValueError(msg)
    if len(missing) and not allow_missing:
        msg = (
            f"{len(missing)} of the model's {n} features are missing from `{arg}` "
            f"({share} found): {_listing(missing)}. Pass `allow_missing_features=True` to fill "
            "them at their training means."
        )
        raise KeyError(msg)
    if len(missing):
        warnings.warn(
            f"Filling {len(missing)} features missing from `{arg}` at their training means "
            f"({share} found): {_listing(missing)}.",
            UserWarning,
            stacklevel=4,
        )
    extra = np.ones(len(var), dtype=bool)
    extra[idx[present]] = False
    if extra.any():
        warnings.warn(
            f"Ignoring {int(extra.sum())} features of `{arg}` the model was not trained on: "
            f"{_listing(var.index[extra])}.",
            UserWarning,
            stacklevel=4,
        )
    if present.all() and np.array_equal(idx, np.arange(len(var))):
        return X, report
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        cols = X[:, idx[present]]
        if present.all():
            return cols, report
        out = sp.lil_matrix((X.shape[0], n), dtype=X.dtype)
        out[:, np.flatnonzero(present)] = cols
        return out.tocsr(), report
    X = np.asarray(X)
    out = np.zeros((X.shape[0], n), dtype=X.dtype)
    out[:, present] = X[:, idx[present]]
    return out, report


def fill_missing(X, found: np.ndarray, values: np.ndarray | None):
    """Set the columns of ``X`` not ``found`` to ``values`` (training means; ``None``: 0)."""
    if found.all() or values is None:
        return X
    cols = np.flatnonzero(~found)
    fill = np.asarray(values, dtype=np.float32)[cols]
    if sp.issparse(X):
        block = sp.csr_matrix(np.broadcast_to(fill, (X.shape[0], len(cols))))
        keep = np.flatnonzero(found)
        out = sp.hstack([X[:, keep], block], format="csr")
        order = np.argsort(np.concatenate([keep, cols]), kind="stable")
        return out[:, order]
    X = np.array(X, dtype=np.result_type(X.dtype, np.float32))
    X[:, cols] = fill
    return X


def check_finite_predictions(pred, key_added: str) -> None:
    """Raise a ``FloatingPointError`` if ``pred`` holds NaN or infinite values.

    Called before predictions are written, so that nothing is. ``pred`` (an array or a
    read-only memory map of one on disk) is read a block of rows at a time. The message counts
    the values and cells, names the first and last bad row (a contiguous block of bad rows
    points at a block of inputs), and the likely causes.
    """
    n_rows = pred.shape[0]
    step = max(1, 2**22 // max(1, pred.shape[1] if pred.ndim > 1 else 1))
    n_bad, bad_rows = 0, []
    for start in range(0, n_rows, step):
        finite = np.isfinite(np.asarray(pred[start : start + step]))
        if not finite.all():
            n_bad += int(finite.size - finite.sum())
            rows = ~finite.reshape(finite.shape[0], -1).all(axis=1)
            bad_rows.append(start + np.flatnonzero(rows))
    if not n_bad:
        return
    rows = np.concatenate(bad_rows)
    msg = (
        f"`{key_added}`: the model predicted {n_bad} NaN or infinite values, in {len(rows)} of "
        f"{n_rows} cells (rows {rows[0]} to {rows[-1]}); nothing was written. Either its "
        "weights are not finite (refit it with a lower `lr`), or the inputs of those cells lie "
        "far outside the training values (e.g. raw counts where normalised values are "
        "expected: see `scmm.pp.normalize`)."
    )
    raise FloatingPointError(msg)
