"""A linear map from one or several inputs (dense or sparse) to the targets."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._mlp import SparseInputLinear


class LinearMap(nn.Module):
    """One linear layer on the concatenated inputs: ``y = W_1 x_1 + W_2 x_2 + b``.

    Each input has its own weight matrix (a :class:`SparseInputLinear`, so a torch sparse batch
    is multiplied without densifying it); the bias is shared.

    Parameters
    ----------
    n_in
        Width of each input, in the order they are given to ``forward``.
    n_out
        Number of outputs.
    dropout
        Dropout on the inputs (dense inputs only) during training.
    """

    def __init__(self, n_in: int | Sequence[int], n_out: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.n_in = [int(n_in)] if isinstance(n_in, int) else [int(n) for n in n_in]
        self.maps = nn.ModuleList(
            SparseInputLinear(n, n_out, bias=i == 0) for i, n in enumerate(self.n_in)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Predict from the inputs (in the order of ``n_in``)."""
        if len(inputs) != len(self.n_in):
            msg = f"LinearMap expects {len(self.n_in)} inputs, got {len(inputs)}."
            raise ValueError(msg)
        out = None
        for layer, x in zip(self.maps, inputs, strict=True):
            x = x if x.layout != torch.strided else self.dropout(x)
            y = layer(x)
            out = y if out is None else out + y
        return out
