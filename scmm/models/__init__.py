"""Model classes: fitted state, prediction, save and load."""

from ._autoencoder import AutoencoderModel
from ._base import BaseModel

# facts of the models that scmm.tl reads (not in __all__: no API)
from ._baseline import METHODS as BASELINE_METHODS  # noqa: F401
from ._baseline import BaselineModel
from ._binding import BindingKeywords
from ._binding import FitData as FitData
from ._binding import as_model_targets as as_model_targets
from ._binding import check_pair as check_pair
from ._binding import fit_cells as fit_cells
from ._binding import rows_of as rows_of
from ._deepsets import DeepSetsModel
from ._ensemble import EnsembleModel
from ._gene_activity import WINDOW_FIELDS as WINDOW_FIELDS
from ._gene_activity import GeneActivityModel
from ._linear import LinearModel
from ._mlp import MLPModel
from ._pathway import PathwayMLPModel
from ._persist import load
from ._preprocess import SVD_FIT_ON as SVD_FIT_ON
from ._reference_distance import ReferenceDistance as ReferenceDistance
from ._reference_distance import check_query as check_query_distance  # noqa: F401
from ._reference_distance import embed as embed
from ._reference_distance import input_encoder as input_encoder
from ._reference_distance import query_ratio as query_ratio

__all__ = [
    "AutoencoderModel",
    "BaseModel",
    "BaselineModel",
    "BindingKeywords",
    "DeepSetsModel",
    "EnsembleModel",
    "GeneActivityModel",
    "LinearModel",
    "MLPModel",
    "PathwayMLPModel",
    "load",
]
