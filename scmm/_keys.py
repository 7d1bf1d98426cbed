"""Names of the keys scmm writes into AnnData/MuData, derived in one place."""

from __future__ import annotations


def svd_obsm(mod: str) -> str:
    """Key of the SVD embedding of modality ``mod`` in ``.obsm``."""
    return f"X_svd_{mod}"


def svd_varm(mod: str) -> str:
    """Key of the SVD loadings of modality ``mod`` in ``.varm``."""
    return f"svd_{mod}"


def svd_uns(mod: str) -> str:
    """Key of the SVD parameters of modality ``mod`` in ``.uns``."""
    return f"svd_{mod}"


#: Prefix of the default keys of predictions.
PREDICTION_PREFIX = "scmm_"


def prediction(method: str) -> str:
    """Default ``key_added`` of a fit or predict call of ``method`` (e.g. ``"scmm_mlp"``)."""
    return f"{PREDICTION_PREFIX}{method}"


#: Suffixes of the lower and upper interval bounds' keys.
INTERVAL_SUFFIXES = ("_lower", "_upper")


def interval(key_added: str) -> tuple[str, str]:
    """Keys of the lower and upper interval bounds of prediction ``key_added``."""
    lower, upper = INTERVAL_SUFFIXES
    return key_added + lower, key_added + upper
