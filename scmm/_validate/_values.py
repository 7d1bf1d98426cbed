"""Checks of the values a function reads: modalities, matrices, NaN, counts, predictions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from mudata import MuData

from .._keys import PREDICTION_PREFIX


def _listing(names: Sequence[str], limit: int = 10) -> str:
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")


#: Share of the non-zero values that are whole numbers above which a matrix holds raw counts.
COUNTS_INTEGER_FRACTION = 0.99


def _counts_like(values: np.ndarray) -> bool:
    """Whether dense ``values`` are raw counts: non-negative, whole, some above 1."""
    nonzero = values[values != 0]
    if not nonzero.size:
        return False
    whole = np.count_nonzero(nonzero == np.rint(nonzero)) / nonzero.size
    return bool(nonzero.min() >= 0 and nonzero.max() > 1 and whole >= COUNTS_INTEGER_FRACTION)


#: Modality names of gene expression and of antibody panels (lower case).
GENE_MODALITIES = frozenset({"rna", "gex", "gene_expression", "expression"})
PROTEIN_MODALITIES = frozenset({"prot", "adt", "protein", "proteins", "antibody"})


def holds_genes(adata: AnnData, mod: str) -> bool:
    """Whether the modality ``mod`` holds genes (no isotype controls, no antibody aliases).

    Read from 10x ``var['feature_types']``, else the modality's name, else how
    :func:`scmm.pp.normalize` normalised it (``log_cp10k``); unknown counts as not genes, so
    antibody names are harmonised and controls flagged as before.
    """
    if "feature_types" in adata.var.columns:
        types = set(adata.var["feature_types"].astype(str))
        if types == {"Gene Expression"}:
            return True
        if types == {"Antibody Capture"}:
            return False
    if mod.lower() in GENE_MODALITIES | PROTEIN_MODALITIES:
        return mod.lower() in GENE_MODALITIES
    record = adata.uns.get("scmm_normalize")
    return isinstance(record, dict) and record.get("method") == "log_cp10k"


def raw_holds_counts(adata: AnnData) -> bool:
    """Whether ``adata.raw`` holds raw counts of ``adata``'s features (its first 1,000 cells).

    R converters (SeuratDisk, sceasy) and scanpy workflows keep the counts there, where the
    functions that read ``.layers['counts']`` do not look.
    """
    raw = adata.raw
    if raw is None or not adata.var_names.isin(raw.var_names).all():
        return False
    sample = raw[: min(adata.n_obs, 1_000), adata.var_names].X
    return _counts_like(sample.data if sp.issparse(sample) else np.asarray(sample).ravel())


def check_measured_normalised(measured: np.ndarray, predicted: np.ndarray, what: str, fix: str):
    """Refuse raw-count ``measured`` values scored against normalised ``predicted`` ones.

    Correlations and offsets of counts against log-scale predictions mix two spaces: a silent
    wrong number. ``what`` names the measured values, ``fix`` the call that normalises them.
    """
    if _counts_like(measured) and not _counts_like(predicted):
        msg = (
            f"{what} holds raw counts (non-negative whole numbers up to "
            f"{float(measured.max()):,.0f}) but the predictions are normalised values: "
            f"normalise the measured values as the model's training targets were first, e.g. "
            f"{fix}."
        )
        raise ValueError(msg)


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


def find_predictions(mdata: MuData, key: str, mod: str) -> tuple[str, pd.DataFrame, bool]:
    """Find the predictions ``key`` of the modality ``mod``.

    Returns the modality holding them, them as a cells × features DataFrame, and whether they
    are a layer of ``mdata[mod]`` (a fit, or :func:`scmm.tl.predict` into the measured panel:
    features named as ``mod``'s) rather than a DataFrame in a modality's ``.obsm`` (``predict``
    for cells without ``mod``, or of another panel).
    """
    adata = mdata[mod]
    if key in adata.layers:
        values = adata.layers[key]
        values = values.toarray() if sp.issparse(values) else np.asarray(values)
        return mod, pd.DataFrame(values, index=adata.obs_names, columns=adata.var_names), True
    for name, other in mdata.mod.items():
        found = other.obsm.get(key)
        if isinstance(found, pd.DataFrame):
            return name, found, False
    msg = (
        f"No predictions {key!r}: looked in mdata[{mod!r}].layers (has: "
        f"{_listing(adata.layers) or 'none'}) and every modality's `.obsm`. Run "
        "`scmm.tl.predict(model, mdata, key_added=...)` (or a `scmm.tl.fit_*` call) first and "
        "pass that key."
    )
    raise KeyError(msg)


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


def check_output_keys(store, keys: Sequence[str], uns, key_added: str, where: str) -> None:
    """Refuse to overwrite entries of ``store`` that scmm did not write under ``key_added``.

    ``store`` is the ``.layers`` or ``.obsm`` the outputs ``keys`` go to, ``uns`` the ``.uns``
    that records them. An earlier scmm output under ``key_added`` (its ``.uns[key_added]``
    holds ``params``, or the key is one of scmm's defaults, ``scmm_*``, kept when modalities
    were copied into a new MuData) is replaced, as scanpy replaces its keys; anything else
    there (raw counts, another tool's values) is kept and the call refused, before any work.
    """
    record = uns.get(key_added) if hasattr(uns, "get") else None
    if isinstance(record, dict) and "params" in record:
        return
    taken = [k for k in keys if k in store and not k.startswith(PREDICTION_PREFIX)]
    if taken:
        msg = (
            f"`key_added={key_added!r}` would overwrite {where}[{taken[0]!r}], which scmm did "
            "not write (no `.uns` record of it): pass another `key_added`, or delete that "
            "entry first."
        )
        raise ValueError(msg)
