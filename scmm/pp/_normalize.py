"""Standard normalisations of each modality, applied through scanpy and muon."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import scipy.sparse as sp
from mudata import MuData

from .._validate import check_cells_have_counts, check_modality, check_nonnegative, get_matrix

_METHODS = ("log_cp10k", "clr", "tfidf")


def normalize(
    mdata: MuData,
    mod: str,
    *,
    method: str = "log_cp10k",
    layer: str | None = "counts",
    copy: bool = False,
) -> MuData | None:
    """Normalise one modality from its raw counts into ``.X``.

    The raw counts stay in ``.layers['counts']`` (created from ``.X`` if absent), so models can
    be refitted from counts and the step is safe to repeat.

    ``"log_cp10k"``
        :func:`scanpy.pp.normalize_total` to 10,000 counts per cell then :func:`scanpy.pp.log1p`
        (RNA).
    ``"clr"``
        Centred log-ratio per cell, ``log(x + 1) − mean_j log(x_j + 1)``
        (:func:`muon.prot.pp.clr` with ``axis=1, flavor="stoeckius"``), the protein transform of
        the 2022 competition's recipe.
    ``"tfidf"``
        :func:`muon.atac.pp.tfidf` with ``log_tf=True`` (ATAC).

    Parameters
    ----------
    mdata
        The multimodal data.
    mod
        Modality to normalise.
    method
        ``"log_cp10k"``, ``"clr"`` or ``"tfidf"``.
    layer
        Layer holding raw counts; ``None`` reads ``.X``.
    copy
        Work on a copy and return it.

    Returns
    -------
    ``None``, or the modified copy when ``copy=True``. Writes

    ``mdata[mod].X`` : ndarray or sparse (n_obs, n_vars)
        The normalised values (float32).
    ``mdata[mod].layers['counts']``
        The raw counts, if it was not there.
    ``mdata[mod].uns['scmm_normalize']`` : dict
        ``method`` and ``layer``.

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
    if layer is not None and layer not in adata.layers and layer == "counts":
        counts = get_matrix(adata, None)  # raw counts still in .X
    else:
        counts = get_matrix(adata, layer)
    check_nonnegative(counts, f"layer={layer!r}" if layer else ".X")
    # no copy when already float32: `tmp` below is the one working copy
    counts = (
        counts.astype(np.float32, copy=False)
        if sp.issparse(counts)
        else np.asarray(counts, np.float32)
    )
    if method != "clr":
        check_cells_have_counts(counts, f"mod={mod!r}")
    import scanpy as sc  # slow imports, only where needed

    with warnings.catch_warnings():  # muon 0.1.9 reads the deprecated scanpy.__version__
        warnings.simplefilter("ignore", FutureWarning)
        import muon as mu

    tmp = ad.AnnData(counts.copy())
    if method == "log_cp10k":
        sc.pp.normalize_total(tmp, target_sum=1e4)
        sc.pp.log1p(tmp)
    elif method == "clr":
        mu.prot.pp.clr(tmp, axis=1, flavor="stoeckius")
    else:
        # peaks without counts have an infinite IDF; they have no stored entries, so the
        # sparse result stays finite: silence numpy's divide-by-zero warning
        with np.errstate(divide="ignore"):
            mu.atac.pp.tfidf(tmp, log_tf=True, log_idf=True, log_tfidf=False)
    X = tmp.X
    if "counts" not in adata.layers:
        adata.layers["counts"] = counts
    adata.X = X.astype(np.float32, copy=False)
    adata.uns["scmm_normalize"] = {"method": method, "layer": layer if layer else "X"}
    return mdata if copy else None
