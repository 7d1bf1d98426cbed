"""Large arrays scmm creates go to disk above a memory budget: predictions and kept counts.

``write_predictions`` of every fit and ``keep_counts`` of :func:`scmm.pp.normalize` take the
same values: ``True``/``"auto"`` keeps an array in memory up to ``scmm.settings.memory_budget``
and writes a larger one to ``$SCMM_DISK_DIR`` (default ``./scmm_disk``), ``"memory"`` or
``"disk"`` force either. What is on disk is read back as a memory map (the layer reads the
file), and one logged line says where it went.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ._settings import settings

logger = logging.getLogger("scmm")

#: ``True``/``"auto"`` (memory up to the budget, else disk), ``"memory"``, ``"disk"``; ``False``
#: (not kept) where the caller allows it.
STORAGE = (True, "auto", "memory", "disk", False)


def storage(value, n_bytes: int, name: str) -> str | None:
    """``"memory"``, ``"disk"`` or ``None`` (``False``: not kept) for the argument ``name``."""
    if not any(value is v or (isinstance(v, str) and value == v) for v in STORAGE):
        msg = (
            f"`{name}={value!r}` is not one of {STORAGE}: True/'auto' keeps the array in "
            f"memory up to {settings.memory_budget / 2**30:g} GiB and writes a larger one to disk "
            "($SCMM_DISK_DIR)."
        )
        raise ValueError(msg)
    if value is False:
        return None
    if value in ("memory", "disk"):
        return value
    return "disk" if n_bytes > settings.memory_budget else "memory"


def new_path(stem: str, suffix: str = ".npy") -> Path:
    """Return a new path in ``$SCMM_DISK_DIR`` (default ``./scmm_disk``), its folder created."""
    root = Path(os.environ.get("SCMM_DISK_DIR", "scmm_disk")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root / f"{stem}-{uuid.uuid4().hex[:8]}{suffix}"


def nbytes(X) -> int:
    """Bytes held by a dense or compressed sparse matrix."""
    if sp.issparse(X):
        return int(X.data.nbytes + X.indices.nbytes + X.indptr.nbytes)
    return int(np.asarray(X).nbytes)


def matrix_to_disk(X, stem: str):
    """Write ``X`` (ndarray, CSR or CSC) under a new path and return it memory-mapped, and the path.

    Dense arrays become one ``.npy``; sparse ones a folder holding ``data.npy``, ``indices.npy``
    and ``indptr.npy``. The copy is opened copy-on-write (``mmap_mode="c"``): it reads like the
    array in memory, writes to it stay in the process, never in the file. The file appears
    complete or not at all.
    """
    if not sp.issparse(X):
        path = new_path(stem)
        tmp = path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(X))
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return np.load(path, mmap_mode="c"), path
    path = new_path(stem, "")
    tmp = path.with_suffix(".tmp")
    try:
        tmp.mkdir()
        for part in ("data", "indices", "indptr"):
            with open(tmp / f"{part}.npy", "wb") as f:
                np.save(f, getattr(X, part))
        tmp.replace(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    out = X.__class__(X.shape, dtype=X.dtype)  # arrays set directly: no copy, no re-typing
    out.data, out.indices, out.indptr = (
        np.load(path / f"{part}.npy", mmap_mode="c") for part in ("data", "indices", "indptr")
    )
    return out, path


def log_on_disk(what: str, shape: tuple[int, int], n_bytes: int, reason: str, path, where: str):
    """Log the one line saying an array went to disk, and where it is read from."""
    logger.warning(
        "%s for %s × %s (%.1f GB, %s) written to disk at %s; %s reads them from there.",
        what,
        f"{shape[0]:,}",
        f"{shape[1]:,}",
        n_bytes / 1e9,
        reason,
        path,
        where,
    )


def reason(value, name: str) -> str:
    """Why an array went to disk: over the budget, or asked for with ``name="disk"``."""
    if isinstance(value, str) and value == "disk":
        return f"{name}='disk'"
    return f"over the {settings.memory_budget / 1e9:.1f} GB in-memory budget"


#: The file that makes a folder an scmm model folder (:func:`scmm.models.load` reads it).
MODEL_FILE = "model.json"


def check_replaceable(path: Path, option: str) -> None:
    """Refuse to replace ``path`` unless it is an scmm model folder (holds ``MODEL_FILE``).

    Replacing deletes the folder: a results folder or a file passed by mistake must survive.
    ``option`` names what asked for the replacement (``overwrite=True``, ``--overwrite``).
    """
    if path.exists() and not (path.is_dir() and (path / MODEL_FILE).is_file()):
        msg = (
            f"`{path}` exists and is not an scmm model folder (no {MODEL_FILE}): {option} "
            "replaces model folders only, and would delete what is there. Save the model to a "
            "new path."
        )
        raise FileExistsError(msg)
