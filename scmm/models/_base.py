"""The model base class: fitted state, feature names, prediction on new cells, save/load.

A model holds everything needed to predict for new cells: its hyper-parameters, the fitted
preprocessing (e.g. SVD components), the source and target feature names and, for neural
models, the weights. Saving and loading are in :mod:`scmm.models._persist`.

Neural models subclass :class:`scmm.models._neural.NeuralModel`, which holds the shared
preprocessing, training and weight handling; a subclass only builds its network.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from anndata import AnnData
from mudata import MuData

from .. import _input_space
from .._utils import SeedLike
from .._validate import (
    align_features,
    check_modality,
    check_one_feature_type,
    check_orientation,
    fill_missing,
    get_matrix,
)
from . import _persist
from ._binding import Binding
from ._registry import _MODEL_CLASSES, prefixed

__all__ = ["BaseModel", "prefixed"]


class BaseModel(Binding):
    """Base of every scmm model.

    Subclasses set ``kind``, implement :meth:`_fit`, :meth:`predict_array`,
    :meth:`_get_state` and :meth:`_set_state`, and take their hyper-parameters as keyword
    arguments of ``__init__`` (stored in ``self.params``, saved as JSON).

    Parameters
    ----------
    **params
        JSON-able hyper-parameters.
    """

    kind: ClassVar[str] = "base"
    #: Key suffixes of the arrays :meth:`derived_outputs` returns (e.g. ``("_lower",
    #: "_upper")``); empty: none. Known before predicting, so that the fit contract and
    #: :func:`scmm.tl.predict` can open their files when the predictions go to disk.
    output_suffixes: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _MODEL_CLASSES[cls.kind] = cls

    def __init__(self, **params: Any):
        self.params: dict[str, Any] = params
        self.source: str | None = None
        self.target: str | None = None
        self.layer: str | None = None
        self.target_layer: str | None = None
        self.source_features: list[str] | None = None
        self.target_features: list[str] | None = None
        #: Ensembl-style ids of the source features (``var['gene_ids']``), if the data had them.
        self.source_feature_ids: list[str] | None = None
        #: How the training values were prepared (see :mod:`scmm._input_space`); ``None`` for
        #: models saved before scmm recorded it.
        self.input_space: dict[str, Any] | None = None
        #: Per-feature ``mean`` and ``sd`` of the training source values.
        self.input_arrays: dict[str, np.ndarray] = {}
        self.history: dict[str, list] = {}

    # -- to implement ------------------------------------------------------------------------
    def _fit(self, X, Y: np.ndarray, *, X_svd=None, validation=None, rng=None) -> None:
        raise NotImplementedError

    def predict_array(self, X) -> np.ndarray:
        """Predict targets (float32, cells × targets) from a source matrix in training order."""
        raise NotImplementedError

    # -- may override --------------------------------------------------------------------------
    def derived_outputs(
        self, pred: np.ndarray, distance: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Arrays written beside predictions ``pred`` (e.g. interval bounds), by key suffix.

        One array (cells × targets, float32) per suffix of ``output_suffixes``, each row
        computed from the same row of ``pred`` alone: the fit functions and
        :func:`scmm.tl.predict` call it a block of rows at a time when the predictions go to
        disk, and write each array under ``key_added + suffix`` where they write the
        predictions. ``distance`` holds each row's reference-distance ratio (``None`` where
        the model has none). None by default.
        """
        return {}

    def extra_scores(
        self, Y: np.ndarray, pred: np.ndarray, distance: np.ndarray | None = None
    ) -> dict[str, float]:
        """Scores of held-out cells beyond the fit contract's (e.g. an interval's coverage).

        ``Y`` holds the cells' measured targets (dense, or CSR for :attr:`sparse_targets`),
        ``pred`` their predictions and ``distance`` their reference-distance ratios (where
        the model has ``output_suffixes``, else None). The fit functions add them to
        ``.uns[key_added]['scores']``. None by default.
        """
        return {}

    def fit_summary(self) -> dict[str, Any]:
        """Return what the fit learned worth reading beside the predictions (h5mu-writable).

        The fit functions add each entry to ``.uns[key_added]`` (e.g. an ensemble's weights).
        None by default.
        """
        return {}

    def _get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        raise NotImplementedError

    def _set_state(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def _save_parts(self, folder: Path) -> None:
        """Write parts kept in files of their own (e.g. an ensemble's members) into ``folder``."""

    def _load_parts(self, folder: Path) -> None:
        """Read the parts :meth:`_save_parts` wrote into ``folder``."""

    # -- shared ------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Short name of the method, used in default output keys (``"scmm_<name>"``)."""
        return self.kind

    @property
    def reads_backed(self) -> bool:
        """Whether the model reads an on-disk (backed) source a block of rows at a time.

        Models that do not are given the matrix loaded into memory by the fit functions.
        """
        return False

    @property
    def sparse_targets(self) -> bool:
        """Whether ``_fit`` takes a sparse (CSR) target as it is.

        Other models are given the target densified. A model that keeps it sparse densifies only
        the rows of each training batch, so a wide target (e.g. 23,418 genes) is never dense in
        full.
        """
        return False

    @property
    def predicts_mean_profile(self) -> bool:
        """Whether the model predicts each target's training mean, the reference of its scores.

        Such a model is not warned for not beating that reference.
        """
        return False

    @property
    def is_fitted(self) -> bool:
        """Whether the model has been fitted (or loaded)."""
        return self.target_features is not None

    def fit(
        self,
        X,
        Y: np.ndarray,
        *,
        source_features,
        target_features,
        X_svd=None,
        validation: np.ndarray | None = None,
        rng: SeedLike | np.random.Generator | None = None,
    ) -> BaseModel:
        """Fit on matrices: ``X`` cells × source features, ``Y`` cells × targets.

        Parameters
        ----------
        X
            Source values of the training cells (dense or sparse).
        Y
            Target values of the training cells (dense, or sparse: kept sparse when
            :attr:`sparse_targets`, else densified).
        source_features
            Names of the columns of ``X``.
        target_features
            Names of the columns of ``Y``.
        X_svd
            Source values of the cells the input SVD is fitted on instead of ``X``
            (``svd_fit_on="all"``: training and query cells; only their inputs are used).
        validation
            Boolean mask over the training cells held out for early stopping.
        rng
            Seed or :class:`numpy.random.Generator`.

        Returns
        -------
        The fitted model.
        """
        if X.shape[0] != Y.shape[0]:
            msg = f"`X` has {X.shape[0]} cells but `Y` has {Y.shape[0]}."
            raise ValueError(msg)
        self.source_features = [str(f) for f in source_features]
        self.target_features = [str(f) for f in target_features]
        self.reference_distance = None  # a new fit: the old one's no longer applies
        self._fit(X, self._as_targets(Y), X_svd=X_svd, validation=validation, rng=rng)
        return self

    def _as_targets(self, Y):
        """``Y`` as float32: CSR when sparse and :attr:`sparse_targets`, else dense."""
        if sp.issparse(Y) and self.sparse_targets:
            return sp.csr_matrix(Y, dtype=np.float32)
        return np.asarray(Y.toarray() if sp.issparse(Y) else Y, dtype=np.float32)

    def source_matrix(
        self,
        data: MuData | AnnData,
        *,
        allow_missing_features: bool = False,
        min_feature_overlap: float = 0.5,
        normalize: bool = False,
    ):
        """Return the source values of ``data`` with columns aligned to the training features.

        See :meth:`predict` for the arguments.
        """
        return self.aligned_source(
            data,
            allow_missing_features=allow_missing_features,
            min_feature_overlap=min_feature_overlap,
            normalize=normalize,
        )[0]

    def aligned_source(
        self,
        data: MuData | AnnData,
        *,
        allow_missing_features: bool = False,
        min_feature_overlap: float = 0.5,
        normalize: bool = False,
    ) -> tuple[Any, dict[str, Any]]:
        """Source values aligned to the training features, checked against the training record.

        Returns
        -------
        The matrix (cells × the model's source features) and the feature report of
        :func:`scmm._validate.align_features` (without its ``found`` array).
        """
        self._check_fitted()
        if isinstance(data, MuData):
            adata = check_modality(data, self.source, "source")
        else:
            adata = data
        where = f"mdata[{self.source!r}]." + (f"layers[{self.layer!r}]" if self.layer else "X")
        check_orientation(adata.obs_names, adata.var_names, self.source_features, where)
        check_one_feature_type(adata, self.source)
        raw_names = None if adata.raw is None else adata.raw.var_names  # for a hint
        space = (self.input_space or {}).get("source")
        idf = self.input_arrays.get("idf") if normalize else None
        n_vars = adata.n_vars
        if normalize:
            record = (space or {}).get("normalize") if self.layer is None else None
            adata = _input_space.features_to_normalise(
                adata, record, self.source_features, self.source_feature_ids, self.source
            )
            adata = _input_space.normalized_copy(adata, record, self.source, training_idf=idf)
        elif "idf" in self.input_arrays and self.layer is None:
            _input_space.check_idf(adata.var, self.source_features, self.input_arrays["idf"])
        query = get_matrix(adata, self.layer, "layer")
        X, report = align_features(
            query,
            adata.var,
            self.source_features,
            feature_ids=self.source_feature_ids,
            allow_missing=allow_missing_features,
            min_overlap=min_feature_overlap,
            arg=where,
            raw_names=raw_names,
        )
        found = report.pop("found")
        report["n_ignored"] += n_vars - adata.n_vars  # those left out of the totals too
        if idf is not None:  # term frequencies of these cells × the training cells' IDF
            X = _input_space.weigh_features(X, idf)
        if space is not None:
            counts = (space.get("normalize") or {}).get("layer", "counts")
            _input_space.check_source(
                space,
                X,
                found,
                self.input_arrays,
                mod=self.source,
                arg=where,
                query=query,
                has_counts=not normalize and counts in adata.layers,
            )
        return fill_missing(X, found, self.input_arrays.get("mean")), report

    def predict(
        self,
        data: MuData | AnnData,
        *,
        allow_missing_features: bool = False,
        min_feature_overlap: float = 0.5,
        normalize: bool = False,
    ) -> np.ndarray:
        """Predict the targets of every cell of ``data``.

        Parameters
        ----------
        data
            A MuData with the source modality, or an AnnData of the source modality. Features
            are matched by name, then by the Ensembl ids of ``var['gene_ids']``.
        allow_missing_features
            Fill source features the data lacks at their training means (with a warning)
            instead of raising.
        min_feature_overlap
            Smallest fraction of the model's source features the data must have, even with
            ``allow_missing_features=True``.
        normalize
            The data hold raw counts: normalise them with the :func:`scmm.pp.normalize` call
            recorded for the training values first.

        Returns
        -------
        Predictions, float32 array of shape ``(n_cells, n_targets)`` in the target space the
        model was trained on.
        """
        X, _ = self.aligned_source(
            data,
            allow_missing_features=allow_missing_features,
            min_feature_overlap=min_feature_overlap,
            normalize=normalize,
        )
        return self.predict_array(X)

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            msg = f"This {type(self).__name__} is not fitted; fit it with a `scmm.tl.fit_*` call."
            raise RuntimeError(msg)

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Save the model to the folder ``path``.

        Written to a temporary sibling folder then renamed into place, so an interrupted save
        leaves any previous model at ``path`` intact. ``model.json`` records the sha256 of
        every other file, checked by :func:`scmm.models.load`; a model holding NaN or infinite
        values is refused.

        Parameters
        ----------
        path
            Folder to create.
        overwrite
            Replace an existing model folder (one holding ``model.json``); any other file or
            folder at ``path`` is refused, never deleted.
        """
        _persist.save_model(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike) -> BaseModel:
        """Load a model saved with :meth:`save` (see :func:`scmm.models.load`)."""
        model = _persist.load(path)
        if not isinstance(model, cls):
            msg = f"`{path}` holds a {type(model).__name__}, not a {cls.__name__}."
            raise TypeError(msg)
        return model

    def __repr__(self) -> str:
        state = (
            f"{self.source}→{self.target}, {len(self.source_features)} → "
            f"{len(self.target_features)} features"
            if self.is_fitted
            else "not fitted"
        )
        return f"{type(self).__name__}({state})"
