"""Peak contributions of a DeepSets model along the genome around a gene's TSS."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Patch


def peak_contributions(
    contributions: pd.DataFrame,
    *,
    value: str = "contribution",
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Draw each window peak's contribution at its position relative to the TSS.

    Each peak is a bar centred at its signed, strand-oriented distance to the TSS (5′ to the
    left, so the gene reads left to right on both strands), as wide as the peak, as high as
    its contribution; peaks inside the gene body are drawn in another colour.

    Takes the table of :func:`scmm.tl.peak_contributions` rather than a model: plots read
    results and never compute them (``pl`` does not import ``tl``), so call
    ``scmm.pl.peak_contributions(scmm.tl.peak_contributions(model, mdata, gene))``.

    Parameters
    ----------
    contributions
        Output of :func:`scmm.tl.peak_contributions` (columns ``distance``, ``width``,
        ``in_body`` and ``value``).
    value
        Column to draw: ``"contribution"`` (gradient × input, target units),
        ``"accessibility"`` or a ``"signal_<c>"`` channel.
    ax
        Axes to draw in; default a new figure.
    title
        Title; default the gene name in ``contributions.attrs`` and the number of cells.

    Returns
    -------
    The Axes.

    Examples
    --------
    >>> import pandas as pd, scmm
    >>> df = pd.DataFrame({"distance": [-3000, 0, 12000], "width": [500, 400, 600],
    ...                    "in_body": [False, True, True], "contribution": [0.1, 0.3, -0.05]})
    >>> ax = scmm.pl.peak_contributions(df)
    >>> len(ax.patches)
    3
    """
    if not isinstance(contributions, pd.DataFrame):
        msg = (
            "`contributions` must be the DataFrame of `scmm.tl.peak_contributions(model, "
            f"mdata, gene)`, got {type(contributions).__name__}."
        )
        raise TypeError(msg)
    missing = [c for c in ("distance", "width", "in_body", value) if c not in contributions]
    if missing:
        msg = (
            f"`contributions` lacks the columns {missing}; pass the output of "
            "`scmm.tl.peak_contributions`."
        )
        raise ValueError(msg)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    x = contributions["distance"].to_numpy(float) / 1000
    width = np.maximum(contributions["width"].to_numpy(float) / 1000, 0.2)
    y = contributions[value].to_numpy(float)
    body = contributions["in_body"].to_numpy(bool)
    colors = np.where(body, "tab:orange", "tab:blue")
    ax.bar(x, y, width=width, color=colors, align="center")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.axvline(0, color="k", lw=0.8, ls="--")
    ax.set_xlabel("distance to TSS (kb, 5′ → 3′)")
    ax.set_ylabel(value)
    if title is None:
        gene = contributions.attrs.get("gene")
        n = contributions.attrs.get("n_cells")
        title = f"{gene} ({n} cells)" if gene is not None and n is not None else gene
    if title:
        ax.set_title(title)
    ax.legend(
        handles=[
            Patch(color="tab:blue", label="outside gene body"),
            Patch(color="tab:orange", label="in gene body"),
        ],
        fontsize="small",
        frameon=False,
    )
    return ax
