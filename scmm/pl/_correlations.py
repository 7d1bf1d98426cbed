"""Per-feature Pearson correlation of several predictions, side by side."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from mudata import MuData

from .. import metrics
from .._validate import cell_mask, check_modality, get_matrix, prediction_layers
from ._legend import legend_above

#: Above this many features the feature names are not written under the axis (they would not
#: fit the widest default figure).
_MAX_LABELLED = 40
#: Widest default figure (inches): about a documentation page's width at 100 dpi; wider ones
#: are shrunk there to illegible text.
_MAX_WIDTH = 7.0


def feature_correlations(
    mdata: MuData,
    mod: str,
    keys: str | Sequence[str],
    *,
    cells=None,
    layer: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Per-feature Pearson r of several predictions, one colour per prediction.

    Features are sorted by their mean r over the predictions (best left); each prediction is
    one series of points at the features' positions, so models can be compared feature by
    feature. The legend gives each prediction's mean per-feature r (the mean
    per-feature Pearson of :func:`scmm.metrics.pearson_per_feature`; a feature constant in the
    measured values or a prediction scores 0).

    Parameters
    ----------
    mdata
        Data holding the measured values and the predictions of ``fit_*`` calls.
    mod
        The predicted modality.
    keys
        Layer(s) of ``mdata[mod]`` holding predictions (``key_added`` of the fits).
    cells
        Boolean mask of cells to score (e.g. ``~mdata.obs['train']``); default all.
    layer
        Layer of measured values instead of ``.X``.
    ax
        Axes to draw into; default a new figure.

    Returns
    -------
    The Axes: one point series (a ``PathCollection``) per key, a dashed line at r = 0, feature
    names as x tick labels when there are at most 40 features, and the legend above the axes
    (clear of the points).

    Examples
    --------
    >>> import numpy as np, anndata as ad, mudata as md, scmm
    >>> rng = np.random.default_rng(0)
    >>> prot = ad.AnnData(rng.normal(size=(50, 5)).astype("float32"))
    >>> prot.layers["a"] = prot.X + rng.normal(size=(50, 5)).astype("float32")
    >>> prot.layers["b"] = prot.X + 2 * rng.normal(size=(50, 5)).astype("float32")
    >>> ax = scmm.pl.feature_correlations(md.MuData({"prot": prot}), "prot", ["a", "b"])
    >>> len(ax.collections)
    2
    """
    adata = check_modality(mdata, mod, "mod")
    keys = prediction_layers(adata, keys, mod)
    y = get_matrix(adata, layer)
    y = np.asarray(y.toarray() if hasattr(y, "toarray") else y, dtype=np.float64)
    if cells is not None:
        cells = cell_mask(cells, adata.obs_names, "cells", f" of {mod!r}")
        y = y[cells]
    r = np.empty((len(keys), adata.n_vars))
    for i, key in enumerate(keys):
        p = adata.layers[key]
        p = np.asarray(p.toarray() if hasattr(p, "toarray") else p, dtype=np.float64)
        if cells is not None:
            p = p[cells]
        r[i] = metrics.pearson_per_feature(y, p, average=False)
    order = np.argsort(-r.mean(axis=0), kind="stable")
    labelled = adata.n_vars <= _MAX_LABELLED
    if ax is None:  # wide enough for the names, narrow enough to read at a page's width
        width = min(max(4.0, 0.12 * adata.n_vars + 2.0), _MAX_WIDTH) if labelled else _MAX_WIDTH
        _, ax = plt.subplots(figsize=(width, 3.5), layout="constrained")
    x = np.arange(adata.n_vars)
    for i, key in enumerate(keys):
        ax.scatter(x, r[i, order], s=12, alpha=0.8, label=f"{key} (mean {r[i].mean():.3f})")
    ax.axhline(0.0, color="grey", lw=0.8, ls="--")
    names = np.asarray(adata.var_names)[order]
    if labelled:
        ax.set_xticks(x, names, rotation=90, fontsize=7)
        ax.set_xlabel("feature (sorted by mean r)")
    else:
        ax.set_xlabel(f"{adata.n_vars} features, sorted by mean r")
    ax.set_ylabel("Pearson r per feature")
    ax.set_xlim(-1, adata.n_vars)
    legend_above(ax, len(keys))  # never on the points: they fill the whole range of x
    return ax
