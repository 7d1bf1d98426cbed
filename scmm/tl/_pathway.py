"""``fit_pathway_mlp``: the pathway-sparse MLP of the original code on the fit contract."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal, Unpack

from mudata import MuData

from .._docs import fit_doc
from ..models import PathwayMLPModel
from ..pp import pathway_connectivity
from ..train import TrainingConfig
from ._contract import fit_model
from ._training import NeuralFitKeywords, neural_options


@fit_doc("PathwayMLPModel")
def fit_pathway_mlp(
    mdata: MuData,
    source: str,
    target: str,
    *,
    gene_sets: str | Mapping[str, Iterable[str]],
    hidden_per_target: int = 2,
    connectivity: Mapping[str, Any] | None = None,
    dense_hidden: list[int] | None = None,
    head_hidden: list[int] | None = None,
    dropout: float = 0.2,
    batchnorm: bool = True,
    sparse_backend: Literal["coo", "csr", "index_add", "dense_masked", "sparselinear"] = "coo",
    n_components: int = 64,
    training: TrainingConfig | dict[str, Any] | None = None,
    **contract: Unpack[NeuralFitKeywords],
) -> PathwayMLPModel:
    """Fit the pathway-sparse MLP: a gene branch masked by gene sets beside a dense SVD branch.

    The original code's design. :func:`scmm.pp.pathway_connectivity` connects each source gene
    to the ``hidden_per_target`` hidden units of every target it shares a gene set with (a
    protein through the gene that encodes it). The pathway branch is a
    :class:`scmm.nn.SparseLinear` layer with that mask on the normalised values of the
    connected genes (read sparse, from ``.X`` or ``layer``); the dense branch reads the SVD of
    all source genes; a dense head reads both. Weights outside the mask do not exist, so they
    stay zero. The mask, restricted to connected genes and units, is saved with the model.

    Parameters
    ----------
    mdata
        Paired data holding ``source`` and ``target`` for the same cells.
    source
        Modality predicted from; its ``var_names`` (or the ``.var`` column named by
        ``connectivity["gene_symbols"]``) are gene symbols.
    target
        Modality to predict (values in ``.X`` or ``target_layer``).
    gene_sets
        ``{set name: gene symbols}``, or a collection name of :func:`scmm.datasets.gene_sets`
        (``"reactome"``, ``"hallmark"``, ``"c2"``) or a GMT path.
    hidden_per_target
        Pathway units per target feature. The original code used 10; with a few hundred
        training cells 2 did better on ``bmmc_cite`` (fewer weights to fit).
    connectivity
        Further keywords of :func:`scmm.pp.pathway_connectivity`, which builds the mask:
        ``target_genes`` (how to find each target's gene), ``gene_symbols`` (column of
        ``mdata[source].var`` with gene symbols, when ``var_names`` are not symbols),
        ``min_genes`` (targets connected to fewer genes get no pathway units; default 1) and
        ``key_added`` (where the connectivity is written; default ``"pathway"``).
    dense_hidden
        Block widths of the dense branch on the SVD; None: ``[128]``.
    head_hidden
        Block widths between the two branches and the output layer; None: none.
    dropout
        Dropout after each block.
    batchnorm
        BatchNorm in each block.
    sparse_backend
        ``backend`` of :class:`scmm.nn.SparseLinear`.
    n_components
        Number of SVD components of the source.
    {training}
    {fit_keywords}

    Returns
    -------
    The fitted :class:`~scmm.models.PathwayMLPModel` (``model.connected_genes()`` lists the
    genes of the pathway branch). Writes

    {fit_writes}
    ``mdata[source].varm['pathway']`` : csr_matrix (n_source_vars, n_units)
        The connectivity mask, ``n_units = n_targets × hidden_per_target`` (see
        :func:`scmm.pp.pathway_connectivity`; the key is ``connectivity["key_added"]``).
    ``mdata.uns['pathway']`` : dict
        Its coverage summary (see :func:`scmm.pp.pathway_connectivity`).

    Examples
    --------
    >>> import numpy as np, pandas as pd, anndata as ad, mudata as md, scmm
    >>> rng = np.random.default_rng(0)
    >>> genes = ["CD3E", "CD4", "CD8A", "MS4A1", "CD19", "LYZ"]
    >>> rna = ad.AnnData(np.log1p(rng.poisson(2.0, (60, 6))).astype("float32"))
    >>> rna.var_names = genes
    >>> prot = ad.AnnData(rng.normal(size=(60, 3)).astype("float32"))
    >>> prot.var_names = ["CD3_TotalSeqB", "CD4_TotalSeqB", "CD19_TotalSeqB"]
    >>> mdata = md.MuData({"rna": rna, "prot": prot})
    >>> gene_sets = {"T_CELL": ["CD3E", "CD4", "CD8A"], "B_CELL": ["MS4A1", "CD19"]}
    >>> model = scmm.tl.fit_pathway_mlp(
    ...     mdata, "rna", "prot", gene_sets=gene_sets, n_components=5, max_epochs=2,
    ...     training={"verbose": False}, rng=0,
    ... )
    >>> mdata["prot"].layers["scmm_pathway_mlp"].shape
    (60, 3)
    >>> mdata.uns["pathway"]["coverage"]
    1.0
    """
    training, contract = neural_options(training, contract, "fit_pathway_mlp")
    if isinstance(gene_sets, str):
        from ..datasets import gene_sets as load_gene_sets

        gene_sets = load_gene_sets(gene_sets)
    model = PathwayMLPModel(
        dense_hidden=dense_hidden,
        head_hidden=head_hidden,
        dropout=dropout,
        batchnorm=batchnorm,
        sparse_backend=sparse_backend,
        n_components=n_components,
        training=training,
    )
    options = {"key_added": "pathway", **(connectivity or {})}
    connectivity_key = options["key_added"]
    src = mdata.mod.get(source)
    saved = (
        None if src is None else src.varm.get(connectivity_key),
        mdata.uns.get(connectivity_key),
    )
    pathway_connectivity(
        mdata,
        source,
        target,
        gene_sets=gene_sets,
        hidden_per_target=hidden_per_target,
        **options,
    )
    try:
        model.set_connectivity(mdata[source].varm[connectivity_key])
        fit_model(model, mdata, source, target, **contract)
    except BaseException:  # leave mdata as it was
        for holder, old in ((mdata[source].varm, saved[0]), (mdata.uns, saved[1])):
            if old is None:
                holder.pop(connectivity_key, None)
            else:
                holder[connectivity_key] = old
        raise
    return model
