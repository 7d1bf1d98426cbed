"""The pathway-sparse MLP of the original code: a sparse gene branch beside a dense SVD branch.

The pathway branch reads the (normalised) values of the source genes that have at least one
pathway connection and maps them through a :class:`scmm.nn.SparseLinear` layer whose mask is the
pathway connectivity (:func:`scmm.pp.pathway_connectivity`: a gene reaches the hidden units of
a target when they share a gene set). The dense branch reads the SVD embedding of all genes. A
dense head reads both branches' outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from ._sparse import SparseLinear

if TYPE_CHECKING:
    import scipy.sparse as sp
    from numpy.typing import ArrayLike

__all__ = ["PathwayMLP"]


def _block(layer: nn.Module, n: int, *, batchnorm: bool, activation, dropout: float):
    layers = [layer]
    if batchnorm:
        layers.append(nn.BatchNorm1d(n))
    layers.append(activation())
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class PathwayMLP(nn.Module):
    """Pathway-sparse branch on genes + dense branch on the SVD embedding + dense head.

    ``forward(svd, genes)``: ``svd`` is ``(batch, n_svd)``; ``genes`` is ``(batch, n_genes)``,
    dense or torch sparse (densified per batch), the values of the connected genes.

    Parameters
    ----------
    n_svd
        Width of the SVD input.
    n_genes
        Number of gene inputs of the pathway branch (rows of ``mask``).
    n_out
        Number of outputs.
    mask
        Connectivity ``(n_genes, n_pathway_units)``, rows are genes (any form
        :class:`scmm.nn.SparseLinear` accepts).
    dense_hidden
        Widths of the dense branch's blocks on the SVD input (``()``: the SVD goes to the head
        as it is).
    head_hidden
        Widths of blocks between the concatenated branches and the linear output layer.
    dropout
        Dropout after each block.
    batchnorm
        BatchNorm1d after each block's linear layer (the sparse one included).
    sparse_backend
        ``backend`` of :class:`scmm.nn.SparseLinear`.
    activation
        Activation class, instantiated once per block.

    Attributes
    ----------
    pathway
        The block on the genes; ``pathway[0]`` is the :class:`~scmm.nn.SparseLinear` layer.
    dense
        The blocks on the SVD embedding.
    head
        Blocks then a linear layer from both branches to the outputs.
    """

    def __init__(
        self,
        n_svd: int,
        n_genes: int,
        n_out: int,
        mask: sp.spmatrix | sp.sparray | torch.Tensor | ArrayLike,
        *,
        dense_hidden: Sequence[int] = (128,),
        head_hidden: Sequence[int] = (),
        dropout: float = 0.0,
        batchnorm: bool = True,
        sparse_backend: str = "coo",
        activation: type[nn.Module] = nn.SiLU,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            msg = f"`dropout={dropout}` must be in [0, 1)."
            raise ValueError(msg)
        n_units = int(mask.shape[1])
        kw = {"batchnorm": batchnorm, "activation": activation, "dropout": dropout}
        sparse = SparseLinear(int(n_genes), n_units, mask, backend=sparse_backend)
        self.pathway = _block(sparse, n_units, **kw)
        self.dense = nn.Sequential()
        prev = int(n_svd)
        for w in dense_hidden:
            self.dense.append(_block(nn.Linear(prev, int(w)), int(w), **kw))
            prev = int(w)
        self.head = nn.Sequential()
        prev = prev + n_units
        for w in head_hidden:
            self.head.append(_block(nn.Linear(prev, int(w)), int(w), **kw))
            prev = int(w)
        self.head.append(nn.Linear(prev, int(n_out)))
        self.n_svd, self.n_genes, self.n_out = int(n_svd), int(n_genes), int(n_out)

    @property
    def sparse_layer(self) -> SparseLinear:
        """The pathway-masked linear layer."""
        return self.pathway[0]

    def forward(self, svd: torch.Tensor, genes: torch.Tensor) -> torch.Tensor:
        """Predict from the SVD embedding and the connected genes' values."""
        if svd.layout != torch.strided:
            svd = svd.to_dense()
        if genes.layout != torch.strided:
            genes = genes.to_dense()
        p = self.pathway(genes.float())
        d = self.dense(svd)
        return self.head(torch.cat([d, p.to(d.dtype)], dim=1))
