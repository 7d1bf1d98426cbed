"""An MLP whose embedding is regularised by reconstructing the input through a decoder.

The encoder is a :class:`scmm.nn.MLP` whose last trunk block is the embedding (``latent``
units); its head predicts the targets from the embedding (``skip="none"``) or, as in the
original CITE model, from the concatenated outputs of the last ``skip`` blocks. A decoder
(blocks, then a *linear* output layer) reconstructs the input from the embedding. The original
code ended the decoder with a Softplus, which cannot produce the negative values of a centred
SVD embedding; a linear output can.

The encoder is built first, the decoder after it, so with the same torch random state the
encoder starts from exactly the weights of ``MLP(n_in, n_out, (*hidden, latent),
skip=skip)``; with ``reconstruction_weight=0`` the decoder is never run, and training gives
the plain MLP's weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._mlp import MLP

__all__ = ["AutoencoderMLP"]


class AutoencoderMLP(nn.Module):
    """MLP encoder → embedding → target head, plus a decoder embedding → input.

    Parameters
    ----------
    n_in
        Number of input features (e.g. SVD components); the decoder reconstructs them.
    n_out
        Number of outputs (targets, or target SVD coefficients).
    hidden
        Widths of the encoder blocks before the embedding.
    latent
        Width of the embedding (the encoder's last block).
    skip
        Which encoder blocks the target head reads: ``"none"`` (the embedding only),
        ``"all"`` or the last ``k`` (see :class:`scmm.nn.MLP`).
    decoder_hidden
        Widths of the decoder blocks between the embedding and its linear output layer; None:
        ``hidden`` reversed.
    reconstruction_weight
        Weight of the reconstruction mean squared error in the training loss (returned by
        :meth:`auxiliary_loss`); 0 skips the decoder during training.
    dropout
        Dropout after each encoder block (the decoder has none).
    batchnorm
        BatchNorm1d in the encoder and decoder blocks.
    activation
        Activation class, instantiated once per block.

    Attributes
    ----------
    mlp
        The encoder and target head, a :class:`scmm.nn.MLP`.
    decoder
        :class:`torch.nn.Sequential` from the embedding to the reconstructed input.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        hidden: Sequence[int] = (256,),
        latent: int = 64,
        *,
        skip: str | int = "none",
        decoder_hidden: Sequence[int] | None = None,
        reconstruction_weight: float = 1.0,
        dropout: float = 0.0,
        batchnorm: bool = True,
        activation: type[nn.Module] = nn.SiLU,
    ) -> None:
        super().__init__()
        if int(latent) < 1:
            msg = f"`latent={latent}` must be a positive number of units."
            raise ValueError(msg)
        if reconstruction_weight < 0:
            msg = f"`reconstruction_weight={reconstruction_weight}` must be >= 0."
            raise ValueError(msg)
        # the encoder first: same initial weights as the plain MLP from the same random state
        self.mlp = MLP(
            int(n_in),
            int(n_out),
            (*[int(h) for h in hidden], int(latent)),
            skip=skip,
            dropout=dropout,
            batchnorm=batchnorm,
            activation=activation,
        )
        dec_sizes = list(hidden)[::-1] if decoder_hidden is None else list(decoder_hidden)
        layers: list[nn.Module] = []
        prev = int(latent)
        for w in dec_sizes:
            layers.append(nn.Linear(prev, int(w)))
            if batchnorm:
                layers.append(nn.BatchNorm1d(int(w)))
            layers.append(activation())
            prev = int(w)
        layers.append(nn.Linear(prev, int(n_in)))  # linear: any sign, any scale
        self.decoder = nn.Sequential(*layers)
        self.reconstruction_weight = float(reconstruction_weight)
        self.n_in = int(n_in)
        self.n_out = int(n_out)
        self.latent = int(latent)
        self._auxiliary: torch.Tensor | None = None

    @staticmethod
    def _dense(x: torch.Tensor) -> torch.Tensor:
        return x.to_dense() if x.layout != torch.strided else x

    def _blocks(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs, h = [], self._dense(x)
        for block in self.mlp.trunk:
            h = block(h)
            outs.append(h)
        return outs

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Return the embedding (``n_cells × latent``) of an input batch."""
        return self._blocks(x)[-1]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstruct the input from an embedding."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predict the targets; in training, also store the weighted reconstruction loss."""
        x = self._dense(x)
        outs = self._blocks(x)
        z = outs[-1]
        if self.training and self.reconstruction_weight > 0 and torch.is_grad_enabled():
            recon = self.decode(z)
            with torch.autocast(device_type=x.device.type, enabled=False):
                err = nn.functional.mse_loss(recon.float(), x.float())
            self._auxiliary = self.reconstruction_weight * err
        feats = outs[-self.mlp.n_skip :]  # as MLP.forward: the last n_skip blocks
        return self.mlp.head(feats[0] if len(feats) == 1 else torch.cat(feats, dim=1))

    def auxiliary_loss(self) -> torch.Tensor | None:
        """Weighted reconstruction loss of the last training forward pass (then cleared).

        :class:`scmm.train.PredictionModule` adds it to the training loss.

        Returns
        -------
        ``reconstruction_weight × MSE(decoder(embedding), input)``, or None (weight 0, or no
        training forward pass since the last call).
        """
        out, self._auxiliary = self._auxiliary, None
        return out
