"""Input checks shared by every ``pp`` and ``tl`` function, one module per idea.

``_values``: the modalities and matrices a function reads (NaN, counts, predictions);
``_cells``: the cells of two modalities matched, the training mask; ``_features``: a model's
features found in new data.
"""

from .._settings import use_mudata_options
from ._cells import (
    align_cells,
    cell_mask,
    check_one_feature_type,
    obs_columns_listing,
    paired_modalities,
    resolve_train,
    train_mask,
)
from ._features import (
    PEAK_NAME_RE,
    align_features,
    check_orientation,
    fill_missing,
    match_features,
)
from ._values import (
    COUNTS_INTEGER_FRACTION,
    _listing,
    check_cells_have_counts,
    check_finite,
    check_finite_predictions,
    check_measured_normalised,
    check_modality,
    check_nonnegative,
    check_output_keys,
    find_predictions,
    get_matrix,
    holds_genes,
    raw_holds_counts,
    warn_constant_rows,
)

use_mudata_options()  # every pp, tl, pl and models module reads MuData through here

__all__ = [
    "COUNTS_INTEGER_FRACTION",
    "PEAK_NAME_RE",
    "_listing",
    "align_cells",
    "align_features",
    "cell_mask",
    "check_cells_have_counts",
    "check_finite",
    "check_finite_predictions",
    "check_measured_normalised",
    "check_modality",
    "check_nonnegative",
    "check_one_feature_type",
    "check_orientation",
    "check_output_keys",
    "fill_missing",
    "find_predictions",
    "get_matrix",
    "holds_genes",
    "match_features",
    "obs_columns_listing",
    "paired_modalities",
    "raw_holds_counts",
    "resolve_train",
    "train_mask",
    "warn_constant_rows",
]
