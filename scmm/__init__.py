"""scmm: predict one single-cell modality from another, on MuData."""

import mudata as _mudata

from . import datasets, metrics, models, pl, pp, tl
from ._settings import settings
from ._version import __version__ as __version__

# MuData's "pull_on_update" default is changing; scmm never relies on implicit pulls.
_mudata.set_options(pull_on_update=False)

__all__ = ["datasets", "metrics", "models", "pl", "pp", "settings", "tl"]
