"""Loaders of the real paired datasets (CITE-seq: RNA + protein; Multiome: RNA + ATAC).

Each returns a MuData in the layout described in ``_layout.py``: raw counts in ``.X`` and
``.layers["counts"]``, identical cell names across modalities, categorical ``batch`` and
``cell_type`` where the source has them.
"""

from __future__ import annotations

import os

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._docs import DATA_DIR, doc_params
from ._fetch import fetch
from ._layout import _OBS_COLS, _add_peak_coords, _categorical, _mudata, _quiet_read, _set_counts

PathLike = str | os.PathLike


@doc_params(data_dir=DATA_DIR)
def bmmc_cite(*, data_dir: PathLike | None = None) -> md.MuData:
    """Bone-marrow CITE-seq starter set of the NeurIPS 2021 benchmark: 600 cells, two donors.

    RNA: 1,000 genes (symbols as ``var_names``, Ensembl ids in ``var['gene_ids']``);
    protein: 134 ADTs. ``obs['batch']`` is the donor (``s1d1``: 311 cells, ``s1d2``: 289),
    ``obs['cell_type']`` one of 41 types. The source files keep raw counts in
    ``layers['counts']`` and a normalised ``X``; here ``X`` holds the raw counts.

    Parameters
    ----------
    {data_dir}

    Returns
    -------
    MuData with modalities ``rna`` and ``prot``.

    Examples
    --------
    >>> import scmm
    >>> mdata = scmm.datasets.bmmc_cite()
    >>> mdata["rna"].shape, mdata["prot"].shape
    ((600, 1000), (600, 134))
    >>> mdata.obs["batch"].value_counts().sort_index().tolist()  # two donors
    [311, 289]
    """
    mods = {}
    for mod, fname in [("rna", "rna"), ("prot", "adt")]:
        path = fetch(f"cite/bmmc_cite_starter_{fname}.h5ad", data_dir)
        src = _quiet_read(ad.read_h5ad, path)
        adata = ad.AnnData(obs=src.obs.copy(), var=src.var.copy())
        _set_counts(adata, src.layers["counts"], sparse=mod == "rna")
        for col in _OBS_COLS:
            adata.obs[col] = _categorical(adata.obs[col])
        adata.var_names_make_unique()
        mods[mod] = adata
    return _mudata(mods, _OBS_COLS)


@doc_params(data_dir=DATA_DIR)
def pbmc10k_cite(*, data_dir: PathLike | None = None) -> md.MuData:
    """10x PBMC 10k CITE-seq by scMDC: 6,661 cells, 1,000 HVGs, 14 ADTs, no gene or protein names.

    The source has no feature or cell names: genes are named ``gene_0`` ..., proteins
    ``protein_0`` ..., cells ``cell_0`` .... A model trained on it therefore cannot predict
    for named data (:func:`scmm.tl.predict` refuses, naming the cause): use it to benchmark
    on its own cells, not as a reference. ``obs['cell_type']`` holds the source's integer
    labels ``1`` ... ``7`` as categorical strings. There are no batches.

    Parameters
    ----------
    {data_dir}

    Returns
    -------
    MuData with modalities ``rna`` and ``prot``.

    Examples
    --------
    >>> import scmm
    >>> mdata = scmm.datasets.pbmc10k_cite()
    >>> mdata["rna"].shape, mdata["prot"].shape
    ((6661, 1000), (6661, 14))
    """
    import h5py

    path = fetch("cite/pbmc10k_cite_1000hvg.h5", data_dir)
    with h5py.File(path, "r") as fh:
        rna_x, prot_x, labels = fh["X1"][()], fh["X2"][()], fh["Y"][()]
    n_cells = labels.shape[0]
    if rna_x.shape[0] != n_cells or prot_x.shape[0] != n_cells:
        msg = f"{path}: X1 {rna_x.shape} / X2 {prot_x.shape} do not have {n_cells} rows (Y)."
        raise ValueError(msg)
    codes = np.asarray(labels).astype(np.int64)
    cats = [str(c) for c in np.unique(codes)]
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical(codes.astype(str), categories=cats)},
        index=pd.Index([f"cell_{i}" for i in range(n_cells)]),
    )
    mods = {}
    for mod, x, prefix in [("rna", rna_x, "gene"), ("prot", prot_x, "protein")]:
        var = pd.DataFrame(index=pd.Index([f"{prefix}_{j}" for j in range(x.shape[1])]))
        mods[mod] = _set_counts(ad.AnnData(obs=obs.copy(), var=var), x, sparse=mod == "rna")
    return _mudata(mods, _OBS_COLS)


@doc_params(data_dir=DATA_DIR)
def pbmc10k_protein_200(*, data_dir: PathLike | None = None) -> md.MuData:
    """200 cells of 10x PBMC 10k CITE-seq (scvi-tools' test file): 16,727 genes, 14 proteins.

    Proteins come from the source's ``obsm['protein_expression']``, named by
    ``uns['protein_names']``. No batches or cell types.

    Parameters
    ----------
    {data_dir}

    Returns
    -------
    MuData with modalities ``rna`` and ``prot``.

    Examples
    --------
    >>> import scmm
    >>> mdata = scmm.datasets.pbmc10k_protein_200()
    >>> mdata["rna"].shape, mdata["prot"].shape
    ((200, 16727), (200, 14))
    """
    path = fetch("cite/pbmc10k_protein_v3_200cells.h5ad", data_dir)
    src = _quiet_read(ad.read_h5ad, path)
    rna = _set_counts(ad.AnnData(obs=src.obs.copy(), var=src.var.copy()), src.X, sparse=True)
    rna.var_names_make_unique()
    names = pd.Index(np.asarray(src.uns["protein_names"]).astype(str))
    prot_x = np.asarray(src.obsm["protein_expression"])
    prot = ad.AnnData(obs=pd.DataFrame(index=src.obs_names.copy()), var=pd.DataFrame(index=names))
    _set_counts(prot, prot_x, sparse=False)
    return _mudata({"rna": rna, "prot": prot})


@doc_params(data_dir=DATA_DIR)
def mop_snare2(*, data_dir: PathLike | None = None) -> md.MuData:
    """Mouse primary motor cortex, SNARE-seq2 (scMoMaT's ``MOp_5batches`` chunk 1).

    10,309 nuclei; 1,677 genes; 25,734 peaks on **mm10** (``atac.var`` has ``chrom``,
    ``start``, ``end`` parsed from the names). ``obs['batch']`` is the sample (12, ``09A`` ...
    ``09L``), ``obs['cell_type']`` the source's ``Ident`` (23 types),
    ``obs['cluster_remapped']`` its ``cluster (remapped)`` (15 classes), ``obs['barcode']``
    its ``Barcode``.

    Parameters
    ----------
    {data_dir}

    Returns
    -------
    MuData with modalities ``rna`` and ``atac``.

    Examples
    --------
    >>> import scmm
    >>> mdata = scmm.datasets.mop_snare2()
    >>> mdata["rna"].shape, mdata["atac"].shape
    ((10309, 1677), (10309, 25734))
    """
    base = "multiome/mop_snare2"
    meta = pd.read_csv(fetch(f"{base}/meta_c1.csv", data_dir), index_col=0)
    meta.index = meta.index.astype(str)
    obs = pd.DataFrame(
        {
            "batch": _categorical(meta["Batch"]),
            "cell_type": _categorical(meta["Ident"]),
            "cluster_remapped": _categorical(meta["cluster (remapped)"]),
            "barcode": meta["Barcode"].astype(str).to_numpy(),
        },
        index=meta.index,
    )
    mods = {}
    for mod, mat, names in [("rna", "GxC1.npz", "genes.txt"), ("atac", "RxC1.npz", "regions.txt")]:
        # scipy.sparse.save_npz files, features x cells
        x = sp.load_npz(fetch(f"{base}/{mat}", data_dir)).T
        features = pd.read_csv(fetch(f"{base}/{names}", data_dir), header=None, dtype=str)[0]
        if x.shape != (obs.shape[0], features.shape[0]):
            msg = f"{mat} has shape {x.shape[::-1]}, expected ({len(features)}, {len(obs)})."
            raise ValueError(msg)
        var = pd.DataFrame(index=pd.Index(features.to_numpy()))
        adata = _set_counts(ad.AnnData(obs=obs.copy(), var=var), x, sparse=True)
        adata.var_names_make_unique()
        mods[mod] = adata
    _add_peak_coords(mods["atac"])
    return _mudata(mods, (*_OBS_COLS, "cluster_remapped"))


@doc_params(data_dir=DATA_DIR)
def pbmc_multiome(*, data_dir: PathLike | None = None) -> md.MuData:
    """1,000 PBMCs, 10x Multiome, muon's test file: 45 marker genes and 174 peaks (**hg38**).

    Peaks were picked within 5 kb of the 45 genes. ``atac.var`` has ``chrom``, ``start``,
    ``end`` parsed from the names (``chr1:100350982-100353664``). No batches or cell types.
    The source's ``atac.uns['files']`` (a fragments file that is not distributed) is dropped.

    Parameters
    ----------
    {data_dir}

    Returns
    -------
    MuData with modalities ``rna`` and ``atac``.

    Examples
    --------
    >>> import scmm
    >>> mdata = scmm.datasets.pbmc_multiome()
    >>> mdata["rna"].shape, mdata["atac"].shape
    ((1000, 45), (1000, 174))
    """
    path = fetch("multiome/pbmc_muon/pbmc_rna_atac_1000cells.h5mu", data_dir)
    src = _quiet_read(md.read_h5mu, path)
    mods = {}
    for mod in ("rna", "atac"):
        a = src[mod]
        adata = ad.AnnData(obs=a.obs.copy(), var=a.var.copy(), uns=dict(a.uns))
        adata.uns.pop("files", None)
        mods[mod] = _set_counts(adata, a.X, sparse=True)
    _add_peak_coords(mods["atac"])
    return _mudata(mods)
