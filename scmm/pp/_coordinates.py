"""Gene and peak coordinates for ``gene_peak_windows``: reading and matching them.

The annotation (a DataFrame, or a GTF, BED or CSV/TSV file) becomes one table with ``chrom``,
``start`` (0-based), ``end``, ``strand``, ``gene_name``, optionally ``gene_id``, and ``tss``;
the peaks' coordinates come from ``var`` columns or from names ``chr_start_end`` /
``chr:start-end``. ``chr`` prefixes are harmonised when only one side uses them, and genes are
matched to the annotation by name or by id, whichever matches more.
"""

from __future__ import annotations

import logging
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from .._validate import PEAK_NAME_RE

logger = logging.getLogger(__name__)


def _read_annotation(annotation: pd.DataFrame | str | PathLike) -> tuple[pd.DataFrame, str]:
    """Return a clean annotation table and a description of its source."""
    if isinstance(annotation, pd.DataFrame):
        df, source = annotation, "DataFrame"
    elif isinstance(annotation, str | PathLike):
        path = Path(annotation)
        if not path.exists():
            msg = f"`annotation` file {str(path)!r} does not exist."
            raise ValueError(msg)
        source = str(path)
        name = path.name.lower().removesuffix(".gz")
        if name.endswith((".gtf", ".gff2")):
            df = _read_gtf(path)
        elif name.endswith(".bed"):
            df = pd.read_csv(path, sep="\t", header=None, comment="#", usecols=range(6))
            df.columns = ["chrom", "start", "end", "gene_name", "score", "strand"]
        elif name.endswith((".csv", ".tsv", ".txt")):
            df = pd.read_csv(path, sep="\t" if name.endswith(".tsv") else ",")
        else:
            msg = (
                f"`annotation` file {str(path)!r}: unknown format; pass a .gtf, .bed, .csv or "
                ".tsv file (optionally gzipped) or a DataFrame."
            )
            raise ValueError(msg)
    else:
        msg = (
            "`annotation` must be a DataFrame or a path to a GTF/BED/CSV file, "
            f"got {type(annotation).__name__}."
        )
        raise TypeError(msg)

    rename = {"Chromosome": "chrom", "Start": "start", "End": "end", "Strand": "strand"}
    df = df.rename(columns={k: v for k, v in rename.items() if v not in df.columns})
    missing = [c for c in ("chrom", "start", "end", "strand", "gene_name") if c not in df.columns]
    if missing:
        msg = (
            f"`annotation` lacks columns {missing} (has: {list(df.columns)}); it needs chrom, "
            "start (0-based), end, strand and gene_name, as `scmm.datasets.gene_annotation` "
            "returns."
        )
        raise ValueError(msg)
    cols = ["chrom", "start", "end", "strand", "gene_name"]
    cols += [c for c in ("gene_id", "tss") if c in df.columns]
    df = df[cols].copy()
    df["chrom"] = df["chrom"].astype(str)
    df["strand"] = df["strand"].astype(str)
    df["gene_name"] = df["gene_name"].astype(str)
    df["start"] = df["start"].astype(np.int64)
    df["end"] = df["end"].astype(np.int64)
    stranded = df["strand"].isin(["+", "-"])
    if not stranded.all():
        logger.info("annotation: dropped %d genes without +/- strand", int((~stranded).sum()))
        df = df.loc[stranded]
    if "tss" not in df.columns:
        df["tss"] = np.where(df["strand"] == "+", df["start"], df["end"] - 1)
    df["tss"] = df["tss"].astype(np.int64)
    if len(df) == 0:
        msg = "`annotation` has no stranded genes."
        raise ValueError(msg)
    return df.reset_index(drop=True), source


def _read_gtf(path: Path) -> pd.DataFrame:
    import pyranges as pr

    gtf = pr.read_gtf(str(path), as_df=True)
    if "gene_name" not in gtf.columns:
        if "gene_id" not in gtf.columns:
            msg = f"`annotation` GTF {str(path)!r} has neither gene_name nor gene_id attributes."
            raise ValueError(msg)
        gtf["gene_name"] = gtf["gene_id"]
    genes = gtf.loc[gtf["Feature"].astype(str) == "gene"]
    if len(genes) == 0:  # GTFs without gene lines: span of each gene's features
        keys = ["gene_name", "Chromosome", "Strand"]
        genes = gtf.groupby(keys, observed=True, sort=False).agg(
            Start=("Start", "min"), End=("End", "max")
        )
        genes = genes.reset_index()
    cols = ["Chromosome", "Start", "End", "Strand", "gene_name"]
    cols += ["gene_id"] if "gene_id" in genes.columns else []
    return pd.DataFrame(genes[cols]).reset_index(drop=True)


def _harmonise_chr_prefix(ann: pd.DataFrame, peak_chroms: pd.Series) -> pd.DataFrame:
    """Add or strip ``chr`` on the annotation when only one side uses it."""
    pc = set(peak_chroms.unique())
    ac = set(ann["chrom"].unique())
    if pc & ac:
        return ann
    added = {"chr" + c.replace("MT", "M") for c in ac}
    stripped = {c.removeprefix("chr") for c in ac}
    if len(pc & added) > len(pc & stripped):
        ann = ann.assign(chrom="chr" + ann["chrom"].str.replace(r"^MT$", "M", regex=True))
        logger.info("annotation: added 'chr' to contig names to match the peaks")
    elif pc & stripped:
        ann = ann.assign(chrom=ann["chrom"].str.removeprefix("chr"))
        logger.info("annotation: removed 'chr' from contig names to match the peaks")
    return ann


def _match_genes(
    names: pd.Index, ann: pd.DataFrame, ids: pd.Index | None = None
) -> tuple[np.ndarray, str, int]:
    """Match genes to annotation rows (-1 when absent); say on which column and how many by id.

    Returns the rows, the column the names matched on, and how many genes were matched
    through their own ids (``ids``, e.g. ``var['gene_ids']``). Names are matched to
    ``gene_name`` (or to ``gene_id`` when more match that way); a gene still unmatched
    whose id (version suffix ignored) is an annotation ``gene_id`` is then matched by id:
    genes renamed between annotation versions (H3F3A → H3-3A, LARS → LARS1) keep their
    Ensembl id.
    """
    by_name = ann.drop_duplicates("gene_name", keep="first")
    idx = pd.Index(by_name["gene_name"]).get_indexer(names)
    rows = np.where(idx >= 0, by_name.index.to_numpy()[idx], -1)
    match_by = "gene_name"
    n_by_id = 0
    if "gene_id" in ann.columns:
        ann_ids = ann["gene_id"].astype(str).str.replace(r"\.\d+$", "", regex=True)
        by_id = ann.assign(_id=ann_ids).drop_duplicates("_id", keep="first")
        lookup = pd.Index(by_id["_id"])
        query = names.str.replace(r"\.\d+$", "", regex=True)
        idx_id = lookup.get_indexer(query)
        if (idx_id >= 0).sum() > (rows >= 0).sum():
            rows = np.where(idx_id >= 0, by_id.index.to_numpy()[idx_id], -1)
            match_by = "gene_id"
        if ids is not None:
            own = pd.Index(ids.astype(str)).str.replace(r"\.\d+$", "", regex=True)
            idx_own = lookup.get_indexer(own)
            fill = (rows < 0) & (idx_own >= 0)
            rows[fill] = by_id.index.to_numpy()[idx_own[fill]]
            n_by_id = int(fill.sum())
    return rows, match_by, n_by_id


# --------------------------------------------------------------------------- peaks


def _peak_table(var: pd.DataFrame, var_names: pd.Index, atac: str) -> pd.DataFrame:
    """Chromosome, start and end of each peak, from var columns or var names."""
    for cols in (("chrom", "start", "end"), ("Chromosome", "Start", "End")):
        if all(c in var.columns for c in cols):
            df = pd.DataFrame(
                {"chrom": var[cols[0]].astype(str).to_numpy(), "start": var[cols[1]].to_numpy()}
            )
            df["end"] = var[cols[2]].to_numpy()
            break
    else:
        parts = pd.Series(var_names.astype(str)).str.extract(PEAK_NAME_RE)
        bad = parts[0].isna().to_numpy()
        if bad.any():
            examples = list(var_names[bad][:3])
            msg = (
                f"`mdata[{atac!r}]` has no var columns chrom/start/end and {int(bad.sum())} "
                f"peak names are not 'chr_start_end' or 'chr:start-end' (e.g. {examples}); "
                "add the columns to `.var`."
            )
            raise ValueError(msg)
        df = pd.DataFrame({"chrom": parts[0], "start": parts[1], "end": parts[2]})
    try:
        df["start"] = df["start"].astype(np.int64)
        df["end"] = df["end"].astype(np.int64)
    except (TypeError, ValueError) as err:
        msg = f"`mdata[{atac!r}].var` start/end must be integers without missing values."
        raise ValueError(msg) from err
    if (df["end"] <= df["start"]).any():
        msg = f"`mdata[{atac!r}]` has peaks with end <= start; check the peak coordinates."
        raise ValueError(msg)
    return df.reset_index(drop=True)
