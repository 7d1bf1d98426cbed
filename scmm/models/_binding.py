"""A model's binding to the data it was fitted on: modalities, layers and input space.

:class:`Binding` gives every model :meth:`~Binding.fit_mudata` (fit on two modalities of a
MuData) and :meth:`~Binding.bind` (record what :func:`scmm.tl.predict` checks new cells
against), so a model fitted through :mod:`scmm.models` predicts as one of a ``scmm.tl.fit_*``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypedDict, Unpack

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from mudata import MuData

from .. import _input_space
from .._utils import RowSubset, SeedLike, is_backed
from .._validate import cell_mask, get_matrix, paired_modalities, train_mask
from ..metrics import column_means
from ._preprocess import SVD_FIT_ON
from ._reference_distance import attach


class BindingKeywords(TypedDict, total=False):
    """Which cells and values a fit reads: the keywords of :meth:`BaseModel.fit_mudata`.

    Defined once: :class:`scmm.tl.FitKeywords` (every ``scmm.tl.fit_*``) extends them. Left
    out: all cells, ``.X`` of both modalities, ``svd_fit_on="train"``, ``rng=None``.
    """

    train: np.ndarray | str | None
    layer: str | None
    target_layer: str | None
    svd_fit_on: Literal["train", "all"]
    rng: SeedLike | np.random.Generator | None


class FitData(NamedTuple):
    """What a fit on a MuData read, for the outputs written after it (``scmm.tl``)."""

    #: The source values of every cell (backed where the model reads backed data).
    X: Any
    #: The training cells, over the source's cells.
    mask: np.ndarray
    #: Each target's mean over the training cells (the mean profile scores compare with).
    train_mean: np.ndarray


def rows_of(X, rows: np.ndarray, model: BaseModel):
    """``X[rows]``: a block-read view of a sparse or backed ``X`` for models that read those."""
    if model.reads_backed and (sp.issparse(X) or is_backed(X)):
        return RowSubset(X, rows)
    return X[rows]


def as_model_targets(Y, model: BaseModel):
    """``Y`` as ``model`` takes it: float32, CSR where sparse and the model keeps it so."""
    if sp.issparse(Y) and model.sparse_targets:
        return sp.csr_matrix(Y).astype(np.float32, copy=False)
    return (Y.toarray() if sp.issparse(Y) else np.asarray(Y)).astype(np.float32, copy=False)


def _validation_of_training(validation, mask: np.ndarray, names: pd.Index):
    """Return ``validation`` (None, a fraction, or a mask over all cells) for the training cells."""
    if validation is None or isinstance(validation, float):
        return validation
    validation = cell_mask(validation, names, "validation")
    if (validation & ~mask).any():
        msg = "`validation` selects cells outside `train`; pick validation cells among them."
        raise ValueError(msg)
    return validation[mask]


def check_pair(
    mdata: MuData, source: str, target: str, svd_fit_on: str = "train"
) -> tuple[AnnData, AnnData, np.ndarray]:
    """Check the arguments every fit shares; return the two modalities and the cell order.

    ``order[i]`` is the target row of source cell ``i`` (as ``align_cells`` returns it).
    """
    if svd_fit_on not in SVD_FIT_ON:
        msg = f"`svd_fit_on={svd_fit_on!r}` is not one of {SVD_FIT_ON}."
        raise ValueError(msg)
    return paired_modalities(mdata, source, target)


def fit_cells(
    model: BaseModel,
    mdata: MuData,
    source: str,
    target: str,
    *,
    validation=None,
    fit_kwargs: dict[str, Any] | None = None,
    pair: tuple[AnnData, AnnData, np.ndarray] | None = None,
    **options: Unpack[BindingKeywords],
) -> FitData:
    """Fit ``model`` on the training cells of ``mdata`` and record its binding: the one path.

    :meth:`Binding.fit_mudata` and ``scmm.tl``'s fit contract both fit through here. Only the
    training cells' targets are read (and checked); a sparse or backed source is read a block
    of rows at a time by models that can (never copied); ``svd_fit_on="all"`` fits the input
    SVD on every cell's source values in place. ``fit_kwargs`` are further keywords of
    ``model.fit`` (e.g. an ensemble's ``groups``); ``pair`` the result of :func:`check_pair`
    when the caller has it already (not checked again).
    """
    layer, target_layer = options.get("layer"), options.get("target_layer")
    svd_fit_on = options.get("svd_fit_on", "train")
    src, tgt, order = pair or check_pair(mdata, source, target, svd_fit_on)
    X = get_matrix(src, layer, "layer", backed=True)
    if is_backed(X) and not model.reads_backed:
        X = X.to_memory()
    mask = train_mask(mdata, src, options.get("train"), source)
    train_idx = np.flatnonzero(mask)
    subset = not mask.all()
    validation = _validation_of_training(validation, mask, src.obs_names)
    identity = np.array_equal(order, np.arange(len(order)))
    # only the training cells' targets are read (and checked): others may be missing
    rows = None if identity and not subset else order[train_idx]
    Y_train = as_model_targets(
        get_matrix(tgt if rows is None else tgt[rows], target_layer, "target_layer"), model
    )
    # "all": the SVD reads every cell's inputs in place (no stacked copy of the source)
    X_svd = X if svd_fit_on == "all" and subset else None
    X_train = rows_of(X, train_idx, model) if subset else X
    model.bind(
        src, tgt, X_train, Y_train, source=source, target=target, layers=(layer, target_layer)
    )
    model.fit(
        X_train,
        Y_train,
        source_features=src.var_names,
        target_features=tgt.var_names,
        X_svd=X_svd,
        validation=validation,
        rng=options.get("rng"),
        **(fit_kwargs or {}),
    )
    model.fit_reference_distance(X_train)  # saved with the model; read by `predict`
    return FitData(X, mask, column_means(Y_train))


if TYPE_CHECKING:
    from ._base import BaseModel


class Binding:
    """The source and target a model was fitted on (the base of :class:`BaseModel`)."""

    source: str | None
    target: str | None
    layer: str | None
    target_layer: str | None
    source_feature_ids: list[str] | None
    input_space: dict[str, Any] | None
    input_arrays: dict[str, np.ndarray]

    def fit_mudata(
        self,
        mdata: MuData,
        source: str,
        target: str,
        *,
        validation: np.ndarray | float | None = None,
        **options: Unpack[BindingKeywords],
    ) -> BaseModel:
        """Fit on the modalities ``source`` → ``target`` of ``mdata`` and record that binding.

        The model keeps the modality names, layers, feature names and the input-space record
        of the training values (how they were normalised, their statistics), so it predicts
        through :func:`scmm.tl.predict` with every input check, as a model of a
        ``scmm.tl.fit_*`` function does (it is the same fit path). Nothing is written to
        ``mdata`` (the ``fit_*`` functions add predictions and scores).

        Parameters
        ----------
        mdata
            Paired data holding ``source`` and ``target`` for the same cells.
        source
            Modality predicted from (values in ``.X`` or ``layer``).
        target
            Modality to predict (values in ``.X`` or ``target_layer``).
        validation
            Validation cells of a neural model: a bool mask over all cells (within ``train``)
            or a fraction of the training cells.
        **options
            :class:`BindingKeywords`: ``train`` (training cells: a boolean mask, the name of a
            boolean column of ``mdata.obs`` or of the source's ``.obs``, or ``None`` for all
            cells), ``layer`` (source layer instead of ``.X``), ``target_layer`` (target layer
            instead of ``.X``), ``svd_fit_on`` (``"train"``, the default, or ``"all"``: the
            input SVD on every cell's source values; their targets are never read) and
            ``rng`` (seed or :class:`numpy.random.Generator`).

        Returns
        -------
        The fitted model.
        """
        unknown = sorted(set(options) - BindingKeywords.__optional_keys__)
        if unknown:
            msg = (
                f"fit_mudata() got unexpected keyword arguments {unknown}; it takes "
                f"{', '.join(sorted(BindingKeywords.__optional_keys__))} and validation."
            )
            raise TypeError(msg)
        fit_cells(self, mdata, source, target, validation=validation, **options)
        return self  # type: ignore[return-value]

    def fit_reference_distance(self, X_train) -> None:
        """Fit how far new cells lie from the training rows ``X_train`` (read by ``predict``).

        In the model's input embedding (its SVD); kept as it is when the fit already made it
        (the ensemble does, for its intervals), skipped for a model that reads no SVD.
        """
        if getattr(self, "reference_distance", None) is None:
            attach(self, X_train)

    def bind(
        self,
        src: AnnData,
        tgt: AnnData,
        X_train,
        Y_train,
        *,
        source: str,
        target: str,
        layers: tuple[str | None, str | None] = (None, None),
    ) -> None:
        """Record the modalities, layers and input space of a fit on ``X_train`` → ``Y_train``.

        Called before :meth:`fit` (it warns when the training values look like raw counts).
        A TF-IDF source (``.X`` from :func:`scmm.pp.normalize`) also stores its IDF, which
        ``predict(..., normalize=True)`` applies to new cells; ``var['gene_ids']`` of the
        source is kept to match renamed genes.
        """
        space, arrays = _input_space.record_fit(
            src, tgt, X_train, Y_train, mods=(source, target), layers=layers
        )
        record = space["source"].get("normalize") or {}
        if record.get("method") == "tfidf" and "scmm_idf" in src.var.columns:
            arrays = {**arrays, "idf": src.var["scmm_idf"].to_numpy(np.float32)}
        self.source, self.target = source, target
        self.layer, self.target_layer = layers
        self.input_space, self.input_arrays = space, arrays
        self.source_feature_ids = (
            [str(i) for i in src.var["gene_ids"]] if "gene_ids" in src.var.columns else None
        )
