"""``fit_deepsets`` and ``peak_contributions``: the DeepSets model on gene–peak windows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from mudata import MuData

from .. import _keys
from .._docs import FIT_CONTRACT, FIT_WRITES, TRAINING_OPTIONS, doc_params
from .._validate import obs_columns_listing
from ..models._deepsets import DeepSetsModel
from ..models._gene_activity import WINDOW_FIELDS
from ..train._data import to_torch_batch
from ._contract import fit_model
from ._mlp import training_from


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


@doc_params(training_options=TRAINING_OPTIONS, fit_contract=FIT_CONTRACT, fit_writes=FIT_WRITES)
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
    lr: float = 3e-3,
    weight_decay: float = 1e-2,
    max_epochs: int = 30,
    batch_size: int = 256,
    one_cycle: bool = True,
    schedule_epochs: int | None = None,
    min_lr: float = 1e-6,
    swa: bool = False,
    swa_start: int | None = None,
    swa_lr: float | None = None,
    sparsity: str | None = None,
    sparsity_weight: float = 1e-3,
    sparsity_rho: float = 0.05,
    l1: float = 0.0,
    l2: float = 0.0,
    loss: str = "mse",
    correlation_weight: float = 0.5,
    validation_fraction: float = 0.0,
    validation=None,
    patience: int | None = None,
    device: str | None = None,
    precision: str | None = None,
    devices=1,
    strategy="auto",
    verbose: bool | None = None,
    log_dir: str | None = None,
    logger: str | None = "csv",
    checkpoint_dir: str | None = None,
    resume: bool = False,
    num_nodes: int = 1,
    train=None,
    layer: str | None = None,
    target_layer: str | None = None,
    svd_fit_on: str = "train",
    key_added: str | None = None,
    write_predictions: bool | str = True,
    control_features: str | list[str] | None = "auto",
    rng=None,
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
    {training_options}
    {fit_contract}

    Returns
    -------
    The fitted :class:`~scmm.models.DeepSetsModel` (training history in ``model.history``).
    Writes

    {fit_writes}

    Examples
    --------
    >>> import numpy as np, pandas as pd, anndata as ad, mudata as md, scmm
    >>> rng = np.random.default_rng(0)
    >>> genes = pd.DataFrame({
    ...     "chrom": "chr1", "start": [10_000, 110_000, 210_000], "end": [20_000, 120_000, 220_000],
    ...     "strand": "+", "gene_name": ["A", "B", "C"],
    ... })
    >>> atac = ad.AnnData(np.log1p(rng.poisson(1.0, (60, 24))).astype("float32"))
    >>> atac.var_names = [f"chr1_{s}_{s + 500}" for s in range(0, 240_000, 10_000)]
    >>> rna = ad.AnnData(np.log1p(rng.poisson(2.0, (60, 3))).astype("float32"))
    >>> rna.var_names = ["A", "B", "C"]
    >>> mdata = md.MuData({"rna": rna, "atac": atac})
    >>> scmm.pp.gene_peak_windows(
    ...     mdata, annotation=genes, upstream=20_000, downstream=20_000, check_assembly=False
    ... )
    >>> model = scmm.tl.fit_deepsets(
    ...     mdata, "atac", "rna", n_components=5, max_epochs=2, verbose=False, rng=0
    ... )
    >>> mdata["rna"].layers["scmm_deepsets"].shape
    (60, 3)
    """
    windows = get_windows(mdata, windows_key, source, target)
    training = training_from(locals())
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
    return fit_model(
        model,
        mdata,
        source,
        target,
        train=train,
        layer=layer,
        target_layer=target_layer,
        key_added=key_added or _keys.prediction(model.name),
        svd_fit_on=svd_fit_on,
        write_predictions=write_predictions,
        control_features=control_features,
        validation=validation,
        rng=rng,
    )


def _select_cells(adata, cells, mdata: MuData | None = None, mod: str | None = None) -> np.ndarray:
    n = adata.n_obs
    if cells is None:
        return np.arange(n)
    if isinstance(cells, str):
        if mdata is not None and cells in mdata.obs.columns:
            cells = mdata.obs[cells].reindex(adata.obs_names).to_numpy()
        elif cells in adata.obs.columns:
            cells = adata.obs[cells].to_numpy()
        else:
            where = (
                obs_columns_listing(mdata, [mod])
                if mdata is not None
                else f"`.obs` has: {list(adata.obs.columns)}"
            )
            msg = (
                f"`cells={cells!r}` is not a column of `.obs` ({where}); pass a column name, a "
                "mask, indices or names."
            )
            raise ValueError(msg)
    arr = np.asarray(cells)
    if arr.dtype == bool:
        if arr.shape != (n,):
            msg = f"`cells` as a mask must have length {n}, got {arr.shape}."
            raise ValueError(msg)
        idx = np.flatnonzero(arr)
    elif np.issubdtype(arr.dtype, np.integer):
        idx = arr.astype(np.int64)
    else:
        idx = adata.obs_names.get_indexer(arr.astype(str))
        if (idx < 0).any():
            msg = f"`cells` names not found: {list(arr[idx < 0][:5])}."
            raise ValueError(msg)
    if len(idx) == 0:
        msg = "`cells` selects no cells."
        raise ValueError(msg)
    return idx


def peak_contributions(
    model: DeepSetsModel,
    mdata: MuData,
    gene: str,
    *,
    cells=None,
    batch_size: int = 1024,
) -> pd.DataFrame:
    """Each window peak's contribution to one gene's DeepSets prediction.

    Two quantities are reported per peak ``p`` of the gene's window, averaged over ``cells``:

    * ``signal_<c>``: its exact share of pooled channel ``c``, ``a_p · g(f_p)_c`` (``a_p`` the
      accessibility divided by the model's ``accessibility_scale``). Over the window's peaks they
      sum exactly to the pooled signal, ``df.attrs['pooled']``.
    * ``contribution``: gradient × input of the prediction with respect to the peak's
      accessibility, ``a_p · ∂ŷ/∂a_p = Σ_c a_p g(f_p)_c · ∂ŷ/∂pooled_c`` (the mean-pooling path
      included), in target units (e.g. log-CP10k). It is ρ's linearisation at each cell applied
      to the exact pooled shares; the contributions sum to ``df.attrs['local_effect']``, the
      first-order effect of the gene's whole window on the prediction.

    Parameters
    ----------
    model
        A fitted :class:`~scmm.models.DeepSetsModel`.
    mdata
        Data holding the model's source modality (peaks aligned by name).
    gene
        A target feature name.
    cells
        Cells to average over: None (all), a bool mask, integer positions, obs names, or the
        name of a boolean ``.obs`` column of the source modality.
    batch_size
        Cells per batch.

    Returns
    -------
    One row per window peak (sorted by distance) with columns ``peak``, ``distance`` (signed,
    strand-oriented bp to the TSS; negative upstream), ``width``, ``in_body``,
    ``accessibility`` (mean raw value), ``contribution`` and ``signal_0 …``. ``df.attrs``
    holds ``gene``, ``n_cells``, ``pooled`` (list per channel), ``local_effect`` and
    ``prediction`` (mean predicted value).

    Examples
    --------
    >>> import numpy as np, pandas as pd, anndata as ad, mudata as md, scmm
    >>> rng = np.random.default_rng(0)
    >>> genes = pd.DataFrame({
    ...     "chrom": "chr1", "start": [10_000, 110_000, 210_000], "end": [20_000, 120_000, 220_000],
    ...     "strand": "+", "gene_name": ["A", "B", "C"],
    ... })
    >>> atac = ad.AnnData(np.log1p(rng.poisson(1.0, (60, 24))).astype("float32"))
    >>> atac.var_names = [f"chr1_{s}_{s + 500}" for s in range(0, 240_000, 10_000)]
    >>> rna = ad.AnnData(np.log1p(rng.poisson(2.0, (60, 3))).astype("float32"))
    >>> rna.var_names = ["A", "B", "C"]
    >>> mdata = md.MuData({"rna": rna, "atac": atac})
    >>> scmm.pp.gene_peak_windows(
    ...     mdata, annotation=genes, upstream=20_000, downstream=20_000, check_assembly=False
    ... )
    >>> model = scmm.tl.fit_deepsets(
    ...     mdata, "atac", "rna", n_components=5, max_epochs=2, verbose=False, rng=0
    ... )
    >>> df = scmm.tl.peak_contributions(model, mdata, "B")
    >>> df[["peak", "distance"]]
                     peak  distance
    0    chr1_90000_90500    -19750
    1  chr1_100000_100500     -9750
    2  chr1_110000_110500       250
    3  chr1_120000_120500     10250
    """
    if not isinstance(model, DeepSetsModel):
        msg = f"`model` must be a DeepSetsModel (from `fit_deepsets`), got {type(model).__name__}."
        raise TypeError(msg)
    model._check_fitted()
    if gene not in model.target_features:
        msg = f"`gene={gene!r}` is not a target of the model; see `model.target_features`."
        raise ValueError(msg)
    g = model.target_features.index(gene)
    src = mdata[model.source] if isinstance(mdata, MuData) else mdata
    idx = _select_cells(src, cells, mdata if isinstance(mdata, MuData) else None, model.source)
    X = sp.csr_matrix(model.source_matrix(mdata))[idx]
    net = model.net.eval()
    ptr = model.windows["indptr"]
    pairs = np.arange(ptr[g], ptr[g + 1])
    peaks = model.windows["indices"][pairs].astype(np.int64)
    std = float(model._scale["target_std"][g])
    mean = float(model._scale["target_mean"][g])
    C = net.channels
    sums = {
        "signal": np.zeros((len(pairs), C)),
        "contribution": np.zeros(len(pairs)),
        "pooled": np.zeros(C),
        "effect": 0.0,
        "pred": 0.0,
        "acc": np.zeros(len(pairs)),
    }
    for start in range(0, len(idx), batch_size):
        Xb = X[start : start + batch_size]
        svd, raw = model._inputs(Xb)
        ctx_in = torch.from_numpy(np.asarray(svd, np.float32))
        with torch.no_grad():
            ctx = net.encode_context(ctx_in)
            G = net.phi_weights()
            pooled = net.pooled(net.entries(to_torch_batch(raw)), G, Xb.shape[0], g, g + 1)
        pooled = pooled.detach().requires_grad_(True)
        with torch.enable_grad():
            out = net.rho(pooled, ctx, g, g + 1)
            (grad,) = torch.autograd.grad(out.sum(), pooled)
        grad = grad[:, 0, :].numpy().astype(np.float64)  # (cells, C)
        a = np.asarray(Xb[:, peaks].toarray(), np.float64)
        shares = a[:, :, None] / net.accessibility_scale * G[pairs].numpy()[None]  # (n, P, C)
        sums["signal"] += shares.sum(axis=0)
        sums["contribution"] += np.einsum("npc,nc->p", shares, grad) * std
        sums["pooled"] += pooled[:, 0, :].detach().numpy().sum(axis=0)
        sums["effect"] += float((grad * pooled[:, 0, :].detach().numpy()).sum()) * std
        sums["pred"] += float(out.detach().sum()) * std + mean * Xb.shape[0]
        sums["acc"] += a.sum(axis=0)
    n = len(idx)
    w = model.windows
    df = pd.DataFrame(
        {
            "peak": np.asarray(model.source_features, dtype=object)[peaks],
            "distance": w["distance"][pairs].astype(np.int64),
            "width": w["width"][pairs].astype(np.int64),
            "in_body": w["in_body"][pairs].astype(bool),
            "accessibility": sums["acc"] / n,
            "contribution": sums["contribution"] / n,
            **{f"signal_{c}": sums["signal"][:, c] / n for c in range(C)},
        }
    )
    df = df.sort_values("distance", kind="stable").reset_index(drop=True)
    df.attrs.update(
        gene=gene,
        n_cells=int(n),
        pooled=[float(v) for v in sums["pooled"] / n],
        local_effect=float(sums["effect"] / n),
        prediction=float(sums["pred"] / n),
    )
    return df
