"""Plots: each returns matplotlib Axes or a Figure."""

from ._celltype import accuracy_by_cell_type
from ._correlations import feature_correlations
from ._intervals import interval_coverage
from ._peaks import peak_contributions
from ._scatter import predicted_vs_measured
from ._training import lr_range, training_curves
from ._tune import tune_trials

__all__ = [
    "accuracy_by_cell_type",
    "feature_correlations",
    "interval_coverage",
    "lr_range",
    "peak_contributions",
    "predicted_vs_measured",
    "training_curves",
    "tune_trials",
]
