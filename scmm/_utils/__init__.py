"""Helpers every scmm package may use: random numbers, matrices read by row blocks, the SVD.

The bottom layer of the package: it imports nothing else from scmm (see the import contracts
in ``pyproject.toml``).
"""

from ._protein_names import CONTROL_PATTERN, harmonize_protein_names
from ._rng import SeedLike, as_generator, seed_from
from ._rows import RowSubset, is_backed, row_blocks
from ._svd import fit_svd, project

__all__ = [
    "CONTROL_PATTERN",
    "RowSubset",
    "SeedLike",
    "as_generator",
    "fit_svd",
    "harmonize_protein_names",
    "is_backed",
    "project",
    "row_blocks",
    "seed_from",
]
