"""Coverage and width of prediction intervals, per feature."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from mudata import MuData

from .. import _keys
from ._paired import paired_values

#: Above this many features the points are not labelled with feature names.
_MAX_LABELLED = 30


def interval_coverage(
    mdata: MuData,
    mod: str,
    key: str = "scmm_ensemble",
    *,
    cells=None,
    layer: str | None = None,
    nominal: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Per feature, the fraction of measured values inside the interval against its width.

    One point per feature: x is the mean interval width (``upper − lower``), y the fraction of
    cells whose measured value lies in ``[lower, upper]``. A dashed line marks the nominal
    coverage; features far below it are those whose intervals cannot be trusted on these cells
    (e.g. a donor unlike the training ones).

    Parameters
    ----------
    mdata
        Data holding the measured values and the bounds written by
        :func:`scmm.tl.fit_ensemble` or :func:`scmm.tl.predict`.
    mod
        The predicted modality.
    key
        ``key_added`` of the fit: the bounds are read from ``layers[key + '_lower']`` and
        ``layers[key + '_upper']``, or from those DataFrames in a modality's ``.obsm``
        (:func:`scmm.tl.predict` or :func:`scmm.tl.calibrate` for a query with another panel:
        targets paired by harmonised name, cells by name).
    cells
        Boolean mask of cells to score (e.g. ``~mdata.obs['train']``, the held-out cells);
        default all.
    layer
        Layer of measured values instead of ``.X``.
    nominal
        Nominal coverage drawn as a line; None: ``mdata.uns[key]['params']['interval']`` if
        present, else no line.
    ax
        Axes to draw into; default a new figure.

    Returns
    -------
    The Axes: one point per feature (a ``PathCollection``), the nominal coverage as a dashed
    line, feature names next to the points when there are at most 30 features, and the overall
    coverage in the title.

    Examples
    --------
    >>> import numpy as np, anndata as ad, mudata as md, scmm
    >>> rng = np.random.default_rng(0)
    >>> prot = ad.AnnData(rng.normal(size=(50, 5)).astype("float32"))
    >>> prot.layers["pred_lower"] = np.full((50, 5), -1.6, dtype="float32")
    >>> prot.layers["pred_upper"] = np.full((50, 5), 1.6, dtype="float32")
    >>> ax = scmm.pl.interval_coverage(md.MuData({"prot": prot}), "prot", "pred", nominal=0.9)
    >>> len(ax.collections[0].get_offsets())
    5
    """
    names, y, (lower, upper) = paired_values(
        mdata, mod, list(_keys.interval(key)), layer=layer, cells=cells
    )
    inside = (y >= lower) & (y <= upper)
    coverage, width = inside.mean(axis=0), (upper - lower).mean(axis=0)
    if nominal is None:
        nominal = mdata.uns.get(key, {}).get("params", {}).get("interval")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 4.0), layout="constrained")
    ax.scatter(width, coverage, s=14, alpha=0.8)
    if len(names) <= _MAX_LABELLED:
        for name, x, c in zip(names, width, coverage, strict=True):
            ax.annotate(str(name), (x, c), fontsize=6, xytext=(2, 2), textcoords="offset points")
    if nominal is not None:
        ax.axhline(float(nominal), color="grey", lw=0.8, ls="--", label=f"nominal {nominal:g}")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel("mean interval width")
    ax.set_ylabel("coverage (fraction of values inside)")
    ax.set_title(f"{key}: coverage {inside.mean():.3f} over {len(names)} features", fontsize=9)
    return ax
