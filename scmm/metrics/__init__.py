"""Scores of predicted against measured values.

Per-cell Pearson exactly as the Open Problems 2022 competition scored it, per-feature Pearson,
RMSE and Spearman (pure functions of two matrices), and the held-out scores of a fit beside the
mean profile, on the targets a model and a query share (names harmonised by
:func:`scmm.pp.harmonize_protein_names`).
"""

from ._correlation import pearson_per_cell, pearson_per_feature, rmse, spearman_per_cell
from ._held_out import column_means as column_means  # for scmm.tl and scmm.cli (not API)
from ._held_out import control_names as control_names  # for scmm.tl (not API)
from ._held_out import held_out_scores, match_targets, shared_target_scores
from ._held_out import measured_rows as measured_rows  # for scmm.cli (not API)
from ._held_out import warn_below_mean_profile as warn_below_mean_profile  # for scmm.tl

__all__ = [
    "held_out_scores",
    "match_targets",
    "pearson_per_cell",
    "pearson_per_feature",
    "rmse",
    "shared_target_scores",
    "spearman_per_cell",
]
