"""Real paired single-cell datasets, gene annotations and gene sets.

Files are looked up under ``data_dir=``, then ``$SCMM_DATA_DIR``, then a user cache; missing
files with a public URL are downloaded with pooch and their sha256 checked (see
:func:`fetch`).
"""

from __future__ import annotations

from ._fetch import fetch
from ._loaders import (
    bmmc_cite,
    gene_annotation,
    gene_sets,
    mop_snare2,
    pbmc10k_cite,
    pbmc10k_protein_200,
    pbmc_multiome,
)
from ._open_problems import read_open_problems_2022

__all__ = [
    "bmmc_cite",
    "fetch",
    "gene_annotation",
    "gene_sets",
    "mop_snare2",
    "pbmc10k_cite",
    "pbmc10k_protein_200",
    "pbmc_multiome",
    "read_open_problems_2022",
]
