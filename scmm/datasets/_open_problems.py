"""Reader of the NeurIPS 2022 / Kaggle "Open Problems – Multimodal Single-Cell Integration" files.

The competition ships cells × features matrices as pandas HDF5 tables in *fixed* format, one
per file: a group (``/train_multi_inputs``, …) holding ``axis0`` (column names), ``axis1``
(cell ids), ``block0_items`` (the columns of the one value block) and ``block0_values`` (the
dense float32 values, cells × features). The Multiome inputs are 105,942 × 228,942: about
97 GB dense. They are read here with h5py a row block at a time and converted to CSR, so the
dense matrix is never held; pytables is not needed.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Literal

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._layout import _categorical, _mudata, parse_peak_names

PathLike = str | os.PathLike

TASKS = {
    "cite": {"prefix": "cite", "inputs": "rna", "targets": "prot"},
    "multiome": {"prefix": "multi", "inputs": "atac", "targets": "rna"},
}
SPLITS = ("train", "test")
_METADATA_COLS = ("donor", "day", "technology", "cell_type")
_BLOCK_BYTES = 256 * 2**20  # dense bytes read per row block


def _strings(values) -> np.ndarray:
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values], dtype=object)


def _table_group(f, path: Path):
    """Return the pandas group of a fixed-format file: the one holding ``block0_values``."""
    groups = [k for k in f if "block0_values" in f[k]] if "block0_values" not in f else [None]
    if len(groups) != 1:
        msg = (
            f"`{path.name}` is not a pandas fixed-format table with one group holding "
            f"`block0_values` (found groups {list(f)}); is it a file of the 2022 competition?"
        )
        raise ValueError(msg)
    g = f if groups[0] is None else f[groups[0]]
    if "block1_values" in g:
        msg = f"`{path.name}` holds several value blocks (mixed dtypes); expected one float block."
        raise ValueError(msg)
    return g


def read_fixed_table(path: PathLike, *, max_cells: int | None = None, block_rows: int = 2_000):
    """Read one pandas fixed-format HDF5 table as CSR, a row block at a time.

    Parameters
    ----------
    path
        The ``.h5`` file.
    max_cells
        Read only the first ``max_cells`` rows.
    block_rows
        Most rows read per block; fewer when a block would exceed 256 MiB dense.

    Returns
    -------
    ``(X, cell_ids, feature_names)``: float32 CSR with int32 indices (int64 when the non-zeros
    exceed 2**31), and two string arrays.
    """
    import h5py

    path = Path(path)
    try:
        import hdf5plugin  # noqa: F401  (optional: registers blosc & co. should a file use them)
    except ImportError:
        pass
    with h5py.File(path, "r") as f:
        g = _table_group(f, path)
        values = g["block0_values"]
        cells = _strings(g["axis1"][:])
        features = _strings(g["block0_items"][:] if "block0_items" in g else g["axis0"][:])
        if "axis0" in g and not np.array_equal(_strings(g["axis0"][:]), features):
            msg = f"`{path.name}`: `block0_items` and `axis0` list different columns."
            raise ValueError(msg)
        n_rows, n_cols = values.shape
        if (n_rows, n_cols) != (len(cells), len(features)):
            msg = (
                f"`{path.name}`: values are {n_rows} × {n_cols} but there are {len(cells)} cell "
                f"ids and {len(features)} column names."
            )
            raise ValueError(msg)
        if max_cells is not None:
            n_rows = min(n_rows, int(max_cells))
            cells = cells[:n_rows]
        step = max(1, min(int(block_rows), _BLOCK_BYTES // max(1, n_cols * 4)))
        datas, indices, counts = [], [], []
        for start in range(0, n_rows, step):
            try:
                dense = values[start : min(start + step, n_rows)]
            except OSError as err:
                msg = (
                    f"Cannot decompress `{path.name}` ({err}); install the HDF5 filters with "
                    "`pip install hdf5plugin`."
                )
                raise OSError(msg) from err
            block = sp.csr_matrix(dense.astype(np.float32, copy=False))
            del dense
            datas.append(block.data)
            indices.append(block.indices.astype(np.int32, copy=False))
            counts.append(np.diff(block.indptr))
    nnz = sum(len(d) for d in datas)
    index_dtype = np.int32 if nnz < 2**31 else np.int64
    indptr = np.zeros(n_rows + 1, index_dtype)
    if counts:
        np.cumsum(np.concatenate(counts), out=indptr[1:])
    # concatenate one array at a time and free its parts: peak 1.5× the sparse size, not 2×
    data = np.concatenate(datas) if datas else np.zeros(0, np.float32)
    datas.clear()
    idx = np.concatenate(indices) if indices else np.zeros(0, np.int32)
    indices.clear()
    X = sp.csr_matrix((data, idx, indptr), shape=(n_rows, n_cols), copy=False)
    return X, cells, features


def _metadata(directory: Path, cells: np.ndarray) -> pd.DataFrame:
    obs = pd.DataFrame(index=pd.Index(cells, name="cell_id"))
    path = directory / "metadata.csv"
    if not path.is_file():
        warnings.warn(
            f"No `metadata.csv` in `{directory}`; obs has no donor/day/cell_type.",
            UserWarning,
            stacklevel=3,
        )
        return obs
    meta = pd.read_csv(path, index_col="cell_id")
    meta = meta.reindex(obs.index)
    n_missing = int(meta.isna().all(axis=1).sum())
    if n_missing:
        warnings.warn(
            f"{n_missing} cells have no row in `metadata.csv`; their metadata is missing.",
            UserWarning,
            stacklevel=3,
        )
    for col in _METADATA_COLS:
        if col in meta:
            obs[col] = meta[col].to_numpy() if col == "day" else _categorical(meta[col])
    if "donor" in obs:
        obs["batch"] = obs["donor"]
    return obs


def read_open_problems_2022(
    directory: PathLike,
    task: Literal["cite", "multiome"] = "cite",
    *,
    split: Literal["train", "test"] = "train",
    backed: bool | PathLike = False,
    max_cells: int | None = None,
) -> md.MuData:
    """Read the files of the 2022 Kaggle multimodal competition into a MuData.

    Reads ``{split}_{cite|multi}_inputs.h5`` (and, for ``split="train"``,
    ``train_{cite|multi}_targets.h5``) and ``metadata.csv`` from ``directory``. Matrices are
    read a row block at a time with h5py and converted to CSR, so the dense matrix (about 97 GB
    for the Multiome inputs) is never held. Values are as the organisers published them (the
    inputs are already normalised); there is no ``counts`` layer.

    Parameters
    ----------
    directory
        Folder with the competition's files.
    task
        ``"cite"`` (inputs → ``rna``, targets → ``prot``) or ``"multiome"`` (inputs → ``atac``
        with ``chrom``/``start``/``end`` parsed from the peak names, targets → ``rna``).
    split
        ``"train"`` (inputs and targets) or ``"test"`` (inputs only).
    backed
        ``False`` keeps the matrices in memory. ``True`` or a file path writes the MuData to an
        ``.h5mu`` file (default ``<directory>/open_problems_<task>_<split>.h5mu``, reused when it
        exists) one modality at a time and returns it opened backed, so only one modality is in
        memory during the conversion and none afterwards.
    max_cells
        Read only the first ``max_cells`` cells (for a quick look).

    Returns
    -------
    MuData with modality ``.X`` as float32 CSR (``prot`` dense), ``obs`` columns ``donor``,
    ``day``, ``technology``, ``cell_type`` and ``batch`` (= donor) from ``metadata.csv``.

    Examples
    --------
    >>> mdata = scmm.datasets.read_open_problems_2022(  # doctest: +SKIP
    ...     "open-problems-multimodal", "multiome", backed=True
    ... )
    """
    if task not in TASKS:
        msg = f"`task={task!r}` is not one of {tuple(TASKS)}."
        raise ValueError(msg)
    if split not in SPLITS:
        msg = f"`split={split!r}` is not one of {SPLITS}."
        raise ValueError(msg)
    if max_cells is not None and int(max_cells) < 1:
        msg = f"`max_cells={max_cells}` must be a positive number of cells (or None for all)."
        raise ValueError(msg)
    directory = Path(directory)
    spec = TASKS[task]
    files = {spec["inputs"]: directory / f"{split}_{spec['prefix']}_inputs.h5"}
    if split == "train":
        files[spec["targets"]] = directory / f"train_{spec['prefix']}_targets.h5"
    missing = [p.name for p in files.values() if not p.is_file()]
    if missing:
        msg = f"`directory={str(directory)!r}` lacks {missing}; download the competition's data."
        raise FileNotFoundError(msg)

    out_path = None
    if backed is not False:
        out_path = (
            directory / f"open_problems_{task}_{split}.h5mu" if backed is True else Path(backed)
        )
        if out_path.is_file():
            return md.read_h5mu(out_path, backed=True)

    mods: dict[str, ad.AnnData] = {}
    obs = None
    for mod, path in files.items():
        X, cells, features = read_fixed_table(path, max_cells=max_cells)
        if obs is None:
            obs = _metadata(directory, cells)
        elif not np.array_equal(cells, obs.index.to_numpy()):
            msg = f"`{path.name}` lists other cells (or another order) than the inputs."
            raise ValueError(msg)
        if mod == "prot":
            X = X.toarray()  # 140 proteins: dense is small
        adata = ad.AnnData(X, obs=obs.copy(), var=pd.DataFrame(index=pd.Index(features)))
        if mod == "atac":
            coords = parse_peak_names(adata.var_names)
            for col in ("chrom", "start", "end"):
                adata.var[col] = coords[col].to_numpy()
        if out_path is not None:
            part = out_path.with_name(f".{out_path.name}.{mod}.h5ad")
            adata.write_h5ad(part)
            del adata, X
            mods[mod] = ad.read_h5ad(part, backed="r")
        else:
            mods[mod] = adata
    if out_path is None:
        return _mudata(mods, ("batch", "cell_type"))
    # assemble the h5mu from the per-modality files without loading their matrices
    import h5py

    tmp = out_path.with_name(f".{out_path.name}.tmp")
    skeleton = _mudata(
        {m: ad.AnnData(obs=a.obs, var=a.var) for m, a in mods.items()}, ("batch", "cell_type")
    )
    skeleton.write(tmp)
    with h5py.File(tmp, "a") as f:
        for mod, adata in mods.items():
            src_path = adata.filename
            adata.file.close()
            if "X" in f[f"mod/{mod}"]:
                del f[f"mod/{mod}/X"]
            with h5py.File(src_path, "r") as src:
                src.copy(src["X"], f[f"mod/{mod}"], name="X")
            os.remove(src_path)
    tmp.replace(out_path)
    return md.read_h5mu(out_path, backed=True)
