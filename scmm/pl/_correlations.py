"""Per-feature Pearson correlation of several predictions, side by side."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from mudata import MuData

from .. import metrics
from ._legend import legend_above
from ._paired import paired_values

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
        The predictions: layer(s) of ``mdata[mod]`` (``key_added`` of the fits), or cells ×
        targets DataFrames in a modality's ``.obsm`` (:func:`scmm.tl.predict` for a query
        with another panel: targets paired by harmonised name, cells by name).
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
    keys = [keys] if isinstance(keys, str) else list(keys)
    names, y, preds = paired_values(mdata, mod, keys, layer=layer, cells=cells)
    r = np.array([metrics.pearson_per_feature(y, p, average=False) for p in preds])
    n_features = len(names)
    order = np.argsort(-r.mean(axis=0), kind="stable")
    labelled = n_features <= _MAX_LABELLED
    if ax is None:  # wide enough for the names, narrow enough to read at a page's width
        width = min(max(4.0, 0.12 * n_features + 2.0), _MAX_WIDTH) if labelled else _MAX_WIDTH
        _, ax = plt.subplots(figsize=(width, 3.5), layout="constrained")
    x = np.arange(n_features)
    for i, key in enumerate(keys):
        ax.scatter(x, r[i, order], s=12, alpha=0.8, label=f"{key} (mean {r[i].mean():.3f})")
    ax.axhline(0.0, color="grey", lw=0.8, ls="--")
    names = np.asarray(names)[order]
    if labelled:
        ax.set_xticks(x, names, rotation=90, fontsize=7)
        ax.set_xlabel("feature (sorted by mean r)")
    else:
        ax.set_xlabel(f"{n_features} features, sorted by mean r")
    ax.set_ylabel("Pearson r per feature")
    ax.set_xlim(-1, n_features)
    legend_above(ax, len(keys))  # never on the points: they fill the whole range of x
    return ax
