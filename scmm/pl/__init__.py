"""Plots: each returns matplotlib Axes or a Figure."""

from ._correlations import feature_correlations
from ._peaks import peak_contributions
from ._scatter import predicted_vs_measured

__all__ = ["feature_correlations", "peak_contributions", "predicted_vs_measured"]
