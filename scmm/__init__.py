"""scmm: predict one single-cell modality from another, on MuData."""

from importlib.metadata import PackageNotFoundError, version

import mudata as _mudata

from . import datasets, metrics, models, pl, pp, tl
from ._settings import settings

try:
    __version__ = version("scmm")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

# MuData's "pull_on_update" default is changing; scmm never relies on implicit pulls.
_mudata.set_options(pull_on_update=False)

__all__ = ["datasets", "metrics", "models", "pl", "pp", "settings", "tl"]
