"""Per-cell accuracy of predictions, summarised per cell type."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Patch
from mudata import MuData

from .. import metrics
from .._validate import cell_mask, check_modality
from ._legend import legend_above
from ._paired import paired_values


def _group_labels(mdata: MuData, mod: str, groupby: str) -> pd.Series:
    """``groupby`` for the cells of ``mdata[mod]``: from its own ``.obs``, else ``mdata.obs``."""
    adata = mdata.mod[mod]
    if groupby in adata.obs.columns:
        return adata.obs[groupby]
    for column in (groupby, f"{mod}:{groupby}"):
        if column in mdata.obs.columns:
            labels = mdata.obs[column]
            if not labels.index.is_unique:
                msg = f"`groupby={groupby!r}`: `mdata.obs_names` are not unique."
                raise ValueError(msg)
            return labels.reindex(adata.obs_names)
    msg = (
        f"`groupby={groupby!r}` is not a column of `mdata[{mod!r}].obs` nor of `mdata.obs` "
        f"(has: {sorted(set(adata.obs.columns) | set(mdata.obs.columns))}). Annotate the cells "
        "first, or pass the name of the cell-type column."
    )
    raise KeyError(msg)


def accuracy_by_cell_type(
    mdata: MuData,
    mod: str,
    keys: str | Sequence[str],
    *,
    groupby: str = "cell_type",
    cells=None,
    layer: str | None = None,
    kind: Literal["box", "strip"] = "box",
    sort: Literal["size", "median"] | None = "size",
    max_groups: int | None = 12,
    ax: Axes | None = None,
) -> Axes:
    """Per-cell Pearson r of one or more predictions, one box (or strip) per cell type.

    Each cell is scored by :func:`scmm.metrics.pearson_per_cell` (the correlation across the
    features of its predicted and measured profile, the Open Problems 2022 score); the scores
    are grouped by ``groupby`` and the predictions are drawn side by side within each group, so
    a model that fails on one cell type stands out. Cells without a group label are left out.

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
    groupby
        Column of ``mdata[mod].obs`` (looked up first) or ``mdata.obs`` with the cell types.
    cells
        Boolean mask of cells to score (e.g. ``~mdata.obs['train']``); default all.
    layer
        Layer of measured values instead of ``.X``.
    kind
        ``"box"``: a box plot per group and prediction; ``"strip"``: every cell as a point.
    sort
        Order of the groups: ``"size"`` (most cells first), ``"median"`` (highest median r,
        averaged over the predictions, first) or None (the column's category order, else
        sorted labels).
    max_groups
        Draw at most this many groups: the first ``max_groups - 1`` in the order of ``sort``,
        and the cells of all the others pooled as one last group, labelled ``"N others"``
        (None: every group, however many).
    ax
        Axes to draw into; default a new figure.

    Returns
    -------
    The Axes, groups along x labelled with their number of cells, one colour per key (legend
    above the axes with each key's median r over all cells): with ``kind="box"`` one box patch
    per group and key, with ``kind="strip"`` one point collection per key.

    Examples
    --------
    >>> import numpy as np, pandas as pd, anndata as ad, mudata as md, scmm
    >>> rng = np.random.default_rng(0)
    >>> prot = ad.AnnData(rng.normal(size=(60, 8)).astype("float32"))
    >>> prot.obs["cell_type"] = pd.Categorical(["B", "T", "T"] * 20)
    >>> prot.layers["a"] = prot.X + rng.normal(size=(60, 8)).astype("float32")
    >>> prot.layers["b"] = prot.X + 2 * rng.normal(size=(60, 8)).astype("float32")
    >>> ax = scmm.pl.accuracy_by_cell_type(md.MuData({"prot": prot}), "prot", ["a", "b"])
    >>> len(ax.patches), [t.get_text() for t in ax.get_xticklabels()]
    (4, ['T (40)', 'B (20)'])
    """
    adata = check_modality(mdata, mod, "mod")
    keys = [keys] if isinstance(keys, str) else list(keys)
    if kind not in ("box", "strip"):
        msg = f"`kind={kind!r}` must be 'box' or 'strip'."
        raise ValueError(msg)
    if sort not in ("size", "median", None):
        msg = f"`sort={sort!r}` must be 'size', 'median' or None."
        raise ValueError(msg)
    if max_groups is not None and (
        isinstance(max_groups, bool) or not isinstance(max_groups, int) or max_groups < 2
    ):
        msg = f"`max_groups={max_groups!r}` must be an int >= 2, or None for every group."
        raise ValueError(msg)
    labels = _group_labels(mdata, mod, groupby)

    keep = labels.notna().to_numpy()
    if cells is not None:
        keep &= cell_mask(cells, adata.obs_names, "cells", f" of {mod!r}")
    if not keep.any():
        msg = f"No cells to score: `cells` selects none, or no cell has a `{groupby}` label."
        raise ValueError(msg)

    _, y, preds = paired_values(mdata, mod, keys, layer=layer, cells=keep)
    r = np.array([metrics.pearson_per_cell(y, p, average=False) for p in preds])

    group = labels[keep]
    if isinstance(group.dtype, pd.CategoricalDtype):
        present = set(group.astype(object))
        groups = [c for c in group.cat.categories if c in present]
    else:
        groups = sorted(group.unique(), key=str)
    codes = pd.Categorical(group.astype(object), categories=groups).codes
    members = [np.flatnonzero(codes == g) for g in range(len(groups))]
    if sort == "size":
        order = sorted(range(len(groups)), key=lambda g: -len(members[g]))
    elif sort == "median":
        med = [np.mean([np.median(r[i, m]) for i in range(len(keys))]) for m in members]
        order = sorted(range(len(groups)), key=lambda g: -med[g])
    else:
        order = list(range(len(groups)))
    groups = [groups[g] for g in order]
    members = [members[g] for g in order]
    if max_groups is not None and len(groups) > max_groups:
        shown = max_groups - 1
        groups = [*groups[:shown], f"{len(groups) - shown} others"]
        members = [*members[:shown], np.sort(np.concatenate(members[shown:]))]

    n_groups, n_keys = len(groups), len(keys)
    ticklabels = [f"{g} ({len(m)})" for g, m in zip(groups, members, strict=True)]
    long = n_groups > 6 or max(len(t) for t in ticklabels) > 12
    if ax is None:
        # at most a documentation page's width (7 in at 100 dpi: wider ones are shrunk there
        # to illegible text); rotated labels get their own height below the axes
        width = min(max(4.0, 0.35 * n_groups * n_keys + 2.0), 7.0)
        height = 3.0 + (0.07 * max(len(t) for t in ticklabels) if long else 0.8)
        _, ax = plt.subplots(figsize=(width, height), layout="constrained")
    step = 0.8 / n_keys
    colors = [f"C{i % 10}" for i in range(n_keys)]
    handles = []
    for i, key in enumerate(keys):
        pos = np.arange(n_groups) + (i - (n_keys - 1) / 2) * step
        data = [r[i, m] for m in members]
        if kind == "box":
            ax.boxplot(
                data,
                positions=pos,
                widths=0.85 * step,
                patch_artist=True,
                manage_ticks=False,
                boxprops={"facecolor": colors[i], "alpha": 0.7},
                medianprops={"color": "black"},
                flierprops={"markersize": 2, "alpha": 0.4},
            )
        else:
            xs = np.concatenate(
                [
                    p + 0.8 * step * (((np.arange(len(d)) * 0.6180339887) % 1.0) - 0.5)
                    for p, d in zip(pos, data, strict=True)
                ]
            )
            ax.scatter(xs, np.concatenate(data), s=3, alpha=0.5, color=colors[i], rasterized=True)
        handles.append(Patch(color=colors[i], label=f"{key} (median {np.median(r[i]):.3f})"))

    ax.set_xticks(np.arange(n_groups), ticklabels, rotation=90 if long else 0, fontsize=8)
    ax.set_xlim(-0.6, n_groups - 0.4)
    ax.set(xlabel=f"{groupby} (number of cells)", ylabel="Pearson r per cell")
    legend_above(ax, n_keys, handles)  # boxes of low scores may sit in any corner
    return ax
