"""Pathway connectivity between source genes and target features (for pathway-sparse layers).

A target's gene is found with :func:`protein_to_gene` (in ``_protein_genes.py``); this module
connects source genes to it through shared gene sets.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._protein_genes import protein_to_gene

if TYPE_CHECKING:
    from anndata import AnnData
    from mudata import MuData

__all__ = ["pathway_connectivity"]

logger = logging.getLogger(__name__)


def pathway_connectivity(
    mdata: MuData,
    source: str,
    target: str,
    *,
    gene_sets: Mapping[str, Iterable[str]],
    hidden_per_target: int = 10,
    target_genes: str | Mapping[str, str | None] | None = None,
    gene_symbols: str | None = None,
    min_genes: int = 1,
    key_added: str = "pathway",
    copy: bool = False,
) -> MuData | None:
    """Connect source genes to the hidden units of the target features they share a pathway with.

    Each target feature gets ``hidden_per_target`` hidden units (target ``t`` owns the columns
    ``t * hidden_per_target`` to ``(t + 1) * hidden_per_target - 1``). Source gene ``i`` is
    connected to all hidden units of target ``t`` when the gene of ``t`` and gene ``i`` are
    members of at least one common gene set. The target's own gene, when it is among the source
    genes, is always connected to it (even when it is in no gene set): for a protein this is the
    gene that encodes it, the most direct prior there is.

    The gene of a target is found with :func:`protein_to_gene` (shipped table, then the name
    itself as a gene symbol if it is a source gene or a gene-set member), so protein targets
    (``CD8a`` → ``CD8A``) and RNA targets (a gene is its own gene) both work.

    Parameters
    ----------
    mdata
        Multimodal data.
    source
        Input modality whose ``var_names`` (or ``var[gene_symbols]``) are gene symbols.
    target
        Modality whose features are predicted (proteins or genes).
    gene_sets
        ``{set name: gene symbols}``, e.g. ``scmm.datasets.gene_sets("hallmark")``. Symbols must
        be of the same species and naming as the source genes.
    hidden_per_target
        Hidden units per target feature.
    target_genes
        How to find each target's gene: ``None`` (automatic, see above), a dict
        ``{target name: gene}`` that overrides the table for those names (``None`` means no
        gene), or the name of a column of ``mdata[target].var`` holding gene symbols.
    gene_symbols
        Column of ``mdata[source].var`` with gene symbols, when ``var_names`` are not symbols
        (e.g. Ensembl ids).
    min_genes
        Targets connected to fewer source genes than this get no connections at all (their
        columns stay empty) and are reported as without pathway genes.
    key_added
        Key of the mask in ``mdata[source].varm`` and of the summary in ``mdata.uns``.
    copy
        Return a modified copy instead of writing into ``mdata``.

    Returns
    -------
    ``None``, or the modified copy when ``copy=True``. Writes:

    ``mdata[source].varm[key_added]`` : csr_matrix of bool (n_source_vars, n_hidden)
        The connectivity mask (``n_hidden = n_targets * hidden_per_target``): rows are source
        genes, columns hidden units; pass it to :class:`scmm.nn.SparseLinear` as ``mask``.
    ``mdata.uns[key_added]`` : dict
        ``params`` (source, target, hidden_per_target, min_genes, n_gene_sets, gene_symbols
        when given); ``targets`` (target names in column order); ``target_genes`` (gene of
        each target, ``""`` when unmapped); ``unmapped_targets``; ``targets_without_genes``
        and ``n_targets_without_genes`` (mapped or not, no connected source gene after
        ``min_genes``); ``coverage`` (fraction of targets with ≥ 1 connected source gene);
        ``density`` (fraction of non-zeros of the mask); ``n_connected_source_genes`` (source
        genes connected to ≥ 1 target); ``n_source_genes_in_gene_sets``;
        ``n_gene_sets_used`` (gene sets containing ≥ 1 source gene and ≥ 1 target gene).

    Raises
    ------
    ValueError
        If a modality is missing, an argument is out of range, or the gene sets share no
        gene with the source genes (wrong species or naming).

    Examples
    --------
    >>> import numpy as np, pandas as pd, anndata as ad, mudata as md, scmm
    >>> rng = np.random.default_rng(0)
    >>> genes = ["CD3E", "CD4", "CD8A", "MS4A1", "CD19", "LYZ"]
    >>> rna = ad.AnnData(rng.poisson(2.0, (20, 6)).astype("float32"), var=pd.DataFrame(index=genes))
    >>> prot = ad.AnnData(rng.normal(size=(20, 3)).astype("float32"))
    >>> prot.var_names = ["CD3_TotalSeqB", "CD4_TotalSeqB", "CD19_TotalSeqB"]
    >>> mdata = md.MuData({"rna": rna, "prot": prot})
    >>> gene_sets = {"T_CELL": ["CD3E", "CD4", "CD8A"], "B_CELL": ["MS4A1", "CD19"]}
    >>> scmm.pp.pathway_connectivity(mdata, "rna", "prot", gene_sets=gene_sets, hidden_per_target=2)
    >>> mdata["rna"].varm["pathway"].shape  # source genes × (3 proteins × 2 hidden units)
    (6, 6)
    >>> mdata.uns["pathway"]["target_genes"]
    ['CD3E', 'CD4', 'CD19']
    >>> mdata.uns["pathway"]["coverage"]
    1.0
    """
    for arg, mod in (("source", source), ("target", target)):
        if mod not in mdata.mod:
            msg = f"`{arg}={mod!r}` is not a modality of this MuData (has: {list(mdata.mod)})."
            raise ValueError(msg)
    if int(hidden_per_target) != hidden_per_target or hidden_per_target < 1:
        msg = f"`hidden_per_target` must be a positive integer; got {hidden_per_target!r}."
        raise ValueError(msg)
    if int(min_genes) != min_genes or min_genes < 1:
        msg = f"`min_genes` must be a positive integer; got {min_genes!r}."
        raise ValueError(msg)
    hidden_per_target, min_genes = int(hidden_per_target), int(min_genes)
    sets = _validate_gene_sets(gene_sets)
    if copy:
        mdata = mdata.copy()
    src, tgt = mdata.mod[source], mdata.mod[target]

    if gene_symbols is None:
        src_genes = np.asarray(src.var_names, dtype=str)
    else:
        if gene_symbols not in src.var.columns:
            msg = (
                f"`gene_symbols={gene_symbols!r}` is not a column of mdata[{source!r}].var "
                f"(has: {list(src.var.columns)})."
            )
            raise ValueError(msg)
        src_genes = src.var[gene_symbols].astype(str).to_numpy()

    set_names = list(sets)
    set_genes = set().union(*sets.values())
    src_in_sets = np.isin(src_genes, list(set_genes))
    if not src_in_sets.any():
        where = f"var[{gene_symbols!r}]" if gene_symbols else "var_names"
        msg = (
            f"`gene_sets` ({len(sets)} sets) share no genes with mdata[{source!r}].{where} "
            f"(e.g. {[str(g) for g in src_genes[:3]]} vs {sorted(set_genes)[:3]}): check "
            "species/symbols (human HGNC symbols vs mouse, Ensembl ids → pass `gene_symbols=`)."
        )
        raise ValueError(msg)

    target_names = [str(n) for n in tgt.var_names]
    tgene = _target_gene_list(tgt, target, target_names, target_genes, src_genes, set_genes)
    unmapped = [n for n, g in zip(target_names, tgene, strict=True) if not g]

    # membership matrices: source genes × sets and targets × sets
    memb = _membership(sets, set_names)
    s_mat = _rows_for(src_genes, memb, len(set_names))
    t_mat = _rows_for(np.asarray(tgene, dtype=str), memb, len(set_names))
    conn = (s_mat @ t_mat.T).tocsr().astype(bool)
    # self connections: a target's own gene
    gene_to_rows: dict[str, list[int]] = {}
    for i, g in enumerate(src_genes):
        gene_to_rows.setdefault(g, []).append(i)
    self_r, self_c = [], []
    for t, g in enumerate(tgene):
        for i in gene_to_rows.get(g, []) if g else []:
            self_r.append(i)
            self_c.append(t)
    if self_r:
        own = sp.csr_matrix((np.ones(len(self_r), dtype=bool), (self_r, self_c)), shape=conn.shape)
        conn = (conn + own).astype(bool)
    conn = sp.csc_matrix(conn)
    n_genes = np.diff(conn.indptr)
    weak = n_genes < min_genes
    if weak.any():
        keep = np.repeat(~weak, n_genes)
        conn.data = conn.data & keep
        conn.eliminate_zeros()
    conn = conn.tocsr()
    mask = sp.kron(conn, np.ones((1, hidden_per_target), dtype=bool), format="csr").astype(bool)
    mask.sort_indices()

    covered = np.diff(conn.tocsc().indptr) > 0
    used_sets = (s_mat.sum(axis=0).A1 > 0) & (t_mat.sum(axis=0).A1 > 0)
    without = [n for n, c in zip(target_names, covered, strict=True) if not c]
    params: dict[str, object] = {
        "source": source,
        "target": target,
        "hidden_per_target": hidden_per_target,
        "min_genes": min_genes,
        "n_gene_sets": len(sets),
        "self_connections": True,
    }
    if gene_symbols is not None:
        params["gene_symbols"] = gene_symbols
    n_hidden = len(target_names) * hidden_per_target
    src.varm[key_added] = mask
    mdata.uns[key_added] = {
        "params": params,
        "targets": target_names,
        "target_genes": list(tgene),
        "unmapped_targets": unmapped,
        "targets_without_genes": without,
        "n_targets_without_genes": len(without),
        "coverage": float(covered.mean()) if covered.size else 0.0,
        "density": float(mask.nnz / max(1, mask.shape[0] * n_hidden)),
        "n_connected_source_genes": int((np.diff(conn.indptr) > 0).sum()),
        "n_source_genes_in_gene_sets": int(src_in_sets.sum()),
        "n_gene_sets_used": int(used_sets.sum()),
    }
    logger.info(
        "pathway_connectivity: %d/%d targets covered, density %.4f, %d unmapped",
        int(covered.sum()),
        len(target_names),
        mdata.uns[key_added]["density"],
        len(unmapped),
    )
    return mdata if copy else None


def _validate_gene_sets(gene_sets: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    if not isinstance(gene_sets, Mapping) or len(gene_sets) == 0:
        msg = (
            "`gene_sets` must be a non-empty mapping {set name: gene symbols}, e.g. "
            "`scmm.datasets.gene_sets('hallmark')`."
        )
        raise ValueError(msg)
    out: dict[str, set[str]] = {}
    for name, genes in gene_sets.items():
        if isinstance(genes, str):
            msg = f"`gene_sets[{name!r}]` must be a list of gene symbols, not the string {genes!r}."
            raise ValueError(msg)
        out[str(name)] = {str(g) for g in genes if str(g)}
    return out


def _membership(sets: dict[str, set[str]], set_names: list[str]) -> dict[str, list[int]]:
    memb: dict[str, list[int]] = {}
    for j, name in enumerate(set_names):
        for g in sets[name]:
            memb.setdefault(g, []).append(j)
    return memb


def _rows_for(genes: np.ndarray, memb: dict[str, list[int]], n_sets: int) -> sp.csr_matrix:
    rows, cols = [], []
    for i, g in enumerate(genes):
        for j in memb.get(g, []) if g else []:
            rows.append(i)
            cols.append(j)
    data = np.ones(len(rows), dtype=np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(len(genes), n_sets))


def _target_gene_list(
    tgt: AnnData,
    target: str,
    names: list[str],
    target_genes: str | Mapping[str, str | None] | None,
    src_genes: np.ndarray,
    set_genes: set[str],
) -> list[str]:
    if isinstance(target_genes, str):
        if target_genes not in tgt.var.columns:
            msg = (
                f"`target_genes={target_genes!r}` is not a column of mdata[{target!r}].var "
                f"(has: {list(tgt.var.columns)}); pass a column name, a dict or None."
            )
            raise ValueError(msg)
        col = tgt.var[target_genes]
        return ["" if pd.isna(g) else str(g) for g in col]
    if target_genes is not None and not isinstance(target_genes, Mapping):
        msg = (
            f"`target_genes` must be None, a dict or a column name; got "
            f"{type(target_genes).__name__}."
        )
        raise TypeError(msg)
    known = set(src_genes) | set_genes
    mapping, _ = protein_to_gene(names, table=target_genes, genes=known)
    return [mapping.get(n, "") for n in names]
