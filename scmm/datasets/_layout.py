"""The layout every dataset loader returns, and the helpers that build it.

Every dataset loader returns a :class:`~mudata.MuData` whose modalities are named ``rna``,
``prot`` or ``atac``, with raw counts (float32; scipy CSR for ``rna`` and ``atac``, a dense
array for ``prot``) in ``.X`` and a copy in ``.layers["counts"]``. Cell names are identical
across modalities. Where the source has them, ``obs`` holds categorical ``batch`` and
``cell_type`` columns, in every modality and in the MuData's own ``obs``. ATAC modalities
have ``var`` columns ``chrom``, ``start`` and ``end`` parsed from the peak names.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import scipy.sparse as sp

_PEAK_RE = re.compile(r"^(?P<chrom>[^:_]+)[:_](?P<start>\d+)[-_](?P<end>\d+)$")


def _quiet_read(reader, path: Path):
    """Read an h5ad/h5mu file written by an older anndata without its format warnings."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ad.OldFormatWarning)
        warnings.filterwarnings("ignore", message=".*not created by muon/mudata.*")
        warnings.filterwarnings("ignore", category=FutureWarning, module="mudata")
        return reader(path)


def _as_counts(x, *, sparse: bool):
    """Return ``x`` as float32 CSR (``sparse=True``) or a dense float32 ndarray."""
    if sparse:
        return sp.csr_matrix(x, dtype=np.float32)
    if sp.issparse(x):
        x = x.toarray()
    return np.ascontiguousarray(x, dtype=np.float32)


def _set_counts(adata: ad.AnnData, x, *, sparse: bool) -> ad.AnnData:
    """Put raw counts ``x`` in ``adata.X`` and a copy in ``adata.layers['counts']``."""
    adata.X = _as_counts(x, sparse=sparse)
    adata.layers["counts"] = adata.X.copy()
    return adata


def parse_peak_names(names) -> pd.DataFrame:
    """Parse peak names ``chr1_100_200`` or ``chr1:100-200`` into coordinates.

    Parameters
    ----------
    names
        Peak names.

    Returns
    -------
    DataFrame indexed by ``names`` with columns ``chrom`` (str), ``start`` and ``end`` (int64),
    the coordinates as written in the names.
    """
    names = pd.Index(names, dtype=object)
    parts = names.to_series().str.extract(_PEAK_RE)
    bad = parts["chrom"].isna()
    if bad.any():
        examples = list(names[bad.to_numpy()][:3])
        msg = (
            f"{int(bad.sum())} peak names are not of the form `chr_start_end` or "
            f"`chr:start-end` (e.g. {examples}); rename the peaks."
        )
        raise ValueError(msg)
    out = pd.DataFrame(
        {
            "chrom": parts["chrom"].astype(str).to_numpy(dtype=object),
            "start": parts["start"].astype(np.int64).to_numpy(),
            "end": parts["end"].astype(np.int64).to_numpy(),
        },
        index=names,
    )
    return out


def _add_peak_coords(atac: ad.AnnData) -> None:
    coords = parse_peak_names(atac.var_names)
    for col in ("chrom", "start", "end"):
        atac.var[col] = coords[col].to_numpy()


def _categorical(values) -> pd.Categorical:
    return pd.Categorical(np.asarray(values).astype(str))


def _mudata(mods: dict[str, ad.AnnData], obs_cols: tuple[str, ...] = ()) -> md.MuData:
    """Assemble a MuData and copy shared ``obs_cols`` of the first modality to its obs."""
    first = next(iter(mods.values()))
    for name, adata in mods.items():
        if not adata.obs_names.equals(first.obs_names):
            msg = f"Modality {name!r} has other cells than the first one; this is a loader bug."
            raise RuntimeError(msg)
    with warnings.catch_warnings():
        # a gene and a protein may share a name (CD4); names are unique within each modality
        warnings.filterwarnings("ignore", message="var_names are not unique")
        warnings.filterwarnings("ignore", message="Variable names are not unique")
        mdata = md.MuData(mods)
    for col in obs_cols:
        if col in first.obs:
            mdata.obs[col] = first.obs[col].array  # positional; keeps the categorical dtype
    return mdata


_OBS_COLS = ("batch", "cell_type")
