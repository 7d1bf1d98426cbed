"""``fit_mlp`` and ``lr_range_test``: the MLP family on the fit contract."""

from __future__ import annotations

from typing import Any, Literal, Unpack

import numpy as np
import scipy.sparse as sp
from mudata import MuData

from .._docs import FIT_DATA, doc_params, fit_doc
from .._settings import settings
from .._utils import SeedLike
from .._validate import align_cells, check_modality, get_matrix, train_mask
from ..models import MLPModel
from ..train import LRRangeResult, TrainingConfig
from ._contract import fit_model
from ._training import NeuralFitKeywords, neural_options


@fit_doc("MLPModel")
def fit_mlp(
    mdata: MuData,
    source: str,
    target: str,
    *,
    preset: str | None = None,
    hidden: list[int] | None = None,
    skip: Literal["none", "all"] | int | None = None,
    dropout: float = 0.2,
    batchnorm: bool = True,
    input: Literal["svd", "raw", "svd+raw"] = "svd+raw",
    n_components: int = 64,
    target_svd: int | None = None,
    max_raw_features: int | None = 300,
    training: TrainingConfig | dict[str, Any] | None = None,
    **contract: Unpack[NeuralFitKeywords],
) -> MLPModel:
    """Fit an MLP from the source modality to the target modality.

    Architecture options build a :class:`scmm.nn.MLP`; training options are those of
    :class:`scmm.train.TrainingConfig` (documented there in full), run by lightning.

    Parameters
    ----------
    {fit_data}
    preset
        A name of :data:`scmm.nn.MLP_PRESETS` (``"cite_svd"``, ``"multiome_raw"``,
        ``"svd_plus_raw"`` or ``"svd_plus_raw_wide"``); None picks the one matching
        ``input``.
    hidden
        Trunk block widths, replacing the preset's.
    skip
        Which block outputs the head reads (``"none"``, ``"all"``, or the last k), replacing
        the preset's.
    dropout
        Dropout after each block.
    batchnorm
        BatchNorm in each block.
    input
        ``"svd"`` (TruncatedSVD of the source), ``"raw"`` (the source features, kept sparse)
        or ``"svd+raw"`` (both; the default: on held-out donors of ``bmmc_cite`` the raw
        genes add about +0.02 per-cell Pearson over the SVD alone, see the benchmarks).
    n_components
        Number of SVD components of the source.
    target_svd
        None, or predict this many SVD coefficients of the targets, mapped back through the
        fixed components before the loss.
    max_raw_features
        With raw inputs, keep this many source features, those with the highest variance on the
        training cells (``None``: all). 300 scored above 1,000 on every benchmark split (see the
        MLP page of the docs).
    {training}
    {fit_keywords}

    Returns
    -------
    The fitted :class:`~scmm.models.MLPModel` (training history in ``model.history``). Writes

    {fit_writes}

    Examples
    --------
    >>> import scmm
    >>> mdata = scmm.datasets.toy_cite()  # synthetic: 60 cells, 30 genes, 4 proteins
    >>> model = scmm.tl.fit_mlp(
    ...     mdata, "rna", "prot", hidden=[16], n_components=5, max_epochs=2,
    ...     training={"verbose": False}, rng=0,
    ... )
    >>> mdata["prot"].layers["scmm_mlp"].shape
    (60, 4)
    """
    training, contract = neural_options(training, contract, "fit_mlp")
    model = MLPModel(
        preset=preset,
        hidden=hidden,
        skip=skip,
        dropout=dropout,
        batchnorm=batchnorm,
        input=input,
        n_components=n_components,
        target_svd=target_svd,
        max_raw_features=max_raw_features,
        training=training,
    )
    return fit_model(model, mdata, source, target, **contract)


@doc_params(fit_data=FIT_DATA)
def lr_range_test(
    mdata: MuData,
    source: str,
    target: str,
    *,
    min_lr: float = 1e-6,
    max_lr: float = 1.0,
    n_steps: int = 100,
    preset: str | None = None,
    hidden: list[int] | None = None,
    skip: Literal["none", "all"] | int | None = None,
    dropout: float = 0.2,
    input: Literal["svd", "raw", "svd+raw"] = "svd+raw",
    n_components: int = 64,
    target_svd: int | None = None,
    weight_decay: float = 1e-2,
    batch_size: int = 64,
    loss: Literal["mse", "correlation", "mixed"] = "mixed",
    correlation_weight: float = 0.5,
    device: str | None = None,
    train=None,
    layer: str | None = None,
    target_layer: str | None = None,
    rng: SeedLike | np.random.Generator | None = None,
) -> LRRangeResult:
    """Learning-rate range test of the MLP :func:`fit_mlp` would build.

    The learning rate rises exponentially from ``min_lr`` to ``max_lr`` over ``n_steps`` AdamW
    steps on the training cells, the loss is recorded, and the suggestion is the rate at the
    steepest descent of the smoothed loss against log(lr). Nothing is written to ``mdata``.

    Parameters
    ----------
    {fit_data}
    min_lr
        Smallest learning rate (first step).
    max_lr
        Largest learning rate (last step).
    n_steps
        Number of optimiser steps, one learning rate each.
    preset
        Architecture, as for :func:`fit_mlp`.
    hidden
        Trunk widths, as for :func:`fit_mlp`.
    skip
        Skip connections, as for :func:`fit_mlp`.
    dropout
        Dropout, as for :func:`fit_mlp`.
    input
        ``"svd"``, ``"raw"`` or ``"svd+raw"``, as for :func:`fit_mlp`.
    n_components
        Number of SVD components of the source.
    target_svd
        Target SVD components, as for :func:`fit_mlp`.
    weight_decay
        AdamW weight decay.
    batch_size
        Cells per step.
    loss
        ``"mse"``, ``"correlation"`` or ``"mixed"``.
    correlation_weight
        Weight of the correlation term in ``"mixed"``.
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``; None: ``scmm.settings.device``.
    train
        Training cells (mask, ``.obs`` column name, or None for all).
    layer
        Source layer instead of ``.X``.
    target_layer
        Target layer instead of ``.X``.
    rng
        Seed or :class:`numpy.random.Generator` (SVD, initial weights, batch order).

    Returns
    -------
    :class:`scmm.train.LRRangeResult` with ``lrs``, ``losses``, ``smoothed`` and
    ``suggestion``; draw it with ``scmm.pl.lr_range``.

    Examples
    --------
    >>> import scmm
    >>> mdata = scmm.datasets.toy_cite()  # synthetic: 60 cells, 30 genes, 4 proteins
    >>> result = scmm.tl.lr_range_test(
    ...     mdata, "rna", "prot", hidden=[16], n_components=5, n_steps=20, rng=0
    ... )
    >>> len(result.lrs), len(result.losses)
    (20, 20)
    """
    src = check_modality(mdata, source, "source")
    tgt = check_modality(mdata, target, "target")
    order = align_cells(src, tgt, f"source={source!r}", f"target={target!r}")
    X = get_matrix(src, layer, "layer")
    Y = get_matrix(tgt, target_layer, "target_layer")
    Y = (Y.toarray() if sp.issparse(Y) else np.asarray(Y))[order].astype(np.float32)
    idx = np.flatnonzero(train_mask(mdata, src, train))
    training = {
        "min_lr": min_lr,
        "weight_decay": weight_decay,
        "batch_size": batch_size,
        "loss": loss,
        "correlation_weight": correlation_weight,
        "device": settings.device if device is None else device,
    }
    model = MLPModel(
        preset=preset,
        hidden=hidden,
        skip=skip,
        dropout=dropout,
        input=input,
        n_components=n_components,
        target_svd=target_svd,
        training=training,
    )
    return model.lr_range_test(
        X[idx], Y[idx], rng=rng, min_lr=min_lr, max_lr=max_lr, n_steps=n_steps
    )
