"""Mini-batches over row indices of dense or sparse (CSR) matrices.

The matrices stay where they are (numpy arrays, scipy CSR matrices, possibly memory-mapped, or
row views of in-memory sparse matrices, :class:`~scmm._utils.RowSubset`);
each batch slices the rows it needs and converts only those to torch. A sparse input becomes a
torch sparse COO tensor (or a dense tensor with ``densify=True``), so a wide raw ATAC matrix is
never densified in full.

The training order comes from :class:`EpochShuffleSampler`, a pure function of a seed and the
epoch number: a run resumed from a checkpoint sees the same order as an uninterrupted one. It
also shards for DDP: every rank draws the same permutation and takes every ``world_size``-th cell
of it, so the ranks' batches at one step together hold exactly the cells of the single-process
batch of ``world_size`` times the size (lightning's own ``DistributedSampler`` replacement would
re-shuffle the positions, so the trainer turns it off and sets the shard itself).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .._utils import RowSubset

__all__ = ["EpochShuffleSampler", "RowBatchDataset", "batch_plan", "make_loader", "to_torch_batch"]

Matrix = Any  # np.ndarray | scipy.sparse.spmatrix | sparray


def _check_matrix(x: Matrix, name: str) -> Matrix:
    if isinstance(x, RowSubset) and x.in_memory:  # rows of a sparse matrix, read per batch
        return x
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


class EpochShuffleSampler(Sampler[int]):
    """Random order of ``range(n)`` that depends only on ``seed`` and the epoch, sharded by rank.

    Lightning calls :meth:`set_epoch` at the start of every epoch, so the order of epoch ``e``
    is the same whether the run started at epoch 0 or was resumed from a checkpoint, and the
    same on every DDP rank. After :meth:`set_shard`, rank ``r`` of ``w`` yields positions
    ``r, r + w, r + 2w, ...`` of the permutation (padded with its first items to a multiple of
    ``w``, as :class:`torch.utils.data.DistributedSampler` does), so consecutive batches of
    ``b`` cells on the ``w`` ranks together cover consecutive blocks of ``w * b`` cells.

    Parameters
    ----------
    n
        Number of items.
    seed
        Seed of the permutations (one independent stream per epoch).
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n = int(n)
        self.seed = int(seed)
        self.epoch = 0
        self.rank = 0
        self.num_replicas = 1

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of ``epoch``."""
        self.epoch = int(epoch)

    def set_shard(self, rank: int, num_replicas: int) -> None:
        """Yield only the share of ``rank`` among ``num_replicas`` ranks."""
        if not 0 <= int(rank) < int(num_replicas):
            msg = f"`rank={rank}` must be in [0, num_replicas={num_replicas})."
            raise ValueError(msg)
        self.rank, self.num_replicas = int(rank), int(num_replicas)

    def __iter__(self) -> Iterator[int]:
        perm = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        if self.num_replicas > 1:
            pad = len(self) * self.num_replicas - self.n
            perm = np.concatenate([perm, perm[:pad]])[self.rank :: self.num_replicas]
        return iter(perm.tolist())

    def __len__(self) -> int:
        return math.ceil(self.n / self.num_replicas)


def batch_plan(
    n: int, batch_size: int, *, shuffle: bool, world_size: int = 1
) -> tuple[int, bool, int]:
    """Batch size, ``drop_last`` and batches per epoch for ``n`` cells on ``world_size`` ranks.

    Each rank sees ``ceil(n / world_size)`` cells (the distributed sampler pads the last
    ones); the batch size is clipped to that, and a last training batch of one cell is dropped
    (BatchNorm cannot train on one cell).
    """
    per_rank = math.ceil(n / max(1, int(world_size)))
    batch_size = max(1, min(int(batch_size), per_rank))
    drop_last = shuffle and per_rank > batch_size and per_rank % batch_size == 1
    n_batches = per_rank // batch_size if drop_last else math.ceil(per_rank / batch_size)
    return batch_size, drop_last, n_batches


def _collate_batch(batch):
    """Identity collate: ``RowBatchDataset.__getitems__`` already returns a batch."""
    return batch


def make_loader(
    dataset: RowBatchDataset,
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    world_size: int = 1,
) -> DataLoader:
    """DataLoader yielding ``(inputs_tuple, y)`` batches from ``dataset``.

    With ``shuffle`` and ``seed``, the order comes from an ``EpochShuffleSampler`` (a
    function of seed and epoch: resumable, DDP-ready); with ``shuffle`` and no seed, from
    ``generator`` (global torch state is not used either way). ``world_size`` is the number of
    DDP ranks the training cells will be sharded over (the caller sets the rank with
    ``loader.sampler.set_shard`` once it is known), used to size the batches (see
    ``batch_plan``); ``batch_size`` is per rank.
    """
    batch_size, drop_last, _ = batch_plan(
        len(dataset), batch_size, shuffle=shuffle, world_size=world_size
    )
    sampler = EpochShuffleSampler(len(dataset), seed) if shuffle and seed is not None else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else None,
        sampler=sampler,
        generator=generator if shuffle and sampler is None else None,
        drop_last=drop_last,
        collate_fn=_collate_batch,
        num_workers=0,
    )
