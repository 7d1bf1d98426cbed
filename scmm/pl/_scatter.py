"""Predicted against measured values, per feature."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from mudata import MuData

from .. import metrics
from ._paired import paired_values

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
        The predictions: a layer of ``mdata[mod]`` (``key_added`` of a fit), or a cells ×
        targets DataFrame in a modality's ``.obsm`` (:func:`scmm.tl.predict` for a query with
        another panel), whose targets meet ``mod``'s features by harmonised name
        (:func:`scmm.metrics.match_targets`) and whose cells are matched by name.
    features
        Features of ``mdata[mod]`` to draw; default the ``n_features`` best predicted
        (per-feature Pearson).
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
    names, y, (p,) = paired_values(mdata, mod, key, layer=layer, cells=cells)
    r = metrics.pearson_per_feature(y, p, average=False)
    if features is None:
        idx = list(np.argsort(-r)[: min(n_features, len(names))])
    else:
        missing = [f for f in features if f not in names]
        if missing:
            msg = f"`features` {missing} are not predicted features of {mod!r} (has: {names[:10]})."
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
