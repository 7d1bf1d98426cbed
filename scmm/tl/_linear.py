"""``fit_linear``: the linear model on the fit contract."""

from __future__ import annotations

from typing import Any, Literal, Unpack

from mudata import MuData

from .._docs import class_params, doc_params, fit_doc
from ..models import LinearModel
from ..train import TrainingConfig
from ._contract import fit_model
from ._training import NeuralFitKeywords, neural_options


@fit_doc("LinearModel")
@doc_params(model_params=class_params(LinearModel))
def fit_linear(
    mdata: MuData,
    source: str,
    target: str,
    *,
    input: Literal["svd", "raw", "svd+raw"] = "svd",
    n_components: int = 64,
    max_raw_features: int | None = 300,
    target_svd: int | None = None,
    dropout: float = 0.0,
    training: TrainingConfig | dict[str, Any] | None = None,
    **contract: Unpack[NeuralFitKeywords],
) -> LinearModel:
    """Fit a linear map from the source to the target, trained as the neural models are.

    The inputs are those of :func:`fit_mlp` (the source's SVD, its raw features, or both); the
    network is one :class:`scmm.nn.LinearMap`. Unlike ``fit_baseline(method="ridge")`` it is
    trained by :func:`scmm.train.train`, so it takes every training option (e.g. the mixed
    MSE–correlation loss, early stopping).

    Parameters
    ----------
    {fit_data}
    {model_params}
    {training}
    {fit_keywords}

    Returns
    -------
    The fitted :class:`~scmm.models.LinearModel` (training history in ``model.history``).
    Writes

    {fit_writes}

    Examples
    --------
    >>> import scmm
    >>> mdata = scmm.datasets.toy_cite()  # synthetic: 60 cells, 30 genes, 4 proteins
    >>> model = scmm.tl.fit_linear(
    ...     mdata, "rna", "prot", n_components=5, max_epochs=2, training={"verbose": False}, rng=0
    ... )
    >>> mdata["prot"].layers["scmm_linear"].shape
    (60, 4)
    """
    training, contract = neural_options(training, contract, "fit_linear")
    model = LinearModel(
        input=input,
        n_components=n_components,
        max_raw_features=max_raw_features,
        target_svd=target_svd,
        dropout=dropout,
        training=training,
    )
    return fit_model(model, mdata, source, target, **contract)
