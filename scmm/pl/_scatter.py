"""Predicted against measured values, per feature."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from mudata import MuData

from .. import metrics
from .._validate import cell_mask, check_modality, get_matrix

#: Panels per row and panel size (inches): three panels fill a documentation page's width.
_MAX_COLUMNS = 3
_PANEL = 2.4


def predicted_vs_measured(
    mdata: MuData,
    mod: str,
    key: str,
    *,
    features: list[str] | None = None,
    n_features: int = 4,
    cells=None,
    layer: str | None = None,
) -> Figure:
    """Scatter plots of predicted against measured values, one panel per feature.

    Parameters
    ----------
    mdata
        Data holding the measured values and the predictions of a ``fit_*`` call.
    mod
        The predicted modality.
    key
        The layer holding the predictions (``key_added`` of the fit).
    features
        Features to draw; default the ``n_features`` best predicted (per-feature Pearson).
    n_features
        Number of features when ``features`` is not given.
    cells
        Boolean mask of cells to draw (e.g. ``~mdata.obs['train']``); default all.
    layer
        Layer of measured values instead of ``.X``.

    Returns
    -------
    The figure, one Axes per feature, each titled with the feature and its Pearson r, at most
    three to a row (so the figure stays legible at a page's width).

    Examples
    --------
    >>> import numpy as np, anndata as ad, mudata as md, scmm
    >>> prot = ad.AnnData(np.random.default_rng(0).normal(size=(20, 3)).astype("float32"))
    >>> prot.layers["pred"] = prot.X + 0.1
    >>> fig = scmm.pl.predicted_vs_measured(md.MuData({"prot": prot}), "prot", "pred")
    >>> len(fig.axes)
    3
    """
    adata = check_modality(mdata, mod, "mod")
    if key not in adata.layers:
        msg = f"`key={key!r}` is not a layer of {mod!r}; run a `scmm.tl.fit_*` call first."
        raise KeyError(msg)
    y = get_matrix(adata, layer)
    y = np.asarray(y.toarray() if hasattr(y, "toarray") else y, dtype=np.float64)
    p = np.asarray(adata.layers[key], dtype=np.float64)
    if cells is not None:
        cells = cell_mask(cells, adata.obs_names, "cells", f" of {mod!r}")
        y, p = y[cells], p[cells]
    r = metrics.pearson_per_feature(y, p, average=False)
    names = list(adata.var_names)
    if features is None:
        idx = list(np.argsort(-r)[: min(n_features, len(names))])
    else:
        missing = [f for f in features if f not in names]
        if missing:
            msg = f"`features` {missing} are not features of {mod!r}."
            raise KeyError(msg)
        idx = [names.index(f) for f in features]
    n_rows = -(-len(idx) // _MAX_COLUMNS)
    n_cols = -(-len(idx) // n_rows)  # rows as even as possible: 4 panels as 2 × 2
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(_PANEL * n_cols, _PANEL * n_rows),
        squeeze=False,
        layout="constrained",
    )
    for ax in axes.ravel()[len(idx) :]:
        ax.remove()
    for ax, j in zip(axes.ravel(), idx, strict=False):
        ax.scatter(y[:, j], p[:, j], s=4, alpha=0.5, rasterized=True)
        lo, hi = min(y[:, j].min(), p[:, j].min()), max(y[:, j].max(), p[:, j].max())
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
        ax.set(title=f"{names[j]} (r = {r[j]:.2f})", xlabel="measured", ylabel="predicted")
    return fig
