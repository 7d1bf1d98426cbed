"""``peak_contributions``: which window peaks drive a DeepSets model's prediction of a gene."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from mudata import MuData

from .._validate import cell_mask, obs_columns_listing
from ..models import DeepSetsModel
from ..train import to_torch_batch


def _select_cells(adata, cells, mdata: MuData | None = None, mod: str | None = None) -> np.ndarray:
    n = adata.n_obs
    if cells is None:
        return np.arange(n)
    if isinstance(cells, str):
        if mdata is not None and cells in mdata.obs.columns:
            cells = mdata.obs[cells].reindex(adata.obs_names).to_numpy()
        elif cells in adata.obs.columns:
            cells = adata.obs[cells].to_numpy()
        else:
            where = (
                obs_columns_listing(mdata, [mod])
                if mdata is not None
                else f"`.obs` has: {list(adata.obs.columns)}"
            )
            msg = (
                f"`cells={cells!r}` is not a column of `.obs` ({where}); pass a column name, a "
                "mask, indices or names."
            )
            raise ValueError(msg)
    arr = np.asarray(cells)
    if arr.dtype == bool:
        idx = np.flatnonzero(cell_mask(cells, adata.obs_names, "cells"))
    elif np.issubdtype(arr.dtype, np.integer):
        idx = arr.astype(np.int64)
    else:
        idx = adata.obs_names.get_indexer(arr.astype(str))
        if (idx < 0).any():
            msg = f"`cells` names not found: {list(arr[idx < 0][:5])}."
            raise ValueError(msg)
    if len(idx) == 0:
        msg = "`cells` selects no cells."
        raise ValueError(msg)
    return idx


def peak_contributions(
    model: DeepSetsModel,
    mdata: MuData,
    gene: str,
    *,
    cells=None,
    batch_size: int = 1024,
) -> pd.DataFrame:
    """Each window peak's contribution to one gene's DeepSets prediction.

    Two quantities are reported per peak ``p`` of the gene's window, averaged over ``cells``:

    * ``signal_<c>``: its exact share of pooled channel ``c``, ``a_p · g(f_p)_c`` (``a_p`` the
      accessibility divided by the model's ``accessibility_scale``). Over the window's peaks they
      sum exactly to the pooled signal, ``df.attrs['pooled']``.
    * ``contribution``: gradient × input of the prediction with respect to the peak's
      accessibility, ``a_p · ∂ŷ/∂a_p = Σ_c a_p g(f_p)_c · ∂ŷ/∂pooled_c`` (the mean-pooling path
      included), in target units (e.g. log-CP10k). It is ρ's linearisation at each cell applied
      to the exact pooled shares; the contributions sum to ``df.attrs['local_effect']``, the
      first-order effect of the gene's whole window on the prediction.

    Parameters
    ----------
    model
        A fitted :class:`~scmm.models.DeepSetsModel`.
    mdata
        Data holding the model's source modality (peaks aligned by name).
    gene
        A target feature name.
    cells
        Cells to average over: None (all), a bool mask, integer positions, obs names, or the
        name of a boolean ``.obs`` column of the source modality.
    batch_size
        Cells per batch.

    Returns
    -------
    One row per window peak (sorted by distance) with columns ``peak``, ``distance`` (signed,
    strand-oriented bp to the TSS; negative upstream), ``width``, ``in_body``,
    ``accessibility`` (mean raw value), ``contribution`` and ``signal_0 …``. ``df.attrs``
    holds ``gene``, ``n_cells``, ``pooled`` (list per channel), ``local_effect`` and
    ``prediction`` (mean predicted value).

    Examples
    --------
    >>> import scmm
    >>> mdata = scmm.datasets.toy_multiome()  # synthetic: 60 cells, genes A, B, C, 24 peaks
    >>> scmm.pp.gene_peak_windows(
    ...     mdata, annotation=mdata["rna"].var, upstream=20_000, downstream=20_000,
    ...     check_assembly=False,
    ... )
    >>> model = scmm.tl.fit_deepsets(
    ...     mdata, "atac", "rna", n_components=5, max_epochs=2, training={"verbose": False},
    ...     rng=0,
    ... )
    >>> df = scmm.tl.peak_contributions(model, mdata, "B")
    >>> df[["peak", "distance"]]
                     peak  distance
    0    chr1_90000_90500    -19750
    1  chr1_100000_100500     -9750
    2  chr1_110000_110500       250
    3  chr1_120000_120500     10250
    """
    if not isinstance(model, DeepSetsModel):
        msg = f"`model` must be a DeepSetsModel (from `fit_deepsets`), got {type(model).__name__}."
        raise TypeError(msg)
    model._check_fitted()
    if gene not in model.target_features:
        msg = f"`gene={gene!r}` is not a target of the model; see `model.target_features`."
        raise ValueError(msg)
    g = model.target_features.index(gene)
    src = mdata[model.source] if isinstance(mdata, MuData) else mdata
    idx = _select_cells(src, cells, mdata if isinstance(mdata, MuData) else None, model.source)
    X = sp.csr_matrix(model.source_matrix(mdata))[idx]
    net = model.net.eval()
    ptr = model.windows["indptr"]
    pairs = np.arange(ptr[g], ptr[g + 1])
    peaks = model.windows["indices"][pairs].astype(np.int64)
    std = float(model._scale["target_std"][g])
    mean = float(model._scale["target_mean"][g])
    C = net.channels
    sums = {
        "signal": np.zeros((len(pairs), C)),
        "contribution": np.zeros(len(pairs)),
        "pooled": np.zeros(C),
        "effect": 0.0,
        "pred": 0.0,
        "acc": np.zeros(len(pairs)),
    }
    for start in range(0, len(idx), batch_size):
        Xb = X[start : start + batch_size]
        svd, raw = model._inputs(Xb)
        ctx_in = torch.from_numpy(np.asarray(svd, np.float32))
        with torch.no_grad():
            ctx = net.encode_context(ctx_in)
            G = net.phi_weights()
            pooled = net.pooled(net.entries(to_torch_batch(raw)), G, Xb.shape[0], g, g + 1)
        pooled = pooled.detach().requires_grad_(True)
        with torch.enable_grad():
            out = net.rho(pooled, ctx, g, g + 1)
            (grad,) = torch.autograd.grad(out.sum(), pooled)
        grad = grad[:, 0, :].numpy().astype(np.float64)  # (cells, C)
        a = np.asarray(Xb[:, peaks].toarray(), np.float64)
        shares = a[:, :, None] / net.accessibility_scale * G[pairs].numpy()[None]  # (n, P, C)
        sums["signal"] += shares.sum(axis=0)
        sums["contribution"] += np.einsum("npc,nc->p", shares, grad) * std
        sums["pooled"] += pooled[:, 0, :].detach().numpy().sum(axis=0)
        sums["effect"] += float((grad * pooled[:, 0, :].detach().numpy()).sum()) * std
        sums["pred"] += float(out.detach().sum()) * std + mean * Xb.shape[0]
        sums["acc"] += a.sum(axis=0)
    n = len(idx)
    w = model.windows
    df = pd.DataFrame(
        {
            "peak": np.asarray(model.source_features, dtype=object)[peaks],
            "distance": w["distance"][pairs].astype(np.int64),
            "width": w["width"][pairs].astype(np.int64),
            "in_body": w["in_body"][pairs].astype(bool),
            "accessibility": sums["acc"] / n,
            "contribution": sums["contribution"] / n,
            **{f"signal_{c}": sums["signal"][:, c] / n for c in range(C)},
        }
    )
    df = df.sort_values("distance", kind="stable").reset_index(drop=True)
    df.attrs.update(
        gene=gene,
        n_cells=int(n),
        pooled=[float(v) for v in sums["pooled"] / n],
        local_effect=float(sums["effect"] / n),
        prediction=float(sums["pred"] / n),
    )
    return df
