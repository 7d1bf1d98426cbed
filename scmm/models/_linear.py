"""The linear model: :class:`scmm.nn.LinearMap` on the source SVD (and raw features).

The smallest neural model, trained by the same loop as the others (loss, SWA, early stopping
and the rest of :class:`scmm.train.TrainingConfig`): a reference between ridge regression
(closed form, MSE only) and the MLP (the same inputs and loss, plus hidden layers).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from ..nn import LinearMap
from ..train import TrainingConfig
from ._neural import NeuralModel


class LinearModel(NeuralModel):
    """A linear map from the source (its SVD, raw features, or both) to the targets.

    Parameters
    ----------
    input
        ``"svd"`` (TruncatedSVD of the source, each component scaled to unit variance),
        ``"raw"`` (the source features, kept sparse) or ``"svd+raw"`` (both).
    n_components
        Number of SVD components of the source.
    max_raw_features
        With raw inputs, keep this many source features (highest variance on the training
        cells; ``None``: all).
    target_svd
        None, or k: predict k SVD coefficients of the targets, mapped back through the fixed
        components (a reduced-rank linear map).
    dropout
        Dropout on the dense inputs during training.
    training
        A :class:`scmm.train.TrainingConfig` (used as it is), or a dict of some of its options
        over the model's defaults (:meth:`default_training`: no SWA, 20 epochs).
    """

    kind = "linear"
    training_defaults: ClassVar[dict[str, Any]] = {"swa": False, "max_epochs": 20}

    def __init__(
        self,
        input: Literal["svd", "raw", "svd+raw"] = "svd",
        n_components: int = 64,
        max_raw_features: int | None = 300,
        target_svd: int | None = None,
        dropout: float = 0.0,
        training: TrainingConfig | dict[str, Any] | None = None,
    ):
        super().__init__(
            input=input,
            n_components=n_components,
            max_raw_features=max_raw_features,
            target_svd=target_svd,
            dropout=float(dropout),
            training=training,
        )

    @property
    def reads_backed(self) -> bool:
        """The input encoder reads backed matrices in row blocks (SVD and raw features)."""
        return True

    def _build_net(self, n_in: list[int], n_out: int) -> LinearMap:
        return LinearMap(n_in, n_out, dropout=self.params["dropout"])
