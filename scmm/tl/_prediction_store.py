"""Where a fit's predictions for every cell go: memory up to a budget, else a ``.npy`` file.

Used by the fit contract (:mod:`scmm.tl._contract`): ``write_predictions=True`` (``"auto"``)
keeps predictions in memory up to ``PREDICTION_MEMORY_BUDGET`` and above it writes them to a
``.npy`` file a block of cells at a time, the layer then being a read-only memory map of it.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..models._base import BaseModel
from ..pp._svd import RowSubset, is_backed

#: Bytes of predictions (cells × targets × 4) above which ``write_predictions=True`` writes
#: them to disk instead of memory.
PREDICTION_MEMORY_BUDGET = 2 * 2**30
#: Values of ``write_predictions``: ``True``/``"auto"`` (memory up to the budget, else disk),
#: ``"memory"``, ``"disk"``, ``False`` (none: only the held-out cells are predicted, for scores).
WRITE_PREDICTIONS = (True, "auto", "memory", "disk", False)
_BLOCK_BYTES = 2**28  # predictions written to disk a block of this many bytes at a time


def rows_of(X, rows: np.ndarray, model: BaseModel):
    """``X[rows]``: a block-read view of a sparse or backed ``X`` for models that read those."""
    if model.reads_backed and (sp.issparse(X) or is_backed(X)):
        return RowSubset(X, rows)
    return X[rows]


def prediction_storage(write_predictions, n_bytes: int) -> str | None:
    """``"memory"``, ``"disk"`` or ``None`` (no predictions) for ``write_predictions``."""
    if not any(
        write_predictions is v or (isinstance(v, str) and write_predictions == v)
        for v in WRITE_PREDICTIONS
    ):
        msg = (
            f"`write_predictions={write_predictions!r}` is not one of {WRITE_PREDICTIONS}: "
            "True/'auto' keeps predictions in memory up to "
            f"{PREDICTION_MEMORY_BUDGET / 2**30:g} GiB and writes larger ones to disk."
        )
        raise ValueError(msg)
    if write_predictions is False:
        return None
    if write_predictions in ("memory", "disk"):
        return write_predictions
    return "disk" if n_bytes > PREDICTION_MEMORY_BUDGET else "memory"


def new_predictions_path(key_added: str) -> Path:
    """Return a new ``.npy`` path in ``$SCMM_PREDICTIONS_DIR`` (default ``./scmm_predictions``)."""
    root = Path(os.environ.get("SCMM_PREDICTIONS_DIR", "scmm_predictions")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root / f"{key_added}-{uuid.uuid4().hex[:8]}.npy"


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
