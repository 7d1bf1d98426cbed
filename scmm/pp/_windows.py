"""Gene ↔ peak windows: which ATAC peaks lie around which gene, and where.

Design notes
------------
* A peak is treated as a point, its centre ``(start + end) // 2`` (0-based). A peak belongs to a
  gene's window when its centre lies in the window, so every stored distance is within the window
  bounds and the windows are exact to the base (tested on both strands).
* Distances are signed and strand-oriented: negative = upstream (5′ of the anchor), positive =
  downstream. On the − strand, 5′ is at larger coordinates.
* The pairs are stored as scipy CSR matrices (genes × peaks) that share one sparsity pattern
  (identical ``indptr`` and ``indices``): ``pairs`` holds 1.0 for every pair and *defines* the
  pattern; ``distance``, ``in_body`` and ``width`` hold the pair features, including explicit
  zeros (a peak centred on the TSS has distance 0 and must not vanish). Read pair features from
  ``.data`` next to ``pairs.indices`` and avoid arithmetic that drops explicit zeros.
* Reading the annotation and the peak coordinates lives in ``_coordinates.py``, the check that
  both are on one assembly in ``_assembly_check.py``; this module joins the windows.
"""

from __future__ import annotations

import logging
import warnings
from os import PathLike
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse

from ._assembly_check import _assembly_stats, _check_assembly
from ._coordinates import _harmonise_chr_prefix, _match_genes, _peak_table, _read_annotation

if TYPE_CHECKING:
    from mudata import MuData

logger = logging.getLogger(__name__)

__all__ = ["gene_peak_windows"]

_N_NAMES_REPORTED = 20


def gene_peak_windows(
    mdata: MuData,
    rna: str = "rna",
    atac: str = "atac",
    *,
    annotation: pd.DataFrame | str | PathLike,
    upstream: int = 50_000,
    downstream: int = 50_000,
    anchor: Literal["tss", "gene_body"] = "tss",
    key_added: str = "windows",
    check_assembly: bool = True,
    max_far_fraction: float = 0.9,
    far_distance: int = 1_000_000,
    min_tss_enrichment: float = 1.5,
    copy: bool = False,
) -> MuData | None:
    """Pair each gene with the ATAC peaks in a window around it.

    Genes (``mdata[rna].var_names``) are matched to the annotation by gene name (or by gene id
    when more of them match that way; the first occurrence of a duplicated name is used). Each
    matched gene gets a window, and the windows are joined with the peak centres using
    :meth:`pyranges.PyRanges.join`.

    Parameters
    ----------
    mdata
        Paired multiome data.
    rna
        Modality whose variables are genes.
    atac
        Modality whose variables are peaks, with ``var`` columns ``chrom``, ``start`` (0-based),
        ``end``, or names ``chr_start_end`` / ``chr:start-end``.
    annotation
        Gene coordinates on the same assembly as the peaks: a DataFrame with columns ``chrom``,
        ``start`` (0-based), ``end``, ``strand``, ``gene_name`` and optionally ``gene_id`` and
        ``tss`` (e.g. the output of ``scmm.datasets.gene_annotation``), or a path to a GTF file
        (gene features, read with :func:`pyranges.read_gtf`), a BED6 file (0-based, name =
        gene name) or a CSV/TSV file with the DataFrame's columns.
    upstream
        Window length 5′ of the anchor, in bp.
    downstream
        Window length 3′ of the anchor, in bp.
    anchor
        ``"tss"``: the window is ``[tss - upstream, tss + downstream]`` on the + strand and
        ``[tss - downstream, tss + upstream]`` on the − strand, distances are measured from the
        TSS. ``"gene_body"``: the gene body extended by ``upstream`` on its 5′ side and
        ``downstream`` on its 3′ side; distances are measured from the nearest end of the body
        (0 inside it, negative 5′ of the TSS, positive 3′ of the gene end).
    key_added
        Key of the result in ``mdata.uns``.
    check_assembly
        Refuse to pair peaks and genes that look like different assemblies (see Notes).
    max_far_fraction
        Fail the assembly check when more than this fraction of peaks lies on contigs the
        annotation lacks or farther than ``far_distance`` from every annotated TSS.
    far_distance
        Distance (bp) beyond which a peak counts as far from every TSS.
    min_tss_enrichment
        Fail the assembly check when the fraction of peaks within 1 kb of a TSS is less than this
        many times the same fraction for the peaks shifted by 3–7 Mb (checked with ≥ 500 peaks).
    copy
        Return a modified copy instead of writing into ``mdata``.

    Returns
    -------
    ``None``, or a modified copy when ``copy=True``. Writes ``mdata.uns[key_added]``, a dict:

    ``pairs`` : csr_matrix (n_genes, n_peaks), float32
        1.0 for each (gene, peak) pair; defines the sparsity pattern of the next three.
    ``distance`` : csr_matrix (n_genes, n_peaks), float32
        Signed, strand-oriented distance (bp) from the anchor to the peak centre; negative is
        upstream (5′). Explicit zeros are stored.
    ``in_body`` : csr_matrix (n_genes, n_peaks), float32
        1.0 when the peak centre lies inside the gene body, else an explicit 0.0.
    ``width`` : csr_matrix (n_genes, n_peaks), float32
        Width of the peak (bp).
    ``params`` : dict
        ``upstream``, ``downstream``, ``anchor``, ``annotation`` (source), ``match_by``,
        ``rna``, ``atac``.
    ``report`` : dict
        ``n_genes``, ``n_genes_not_in_annotation`` and ``genes_not_in_annotation`` (first 20),
        ``n_genes_without_peaks`` and ``genes_without_peaks`` (first 20, among annotated genes),
        ``n_genes_with_peaks``, ``n_peaks``, ``n_peaks_unknown_contig`` and
        ``unknown_contigs``, ``n_peaks_paired``, ``n_pairs``, ``median_peaks_per_gene`` (over
        annotated genes), ``far_fraction``, ``tss_fraction``, ``tss_enrichment`` (NaN when not
        computed).

    Notes
    -----
    Peaks and annotation must share an assembly (hg19 vs hg38 or mm10 vs mm39 differ by kb to
    Mb). With ``check_assembly=True`` the join is refused when the peaks show no enrichment at
    the annotated TSSs compared with the same peaks shifted by several Mb, or when most peaks are
    far from every TSS or on contigs the annotation lacks. ``chr`` prefixes are harmonised when
    only one side uses them.

    Examples
    --------
    >>> import numpy as np, pandas as pd, anndata as ad, mudata as md, scmm
    >>> genes = pd.DataFrame({
    ...     "chrom": ["chr1", "chr1"], "start": [10_000, 60_000], "end": [20_000, 70_000],
    ...     "strand": ["+", "-"], "gene_name": ["A", "B"],
    ... })
    >>> peaks = ["chr1_9000_9500", "chr1_15000_15400", "chr1_69000_69600", "chr2_100_600"]
    >>> rna = ad.AnnData(np.ones((3, 2), dtype="float32"), var=pd.DataFrame(index=["A", "B"]))
    >>> atac = ad.AnnData(np.ones((3, 4), dtype="float32"), var=pd.DataFrame(index=peaks))
    >>> mdata = md.MuData({"rna": rna, "atac": atac})
    >>> scmm.pp.gene_peak_windows(
    ...     mdata, annotation=genes, upstream=2_000, downstream=10_000, check_assembly=False
    ... )
    >>> mdata.uns["windows"]["distance"].toarray()  # genes × peaks, bp from the TSS
    array([[-750., 5200.,    0.,    0.],
           [   0.,    0.,  699.,    0.]], dtype=float32)
    """
    from mudata import MuData

    if not isinstance(mdata, MuData):
        msg = f"`mdata` must be a MuData, got {type(mdata).__name__}."
        raise TypeError(msg)
    for arg, mod in (("rna", rna), ("atac", atac)):
        if mod not in mdata.mod:
            msg = (
                f"`{arg}={mod!r}` is not a modality of this MuData "
                f"(has: {', '.join(repr(m) for m in mdata.mod)})."
            )
            raise ValueError(msg)
    for name, value in (("upstream", upstream), ("downstream", downstream)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            msg = f"`{name}` must be a non-negative integer number of bp, got {value!r}."
            raise ValueError(msg)
    if anchor not in ("tss", "gene_body"):
        msg = f"`anchor` must be 'tss' or 'gene_body', got {anchor!r}."
        raise ValueError(msg)
    if not 0.0 < max_far_fraction <= 1.0:
        msg = f"`max_far_fraction` must be in (0, 1], got {max_far_fraction!r}."
        raise ValueError(msg)

    ann, source = _read_annotation(annotation)
    peaks = _peak_table(mdata[atac].var, mdata[atac].var_names, atac)
    ann = _harmonise_chr_prefix(ann, peaks["chrom"])

    ann_contigs = set(ann["chrom"].unique())
    on_known = peaks["chrom"].isin(ann_contigs).to_numpy()
    unknown_contigs = sorted(set(peaks.loc[~on_known, "chrom"].unique()))

    centre = ((peaks["start"].to_numpy() + peaks["end"].to_numpy()) // 2).astype(np.int64)
    stats = _assembly_stats(peaks["chrom"].to_numpy(), centre, ann, far_distance)
    if check_assembly:
        _check_assembly(
            stats,
            n_peaks=len(peaks),
            max_far_fraction=max_far_fraction,
            far_distance=far_distance,
            min_tss_enrichment=min_tss_enrichment,
            ann_contigs=ann_contigs,
            peak_contigs=peaks["chrom"],
        )

    # match genes
    gene_names = pd.Index(mdata[rna].var_names.astype(str))
    ann_idx, match_by = _match_genes(gene_names, ann)
    found = ann_idx >= 0
    genes = ann.iloc[ann_idx[found]].reset_index(drop=True)
    genes["row"] = np.flatnonzero(found)

    rows, cols, dist, in_body = _join(genes, peaks, centre, upstream, downstream, anchor)

    n_genes, n_peaks = mdata[rna].n_vars, mdata[atac].n_vars
    order = np.lexsort((cols, rows))
    rows, cols, dist, in_body = rows[order], cols[order], dist[order], in_body[order]
    indptr = np.zeros(n_genes + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_genes), out=indptr[1:])
    width = (peaks["end"].to_numpy() - peaks["start"].to_numpy()).astype(np.float32)

    def _csr(data: np.ndarray) -> sparse.csr_matrix:
        return sparse.csr_matrix(
            (data.astype(np.float32), cols.astype(np.int32), indptr.copy()),
            shape=(n_genes, n_peaks),
        )

    per_gene = np.diff(indptr)
    no_peaks = found & (per_gene == 0)
    report: dict[str, Any] = {
        "n_genes": int(n_genes),
        "n_genes_not_in_annotation": int((~found).sum()),
        "genes_not_in_annotation": [str(g) for g in gene_names[~found][:_N_NAMES_REPORTED]],
        "n_genes_without_peaks": int(no_peaks.sum()),
        "genes_without_peaks": [str(g) for g in gene_names[no_peaks][:_N_NAMES_REPORTED]],
        "n_genes_with_peaks": int((per_gene > 0).sum()),
        "n_peaks": int(n_peaks),
        "n_peaks_unknown_contig": int((~on_known).sum()),
        "unknown_contigs": [str(c) for c in unknown_contigs[:_N_NAMES_REPORTED]],
        "n_peaks_paired": int(np.unique(cols).size),
        "n_pairs": len(rows),
        "median_peaks_per_gene": float(np.median(per_gene[found])) if found.any() else 0.0,
        "far_fraction": float(stats["far_fraction"]),
        "tss_fraction": float(stats["tss_fraction"]),
        "tss_enrichment": float(stats["tss_enrichment"]),
    }
    result = {
        "pairs": _csr(np.ones(len(rows))),
        "distance": _csr(dist),
        "in_body": _csr(in_body),
        "width": _csr(width[cols]),
        "params": {
            "upstream": int(upstream),
            "downstream": int(downstream),
            "anchor": anchor,
            "annotation": source,
            "match_by": match_by,
            "rna": rna,
            "atac": atac,
        },
        "report": report,
    }
    _log_report(report, upstream, downstream, anchor)

    if copy:
        mdata = mdata.copy()
    mdata.uns[key_added] = result
    return mdata if copy else None


# --------------------------------------------------------------------------- join


def _join(
    genes: pd.DataFrame,
    peaks: pd.DataFrame,
    centre: np.ndarray,
    upstream: int,
    downstream: int,
    anchor: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (gene row, peak column, distance, in_body) for every pair."""
    import pyranges as pr

    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
    if len(genes) == 0 or len(peaks) == 0:
        return empty
    plus = (genes["strand"] == "+").to_numpy()
    gs, ge, tss = (genes[c].to_numpy() for c in ("start", "end", "tss"))
    if anchor == "tss":
        lo = np.where(plus, tss - upstream, tss - downstream)
        hi = np.where(plus, tss + downstream, tss + upstream)
    else:
        lo = np.where(plus, gs - upstream, gs - downstream)
        hi = np.where(plus, ge - 1 + downstream, ge - 1 + upstream)
    windows = pd.DataFrame(
        {
            "Chromosome": genes["chrom"].to_numpy(),
            "Start": np.maximum(lo, 0),
            "End": hi + 1,  # inclusive window -> half-open
            "gene": np.arange(len(genes)),
        }
    )
    points = pd.DataFrame(
        {
            "Chromosome": peaks["chrom"].to_numpy(),
            "Start": centre,
            "End": centre + 1,
            "peak": np.arange(len(peaks)),
        }
    )
    joined = pr.PyRanges(windows).join(pr.PyRanges(points), strandedness=False).df
    if len(joined) == 0:
        return empty
    g = joined["gene"].to_numpy(np.int64)
    p = joined["peak"].to_numpy(np.int64)
    c = centre[p]
    sign = np.where(plus[g], 1, -1)
    if anchor == "tss":
        dist = sign * (c - tss[g])
    else:
        five, three = np.where(plus[g], gs[g], ge[g] - 1), np.where(plus[g], ge[g] - 1, gs[g])
        before = sign * (c - five) < 0
        after = sign * (c - three) > 0
        dist = np.where(before, sign * (c - five), np.where(after, sign * (c - three), 0))
    in_body = ((c >= gs[g]) & (c < ge[g])).astype(np.float64)
    return genes["row"].to_numpy(np.int64)[g], p, dist.astype(np.float64), in_body


def _log_report(report: dict[str, Any], upstream: int, downstream: int, anchor: str) -> None:
    n_annot = report["n_genes"] - report["n_genes_not_in_annotation"]
    logger.info(
        "gene_peak_windows (%s, -%d/+%d bp): %d pairs; %d/%d genes have peaks (median %.1f "
        "peaks/gene); %d genes not in annotation; %d peaks on contigs the annotation lacks",
        anchor,
        upstream,
        downstream,
        report["n_pairs"],
        report["n_genes_with_peaks"],
        report["n_genes"],
        report["median_peaks_per_gene"],
        report["n_genes_not_in_annotation"],
        report["n_peaks_unknown_contig"],
    )
    if n_annot > 0 and report["n_genes_without_peaks"] > 0.5 * n_annot:
        warnings.warn(
            f"{report['n_genes_without_peaks']} of {n_annot} annotated genes have no peak in "
            f"their window (e.g. {report['genes_without_peaks'][:5]}); consider larger "
            "`upstream`/`downstream`.",
            UserWarning,
            stacklevel=3,
        )
