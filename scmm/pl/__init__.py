"""Plots: each returns matplotlib Axes or a Figure."""

from ._scatter import predicted_vs_measured

__all__ = ["predicted_vs_measured"]
