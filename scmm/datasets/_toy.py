"""Tiny synthetic MuData (CITE-seq, Multiome) for examples and tests: no files, no network."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np

from .._utils import SeedLike, as_generator

#: Names of the toy proteins (then ``"prot<i>"``): distinct from the toy gene names.
_PROTEINS = ("CD3", "CD4", "CD8", "CD19", "CD14", "CD16", "CD56", "CD45RA")


def toy_cite(
    n_obs: int = 60,
    *,
    n_genes: int = 30,
    n_proteins: int = 4,
    rng: SeedLike | np.random.Generator | None = None,
) -> md.MuData:
    """Return a tiny synthetic CITE-seq MuData, for examples and tests only.

    The values are random and carry no biology: ``rna`` holds ``log1p`` of Poisson(2) counts
    (as if normalised), ``prot`` standard normal values, drawn independently, so no model
    can predict one from the other better than the mean. It is made in memory, offline; use
    the loaders of :mod:`scmm.datasets` (e.g. :func:`pbmc10k_cite`) for real data.

    Parameters
    ----------
    n_obs
        Number of cells (``obs_names`` ``"0"``, ``"1"``, ... in both modalities).
    n_genes
        Number of genes of ``rna`` (``var_names`` ``"gene0"``, ``"gene1"``, ...).
    n_proteins
        Number of proteins of ``prot`` (``"CD3"``, ``"CD4"``, ``"CD8"``, ``"CD19"``, ...).
    rng
        Seed or :class:`numpy.random.Generator`; ``None``: seed 0 (the same data every call).

    Returns
    -------
    A :class:`~mudata.MuData` with modalities ``"rna"`` (``n_obs`` × ``n_genes``) and
    ``"prot"`` (``n_obs`` × ``n_proteins``), float32 in ``.X``.

    Examples
    --------
    >>> import scmm
    >>> mdata = scmm.datasets.toy_cite()
    >>> mdata["rna"].shape, mdata["prot"].shape
    ((60, 30), (60, 4))
    >>> list(mdata["prot"].var_names)
    ['CD3', 'CD4', 'CD8', 'CD19']
    """
    for name, value in (("n_obs", n_obs), ("n_genes", n_genes), ("n_proteins", n_proteins)):
        if int(value) < 1:
            msg = f"`{name}={value!r}` must be at least 1."
            raise ValueError(msg)
    gen = as_generator(rng)
    rna = ad.AnnData(np.log1p(gen.poisson(2.0, (n_obs, n_genes))).astype("float32"))
    rna.var_names = [f"gene{i}" for i in range(n_genes)]
    prot = ad.AnnData(gen.normal(size=(n_obs, n_proteins)).astype("float32"))
    prot.var_names = [_PROTEINS[i] if i < len(_PROTEINS) else f"prot{i}" for i in range(n_proteins)]
    return md.MuData({"rna": rna, "prot": prot})


def toy_multiome(
    n_obs: int = 60, *, rng: SeedLike | np.random.Generator | None = None
) -> md.MuData:
    """Return a tiny synthetic Multiome MuData (ATAC + RNA), for examples and tests only.

    Three genes ``A``, ``B``, ``C`` on ``chr1`` (``+`` strand, at 10–20, 110–120 and
    210–220 kb) and 24 peaks of 500 bp every 10 kb (``chr1_0_500`` … ``chr1_230000_230500``).
    ``rna.var`` holds the genes' coordinates (``chrom``, ``start``, ``end``, ``strand``,
    ``gene_name``), so it serves as the ``annotation`` of :func:`scmm.pp.gene_peak_windows`.
    The values are random and carry no biology: ``atac`` holds ``log1p`` of Poisson(1) counts,
    ``rna`` ``log1p`` of Poisson(2) counts, drawn independently. Made in memory, offline.

    Parameters
    ----------
    n_obs
        Number of cells.
    rng
        Seed or :class:`numpy.random.Generator`; ``None``: seed 0 (the same data every call).

    Returns
    -------
    A :class:`~mudata.MuData` with modalities ``"rna"`` (``n_obs`` × 3) and ``"atac"``
    (``n_obs`` × 24), float32 in ``.X``.

    Examples
    --------
    >>> import scmm
    >>> mdata = scmm.datasets.toy_multiome()
    >>> mdata["rna"].shape, mdata["atac"].shape
    ((60, 3), (60, 24))
    >>> scmm.pp.gene_peak_windows(
    ...     mdata, annotation=mdata["rna"].var, upstream=20_000, downstream=20_000,
    ...     check_assembly=False,
    ... )
    """
    if int(n_obs) < 1:
        msg = f"`n_obs={n_obs!r}` must be at least 1."
        raise ValueError(msg)
    gen = as_generator(rng)
    atac = ad.AnnData(np.log1p(gen.poisson(1.0, (n_obs, 24))).astype("float32"))
    atac.var_names = [f"chr1_{s}_{s + 500}" for s in range(0, 240_000, 10_000)]
    rna = ad.AnnData(np.log1p(gen.poisson(2.0, (n_obs, 3))).astype("float32"))
    rna.var_names = ["A", "B", "C"]
    rna.var = rna.var.assign(
        chrom="chr1",
        start=[10_000, 110_000, 210_000],
        end=[20_000, 120_000, 220_000],
        strand="+",
        gene_name=rna.var_names,
    )
    return md.MuData({"rna": rna, "atac": atac})
