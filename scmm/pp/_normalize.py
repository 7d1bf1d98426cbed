"""Standard normalisations of each modality, applied through scanpy and muon."""

from __future__ import annotations

import warnings
from typing import Literal, get_args

import anndata as ad
import numpy as np
import scipy.sparse as sp
from anndata import AnnData
from mudata import MuData

from .. import _disk
from .._settings import settings
from .._validate import (
    check_cells_have_counts,
    check_modality,
    check_nonnegative,
    get_matrix,
    raw_holds_counts,
)

NormalizeMethod = Literal["log_cp10k", "clr", "tfidf"]
KeepCounts = bool | Literal["auto", "memory", "disk"]
_METHODS = get_args(NormalizeMethod)
TARGET_SUM = 1e4  # counts per cell after scaling, for both "log_cp10k" and "tfidf"
# A block of the in-place path holds at most `scmm.settings.block_rows` rows of a CSR (columns
# of a CSC) and at most this many stored entries per row of that budget (default 8,192 × 512 =
# 4 Mi entries: ≈ 64 MiB of temporaries).
_ENTRIES_PER_ROW = 512


def _budget() -> tuple[int, int]:
    """Rows and stored entries a block may hold (read from ``scmm.settings`` at each call)."""
    rows = settings.block_rows
    return rows, rows * _ENTRIES_PER_ROW


def _blocks(indptr: np.ndarray):
    """``(start, end)`` of consecutive compressed rows, bounded in rows and stored entries."""
    n, nnz = len(indptr) - 1, int(indptr[-1])
    max_rows, max_nnz = _budget()
    s = 0
    while s < n:
        # Python ints, capped at nnz: no overflow of an int32 ``indptr`` near 2**31 entries
        last = min(int(indptr[s]) + max_nnz, nnz)
        e = min(s + max_rows, int(np.searchsorted(indptr, last, "right")) - 1)
        e = max(e, s + 1)
        yield s, e
        s = e


def _dense_step(n_vars: int) -> int:
    """Rows per block of a dense matrix, bounded like :func:`_blocks`."""
    max_rows, max_nnz = _budget()
    return max(1, min(max_rows, max_nnz // max(n_vars, 1)))


def _sums(X) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell and per-feature totals of ``X`` in float64, one block at a time (no copy)."""
    n_obs, n_vars = X.shape
    rows, cols = np.zeros(n_obs), np.zeros(n_vars)
    if sp.issparse(X):
        csr = X.format == "csr"
        major, minor = (rows, cols) if csr else (cols, rows)
        for s, e in _blocks(X.indptr):
            a, b = X.indptr[s], X.indptr[e]
            d = X.data[a:b]
            lengths = np.diff(X.indptr[s : e + 1])
            major[s:e] = np.bincount(
                np.repeat(np.arange(e - s), lengths), weights=d, minlength=e - s
            )
            minor += np.bincount(X.indices[a:b], weights=d, minlength=len(minor))
    else:
        step = _dense_step(n_vars)
        for s in range(0, n_obs, step):
            block = X[s : s + step]
            rows[s : s + len(block)] = block.sum(axis=1, dtype=np.float64)
            cols += block.sum(axis=0, dtype=np.float64)
    return rows, cols


def _idf(cols: np.ndarray, n_obs: int) -> np.ndarray:
    """``log1p(n_obs / colsum)`` per feature (float32); 0, not inf, for features without counts."""
    idf = np.zeros(len(cols), dtype=np.float32)
    has = cols > 0
    idf[has] = np.log1p(n_obs / cols[has])
    return idf


def _normalize_inplace(X, method: str, idf: np.ndarray | None = None) -> np.ndarray | None:
    """``"log_cp10k"`` or ``"tfidf"`` of the float32 counts ``X`` (CSR, CSC or ndarray), in place.

    Same values as :func:`scanpy.pp.normalize_total` (``target_sum=1e4``) then
    :func:`scanpy.pp.log1p`, or :func:`muon.atac.pp.tfidf` (``log_tf=True, log_idf=True``):
    ``log1p(x / rowsum * 1e4)``, times ``log1p(n_obs / colsum)`` for ``"tfidf"`` (or times the
    given ``idf``, one value per feature). Extra memory is one block of entries and a few
    vectors of length ``n_obs`` or ``n_vars``. Returns the IDF applied (``None``: log-CP10k).
    """
    rows, cols = _sums(X)
    scale = (TARGET_SUM / rows).astype(np.float32)  # no empty cells: checked by the caller
    if method != "tfidf":
        idf = None
    elif idf is None:
        idf = _idf(cols, X.shape[0])
    else:
        idf = np.asarray(idf, np.float32)
    if sp.issparse(X):
        csr = X.format == "csr"
        for s, e in _blocks(X.indptr):
            a, b = X.indptr[s], X.indptr[e]
            d = X.data[a:b]  # a view: the matrix's own buffer
            lengths = np.diff(X.indptr[s : e + 1])
            if csr:
                d *= np.repeat(scale[s:e], lengths)
                np.log1p(d, out=d)
                if idf is not None:
                    d *= idf[X.indices[a:b]]
            else:
                d *= scale[X.indices[a:b]]
                np.log1p(d, out=d)
                if idf is not None:
                    d *= np.repeat(idf[s:e], lengths)
    else:
        step = _dense_step(X.shape[1])
        for s in range(0, X.shape[0], step):
            block = X[s : s + step]  # a view
            block *= scale[s : s + len(block), None]
            np.log1p(block, out=block)
            if idf is not None:
                block *= idf
    return idf


def normalize(
    mdata: MuData,
    mod: str,
    *,
    method: NormalizeMethod = "log_cp10k",
    layer: str | None = "counts",
    keep_counts: KeepCounts = True,
    check_counts: bool = True,
    copy: bool = False,
) -> MuData | None:
    """Normalise one modality from its raw counts into ``.X``.

    By default the raw counts stay in ``.layers['counts']`` (created from ``.X`` if absent), so
    models can be refitted from counts and the step is safe to repeat: in memory up to 2 GiB,
    on disk above it. With ``keep_counts=False`` the counts matrix is normalised in its own
    memory instead and the raw counts are not kept.

    ``"log_cp10k"``
        :func:`scanpy.pp.normalize_total` to 10,000 counts per cell then :func:`scanpy.pp.log1p`
        (RNA).
    ``"clr"``
        Centred log-ratio per cell, ``log(x + 1) − mean_j log(x_j + 1)``
        (:func:`muon.prot.pp.clr` with ``axis=1, flavor="stoeckius"``), the protein transform of
        the 2022 competition's recipe.
    ``"tfidf"``
        :func:`muon.atac.pp.tfidf` with ``log_tf=True`` (ATAC):
        ``log1p(x / rowsum · 10⁴) · log1p(n_obs / colsum)``. The IDF, ``log1p(n_obs / colsum)``
        of these cells, is kept in ``.var['scmm_idf']``: models fitted on these values store it
        and apply it to new cells' raw counts (``scmm.tl.predict(..., normalize=True)``), so a
        handful of new cells gets the same weights as the training cells.

    Parameters
    ----------
    mdata
        The multimodal data.
    mod
        Modality to normalise.
    method
        ``"log_cp10k"``, ``"clr"`` or ``"tfidf"``.
    layer
        Layer holding raw counts; ``None`` reads ``.X``. When ``layer='counts'`` is absent, the
        counts are read from ``.X``.
    keep_counts
        Keep the raw counts in ``.layers['counts']`` when that layer is created (from ``.X``):
        ``True``/``"auto"`` keeps them in memory up to 2 GiB (``scmm.settings.memory_budget``)
        and writes larger ones to ``$SCMM_DISK_DIR`` (default ``./scmm_disk``; a CSR/CSC
        matrix is a folder of ``data``, ``indices`` and ``indptr`` ``.npy`` files), the layer
        then reading them from there as a copy-on-write memory map (one logged line says
        where; e.g. the 2022 competition's Multiome ATAC is 6.5 GB); ``"memory"`` or
        ``"disk"`` force either. The normalised values are computed on a copy, one block of
        rows at a time (no larger temporaries). ``False`` is for matrices too big to hold
        twice, such as the 2022 competition's Multiome ATAC (≈ 840 million non-zeros, 6.7 GB as
        float32 CSR): the counts matrix (``.X``, or ``layer`` when it exists) is normalised in
        place, one block of rows at a time, and becomes ``.X``; a layer it came from is removed.
        The extra memory is then one block plus a few per-cell and per-feature vectors, plus one
        float32 copy when the counts are of another dtype (the original is then dropped). The
        values equal those of ``keep_counts=True`` to float32 rounding, but the counts are gone:
        models can no longer be refitted from counts and the step cannot be repeated. A dense
        input stays dense.
        ``"clr"`` (proteins, small) runs the usual computation, without keeping the counts.
        A view of a MuData needs ``copy=True``.
    check_counts
        Refuse values that are not raw counts: non-integer values (e.g. an ``.X`` that is
        already log-normalised), and an ``.X`` this function already normalised (recorded in
        ``.uns['scmm_normalize']``), which would be normalised twice. ``False`` accepts
        non-integer counts (e.g. ambient-corrected or estimated counts); negative values are
        always refused.
    copy
        Work on a copy and return it.

    Returns
    -------
    ``None``, or the modified copy when ``copy=True``. Writes

    ``mdata[mod].X`` : ndarray or sparse (n_obs, n_vars)
        The normalised values (float32); with ``keep_counts=False``, the counts matrix itself
        when it was float32 CSR, CSC or ndarray.
    ``mdata[mod].layers['counts']``
        The raw counts, if it was not there (in memory, or a memory map of a file in
        ``$SCMM_DISK_DIR``; not with ``keep_counts=False``). With
        ``keep_counts=False`` the layer the counts were read from is removed.
    ``mdata[mod].var['scmm_idf']`` : float32
        ``"tfidf"``: the IDF each feature was weighed by.
    ``mdata[mod].uns['scmm_normalize']`` : dict
        ``method``, ``layer``, ``keep_counts`` and ``n_features`` (the number of features each
        cell's total was taken over): models fitted on ``.X`` record it, to check new cells
        and to normalise raw counts themselves (``scmm.tl.predict(..., normalize=True)``).

    Examples
    --------
    >>> import numpy as np, anndata as ad, mudata as md, scmm
    >>> prot = ad.AnnData(np.array([[1.0, 3.0], [0.0, 7.0]], dtype="float32"))
    >>> mdata = md.MuData({"prot": prot})
    >>> scmm.pp.normalize(mdata, "prot", method="clr", layer=None)
    >>> np.round(mdata["prot"].X.sum(axis=1), 6).tolist()
    [0.0, 0.0]
    """
    if method not in _METHODS:
        msg = f"`method={method!r}` is not one of {_METHODS}."
        raise ValueError(msg)
    if copy:
        mdata = mdata.copy()
    adata = check_modality(mdata, mod, "mod")
    normalize_adata(
        adata, mod, method=method, layer=layer, keep_counts=keep_counts, check_counts=check_counts
    )
    return mdata if copy else None


def normalize_adata(
    adata: AnnData,
    mod: str,
    *,
    method: NormalizeMethod,
    layer: str | None = "counts",
    keep_counts: KeepCounts = True,
    check_counts: bool = True,
    idf: np.ndarray | None = None,
) -> None:
    """:func:`normalize` of the modality ``adata`` (named ``mod`` in messages), in place.

    ``idf`` (``"tfidf"`` only, one value per feature of ``adata``) replaces the cells' own
    IDF, e.g. ones for the term frequencies alone.
    """
    if idf is not None and (method != "tfidf" or len(idf) != adata.n_vars):
        msg = f"`idf` needs method='tfidf' and {adata.n_vars} values, one per feature."
        raise ValueError(msg)
    if layer is not None and layer not in adata.layers and layer == "counts":
        source = None  # raw counts still in .X
    else:
        source = layer
    _disk.storage(keep_counts, 0, "keep_counts")  # a valid value, before anything is read
    if not keep_counts and adata.is_view:
        # its counts belong to the parent, and anndata writes a view's new `.X` into the parent
        msg = (
            f"`keep_counts=False` normalises the counts in place, but `mdata[{mod!r}]` is a view; "
            "pass `copy=True` (or normalise `mdata.copy()`)."
        )
        raise ValueError(msg)
    counts = get_matrix(adata, source)
    where = f"mdata[{mod!r}]." + (f"layers[{source!r}]" if source else "X")
    if source is None and layer is not None:
        _check_x_holds_counts(adata, counts, mod, layer)
    check_nonnegative(counts, f"layer={layer!r}" if layer else ".X")
    if check_counts:
        _check_raw_counts(adata, counts, source, where, method)
    # no copy when already float32: `tmp` below is the one working copy (none: keep_counts=False)
    counts = (
        counts.astype(np.float32, copy=False)
        if sp.issparse(counts)
        else np.asarray(counts, np.float32)
    )
    if method != "clr":
        check_cells_have_counts(counts, f"mod={mod!r}")
    params = {
        "method": method,
        "layer": layer if layer else "X",
        "keep_counts": keep_counts,
        "n_features": int(adata.n_vars),  # each cell's total (CLR: mean) is over these
    }
    # everything is checked: from here on (keep_counts=False) the counts are overwritten
    if method == "clr":
        X, used = _clr(counts.copy() if keep_counts else counts), None
    else:
        if not keep_counts:
            X = counts  # normalised in its own memory
        elif sp.issparse(counts):
            X = counts.copy() if counts.format in ("csr", "csc") else counts.tocsr(copy=True)
        else:
            X = np.array(counts, dtype=np.float32)
        if sp.issparse(X) and X.format not in ("csr", "csc"):
            X = X.tocsr()
        if not _buffer(X).flags.writeable:  # e.g. a read-only memory map
            X = X.copy()
        # one block at a time: the same values as scanpy/muon to float32 rounding, without
        # their whole-matrix temporaries (the competition's Multiome ATAC would need three
        # more copies of 6.7 GB)
        used = _normalize_inplace(X, method, idf)
    if keep_counts and "counts" not in adata.layers:
        store = _disk.storage(keep_counts, _disk.nbytes(counts), "keep_counts")
        if store == "disk":  # written before anything changes: a failed write changes nothing
            counts, path = _disk.matrix_to_disk(counts, f"counts-{mod}")
            _disk.log_on_disk(
                f"{mod}: raw counts",
                counts.shape,
                _disk.nbytes(counts),
                _disk.reason(keep_counts, "keep_counts"),
                path,
                f"mdata[{mod!r}].layers['counts']",
            )
        adata.layers["counts"] = counts
    adata.X = X
    if not keep_counts and source is not None:
        del adata.layers[source]
    if used is not None:
        adata.var["scmm_idf"] = used
    adata.uns["scmm_normalize"] = params


def _clr(counts):
    """CLR of ``counts`` per cell by muon (proteins are small; muon densifies a sparse matrix)."""
    with warnings.catch_warnings():  # muon 0.1.9 reads the deprecated scanpy.__version__
        warnings.simplefilter("ignore", FutureWarning)
        import muon as mu

    tmp = ad.AnnData(counts)
    mu.prot.pp.clr(tmp, axis=1, flavor="stoeckius")
    return tmp.X.astype(np.float32, copy=False)


_RAW_HINT = (
    " Its `.raw` holds raw counts (where R converters and scanpy workflows keep them): copy "
    "them to a layer first, `adata.layers['counts'] = adata.raw[:, adata.var_names].X`."
)


def _check_x_holds_counts(adata: AnnData, X, mod: str, layer: str) -> None:
    """Refuse negative values in ``.X``, read because ``layers[layer]`` is absent, naming both."""
    data = X.data if sp.issparse(X) else np.asarray(X)
    if data.size and data.min() < 0:
        layers = ", ".join(repr(k) for k in adata.layers) or "none"
        msg = (
            f"`mdata[{mod!r}].X` has negative values, so it does not hold raw counts, and "
            f"there is no `layers[{layer!r}]` to read them from (its layers: {layers}). Put the "
            "raw counts in `.X`, or pass `layer=` naming the layer that holds them."
            + (_RAW_HINT if raw_holds_counts(adata) else "")
        )
        raise ValueError(msg)


def _check_raw_counts(adata: AnnData, counts, source: str | None, where: str, method: str):
    """Refuse a second normalisation of ``.X`` and non-integer values (``check_counts=True``)."""
    done = adata.uns.get("scmm_normalize")
    if source is None and isinstance(done, dict) and "method" in done:
        msg = (
            f"`{where}` was already normalised by `scmm.pp.normalize(method="
            f"{done['method']!r})` (recorded in `.uns['scmm_normalize']`) and there is no "
            "`layers['counts']` to start again from: normalising it again would transform it "
            "twice. Pass `layer=` naming a layer of raw counts, or, if `.X` holds raw counts "
            "again, `check_counts=False`."
        )
        raise ValueError(msg)
    data = _buffer(counts).reshape(-1)
    if np.issubdtype(data.dtype, np.integer):
        return
    step = _budget()[1]
    for s in range(0, data.size, step):
        block = data[s : s + step]
        bad = block != np.rint(block)
        if bad.any():
            example = float(block[np.argmax(bad)])
            msg = (
                f"`{where}` holds non-integer values (e.g. {example:.4g}), so they are not raw "
                f"counts: `method={method!r}` would treat normalised values as counts. Pass "
                "`layer=` naming a layer of raw counts; if these are counts with fractions "
                "(e.g. ambient-corrected), pass `check_counts=False`."
                + (_RAW_HINT if source is None and raw_holds_counts(adata) else "")
            )
            raise ValueError(msg)


def _buffer(X) -> np.ndarray:
    """Return the values array of a sparse or dense matrix."""
    return X.data if sp.issparse(X) else np.asarray(X)
