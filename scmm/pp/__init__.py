"""Preprocessing: normalisation, SVD, splits, gene–peak windows, pathways, protein names."""

from ._gene_activity import gene_activity
from ._normalize import normalize
from ._pathways import pathway_connectivity
from ._protein_genes import protein_to_gene
from ._protein_names import harmonize_protein_names
from ._split import split_cells
from ._svd import svd
from ._windows import gene_peak_windows

__all__ = [
    "gene_activity",
    "gene_peak_windows",
    "harmonize_protein_names",
    "normalize",
    "pathway_connectivity",
    "protein_to_gene",
    "split_cells",
    "svd",
]
