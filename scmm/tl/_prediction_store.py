"""A fit's predictions for every cell written to a ``.npy`` file, a block of cells at a time.

Used by the fit contract (:mod:`scmm.tl._contract`) when :func:`scmm._disk.storage` puts the
predictions on disk (``write_predictions=True`` over ``scmm.settings.memory_budget``, or
``"disk"``); the layer is then a read-only memory map of the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .._utils import RowSubset, is_backed
from ..models import BaseModel

_BLOCK_BYTES = 2**28  # predictions written to disk a block of this many bytes at a time


def rows_of(X, rows: np.ndarray, model: BaseModel):
    """``X[rows]``: a block-read view of a sparse or backed ``X`` for models that read those."""
    if model.reads_backed and (sp.issparse(X) or is_backed(X)):
        return RowSubset(X, rows)
    return X[rows]


def predict_to_disk(
    model: BaseModel, X, inverse: np.ndarray, test_idx: np.ndarray, path: Path
) -> np.ndarray | None:
    """Write predictions in target row order to ``path`` (``.npy``), a block of rows at a time.

    ``inverse[t]`` is the source row of target row ``t``. Rows are written with file writes
    (not a memory map, so they do not stay in the process's memory); the held-out cells'
    predictions (``test_idx``, source rows) are collected on the way and returned for scoring.
    The file appears complete or not at all.
    """
    n, m = len(inverse), len(model.target_features)
    test_pos = np.full(n, -1, dtype=np.int64)
    test_pos[test_idx] = np.arange(len(test_idx))
    pred_test = np.empty((len(test_idx), m), np.float32) if len(test_idx) else None
    block = max(1, _BLOCK_BYTES // (4 * m))
    tmp = path.with_suffix(".tmp")
    header = {"descr": "<f4", "fortran_order": False, "shape": (n, m)}
    try:
        with open(tmp, "wb") as f:
            np.lib.format.write_array_header_1_0(f, header)
            for t0 in range(0, n, block):
                rows = inverse[t0 : t0 + block]
                srt = np.argsort(rows, kind="stable")  # row blocks are read in source order
                part = np.empty((len(rows), m), np.float32)
                part[srt] = model.predict_array(rows_of(X, rows[srt], model))
                held = test_pos[rows]
                if pred_test is not None and (held >= 0).any():
                    pred_test[held[held >= 0]] = part[held >= 0]
                part.astype("<f4", copy=False).tofile(f)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return pred_test
