"""Legends placed clear of the data: one row (or a few) above the axes."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.artist import Artist
from matplotlib.axes import Axes

#: Width (inches) given to one legend entry when choosing the number of columns.
_ENTRY_WIDTH = 3.0


def legend_above(ax: Axes, n_entries: int, handles: Sequence[Artist] | None = None) -> None:
    """Draw the legend of ``ax`` above the axes, in as many columns as fit the figure's width.

    Plots whose points or boxes can fill any part of the axes (so no corner is free) use it;
    constrained layout makes room for it.
    """
    ax.legend(
        **({} if handles is None else {"handles": list(handles)}),
        fontsize=8,
        loc="lower left",
        bbox_to_anchor=(0.0, 1.02),
        borderaxespad=0.0,
        ncols=max(1, min(n_entries, int(ax.figure.get_figwidth() // _ENTRY_WIDTH))),
        frameon=False,
    )
