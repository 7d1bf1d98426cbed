"""Matrices read a block of rows at a time: in memory, sparse, on disk (backed) or a row subset."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

from .._settings import settings


def is_backed(X) -> bool:
    """Whether ``X`` is an on-disk (backed) AnnData sparse dataset rather than an array."""
    return hasattr(X, "to_memory") and not sp.issparse(X) and not isinstance(X, np.ndarray)


class RowSubset:
    """The rows ``rows`` of a sparse or backed matrix, read a block of rows at a time.

    Stands in for ``X[rows]`` where that copy would not fit in memory (e.g. the training cells
    of the competition's Multiome ATAC matrix, ~5 GB): everything that reads backed matrices
    in row blocks (:func:`row_blocks`, the SVD, the models' input encoders) reads it without
    copying more than one block of ``X``.

    Parameters
    ----------
    X
        A scipy sparse matrix or the matrix of a backed AnnData.
    rows
        Sorted, unique integer positions of the rows.
    """

    def __init__(self, X, rows: np.ndarray):
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) > 1 and not (np.diff(rows) > 0).all():
            msg = "`rows` must be sorted and unique."
            raise ValueError(msg)
        self.X = sp.csr_matrix(X) if sp.issparse(X) and X.format != "csr" else X
        self.rows = rows
        self.shape = (len(rows), X.shape[1])
        self.dtype = X.dtype

    @property
    def in_memory(self) -> bool:
        """Whether ``X`` is an in-memory sparse matrix (rows can then be read in any order)."""
        return sp.issparse(self.X)

    def __getitem__(self, key):
        """Rows ``key`` (a slice; or integer positions when :attr:`in_memory`) as CSR."""
        if not isinstance(key, slice) and not self.in_memory:
            msg = "A RowSubset of a backed matrix is read by slices of rows (`subset[start:stop]`)."
            raise TypeError(msg)
        rows = self.rows[key]
        if len(rows) == 0:
            return sp.csr_matrix((0, self.shape[1]), dtype=self.dtype)
        if self.in_memory:
            return self.X[rows]
        lo, hi = int(rows[0]), int(rows[-1]) + 1  # backed: one contiguous read, then select
        return sp.csr_matrix(self.X[lo:hi])[rows - lo]

    def to_memory(self):
        """``X[rows]`` in memory (the copy this class avoids)."""
        blocks = row_blocks(self, dtype=np.float32, sparse=True)
        return sp.vstack([part for _, part in blocks], format="csr")


def row_blocks(
    X,
    rows: np.ndarray | None = None,
    *,
    dtype: np.dtype | type | None = None,
    sparse: bool = False,
    block: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray | sp.csr_matrix]]:
    """Yield ``(positions, in-memory block)`` over the rows of ``X``, one block at a time.

    Parameters
    ----------
    X
        Dense, sparse or backed matrix, or a :class:`RowSubset`.
    rows
        Sorted integer positions of the rows to read (``None``: all). Contiguous row ranges
        are read one at a time and the ones in ``rows`` kept.
    dtype
        Cast each block to this type (``None``: keep the matrix's).
    sparse
        Every block as CSR, a dense ``X`` included; else a sparse or backed ``X`` gives CSR
        blocks and a dense one ndarray blocks.
    block
        Rows read at a time (``None``: ``scmm.settings.block_rows``, read at each call).

    Yields
    ------
    The positions of the block's rows among the rows read (among ``rows`` when given) and the
    block.
    """
    n = X.shape[0]
    block = settings.block_rows if block is None else block
    rows = None if rows is None else np.asarray(rows)
    for start in range(0, n, block):
        stop = min(start + block, n)
        lo, hi = (start, stop) if rows is None else np.searchsorted(rows, [start, stop])
        if lo == hi:
            continue
        part = X[start:stop]
        if hasattr(part, "to_memory"):  # rows of a backed dataset
            part = part.to_memory()
        if sparse or sp.issparse(part):
            part = sp.csr_matrix(part, dtype=dtype)
        else:
            part = np.asarray(part, dtype=dtype)
        if hi - lo != stop - start:
            part = part[rows[lo:hi] - start]
        yield np.arange(lo, hi), part
