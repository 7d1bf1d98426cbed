"""TruncatedSVD embeddings of one modality, fitted on a chosen subset of cells."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from mudata import MuData
from sklearn.decomposition import TruncatedSVD

from .. import _keys
from .._validate import check_modality, get_matrix, resolve_train
from ._rng import seed_from


def fit_svd(X, n_components: int, rng=None) -> np.ndarray:
    """Fit a TruncatedSVD to the rows of ``X`` and return the components (k × n_features).

    ``X`` may be sparse; it is never densified. The component signs are made deterministic
    (largest absolute loading positive).

    Parameters
    ----------
    X
        Cells × features, dense or scipy sparse.
    n_components
        Number of components; must be smaller than the number of features and cells.
    rng
        Seed or :class:`numpy.random.Generator` of the randomized solver.

    Returns
    -------
    Components as a float32 array of shape ``(n_components, n_features)``.
    """
    n_max = min(X.shape) - 1
    if not 1 <= n_components <= n_max:
        msg = (
            f"`n_components={n_components}` must be between 1 and {n_max} "
            f"(one less than the smaller of {X.shape[0]} cells and {X.shape[1]} features)."
        )
        raise ValueError(msg)
    svd = TruncatedSVD(
        n_components=n_components, algorithm="randomized", n_iter=7, random_state=seed_from(rng)
    )
    svd.fit(sp.csr_matrix(X, dtype=np.float32) if sp.issparse(X) else np.asarray(X, np.float32))
    comps = svd.components_.astype(np.float32)
    signs = np.sign(comps[np.arange(n_components), np.abs(comps).argmax(axis=1)])
    return comps * signs[:, None]


def project(X, components: np.ndarray) -> np.ndarray:
    """Project the rows of ``X`` (dense or sparse) onto SVD ``components``; float32 result."""
    out = X @ components.T
    return np.asarray(out, dtype=np.float32)


def svd(
    mdata: MuData,
    mod: str,
    *,
    n_components: int = 64,
    layer: str | None = None,
    fit_on=None,
    key_added: str | None = None,
    rng=None,
    copy: bool = False,
) -> MuData | None:
    """TruncatedSVD embedding of one modality.

    The SVD is fitted only on the cells ``fit_on`` selects and applied to all cells, so held-out
    cells can be kept out of the fit. Sparse input stays sparse. Normalise first (e.g.
    :func:`scanpy.pp.normalize_total` and :func:`scanpy.pp.log1p`, or :func:`scmm.pp.normalize`).

    Parameters
    ----------
    mdata
        The multimodal data.
    mod
        Modality to embed.
    n_components
        Number of components.
    layer
        Layer to embed instead of ``.X``.
    fit_on
        Cells the SVD is fitted on: a boolean mask, the name of a boolean ``.obs`` column of the
        modality, or ``None`` for all cells.
    key_added
        Base name of the outputs; default ``"svd_<mod>"``.
    rng
        Seed or :class:`numpy.random.Generator` of the randomized solver.
    copy
        Work on a copy and return it.

    Returns
    -------
    ``None``, or the modified copy when ``copy=True``. Writes

    ``mdata[mod].obsm['X_svd_<mod>']`` : ndarray (n_obs, n_components)
        The embedding of every cell.
    ``mdata[mod].varm['svd_<mod>']`` : ndarray (n_vars, n_components)
        The loadings.
    ``mdata[mod].uns['svd_<mod>']['params']`` : dict
        ``n_components``, ``layer``, ``n_fit_cells``.

    Examples
    --------
    >>> import numpy as np, anndata as ad, mudata as md, scmm
    >>> rna = ad.AnnData(np.random.default_rng(0).poisson(1.0, (50, 20)).astype("float32"))
    >>> mdata = md.MuData({"rna": rna})
    >>> scmm.pp.svd(mdata, "rna", n_components=5, rng=0)
    >>> mdata["rna"].obsm["X_svd_rna"].shape
    (50, 5)
    """
    if copy:
        mdata = mdata.copy()
    adata = check_modality(mdata, mod, "mod")
    X = get_matrix(adata, layer)
    mask = resolve_train(fit_on, adata.obs, arg="fit_on")
    comps = fit_svd(X[np.flatnonzero(mask)] if not mask.all() else X, n_components, rng)
    emb = project(X, comps)
    obsm_key = f"X_{key_added}" if key_added else _keys.svd_obsm(mod)
    base = key_added or _keys.svd_uns(mod)
    adata.obsm[obsm_key] = emb
    adata.varm[base] = comps.T.copy()
    adata.uns[base] = {
        "params": {"n_components": n_components, "layer": layer, "n_fit_cells": int(mask.sum())}
    }
    return mdata if copy else None


__all__ = ["fit_svd", "project", "svd"]
