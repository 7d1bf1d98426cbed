"""A fit's predictions for every cell written to ``.npy`` files, a block of cells at a time.

Used by the fit contract (:mod:`scmm.tl._contract`) and :func:`scmm.tl.predict` when
:func:`scmm._disk.storage` puts the predictions on disk (``write_predictions=True`` over
``scmm.settings.memory_budget``, or ``"disk"``); each layer is then a read-only memory map of
its file. The model's derived outputs (:meth:`~scmm.models.BaseModel.derived_outputs`, e.g. an
ensemble's interval bounds) are computed from each block of predictions and written beside
them, to :func:`derived_path` of the predictions' file.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import numpy as np

from .._settings import settings
from ..models import BaseModel, rows_of


def derived_path(path: Path, suffix: str) -> Path:
    """Return the file of the derived output ``suffix`` beside the predictions' file ``path``."""
    return path.with_name(path.stem + suffix + path.suffix)


def output_paths(model: BaseModel, path: Path) -> dict[str, Path]:
    """Every file a disk-backed prediction writes, by key suffix (``""``: the predictions)."""
    return {"": path, **{s: derived_path(path, s) for s in model.output_suffixes}}


def derived(model: BaseModel, pred: np.ndarray, distance: np.ndarray | None) -> dict:
    """Return the derived outputs of predictions ``pred``, one per ``model.output_suffixes``."""
    if not model.output_suffixes:
        return {}
    out = model.derived_outputs(pred, distance)
    if tuple(out) != tuple(model.output_suffixes):
        msg = (
            f"{type(model).__name__}.derived_outputs returned {tuple(out)}, not its "
            f"`output_suffixes` {model.output_suffixes}."
        )
        raise RuntimeError(msg)
    return out


def block_rows(n_columns: int, n_outputs: int = 1) -> int:
    """Rows per block: the block's outputs take at most 1/8 of ``settings.memory_budget``."""
    return max(1, settings.memory_budget // 8 // (4 * n_columns * n_outputs))


def predict_to_disk(
    model: BaseModel,
    X,
    inverse: np.ndarray,
    test_idx: np.ndarray,
    path: Path,
    distance: np.ndarray | None = None,
) -> np.ndarray | None:
    """Write predictions in target row order to ``path`` (``.npy``), a block of rows at a time.

    ``inverse[t]`` is the source row of target row ``t``; ``distance`` (one value per source
    row, or None) is each cell's reference-distance ratio, read by the model's derived outputs,
    which go to the other files of :func:`output_paths`. Rows are written with file writes (not
    a memory map, so they do not stay in the process's memory); the held-out cells'
    predictions (``test_idx``, source rows) are collected on the way and returned for scoring.
    The files appear complete or not at all.
    """
    n, m = len(inverse), len(model.target_features)
    paths = output_paths(model, path)
    test_pos = np.full(n, -1, dtype=np.int64)
    test_pos[test_idx] = np.arange(len(test_idx))
    pred_test = np.empty((len(test_idx), m), np.float32) if len(test_idx) else None
    block = block_rows(m, len(paths))
    tmps = {s: p.with_suffix(".tmp") for s, p in paths.items()}
    header = {"descr": "<f4", "fortran_order": False, "shape": (n, m)}
    try:
        with ExitStack() as stack:
            files = {s: stack.enter_context(open(tmp, "wb")) for s, tmp in tmps.items()}
            for f in files.values():
                np.lib.format.write_array_header_1_0(f, header)
            for t0 in range(0, n, block):
                rows = inverse[t0 : t0 + block]
                srt = np.argsort(rows, kind="stable")  # row blocks are read in source order
                part = np.empty((len(rows), m), np.float32)
                part[srt] = model.predict_array(rows_of(X, rows[srt], model))
                held = test_pos[rows]
                if pred_test is not None and (held >= 0).any():
                    pred_test[held[held >= 0]] = part[held >= 0]
                d = None if distance is None else distance[rows]
                outputs = {"": part, **derived(model, part, d)}
                for s, f in files.items():
                    outputs[s].astype("<f4", copy=False).tofile(f)
        for s, tmp in tmps.items():
            tmp.replace(paths[s])
    except BaseException:
        for s, p in paths.items():
            tmps[s].unlink(missing_ok=True)
            p.unlink(missing_ok=True)
        raise
    return pred_test
