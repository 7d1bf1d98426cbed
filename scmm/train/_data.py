"""Mini-batches over row indices of dense or sparse (CSR) matrices.

The matrices stay where they are (numpy arrays or scipy CSR matrices, possibly memory-mapped);
each batch slices the rows it needs and converts only those to torch. A sparse input becomes a
torch sparse COO tensor (or a dense tensor with ``densify=True``), so a wide raw ATAC matrix is
never densified in full.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["RowBatchDataset", "make_loader", "to_torch_batch"]

Matrix = Any  # np.ndarray | scipy.sparse.spmatrix | sparray


def _check_matrix(x: Matrix, name: str) -> Matrix:
    if sp.issparse(x):
        return x if x.format == "csr" else sp.csr_matrix(x)
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        msg = f"`{name}` must be 2-D (cells x features), got shape {x.shape}."
        raise ValueError(msg)
    return x


def to_torch_batch(x: Matrix, rows: np.ndarray | None = None, *, densify: bool = False):
    """Rows ``rows`` of ``x`` as a float32 torch tensor.

    Dense input gives a dense tensor; CSR input gives a ``torch.sparse_coo`` tensor (or a dense
    one when ``densify``). Only the selected rows are copied.
    """
    part = x if rows is None else x[rows]
    if sp.issparse(part):
        part = part.tocsr()
        if densify:
            return torch.from_numpy(np.asarray(part.toarray(), dtype=np.float32))
        # COO (stable in torch, unlike CSR which warns "beta"); CSR order is already coalesced
        part.sum_duplicates()
        rows_idx = np.repeat(np.arange(part.shape[0], dtype=np.int64), np.diff(part.indptr))
        indices = torch.from_numpy(np.vstack([rows_idx, part.indices.astype(np.int64)]))
        return torch.sparse_coo_tensor(
            indices,
            torch.from_numpy(part.data.astype(np.float32, copy=False)),
            size=part.shape,
            is_coalesced=True,
            check_invariants=False,  # valid by construction
        )
    return torch.from_numpy(np.ascontiguousarray(part, dtype=np.float32))


class RowBatchDataset(Dataset):
    """Dataset over ``rows`` of several aligned matrices, fetched a whole batch at a time.

    ``dataset[i]`` gives one cell; the DataLoader uses ``__getitems__`` (torch >= 2.1) to slice a
    whole batch of rows at once, so CSR inputs are sliced once per batch.

    Parameters
    ----------
    inputs
        Input matrices (cells x features), dense or scipy sparse.
    target
        Target matrix (cells x features) or None (prediction).
    rows
        Row indices this dataset covers. None: all rows.
    densify
        Convert sparse batches to dense tensors (per batch only).
    """

    def __init__(
        self,
        inputs: Sequence[Matrix],
        target: Matrix | None = None,
        rows: np.ndarray | None = None,
        *,
        densify: bool = False,
    ) -> None:
        self.inputs = [_check_matrix(x, f"inputs[{i}]") for i, x in enumerate(inputs)]
        if not self.inputs:
            msg = "`inputs` must hold at least one matrix."
            raise ValueError(msg)
        n = self.inputs[0].shape[0]
        for i, x in enumerate(self.inputs):
            if x.shape[0] != n:
                msg = f"`inputs[{i}]` has {x.shape[0]} rows, `inputs[0]` has {n}."
                raise ValueError(msg)
        self.target = None if target is None else _check_matrix(target, "Y")
        if self.target is not None and self.target.shape[0] != n:
            msg = f"`Y` has {self.target.shape[0]} rows, the inputs have {n}."
            raise ValueError(msg)
        self.rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
        self.densify = densify

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int):
        return self.__getitems__([index])

    def __getitems__(self, indices: Sequence[int]):
        rows = self.rows[np.asarray(indices, dtype=np.int64)]
        xs = tuple(to_torch_batch(x, rows, densify=self.densify) for x in self.inputs)
        if self.target is None:
            return (xs,)
        y = to_torch_batch(self.target, rows, densify=True)
        return xs, y


def _collate_batch(batch):
    """Identity collate: ``RowBatchDataset.__getitems__`` already returns a batch."""
    return batch


def make_loader(
    dataset: RowBatchDataset,
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
) -> DataLoader:
    """DataLoader yielding ``(inputs_tuple, y)`` batches from ``dataset``.

    With ``shuffle``, the order comes from ``generator`` (seeded by the caller, global torch state
    is not used). A last training batch of a single cell is dropped (BatchNorm cannot train on
    one cell).
    """
    n = len(dataset)
    batch_size = max(1, min(int(batch_size), n))
    drop_last = shuffle and n > batch_size and n % batch_size == 1
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator if shuffle else None,
        drop_last=drop_last,
        collate_fn=_collate_batch,
        num_workers=0,
    )
