"""A model's binding to the data it was fitted on: modalities, layers and input space.

:class:`Binding` gives every model :meth:`~Binding.fit_mudata` (fit on two modalities of a
MuData) and :meth:`~Binding.bind` (record what :func:`scmm.tl.predict` checks new cells
against), so a model fitted through :mod:`scmm.models` predicts as one of a ``scmm.tl.fit_*``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from anndata import AnnData
from mudata import MuData

from .. import _input_space
from .._utils import SeedLike
from .._validate import get_matrix, paired_modalities, train_mask
from ._reference_distance import attach

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
        train=None,
        layer: str | None = None,
        target_layer: str | None = None,
        validation: np.ndarray | None = None,
        rng: SeedLike | np.random.Generator | None = None,
    ) -> BaseModel:
        """Fit on the modalities ``source`` → ``target`` of ``mdata`` and record that binding.

        The model keeps the modality names, layers, feature names and the input-space record
        of the training values (how they were normalised, their statistics), so it predicts
        through :func:`scmm.tl.predict` with every input check, as a model of a
        ``scmm.tl.fit_*`` function does. Nothing is written to ``mdata`` (the ``fit_*``
        functions add predictions and scores).

        Parameters
        ----------
        mdata
            Paired data holding ``source`` and ``target`` for the same cells.
        source
            Modality predicted from (values in ``.X`` or ``layer``).
        target
            Modality to predict (values in ``.X`` or ``target_layer``).
        train
            Training cells: a boolean mask, the name of a boolean column of ``mdata.obs`` (or
            of the source's ``.obs``), or ``None`` for all cells.
        layer
            Source layer instead of ``.X``.
        target_layer
            Target layer instead of ``.X``.
        validation
            Boolean mask over the training cells held out for early stopping.
        rng
            Seed or :class:`numpy.random.Generator`.

        Returns
        -------
        The fitted model.
        """
        src, tgt, order = paired_modalities(mdata, source, target)
        rows = np.flatnonzero(train_mask(mdata, src, train, source))  # as scmm.tl.fit_* read it
        X = get_matrix(src, layer, "layer")[rows]
        Y = get_matrix(tgt, target_layer, "target_layer")[order[rows]]
        self.bind(src, tgt, X, Y, source=source, target=target, layers=(layer, target_layer))
        self.fit(  # type: ignore[attr-defined]  (BaseModel.fit)
            X,
            Y,
            source_features=src.var_names,
            target_features=tgt.var_names,
            validation=validation,
            rng=rng,
        )
        self.fit_reference_distance(X)
        return self

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
