"""Building blocks of the networks (``torch.nn`` modules): MLPs, sparse pathway layers, DeepSets."""

from ._autoencoder import AutoencoderMLP
from ._deepsets import DeepSetsNet, pair_features
from ._linear import LinearMap
from ._mlp import MLP, MLP_PRESETS, SparseInputLinear
from ._pathway import PathwayMLP
from ._sparse import SPARSE_BACKENDS, SparseLinear

__all__: list[str] = [
    "MLP",
    "MLP_PRESETS",
    "SPARSE_BACKENDS",
    "AutoencoderMLP",
    "DeepSetsNet",
    "LinearMap",
    "PathwayMLP",
    "SparseInputLinear",
    "SparseLinear",
    "pair_features",
]
