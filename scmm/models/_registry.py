"""The model classes by their ``kind`` (filled as each class is defined) and saved-array lookup.

Shared by :mod:`._base` (which registers every subclass) and :mod:`._persist` (which rebuilds
a saved model from its ``kind``), so neither imports the other at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ._base import BaseModel

_MODEL_CLASSES: dict[str, type[BaseModel]] = {}


def prefixed(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """Select the saved arrays whose names start with ``prefix``, keyed without it."""
    return {
        k.removeprefix(prefix): np.asarray(v) for k, v in arrays.items() if k.startswith(prefix)
    }
