"""The linear model: :class:`scmm.nn.LinearMap` on the source SVD (and raw features).

The smallest neural model, trained by the same loop as the others (loss, SWA, early stopping
and the rest of :class:`scmm.train.TrainingConfig`): a reference between ridge regression
(closed form, MSE only) and the MLP (the same inputs and loss, plus hidden layers).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
import torch

from .._settings import settings
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

    def _fit(self, X, Y, *, X_svd=None, validation=None, rng=None) -> None:
        inputs, net, gen = self._prepare(X, Y, X_svd=X_svd, rng=rng)
        _least_squares_start(net, inputs, self.target_encoder.encode(_dense(Y)))
        self._train(net, inputs, Y, validation=validation, rng=gen)


def _dense(Y) -> np.ndarray:
    return Y.toarray() if sp.issparse(Y) else np.asarray(Y)


def _least_squares_start(net: LinearMap, inputs: tuple, T: np.ndarray) -> None:
    """Set ``net`` to the least-squares map from ``inputs`` to ``T`` (with a tiny ridge).

    Training then starts at the closed-form optimum of the squared error and only refines it
    (for the loss, penalties and dropout of the training options): gradient descent from a
    random start needs hundreds of epochs to get there on a few hundred cells. The normal
    equations are summed a block of rows at a time (sparse raw inputs densified per block).
    """
    widths = [int(x.shape[1]) for x in inputs]
    p = sum(widths) + 1  # the inputs and the intercept
    gram, cross = np.zeros((p, p)), np.zeros((p, T.shape[1]))
    step = settings.block_rows
    for lo in range(0, T.shape[0], step):
        parts = [_dense(x[lo : lo + step]) for x in inputs]
        A = np.hstack([*parts, np.ones((parts[0].shape[0], 1))]).astype(np.float64)
        gram += A.T @ A
        cross += A.T @ T[lo : lo + step].astype(np.float64)
    # a ridge of 1e-3 of each column's own sum of squares: the same for every input scale
    gram[np.arange(p - 1), np.arange(p - 1)] *= 1 + 1e-3
    W = np.linalg.solve(gram, cross)  # p × targets
    with torch.no_grad():
        start = 0
        for layer, width in zip(net.maps, widths, strict=True):
            layer.weight.copy_(torch.from_numpy(W[start : start + width].T.copy()))
            start += width
        net.maps[0].bias.copy_(torch.from_numpy(W[-1]))
