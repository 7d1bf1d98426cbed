"""The pathway-sparse MLP: :class:`scmm.nn.PathwayMLP` on the source SVD and connected genes.

The connectivity (source genes × hidden units, e.g. from :func:`scmm.pp.pathway_connectivity`)
is given to the model before fitting (:meth:`PathwayMLPModel.set_connectivity`). Fitting keeps
the genes with at least one connection and the hidden units with at least one gene; the network
reads those genes' values (sparse, never densified beyond a batch) and the SVD of all genes.
The restricted mask, the kept genes and units are saved with the weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ..nn import SPARSE_BACKENDS, PathwayMLP
from ..train import TrainingConfig
from ._mlp import MLPModel
from ._preprocess import InputEncoder


class _ConnectedGenesEncoder(InputEncoder):
    """``svd+raw`` inputs whose raw part is the connected genes' columns (not the most variable)."""

    def __init__(self, n_components: int, genes: np.ndarray):
        super().__init__("svd+raw", n_components, scale=True, max_raw_features=None)
        self.genes = np.asarray(genes, dtype=np.int64)
        self.raw_columns = self.genes

    @classmethod
    def wrap(cls, encoder: InputEncoder, genes: np.ndarray) -> _ConnectedGenesEncoder:
        out = cls(encoder.n_components, genes)
        out.components, out.std = encoder.components, encoder.std
        return out

    def fit(self, X, *, X_svd=None, rng=None) -> _ConnectedGenesEncoder:
        """Fit the SVD as :class:`InputEncoder` does; the raw columns stay the connected genes."""
        super().fit(X, X_svd=X_svd, rng=rng)
        self.raw_columns = self.genes
        return self


class PathwayMLPModel(MLPModel):
    """Pathway-sparse branch on the connected genes, dense branch on the SVD, dense head.

    Parameters
    ----------
    dense_hidden
        Block widths of the dense branch on the SVD embedding.
    head_hidden
        Block widths between the concatenated branches and the output layer.
    dropout
        Dropout after each block.
    batchnorm
        BatchNorm in each block.
    sparse_backend
        ``backend`` of the :class:`scmm.nn.SparseLinear` layer (``"coo"``, ``"csr"``,
        ``"index_add"``, ``"dense_masked"`` or ``"sparselinear"``).
    n_components
        Number of SVD components of the source.
    training
        A :class:`scmm.train.TrainingConfig` (used as it is), or a dict of some of its options
        over :class:`~scmm.train.TrainingConfig`'s defaults.
    """

    kind = "pathway_mlp"

    def __init__(
        self,
        dense_hidden: list[int] | None = None,
        head_hidden: list[int] | None = None,
        dropout: float = 0.2,
        batchnorm: bool = True,
        sparse_backend: str = "coo",
        n_components: int = 64,
        training: TrainingConfig | dict[str, Any] | None = None,
    ):
        if sparse_backend not in SPARSE_BACKENDS:
            msg = f"`sparse_backend={sparse_backend!r}` is not one of {SPARSE_BACKENDS}."
            raise ValueError(msg)
        super().__init__(
            dropout=dropout,
            batchnorm=batchnorm,
            input="svd+raw",
            n_components=n_components,
            training=training,
        )
        self.params = {
            "dense_hidden": [128] if dense_hidden is None else [int(h) for h in dense_hidden],
            "head_hidden": [] if head_hidden is None else [int(h) for h in head_hidden],
            "dropout": float(dropout),
            "batchnorm": bool(batchnorm),
            "sparse_backend": sparse_backend,
            "n_components": int(n_components),
            "training": self.params["training"],
        }
        self.connectivity: sp.csr_matrix | None = None
        self.genes: np.ndarray | None = None  # kept rows of the connectivity
        self.units: np.ndarray | None = None  # kept columns of the connectivity
        self.mask: sp.csr_matrix | None = None  # connectivity[genes][:, units]

    def set_connectivity(self, connectivity) -> PathwayMLPModel:
        """Set the connectivity used by the next fit.

        Parameters
        ----------
        connectivity
            Source features × hidden units (rows in the order of the source features the
            model is fitted on), non-zero where a gene feeds a unit; e.g.
            ``mdata[source].varm["pathway"]`` from :func:`scmm.pp.pathway_connectivity`.

        Returns
        -------
        The model.
        """
        conn = sp.csr_matrix(connectivity).astype(bool)
        conn.eliminate_zeros()
        if conn.nnz == 0:
            msg = (
                "`connectivity` has no connections: no source gene shares a gene set with a "
                "target; check the gene sets' species and symbols."
            )
            raise ValueError(msg)
        self.connectivity = conn
        return self

    def _restrict(self, n_features: int) -> None:
        conn = self.connectivity
        if conn is None:
            msg = (
                "The pathway MLP has no connectivity; use `scmm.tl.fit_pathway_mlp` or call "
                "`model.set_connectivity(mdata[source].varm['pathway'])` first."
            )
            raise RuntimeError(msg)
        if conn.shape[0] != n_features:
            msg = (
                f"The connectivity has {conn.shape[0]} rows but the source has {n_features} "
                "features; compute it on the same modality."
            )
            raise ValueError(msg)
        self.genes = np.flatnonzero(conn.getnnz(axis=1) > 0).astype(np.int64)
        self.units = np.flatnonzero(conn.getnnz(axis=0) > 0).astype(np.int64)
        self.mask = conn[self.genes][:, self.units].tocsr()

    def _fit(self, X, Y, *, X_svd=None, validation=None, rng=None) -> None:
        self._restrict(X.shape[1])
        self.encoder = _ConnectedGenesEncoder(self.params["n_components"], self.genes)
        super()._fit(X, Y, X_svd=X_svd, validation=validation, rng=rng)

    def _build_net(self, n_in: list[int], n_out: int) -> PathwayMLP:
        p = self.params
        return PathwayMLP(
            n_in[0],
            n_in[1],
            n_out,
            self.mask,
            dense_hidden=p["dense_hidden"],
            head_hidden=p["head_hidden"],
            dropout=p["dropout"],
            batchnorm=p["batchnorm"],
            sparse_backend=p["sparse_backend"],
        )

    def _get_state(self):
        meta, arrays = super()._get_state()
        coo = self.mask.tocoo()
        arrays = {
            **arrays,
            "pathway.mask": np.stack([coo.row, coo.col]).astype(np.int64),
            "pathway.genes": self.genes,
            "pathway.units": self.units,
        }
        meta = {
            **meta,
            "pathway": {
                "mask_shape": list(self.mask.shape),
                "n_units_total": int(self.connectivity.shape[1]),
            },
        }
        return meta, arrays

    def _set_state(self, meta, arrays):
        info = meta["pathway"]
        rows, cols = np.asarray(arrays["pathway.mask"], dtype=np.int64)
        self.genes = np.asarray(arrays["pathway.genes"], dtype=np.int64)
        self.units = np.asarray(arrays["pathway.units"], dtype=np.int64)
        self.mask = sp.csr_matrix(
            (np.ones(rows.size, dtype=bool), (rows, cols)), shape=tuple(info["mask_shape"])
        )
        full = sp.csr_matrix(
            (np.ones(rows.size, dtype=bool), (self.genes[rows], self.units[cols])),
            shape=(len(self.source_features), int(info["n_units_total"])),
        )
        self.connectivity = full
        super()._set_state(meta, arrays)
        self.encoder = _ConnectedGenesEncoder.wrap(self.encoder, self.genes)

    def connected_genes(self) -> list[str]:
        """Names of the source genes the pathway branch reads."""
        self._check_fitted()
        return [self.source_features[i] for i in self.genes]
