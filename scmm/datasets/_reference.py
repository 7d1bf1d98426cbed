"""Loaders of the named CITE-seq references for cross-dataset work (REAP-seq, 10x 5′ PBMC).

Both return the layout of ``_layout.py`` (raw counts; ``rna`` CSR with gene symbols as
``var_names``; ``prot`` dense) with protein names harmonised by
:func:`scmm.pp.harmonize_protein_names`: the harmonised name is the ``var_name``, the source's
in ``var['original_name']``, and ``var['isotype_control']`` flags isotype and blank controls.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._docs import DATA_DIR, doc_params
from .._utils import harmonize_protein_names
from ._fetch import fetch
from ._layout import _categorical, _mudata, _set_counts

PathLike = str | os.PathLike

_REAP_DIR = "cite/reapseq_pbmc"
#: run → (RNA file, protein file, cells); every run has 32,738 genes and 48 antibody rows.
_REAP_RUNS = {
    2: ("GSM2685238_mRNA_2_PBMCs_matrix.txt.gz", "GSM2685243_protein_2_PBMCs_matrix.txt.gz", 3158),
    3: ("GSM2685239_mRNA_3_PBMCs_matrix.txt.gz", "GSM2685244_protein_3_PBMCs_matrix.txt.gz", 4330),
}
_REAP_GENES, _REAP_ANTIBODIES = 32738, 48


def _corrupt(path: Path, why: str) -> ValueError:
    msg = (
        f"{path} is damaged or truncated ({why}); download it again (its sha256 is in "
        "`scmm.datasets._registry.REGISTRY`) or delete it so that scmm fetches it."
    )
    return ValueError(msg)


def read_dense_tsv(
    path: Path, *, block_rows: int = 1024
) -> tuple[pd.Index, pd.Index, sp.csr_matrix]:
    """Stream a gzip TSV (features × cells, line 1 = the cell barcodes) into a sparse matrix.

    Parsed ``block_rows`` features (text rows) at a time, so the dense matrix (~1 GB for
    REAP-seq's RNA) is never built: 1,024 × 4,330 float32 is 18 MB dense. Windows line endings
    are stripped.

    Parameters
    ----------
    path
        The ``.txt.gz`` file.
    block_rows
        Text rows (features) parsed at a time; the result does not depend on it.

    Returns
    -------
    ``(features, barcodes, X)`` with ``X`` cells × features, float32 CSR.

    Raises
    ------
    ValueError
        The gzip stream ends early, a row has another number of fields than the header has
        barcodes, or a value is not a finite number.
    """
    blocks, features = [], []
    try:
        with gzip.open(path, "rt", newline="") as fh:
            barcodes = pd.Index(fh.readline().rstrip("\r\n").split("\t"))
            n = len(barcodes)
            chunk: list[str] = []
            for line in fh:
                chunk.append(line)
                if len(chunk) == block_rows:
                    blocks.append(_parse_rows(chunk, n, features, path))
                    chunk = []
            if chunk:
                blocks.append(_parse_rows(chunk, n, features, path))
    except (EOFError, OSError, zlib.error) as exc:  # a gzip stream cut short
        raise _corrupt(path, f"{type(exc).__name__}: {exc}") from exc
    if not blocks:
        raise _corrupt(path, "no feature rows")
    X = sp.vstack(blocks, format="csr").T.tocsr()
    return pd.Index(features), barcodes, X


def _parse_rows(lines: list[str], n: int, features: list[str], path: Path) -> sp.csr_matrix:
    """Parse TSV lines ``name<TAB>value × n`` into a features × ``n`` CSR block."""
    values = np.empty((len(lines), n), dtype=np.float32)
    for i, line in enumerate(lines):
        name, _, rest = line.rstrip("\r\n").partition("\t")
        fields = rest.split("\t")
        if len(fields) != n:
            why = f"row {name!r} has {len(fields)} values, the header {n} cell barcodes"
            raise _corrupt(path, why)
        try:
            values[i] = np.asarray(fields, dtype=np.float32)
        except ValueError as exc:
            raise _corrupt(path, f"row {name!r}: {exc}") from exc
        features.append(name)
    if not np.isfinite(values).all():
        raise _corrupt(path, "values that are not finite numbers")
    return sp.csr_matrix(values)


def _protein(x, names, obs: pd.DataFrame) -> ad.AnnData:
    """Protein AnnData with harmonised names, ``original_name`` and ``isotype_control``."""
    table = harmonize_protein_names(names)
    var = pd.DataFrame(
        {
            "original_name": table["original_name"].to_numpy(),
            "isotype_control": table["isotype_control"].to_numpy(dtype=bool),
        },
        index=pd.Index(table.index, dtype=object).rename(None),
    )
    return _set_counts(ad.AnnData(obs=obs.copy(), var=var), x, sparse=False)


def _reap_run(run: int, data_dir: PathLike | None) -> tuple[ad.AnnData, ad.AnnData]:
    rna_file, prot_file, n_cells = _REAP_RUNS[run]
    rna_path = fetch(f"{_REAP_DIR}/{rna_file}", data_dir)
    genes, cells, rna_x = read_dense_tsv(rna_path)
    prot_path = fetch(f"{_REAP_DIR}/{prot_file}", data_dir)
    antibodies, prot_cells, prot_x = read_dense_tsv(prot_path)
    expected = {"RNA": (n_cells, _REAP_GENES), "protein": (n_cells, _REAP_ANTIBODIES)}
    for what, x in (("RNA", rna_x), ("protein", prot_x)):
        if x.shape != expected[what]:
            why = f"{what} of run {run} has {x.shape} cells × features, expected {expected[what]}"
            raise _corrupt(prot_path if what == "protein" else rna_path, why)
    if not prot_cells.equals(cells):
        n_diff = int((prot_cells != cells).sum())
        msg = (
            f"REAP-seq run {run}: {n_diff} cell barcodes of {prot_file} differ from {rna_file} "
            f"(e.g. {list(prot_cells[prot_cells != cells][:2])}); the files do not belong together."
        )
        raise ValueError(msg)
    # the runs list the antibodies in other orders: sorted, duplicated clones get the same
    # harmonised names (CD8, CD8_2, ...) in every run
    order = np.argsort(antibodies.to_numpy(dtype=str), kind="stable")
    antibodies, prot_x = antibodies[order], prot_x[:, order]
    obs = pd.DataFrame({"batch": _categorical([f"run{run}"] * n_cells)}, index=cells)
    rna = _set_counts(ad.AnnData(obs=obs.copy(), var=pd.DataFrame(index=genes)), rna_x, sparse=True)
    return rna, _protein(prot_x.toarray(), antibodies, obs)


@doc_params(data_dir=DATA_DIR)
def reapseq_pbmc(run: int | None = None, *, data_dir: PathLike | None = None) -> md.MuData:
    """REAP-seq PBMCs (Peterson et al. 2017, GEO GSE100501): runs 2 and 3 of one lab.

    RNA: 32,738 genes (Cell Ranger hg19-era symbols, raw UMI counts, CSR); protein: 48 antibody
    rows, raw counts: 44 antibodies (CD4, CD45 with two clones each and CD8 with three rows
    counting ``CD8a``; kept apart as ``CD4``/``CD4_2``, ``CD8``/``CD8_2``/``CD8_3``, see
    :func:`scmm.pp.harmonize_protein_names`), 40 distinct targets, and 4 controls
    (``var['isotype_control']``: two isotypes, one mouse IgG1, one blank).
    ``obs['batch']`` is ``"run2"`` or ``"run3"``. The source is dense text (~1 GB of RNA
    values): it is parsed a block of genes at a time into sparse matrices.

    Parameters
    ----------
    run
        ``2`` (3,158 cells), ``3`` (4,330 cells) or ``None`` for both, concatenated (7,488
        cells; the runs share genes and antibodies).
    {data_dir}

    Returns
    -------
    MuData with modalities ``rna`` and ``prot``.

    Raises
    ------
    ValueError
        A file is truncated or damaged (gzip stream cut short, a row with too few values, a
        shape other than the published one), or the RNA and protein barcodes differ.

    Examples
    --------
    >>> import scmm
    >>> mdata = scmm.datasets.reapseq_pbmc(2)
    >>> mdata["rna"].shape, mdata["prot"].shape
    ((3158, 32738), (3158, 48))
    >>> int(mdata["prot"].var["isotype_control"].sum())
    4
    """
    if run is not None and run not in _REAP_RUNS:
        msg = f"`run={run!r}` is not a REAP-seq PBMC run; pass 2, 3 or None (both)."
        raise ValueError(msg)
    runs = [run] if run is not None else sorted(_REAP_RUNS)
    loaded = [_reap_run(r, data_dir) for r in runs]
    mods = {}
    for i, mod in enumerate(("rna", "prot")):
        parts = [pair[i] for pair in loaded]
        if len(parts) == 1:
            mods[mod] = parts[0]
            continue
        if not all(p.var_names.equals(parts[0].var_names) for p in parts):
            msg = f"REAP-seq runs {runs} have different {mod} features; this is a loader bug."
            raise RuntimeError(msg)
        adata = ad.concat(parts, merge="same")
        adata.obs["batch"] = _categorical(adata.obs["batch"])
        mods[mod] = adata
    return _mudata(mods, ("batch",))


def _read_rda(path: Path) -> tuple[pd.Index, pd.Index, np.ndarray]:
    """Read the one features × cells matrix an ``.rda`` file holds (``rdata`` package)."""
    try:
        import rdata
    except ImportError as exc:
        msg = "Reading .rda files needs the `rdata` package: `pip install rdata`."
        raise ImportError(msg) from exc
    try:
        parsed = rdata.parser.parse_file(path)
        objects = rdata.conversion.convert(parsed)
    except (EOFError, OSError, ValueError, zlib.error, KeyError, IndexError) as exc:
        raise _corrupt(path, f"{type(exc).__name__}: {exc}") from exc
    if len(objects) != 1:
        raise _corrupt(path, f"{len(objects)} R objects, expected one matrix")
    (arr,) = objects.values()
    if getattr(arr, "ndim", 0) != 2 or len(arr.coords) != 2:
        raise _corrupt(path, "not a matrix with row and column names")
    rows, cols = (pd.Index(np.asarray(arr.coords[d]).astype(str)) for d in arr.dims)
    return rows, cols, np.asarray(arr.values)


@doc_params(data_dir=DATA_DIR)
def pbmc_5prime_cite(*, data_dir: PathLike | None = None) -> md.MuData:
    """10x 5′ PBMCs with TotalSeq-C antibodies (MultimodalExperiment's example data).

    5,000 cells; RNA: 3,000 sampled genes (symbols of 4 letters, raw counts, CSR; 6 symbols
    that name two genes get ``-1`` on their second, as ``var_names_make_unique`` does); protein: 8
    TotalSeq-C antibodies (raw counts; ``CD3``, ``CD4``, ``CD14``, ``CD15``, ``CD16``,
    ``CD19``, ``CD25``, ``CD56``). Another lab and chemistry than REAP-seq and
    ``pbmc10k_protein_200``: a query for reference mapping. No batches or cell types.

    Parameters
    ----------
    {data_dir}

    Returns
    -------
    MuData with modalities ``rna`` and ``prot``.

    Raises
    ------
    ValueError
        A file is truncated or damaged, or the two files hold other cells.

    Examples
    --------
    >>> import scmm
    >>> mdata = scmm.datasets.pbmc_5prime_cite()
    >>> mdata["rna"].shape, mdata["prot"].shape
    ((5000, 3000), (5000, 8))
    """
    base = "cite/pbmc_5prime_totalseqc"
    genes, cells, rna_x = _read_rda(fetch(f"{base}/scRNAseq.rda", data_dir))
    antibodies, prot_cells, prot_x = _read_rda(fetch(f"{base}/scADTseq.rda", data_dir))
    if not prot_cells.equals(cells):
        msg = f"{base}: scADTseq.rda and scRNAseq.rda hold other cells; the files do not match."
        raise ValueError(msg)
    for what, x in (("scRNAseq.rda", rna_x), ("scADTseq.rda", prot_x)):
        if not np.isfinite(x).all() or (x < 0).any():
            raise _corrupt(Path(base) / what, "values that are not counts")
    obs = pd.DataFrame(index=cells)
    genes = ad.utils.make_index_unique(genes)  # 6 symbols name two genes each (COG8-1 ...)
    rna = _set_counts(
        ad.AnnData(obs=obs.copy(), var=pd.DataFrame(index=genes)), rna_x.T, sparse=True
    )
    return _mudata({"rna": rna, "prot": _protein(prot_x.T, antibodies, obs)})
