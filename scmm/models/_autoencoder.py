"""The autoencoder-regularised MLP: :class:`scmm.nn.AutoencoderMLP` on the source SVD.

It shares everything but the network with :class:`~scmm.models.MLPModel` (input SVD, target
SVD, seeds, training, save/load), so with ``reconstruction_weight=0`` it gives exactly the
predictions of an MLP with ``hidden=[*hidden, latent]`` and the same ``skip`` fitted with the
same ``rng``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from anndata import AnnData
from mudata import MuData
from torch import nn

from ..nn import AutoencoderMLP
from ..train import TrainingConfig
from ..train import predict as predict_net
from ._mlp import MLPModel


class _Embedder(nn.Module):
    """View of an :class:`AutoencoderMLP` whose forward returns the embedding."""

    def __init__(self, net: AutoencoderMLP) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.embed(x)


class AutoencoderModel(MLPModel):
    """MLP from the source SVD to the targets, regularised by reconstructing that SVD.

    Parameters
    ----------
    hidden
        Encoder block widths before the embedding; None: ``[512, 256, 128]``.
    latent
        Width of the embedding (the encoder's last block, read by the target head and the
        decoder).
    skip
        Encoder blocks the target head reads: ``"none"`` (the embedding only), ``"all"`` or
        the last ``k``.
    decoder_hidden
        Decoder block widths before its linear output layer; None: ``hidden`` reversed.
    reconstruction_weight
        Loss = target loss + ``reconstruction_weight`` × MSE of the reconstructed SVD
        (components scaled to unit variance).
    dropout
        Dropout after each encoder block.
    batchnorm
        BatchNorm in each block.
    n_components
        Number of SVD components of the source (the input, and what is reconstructed).
    target_svd
        None, or k: predict k SVD coefficients of the targets (see :class:`MLPModel`).
    training
        A :class:`scmm.train.TrainingConfig` (used as it is), or a dict of some of its options
        over :class:`~scmm.train.TrainingConfig`'s defaults.
    """

    kind = "autoencoder"

    def __init__(
        self,
        hidden: list[int] | None = None,
        latent: int = 64,
        skip: str | int = "all",
        decoder_hidden: list[int] | None = None,
        reconstruction_weight: float = 0.1,
        dropout: float = 0.0,
        batchnorm: bool = True,
        n_components: int = 64,
        target_svd: int | None = None,
        training: TrainingConfig | dict[str, Any] | None = None,
    ):
        hidden = [512, 256, 128] if hidden is None else [int(h) for h in hidden]
        if reconstruction_weight < 0:
            msg = f"`reconstruction_weight={reconstruction_weight}` must be >= 0."
            raise ValueError(msg)
        if int(latent) < 1:
            msg = f"`latent={latent}` must be a positive number of units."
            raise ValueError(msg)
        super().__init__(
            hidden=[*hidden, int(latent)],
            skip=skip,
            dropout=dropout,
            batchnorm=batchnorm,
            input="svd",
            n_components=n_components,
            target_svd=target_svd,
            training=training,
        )
        # the constructor arguments, as `load` passes them back
        self.params = {
            "hidden": hidden,
            "latent": int(latent),
            "skip": skip,
            "decoder_hidden": None if decoder_hidden is None else [int(h) for h in decoder_hidden],
            "reconstruction_weight": float(reconstruction_weight),
            "dropout": float(dropout),
            "batchnorm": bool(batchnorm),
            "n_components": int(n_components),
            "target_svd": None if target_svd is None else int(target_svd),
            "training": self.params["training"],
        }

    def _build_net(self, n_in: list[int], n_out: int) -> AutoencoderMLP:
        p = self.params
        return AutoencoderMLP(
            n_in[0],
            n_out,
            p["hidden"],
            p["latent"],
            skip=p["skip"],
            decoder_hidden=p["decoder_hidden"],
            reconstruction_weight=p["reconstruction_weight"],
            dropout=p["dropout"],
            batchnorm=p["batchnorm"],
        )

    def embed_array(self, X) -> np.ndarray:
        """Embedding (float32, cells × latent) of a source matrix in training feature order."""
        self._check_fitted()
        device = self.params["training"].get("device", "auto")
        return predict_net(_Embedder(self.net), self.encoder.transform(X), device=device)

    def embed(self, data: MuData | AnnData, *, allow_missing_features: bool = False) -> np.ndarray:
        """Return the embedding of every cell of ``data``.

        Parameters
        ----------
        data
            A MuData with the source modality, or an AnnData of that modality. Features are
            matched by name.
        allow_missing_features
            Zero-fill source features the data lacks (with a warning) instead of raising.

        Returns
        -------
        Float32 array of shape ``(n_cells, latent)``, rows in the order of the source's cells.
        """
        X = self.source_matrix(data, allow_missing_features=allow_missing_features)
        return self.embed_array(X)
