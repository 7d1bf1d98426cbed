"""``fit_deepsets``: the DeepSets model on gene–peak windows."""

from __future__ import annotations

from typing import Any, Unpack

from mudata import MuData

from .._docs import fit_doc
from ..models import WINDOW_FIELDS, DeepSetsModel
from ..train import TrainingConfig
from ._contract import fit_model
from ._training import NeuralFitKeywords, neural_options


def get_windows(mdata: MuData, windows_key: str, source: str, target: str) -> dict[str, Any]:
    """Return ``mdata.uns[windows_key]``, checked against the modalities."""
    if windows_key not in mdata.uns:
        msg = (
            f"`mdata.uns[{windows_key!r}]` not found: run "
            f"`scmm.pp.gene_peak_windows(mdata, {target!r}, {source!r}, annotation=..., "
            f"key_added={windows_key!r})` first."
        )
        raise ValueError(msg)
    windows = mdata.uns[windows_key]
    missing = [f for f in WINDOW_FIELDS if f not in windows]
    if missing:
        msg = (
            f"`mdata.uns[{windows_key!r}]` lacks {missing}; recompute it with `gene_peak_windows`."
        )
        raise ValueError(msg)
    params = windows.get("params", {})
    if params.get("rna", target) != target or params.get("atac", source) != source:
        msg = (
            f"`mdata.uns[{windows_key!r}]` pairs rna={params.get('rna')!r} with "
            f"atac={params.get('atac')!r}, not target={target!r} with source={source!r}."
        )
        raise ValueError(msg)
    shape = (mdata[target].n_vars, mdata[source].n_vars)
    if windows["distance"].shape != shape:
        msg = (
            f"`mdata.uns[{windows_key!r}]` is {windows['distance'].shape} genes × peaks but the "
            f"data has {shape}; recompute the windows after subsetting features."
        )
        raise ValueError(msg)
    return windows


@fit_doc("DeepSetsModel")
def fit_deepsets(
    mdata: MuData,
    source: str = "atac",
    target: str = "rna",
    *,
    windows_key: str = "windows",
    channels: int = 8,
    phi_hidden: int = 32,
    hidden: int = 64,
    context_hidden: int = 256,
    gene_embedding: int = 64,
    dropout: float = 0.3,
    standardize: bool = True,
    max_memory_mb: float = 1024.0,
    n_components: int = 64,
    training: TrainingConfig | dict[str, Any] | None = None,
    **contract: Unpack[NeuralFitKeywords],
) -> DeepSetsModel:
    """Fit a DeepSets model from each gene's window peaks (and the cell's ATAC SVD) to RNA.

    For each cell and gene, φ encodes every peak of the gene's window from its accessibility
    ``a`` and the pair's features ``f`` (signed distance to the TSS, peak width, in-gene-body
    flag) as ``φ(a, f) = a · g(f)`` (``g`` an MLP with ``channels`` outputs); φ is sum- and
    mean-pooled over the window, and ρ maps the pooled vector, the cell context (an MLP of the
    ATAC SVD embedding) and a learned gene embedding to the gene's expression. φ and ρ are
    shared by all genes (see :class:`scmm.nn.DeepSetsNet`). Memory is bounded: pooling is a
    sparse product over the batch's open peaks, and genes are processed in chunks so that
    ``batch × chunk × hidden`` activations fit in ``max_memory_mb`` (chunks are recomputed in
    the backward pass); no cells × genes × peaks tensor is ever formed. The training cells'
    ATAC is read from the source matrix a batch at a time (never copied), and a sparse RNA
    target stays sparse: each batch is densified and standardised on its own (23,418 genes of
    70,000 cells would be 6.6 GB dense). Predictions are made in batches of ``batch_size``
    cells and written into one cells × genes array, in memory or, above the memory budget,
    on disk (see ``write_predictions``). On CPU the pooling and ρ run as fused kernels
    (:class:`scmm.nn.DeepSetsNet`). Training options are those of
    :class:`scmm.train.TrainingConfig`, run by lightning.

    Parameters
    ----------
    mdata
        Paired multiome data with ``mdata.uns[windows_key]`` from
        :func:`scmm.pp.gene_peak_windows`.
    source
        ATAC modality (normalised values, e.g. TF-IDF, in ``.X`` or ``layer``).
    target
        RNA modality (e.g. log-CP10k in ``.X`` or ``target_layer``).
    windows_key
        Key of the gene–peak windows in ``mdata.uns``; they are stored in the model.
    channels
        Channels of φ.
    phi_hidden
        Hidden width of φ's MLP of the pair features.
    hidden
        Hidden width of ρ.
    context_hidden
        Width of the two-layer encoder of the ATAC SVD embedding.
    gene_embedding
        Dimension of the learned gene embedding.
    dropout
        Dropout in the context encoder.
    standardize
        Train on per-gene standardised targets (every gene weighs the same in the loss);
        predictions are returned in target units.
    max_memory_mb
        Memory budget (MiB) for ρ's activations of one batch and gene chunk.
    n_components
        SVD components of the source (the cell context).
    {training}
    {fit_keywords}

    Returns
    -------
    The fitted :class:`~scmm.models.DeepSetsModel` (training history in ``model.history``).
    Writes

    {fit_writes}

    Examples
    --------
    >>> import scmm
    >>> mdata = scmm.datasets.toy_multiome()  # synthetic: 60 cells, genes A, B, C, 24 peaks
    >>> scmm.pp.gene_peak_windows(
    ...     mdata, annotation=mdata["rna"].var, upstream=20_000, downstream=20_000,
    ...     check_assembly=False,
    ... )
    >>> model = scmm.tl.fit_deepsets(
    ...     mdata, "atac", "rna", n_components=5, max_epochs=2, training={"verbose": False},
    ...     rng=0,
    ... )
    >>> mdata["rna"].layers["scmm_deepsets"].shape
    (60, 3)
    """
    training, contract = neural_options(training, contract, "fit_deepsets")
    windows = get_windows(mdata, windows_key, source, target)
    model = DeepSetsModel(
        channels=channels,
        phi_hidden=phi_hidden,
        hidden=hidden,
        context_hidden=context_hidden,
        gene_embedding=gene_embedding,
        dropout=dropout,
        standardize=standardize,
        max_memory_mb=max_memory_mb,
        n_components=n_components,
        windows_key=windows_key,
        training=training,
    )
    model.set_windows(windows)
    return fit_model(model, mdata, source, target, **contract)
