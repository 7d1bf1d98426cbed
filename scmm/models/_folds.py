"""The folds of an ensemble's cross-fitting, and the rows of a source each fold reads."""

from __future__ import annotations

import numpy as np

from .._utils import RowSubset, is_backed


def make_folds(n: int, n_folds: int, groups, gen: np.random.Generator) -> list[np.ndarray]:
    """Split ``n`` cells into ``n_folds`` folds (sorted index arrays), whole groups together.

    Without groups the cells are permuted and cut into near-equal folds. With groups, the
    groups are shuffled and each is given to the fold holding the fewest cells so far.
    """
    if groups is None:
        if n < 2 * n_folds:
            msg = f"{n} training cells are too few for `n_folds={n_folds}`; lower `n_folds`."
            raise ValueError(msg)
        return [np.sort(f) for f in np.array_split(gen.permutation(n), n_folds)]
    labels, codes = np.unique(np.asarray(groups), return_inverse=True)
    if len(labels) < n_folds:
        msg = (
            f"The training cells hold {len(labels)} groups, fewer than `n_folds={n_folds}`; "
            f"pass `n_folds={len(labels)}` or fewer (at least 2), or `groupby=None`."
        )
        raise ValueError(msg)
    sizes = np.bincount(codes)
    fold_of = np.empty(len(labels), dtype=int)
    load_ = np.zeros(n_folds)
    for g in gen.permutation(len(labels)):
        fold_of[g] = int(np.argmin(load_))
        load_[fold_of[g]] += sizes[g]
    return [np.flatnonzero(fold_of[codes] == k) for k in range(n_folds)]


def fold_rows(X, rows: np.ndarray):
    """Return ``X[rows]``; a view of an on-disk (backed) ``X``'s rows, read a block at a time.

    The rows of an in-memory matrix, or of a view of one, are copied (as members were always
    given them); those of an on-disk one are a :class:`~scmm._utils.RowSubset` of it.
    """
    if isinstance(X, RowSubset):
        return X[rows] if X.in_memory else RowSubset(X.X, X.rows[rows])
    if is_backed(X):
        return RowSubset(X, rows)
    return X[rows]


def fold_validation(validation, rows: np.ndarray):
    """Return ``validation`` (None, a fraction, or a mask over the cells) for ``rows``."""
    if validation is None or isinstance(validation, float):
        return validation
    return np.asarray(validation)[rows]
