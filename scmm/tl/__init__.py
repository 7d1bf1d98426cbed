"""Tools: fit models from one modality to another and predict for new cells."""

from ._baseline import fit_baseline
from ._contract import predict

__all__ = ["fit_baseline", "predict"]
