"""Randomized truncated SVD of a dense, sparse, backed or row-subset matrix, and projection.

The array maths under :func:`scmm.pp.svd` and the models' input encoders; reads on-disk
matrices a block of rows at a time.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._rng import seed_from
from ._rows import RowSubset, is_backed, row_blocks


class _Operator:
    """``X[rows]`` for the two products a randomized SVD needs, without copying ``X[rows]``.

    A backed (on-disk) ``X`` is read a block of rows at a time; an in-memory sparse ``X`` is
    multiplied whole, gathering the rows of ``X @ Q`` and scattering ``P`` into zeros for
    ``X.T @ P`` (the same sums in the same order as on the copy ``X[rows]``); a dense ``X`` is
    sliced.
    """

    def __init__(self, X, rows: np.ndarray | None):
        if isinstance(X, RowSubset) and sp.issparse(X.X):  # products on the whole matrix
            X, rows = X.X, X.rows if rows is None else X.rows[np.sort(np.asarray(rows))]
        self.rows = None if rows is None else np.sort(np.asarray(rows))
        self.backed = is_backed(X)
        if not self.backed:
            if rows is not None and not sp.issparse(X):
                X, self.rows = X[self.rows], None
            X = sp.csr_matrix(X, dtype=np.float32) if sp.issparse(X) else np.asarray(X, np.float32)
        self.X = X
        n = X.shape[0] if self.rows is None else len(self.rows)
        self.shape = (n, X.shape[1])

    def matmul(self, Q: np.ndarray) -> np.ndarray:
        """``X @ Q`` (cells × k)."""
        if self.backed:
            out = np.empty((self.shape[0], Q.shape[1]), np.float32)
            for pos, part in row_blocks(self.X, self.rows, dtype=np.float32, sparse=True):
                out[pos] = part @ Q
            return out
        out = np.asarray(self.X @ Q, dtype=np.float32)
        return out if self.rows is None else out[self.rows]

    def rmatmul(self, P: np.ndarray) -> np.ndarray:
        """``X.T @ P`` (features × k)."""
        if self.backed:
            out = np.zeros((self.shape[1], P.shape[1]), np.float32)
            for pos, part in row_blocks(self.X, self.rows, dtype=np.float32, sparse=True):
                out += part.T @ P[pos]
            return out
        if self.rows is not None:
            full = np.zeros((self.X.shape[0], P.shape[1]), P.dtype)
            full[self.rows] = P
            P = full
        return np.asarray(self.X.T @ P, dtype=np.float32)


def _randomized_svd(op: _Operator, n_components: int, n_iter: int, seed: int) -> np.ndarray:
    """Top right singular vectors (k × n_features) of ``op``.

    Halko et al. (2011) with LU-normalised power iterations, as scikit-learn's
    ``randomized_svd``.
    """
    from scipy import linalg

    n, p = op.shape
    size = min(n_components + 10, n, p)
    rng = np.random.RandomState(seed)
    if n >= p:  # range of X (n × size) from a p × size test matrix
        fwd, bwd, dim = op.matmul, op.rmatmul, p
    else:  # work on X.T: its range (p × size) is cheaper to keep
        fwd, bwd, dim = op.rmatmul, op.matmul, n
    Q = rng.normal(size=(dim, size)).astype(np.float32)
    for _ in range(n_iter):
        Q, _ = linalg.lu(fwd(Q), permute_l=True)
        Q, _ = linalg.lu(bwd(Q), permute_l=True)
    Q, _ = linalg.qr(fwd(Q), mode="economic")
    B = bwd(Q).T  # size × dim
    Uhat, _, Vt = linalg.svd(B, full_matrices=False)
    if n >= p:
        return Vt[:n_components].astype(np.float32)
    return (Q @ Uhat)[:, :n_components].T.astype(np.float32)


def fit_svd(X, n_components: int, rng=None, *, rows: np.ndarray | None = None) -> np.ndarray:
    """Fit a truncated SVD to the rows of ``X`` and return the components (k × n_features).

    A randomized SVD (7 power iterations, 10 oversamples). ``X`` may be dense, scipy sparse or
    an on-disk sparse dataset of a backed AnnData (``adata.X`` after
    ``anndata.read_h5ad(path, backed="r")``); it is never densified, and a backed matrix is
    read a block of rows at a time (about 17 passes over the file) instead of being loaded.
    The component signs are made deterministic (largest absolute loading positive).

    Parameters
    ----------
    X
        Cells × features, dense, scipy sparse or backed sparse.
    n_components
        Number of components; must be smaller than the number of features and cells.
    rng
        Seed or :class:`numpy.random.Generator` of the randomized solver.
    rows
        Fit on these rows only (sorted integer positions); ``None`` for all.

    Returns
    -------
    Components as a float32 array of shape ``(n_components, n_features)``.
    """
    n_rows = X.shape[0] if rows is None else len(rows)
    n_max = min(n_rows, X.shape[1]) - 1
    if not 1 <= n_components <= n_max:
        msg = (
            f"`n_components={n_components}` must be between 1 and {n_max} "
            f"(one less than the smaller of {n_rows} cells and {X.shape[1]} features)."
        )
        raise ValueError(msg)
    comps = _randomized_svd(_Operator(X, rows), n_components, n_iter=7, seed=seed_from(rng))
    signs = np.sign(comps[np.arange(n_components), np.abs(comps).argmax(axis=1)])
    return comps * signs[:, None]


def project(X, components: np.ndarray) -> np.ndarray:
    """Project the rows of ``X`` (dense, sparse or backed sparse) onto SVD ``components``.

    Returns a float32 array; a backed matrix is read a block of rows at a time.
    """
    if is_backed(X):
        out = np.empty((X.shape[0], components.shape[0]), np.float32)
        for pos, part in row_blocks(X, dtype=np.float32, sparse=True):
            out[pos] = part @ components.T
        return out
    out = X @ components.T
    return np.asarray(out, dtype=np.float32)
