"""Save and load models: JSON metadata plus one safetensors file, no pickle anywhere.

``save_model`` writes into a temporary folder that is then renamed, so an interrupted save
never leaves a half-written model. ``model.json`` records the sha256 of every other file of the
folder (the arrays, and an ensemble's member folders), checked at load: a changed byte is an
error, not garbage predictions. Non-finite floating-point arrays are refused at save and at
load. Models saved before checksums were recorded still load, with a warning once per folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import _disk
from ._reference_distance import PREFIX as _DISTANCE
from ._reference_distance import ReferenceDistance
from ._registry import _MODEL_CLASSES, prefixed

if TYPE_CHECKING:
    from ._base import BaseModel

FORMAT_VERSION = 1
_META_FILE = _disk.MODEL_FILE
_ARRAYS_FILE = "arrays.safetensors"
_SPACE = "input_space."  # prefix of the saved training statistics arrays
_CHUNK = 1 << 20  # bytes read at a time when hashing
#: Folders already warned about lacking checksums (one warning per folder and process).
_WARNED_UNVERIFIED: set[Path] = set()
#: Inside the load of a folder whose own record covers its member folders (or which was
#: already warned about): the members are not warned about again.
_IN_PARENT: ContextVar[bool] = ContextVar("_IN_PARENT", default=False)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` except its own ``model.json``, by relative path."""
    return {
        p.relative_to(folder).as_posix(): _sha256(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p != folder / _META_FILE
    }


def _check_finite(arrays: dict[str, np.ndarray], where: str, fix: str) -> None:
    """Refuse NaN or infinite values in the floating-point ``arrays`` (read from ``where``)."""
    for name, values in arrays.items():
        values = np.asarray(values)
        if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
            n_bad = int(values.size - np.count_nonzero(np.isfinite(values)))
            msg = (
                f"{where} holds {n_bad} non-finite value(s) (NaN or infinite) in the array "
                f"`{name}`; {fix}"
            )
            raise ValueError(msg)


def _verify(path: Path, doc: dict) -> None:
    """Check the files of the model folder ``path`` against the sha256 recorded in ``doc``.

    A folder saved before checksums were recorded is loaded unverified, with a warning once.
    """
    recorded = doc.get("checksums")
    if recorded is None:
        key = path.resolve()
        if not _IN_PARENT.get() and key not in _WARNED_UNVERIFIED:
            _WARNED_UNVERIFIED.add(key)
            warnings.warn(
                f"`{path}` was saved by scmm {doc.get('scmm_version', '?')}, before model "
                "files recorded checksums: its arrays cannot be checked for damage. Re-save it "
                "(`scmm.models.load(path).save(path, overwrite=True)`) to record them.",
                UserWarning,
                stacklevel=3,
            )
        return
    for name, expected in recorded.items():
        file = path / name
        if not file.is_file():
            msg = f"`{file}` is missing from the model folder; re-save or re-fit the model."
            raise ValueError(msg)
        if _sha256(file) != expected:
            msg = (
                f"`{file}` does not match the sha256 recorded when the model was saved: the "
                "file was changed, truncated or damaged since; re-save or re-fit the model."
            )
            raise ValueError(msg)


def save_model(model: BaseModel, path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """:meth:`BaseModel.save`: write ``model`` to the folder ``path``."""
    from safetensors.numpy import save_file

    from .._version import __version__

    model._check_fitted()
    path = Path(path)
    if path.exists() and not overwrite:
        msg = f"`{path}` exists; pass `overwrite=True` to replace it."
        raise FileExistsError(msg)
    _disk.check_replaceable(path, "`overwrite=True`")
    meta, arrays = model._get_state()
    arrays = {**arrays, **{f"{_SPACE}{k}": v for k, v in model.input_arrays.items()}}
    distance = ReferenceDistance.of(model)
    arrays = {**arrays, **(distance.arrays() if distance is not None else {})}
    _check_finite(
        arrays,
        f"This {type(model).__name__}",
        "it would not load and cannot predict; re-fit it (e.g. a lower learning rate).",
    )
    doc = {
        "format_version": FORMAT_VERSION,
        "scmm_version": __version__,
        "kind": model.kind,
        "params": model.params,
        "source": model.source,
        "target": model.target,
        "layer": model.layer,
        "target_layer": model.target_layer,
        "source_features": model.source_features,
        "target_features": model.target_features,
        "history": model.history,
        "state": meta,
        "source_feature_ids": model.source_feature_ids,
        "input_space": model.input_space,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
        save_file(arrays, str(tmp / _ARRAYS_FILE))
        model._save_parts(tmp)
        doc["checksums"] = _checksums(tmp)  # the last file written: it covers all others
        (tmp / _META_FILE).write_text(json.dumps(doc, indent=1))
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old)
        else:
            tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def load(path: str | os.PathLike) -> BaseModel:
    """Load a model saved with ``model.save(path)``.

    Reads JSON metadata and a safetensors file: nothing is unpickled. Every file is checked
    against the sha256 recorded at save time, and non-finite arrays are refused: a damaged
    folder is an error naming the file. Folders saved before scmm recorded checksums load
    with a warning (once per folder) that they cannot be checked.

    Parameters
    ----------
    path
        The model folder.

    Returns
    -------
    The fitted model, of the class it was saved from.

    Examples
    --------
    >>> import numpy as np, scmm
    >>> mdata = scmm.datasets.toy_cite()  # synthetic: 60 cells, 30 genes, 4 proteins
    >>> import tempfile
    >>> model = scmm.tl.fit_baseline(mdata, "rna", "prot", method="ridge", n_components=5)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     model.save(f"{tmp}/ridge")
    ...     loaded = scmm.models.load(f"{tmp}/ridge")
    >>> loaded
    BaselineModel(rna→prot, 30 → 4 features)
    >>> np.array_equal(loaded.predict(mdata["rna"]), model.predict(mdata["rna"]))
    True
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    meta_file, arrays_file = path / _META_FILE, path / _ARRAYS_FILE
    if not meta_file.is_file() or not arrays_file.is_file():
        msg = f"`{path}` is not an scmm model folder (expected {_META_FILE} and {_ARRAYS_FILE})."
        raise ValueError(msg)
    try:
        doc = json.loads(meta_file.read_text())
    except json.JSONDecodeError as err:
        msg = f"`{meta_file}` is truncated or not JSON ({err}); the model folder is damaged."
        raise ValueError(msg) from err
    version = doc.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        msg = (
            f"`{path}` was written in model format {version!r}, but this scmm reads format "
            f"{FORMAT_VERSION} or older; upgrade scmm (it was saved by scmm "
            f"{doc.get('scmm_version', '?')})."
        )
        raise ValueError(msg)
    if doc.get("kind") not in _MODEL_CLASSES:
        msg = f"`{path}` holds an unknown model kind {doc.get('kind')!r}."
        raise ValueError(msg)
    try:
        arrays = load_file(str(arrays_file))
    except (SafetensorError, OSError) as err:
        msg = (
            f"`{arrays_file}` is truncated or not a safetensors file ({err}); re-save or "
            "re-fit the model."
        )
        raise ValueError(msg) from err
    _verify(path, doc)
    _check_finite(arrays, f"`{arrays_file}`", "the file is damaged; re-save or re-fit the model.")
    model = _MODEL_CLASSES[doc["kind"]](**doc["params"])
    for key in (
        "source",
        "target",
        "layer",
        "target_layer",
        "source_features",
        "target_features",
        "history",
    ):
        setattr(model, key, doc[key])
    # absent from models saved before scmm recorded them: "unknown", nothing is checked
    model.source_feature_ids = doc.get("source_feature_ids")
    model.input_space = doc.get("input_space")
    model.input_arrays = prefixed(arrays, _SPACE)
    model.reference_distance = ReferenceDistance.from_arrays(arrays)  # None: saved before it
    arrays = {k: v for k, v in arrays.items() if not k.startswith((_SPACE, _DISTANCE))}
    model._set_state(doc["state"], arrays)
    token = _IN_PARENT.set(True)  # members are covered by this folder's record or warning
    try:
        model._load_parts(path)
    finally:
        _IN_PARENT.reset(token)
    return model
