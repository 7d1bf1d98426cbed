"""Which cells: the source and target modalities' cells matched, the training mask."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from mudata import MuData

from ._values import _listing, check_modality


def align_cells(source: AnnData, target: AnnData, source_arg: str, target_arg: str) -> np.ndarray:
    """Positions in ``target`` of each cell of ``source``, matched by ``obs_names``.

    Raises a ``ValueError`` with the count of unmatched cells when the modalities do not hold
    the same cells.
    """
    if source.obs_names.equals(target.obs_names):
        return np.arange(source.n_obs)
    if not source.obs_names.is_unique or not target.obs_names.is_unique:
        msg = "Cell names (`obs_names`) must be unique; call `.obs_names_make_unique()` first."
        raise ValueError(msg)
    idx = target.obs_names.get_indexer(source.obs_names)
    n_missing = int((idx < 0).sum())
    n_extra = target.n_obs - (source.n_obs - n_missing)
    if n_missing or n_extra:
        msg = (
            f"`{source_arg}` and `{target_arg}` hold different cells: {n_missing} cells of "
            f"{source_arg} are not in {target_arg} and {n_extra} cells of {target_arg} are not in "
            f"{source_arg}."
        )
        hint = _renamed_cells(source.obs_names[idx < 0], target.obs_names)
        if hint:
            raise ValueError(msg + hint)
        raise ValueError(
            msg + " Subset the MuData to the paired cells (e.g. `mu.pp.intersect_obs`)."
        )
    return idx


def _barcode_key(names: pd.Index) -> pd.Index:
    """Return the barcode of each cell name, to compare names spelt otherwise.

    The barcode is the name's longest run of 8 or more of ``ACGTN`` (upper case); a name
    without one gives itself in upper case without a trailing ``-1`` / ``_1``-style suffix.
    """
    upper = pd.Series(names.astype(str).str.upper(), index=names)
    runs = upper.str.findall(r"[ACGTN]{8,}")
    plain = upper.str.replace(r"[-_.]\d+$", "", regex=True)
    keys = [max(r, key=len) if r else p for r, p in zip(runs, plain, strict=True)]
    return pd.Index(keys)


def _renamed_cells(missing: pd.Index, other: pd.Index) -> str:
    """Return a hint when cells missing from ``other`` are there spelt otherwise, else ``""``.

    Tools name the same barcode differently: Cell Ranger appends a GEM-well suffix (``-1``)
    that CITE-seq-Count does not, and merged samples get prefixes (``s1_AAAC…``).
    """
    if not len(missing):
        return ""
    keys, others = _barcode_key(missing), _barcode_key(other)
    if not (keys.is_unique and others.is_unique):  # `cell_1`, `cell_2`: no barcode to compare
        return ""
    found = keys.isin(others)
    if found.mean() < 0.5:
        return ""
    first = int(np.flatnonzero(found)[0])
    theirs = other[int(np.flatnonzero(others == keys[first])[0])]
    return (
        f" {int(found.sum())} of them are there under another name, the same barcode spelt "
        f"otherwise (e.g. {missing[first]!r} and {theirs!r}): tools add suffixes (Cell "
        "Ranger's `-1`) or sample prefixes differently. Rename one modality's `obs_names` to "
        "the other's spelling before pairing them."
    )


def obs_columns_listing(mdata: MuData, mods: Sequence[str] | None = None) -> str:
    """List the ``.obs`` columns of ``mdata`` and of its modalities ``mods`` (all: ``None``)."""
    parts = [f"`mdata.obs` has: {_listing(mdata.obs.columns) or 'none'}"]
    for mod in mdata.mod if mods is None else mods:
        parts.append(f"`mdata[{mod!r}].obs` has: {_listing(mdata[mod].obs.columns) or 'none'}")
    return "; ".join(parts)


def cell_mask(values, names: pd.Index, arg: str, where: str = "") -> np.ndarray:
    """``values`` as a bool mask over the cells ``names``, or a ``ValueError`` naming ``arg``.

    A pandas Series whose index names the cells (``mdata.obs["train"]``, whose order may
    differ from a modality's) is matched by name; any other array-like is read by position.
    """
    n = len(names)
    if isinstance(values, pd.Series) and not values.index.equals(names):
        known = values.index.isin(names)
        if known.any():
            if not values.index.is_unique or not names.isin(values.index).all():
                msg = (
                    f"`{arg}` is a Series whose index names only some of the {n} cells{where} "
                    "(or names some twice): give one entry per cell, e.g. a column of `.obs`."
                )
                raise ValueError(msg)
            values = values.reindex(names)  # by name, not by position
    _refuse_missing(values, f"`{arg}`")
    mask = np.asarray(values)
    if mask.dtype != bool or mask.shape != (n,):
        msg = (
            f"`{arg}` must be a boolean mask over the {n} cells{where}; got dtype {mask.dtype}, "
            f"shape {mask.shape}."
        )
        raise ValueError(msg)
    return mask


def _refuse_missing(values, what: str) -> None:
    """Refuse a mask with missing values (a nullable ``boolean`` column with ``<NA>``)."""
    if isinstance(values, pd.Series | pd.api.extensions.ExtensionArray):
        n_missing = int(pd.isna(values).sum())
        if n_missing:
            msg = (
                f"{what} has {n_missing} missing values (<NA>): say True or False for every "
                "cell (e.g. `.fillna(False)`)."
            )
            raise ValueError(msg)


def resolve_train(train, obs: pd.DataFrame, *, arg: str = "train") -> np.ndarray:
    """Turn ``train`` (None, a bool array or an ``obs`` column name) into a bool mask."""
    n = len(obs)
    if train is None:
        return np.ones(n, dtype=bool)
    if isinstance(train, str):
        if train not in obs.columns:
            msg = f"`{arg}={train!r}` is not a column of `.obs` (has: {_listing(obs.columns)})."
            raise KeyError(msg)
        col = obs[train]
        _refuse_missing(col, f"`.obs[{train!r}]`")
        if col.dtype != bool:
            msg = f"`.obs[{train!r}]` must be boolean (True = training cell), got {col.dtype}."
            raise ValueError(msg)
        mask = col.to_numpy()
    else:
        if isinstance(train, pd.Series):  # matched by name
            train = cell_mask(train, obs.index, arg)
        mask = np.asarray(train)
        if mask.dtype != bool:
            msg = (
                f"`{arg}` must be a boolean mask or an `.obs` column name, got dtype {mask.dtype}."
            )
            raise ValueError(msg)
    if mask.shape != (n,):
        msg = f"`{arg}` has {mask.shape[0] if mask.ndim else 0} entries but there are {n} cells."
        raise ValueError(msg)
    if not mask.any():
        msg = f"`{arg}` selects no cells; select at least a few training cells."
        raise ValueError(msg)
    return mask


#: Cell Ranger's feature types (``var['feature_types']`` of its ``.h5`` files).
TENX_FEATURE_TYPES = pd.Index(
    [
        "Gene Expression",
        "Antibody Capture",
        "Peaks",
        "CRISPR Guide Capture",
        "Multiplexing Capture",
        "Custom",
    ]
)


def check_one_feature_type(adata: AnnData, mod: str) -> None:
    """Refuse a modality that mixes 10x feature types (genes with antibodies or peaks).

    ``scanpy.read_10x_h5(..., gex_only=False)`` keeps every feature of a Cell Ranger run in
    one AnnData: used as the RNA, a model would read the proteins it predicts, and the
    antibody counts would enter each cell's total when the RNA is normalised.
    """
    for column in ("feature_types", "feature_type"):
        if column not in adata.var.columns:
            continue
        counts = adata.var[column].astype(str).value_counts()
        # 10x's assay types only: CELLxGENE's `feature_type` holds gene biotypes instead
        if len(counts.index.intersection(TENX_FEATURE_TYPES)) > 1:
            kinds = ", ".join(f"{k!r}: {v:,}" for k, v in counts.items())
            msg = (
                f"`mdata[{mod!r}]` mixes feature types ({kinds} in `.var[{column!r}]`): a "
                "modality must hold one kind, or a model would read one assay to predict it "
                "and normalising would count the other assay in each cell's total. Split "
                "them (`muon.read_10x_h5` does; or keep one kind with "
                f"`adata[:, adata.var[{column!r}] == 'Gene Expression']`)."
            )
            raise ValueError(msg)


def paired_modalities(
    mdata: MuData, source: str, target: str
) -> tuple[AnnData, AnnData, np.ndarray]:
    """Return the ``source`` and ``target`` modalities of a fit and the cell order.

    ``order[i]`` is the target row of source cell ``i`` (as :func:`align_cells` returns it).
    """
    src = check_modality(mdata, source, "source")
    tgt = check_modality(mdata, target, "target")
    if source == target:
        msg = f"`source` and `target` are both {source!r}; pass two different modalities."
        raise ValueError(msg)
    for mod, adata in ((source, src), (target, tgt)):
        check_one_feature_type(adata, mod)
    return src, tgt, align_cells(src, tgt, f"source={source!r}", f"target={target!r}")


def train_mask(mdata: MuData, source: AnnData, train, mod: str | None = None) -> np.ndarray:
    """Return the training cells of a fit as a bool mask over ``source``'s cells.

    ``train`` is None (all cells), a bool mask, or the name of a boolean column of
    ``mdata.obs`` (matched to the source's cells by name) or of the source's ``.obs``.
    """
    if isinstance(train, str) and train in mdata.obs.columns:
        col = mdata.obs[train].reindex(source.obs_names)
        return resolve_train(train, pd.DataFrame({train: col.to_numpy()}), arg="train")
    if isinstance(train, str) and train not in source.obs.columns:
        mods = [mod] if mod is not None else [m for m in mdata.mod if mdata[m] is source]
        msg = (
            f"`train={train!r}` is not a column of `mdata.obs` or of the source's `.obs` "
            f"({obs_columns_listing(mdata, mods)}). Mark training cells with "
            "`scmm.pp.split_cells(mdata, ...)` (writes `mdata.obs['train']`)."
        )
        raise KeyError(msg)
    return resolve_train(train, source.obs, arg="train")
