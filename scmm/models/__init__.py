"""Model classes: fitted state, prediction, save and load."""

from ._autoencoder import AutoencoderModel
from ._base import BaseModel
from ._baseline import BaselineModel
from ._deepsets import DeepSetsModel
from ._ensemble import EnsembleModel
from ._gene_activity import GeneActivityModel
from ._mlp import MLPModel
from ._pathway import PathwayMLPModel
from ._persist import load

__all__ = [
    "AutoencoderModel",
    "BaseModel",
    "BaselineModel",
    "DeepSetsModel",
    "EnsembleModel",
    "GeneActivityModel",
    "MLPModel",
    "PathwayMLPModel",
    "load",
]
