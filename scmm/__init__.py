"""scmm: predict one single-cell modality from another, on MuData.

The namespaces (``scmm.pp``, ``scmm.tl``, ...) are imported on first use, so that the
``scmm`` console script parses its arguments and checks its files without loading torch,
lightning or MuData (``scmm fit --help`` answers at once).
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

from ._settings import settings, use_mudata_options
from ._version import __version__ as __version__

if TYPE_CHECKING:
    from . import datasets, metrics, models, pl, pp, tl

__all__ = ["datasets", "metrics", "models", "pl", "pp", "settings", "tl"]

_NAMESPACES = ("datasets", "metrics", "models", "pl", "pp", "tl")


def __getattr__(name: str):
    """Import the namespace ``name`` (``scmm.pp``, ...) on first use."""
    if name in _NAMESPACES:  # those reading MuData set its options (`use_mudata_options`)
        return importlib.import_module(f"{__name__}.{name}")
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    """List the namespaces too, imported or not."""
    return sorted({*globals(), *_NAMESPACES})


if "mudata" in sys.modules:  # already paid for: set the options now
    use_mudata_options()
