"""Tools: fit models from one modality to another and predict for new cells."""

from ._autoencoder import fit_autoencoder
from ._baseline import fit_baseline
from ._calibrate import calibrate
from ._deepsets import fit_deepsets
from ._ensemble import fit_ensemble
from ._linear import fit_linear
from ._mlp import fit_mlp, lr_range_test
from ._pathway import fit_pathway_mlp
from ._peak_contributions import peak_contributions
from ._predict import predict
from ._training import EnsembleFitKeywords, FitKeywords, NeuralFitKeywords

# for the CLI (not in __all__: no API)
from ._training import keyword_parameters as keyword_parameters
from ._tune import TuneResult, tune_mlp

__all__ = [
    "EnsembleFitKeywords",
    "FitKeywords",
    "NeuralFitKeywords",
    "TuneResult",
    "calibrate",
    "fit_autoencoder",
    "fit_baseline",
    "fit_deepsets",
    "fit_ensemble",
    "fit_linear",
    "fit_mlp",
    "fit_pathway_mlp",
    "lr_range_test",
    "peak_contributions",
    "predict",
    "tune_mlp",
]
