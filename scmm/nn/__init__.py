"""scmm.nn."""

from ._mlp import MLP, MLP_PRESETS, SparseInputLinear
from ._sparse import SPARSE_BACKENDS, SparseLinear

__all__: list[str] = ["MLP", "MLP_PRESETS", "SPARSE_BACKENDS", "SparseInputLinear", "SparseLinear"]
