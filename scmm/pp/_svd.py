"""TruncatedSVD embeddings of one modality, fitted on a chosen subset of cells."""

from __future__ import annotations

import numpy as np
from mudata import MuData

from .. import _keys
from .._utils import SeedLike, fit_svd, project
from .._validate import check_modality, get_matrix, resolve_train


def svd(
    mdata: MuData,
    mod: str,
    *,
    n_components: int = 64,
    layer: str | None = None,
    fit_on=None,
    key_added: str | None = None,
    rng: SeedLike | np.random.Generator | None = None,
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
    X = get_matrix(adata, layer, backed=True)
    mask = resolve_train(fit_on, adata.obs, arg="fit_on")
    comps = fit_svd(X, n_components, rng, rows=None if mask.all() else np.flatnonzero(mask))
    emb = project(X, comps)
    obsm_key = f"X_{key_added}" if key_added else _keys.svd_obsm(mod)
    base = key_added or _keys.svd_uns(mod)
    adata.obsm[obsm_key] = emb
    adata.varm[base] = comps.T.copy()
    adata.uns[base] = {
        "params": {"n_components": n_components, "layer": layer, "n_fit_cells": int(mask.sum())}
    }
    return mdata if copy else None


__all__ = ["svd"]
