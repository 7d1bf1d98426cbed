"""The fit contract every ``scmm.tl.fit_*`` function follows, in one place.

``fit_X(mdata, source, target, *, train=None, layer=None, target_layer=None, key_added=None,
svd_fit_on="train", rng=None, ...)``:

- trains on the cells ``train`` selects (bool mask over the cells, or the name of a boolean
  ``.obs`` column; default all cells) from ``mdata[source].X`` (or ``layer``) to
  ``mdata[target].X`` (or ``target_layer``); the two modalities must hold the same cells
  (matched by ``obs_names``);
- the input SVD is fitted on the training cells (``svd_fit_on="train"``) or on all cells'
  *inputs* (``"all"``; targets of held-out cells are never used);
- writes predictions for all cells to ``mdata[target].layers[key_added]`` (unless
  ``write_predictions=False``) and parameters (and, when there are held-out cells, their
  scores) to ``mdata.uns[key_added]``;
- never copies the training (or held-out) rows of a sparse or backed source for models that
  read row blocks (they get a ``RowSubset``, read a block of rows at a time);
- leaves the MuData untouched if anything fails, and returns the fitted model.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from mudata import MuData

from .. import _keys, metrics
from .._validate import (
    align_cells,
    check_modality,
    get_matrix,
    resolve_train,
    warn_constant_rows,
)
from ..models._base import BaseModel
from ..models._ensemble import EnsembleModel
from ..models._preprocess import SVD_FIT_ON
from ..pp._svd import RowSubset, is_backed

logger = logging.getLogger("scmm")


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("scmm", "torch", "lightning", "scikit-learn", "anndata", "mudata"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _h5_safe(params: dict) -> dict:
    """Drop ``None`` values and turn tuples into lists so ``.uns`` stays writable to h5mu."""
    out = {}
    for k, v in params.items():
        if v is None:
            continue
        if isinstance(v, dict):
            v = _h5_safe(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[k] = v
    return out


def _train_mask(mdata: MuData, source: AnnData, train) -> np.ndarray:
    if isinstance(train, str) and train in mdata.obs.columns:
        col = mdata.obs[train].reindex(source.obs_names)
        return resolve_train(train, pd.DataFrame({train: col.to_numpy()}), arg="train")
    return resolve_train(train, source.obs, arg="train")


def _rows(X, rows: np.ndarray, model: BaseModel):
    """``X[rows]``: a block-read view of a sparse or backed ``X`` for models that read those."""
    if model.reads_backed and (sp.issparse(X) or is_backed(X)):
        return RowSubset(X, rows)
    return X[rows]


def fit_model(
    model: BaseModel,
    mdata: MuData,
    source: str,
    target: str,
    *,
    train=None,
    layer: str | None = None,
    target_layer: str | None = None,
    key_added: str,
    svd_fit_on: str = "train",
    write_predictions: bool = True,
    validation=None,
    rng=None,
) -> BaseModel:
    """Fit ``model`` following the fit contract and write its predictions into ``mdata``."""
    src = check_modality(mdata, source, "source")
    tgt = check_modality(mdata, target, "target")
    if source == target:
        msg = f"`source` and `target` are both {source!r}; pass two different modalities."
        raise ValueError(msg)
    if svd_fit_on not in SVD_FIT_ON:
        msg = f"`svd_fit_on={svd_fit_on!r}` is not one of {SVD_FIT_ON}."
        raise ValueError(msg)
    order = align_cells(src, tgt, f"source={source!r}", f"target={target!r}")
    X = get_matrix(src, layer, "layer", backed=True)
    if is_backed(X) and not model.reads_backed:
        X = X.to_memory()
    Y_all = get_matrix(tgt, target_layer, "target_layer")
    if sp.issparse(Y_all) and model.sparse_targets:  # densified a batch at a time
        Y_all = sp.csr_matrix(Y_all)
    else:
        Y_all = Y_all.toarray() if sp.issparse(Y_all) else np.asarray(Y_all)
    identity = np.array_equal(order, np.arange(len(order)))
    Y_all = (Y_all if identity else Y_all[order]).astype(np.float32, copy=False)
    mask = _train_mask(mdata, src, train)
    train_idx = np.flatnonzero(mask)
    if validation is not None and not isinstance(validation, float):
        validation = np.asarray(validation, dtype=bool)
        if validation.shape != (src.n_obs,):
            msg = f"`validation` must be a bool mask over the {src.n_obs} cells."
            raise ValueError(msg)
        if (validation & ~mask).any():
            msg = "`validation` selects cells outside `train`; pick validation cells among them."
            raise ValueError(msg)
        validation = validation[train_idx]
    subset = not mask.all()
    # "all": the SVD reads every cell's inputs in place (no stacked copy of the source)
    X_svd = X if svd_fit_on == "all" and subset else None
    model.source, model.target = source, target
    model.layer, model.target_layer = layer, target_layer
    model.fit(
        _rows(X, train_idx, model) if subset else X,
        Y_all[train_idx] if subset else Y_all,
        source_features=src.var_names,
        target_features=tgt.var_names,
        X_svd=X_svd,
        validation=validation,
        rng=rng,
    )
    pred = model.predict_array(X) if write_predictions else None
    uns = {
        "params": _h5_safe(
            {
                "model": model.kind,
                **model.params,
                "source": source,
                "target": target,
                "layer": layer,
                "target_layer": target_layer,
                "svd_fit_on": svd_fit_on,
                "write_predictions": write_predictions,
                "n_train_cells": int(mask.sum()),
                "versions": _versions(),
            }
        )
    }
    if subset:
        test_idx = np.flatnonzero(~mask)
        # metrics read a block of rows at a time: a sparse target is not densified
        Y_test = Y_all[test_idx]
        pred_test = (
            pred[test_idx] if pred is not None else model.predict_array(_rows(X, test_idx, model))
        )
        warn_constant_rows(Y_test, "held-out cells")
        uns["scores"] = {
            "n_cells": len(test_idx),
            "pearson_per_cell": metrics.pearson_per_cell(Y_test, pred_test),
            "pearson_per_feature": metrics.pearson_per_feature(Y_test, pred_test),
            "rmse": metrics.rmse(Y_test, pred_test),
        }
        del pred_test
        logger.info("%s held-out scores: %s", key_added, uns["scores"])
    # every output is ready: write them together
    if pred is not None:
        if not identity:
            inverse = np.empty_like(order)
            inverse[order] = np.arange(len(order))
            pred = pred[inverse]
        tgt.layers[key_added] = pred
    mdata.uns[key_added] = uns
    return model


def predict(
    model: BaseModel,
    data: MuData | AnnData,
    *,
    key_added: str | None = None,
    allow_missing_features: bool = False,
) -> None:
    """Predict the target modality for the cells of ``data`` and write it there.

    Cells may have only the source modality. Source features are matched by name; features the
    data lacks are an error listing them (or zero-filled with a warning when
    ``allow_missing_features=True``), extra ones are ignored with a warning.

    Parameters
    ----------
    model
        A fitted model (returned by a ``fit_*`` function or :func:`scmm.models.load`).
    data
        A MuData holding the model's source modality, or an AnnData of that modality.
    key_added
        Output key; default ``"scmm_<model name>"`` (e.g. ``"scmm_mlp"``, ``"scmm_ridge"``).
    allow_missing_features
        Zero-fill missing source features instead of raising.

    Returns
    -------
    ``None``. Writes, when ``data`` is a MuData with the target modality,

    ``data[target].layers[key_added]`` : ndarray (n_obs, n_targets)
        Predictions for the target's cells (all must be present in the source).

    otherwise

    ``data[source].obsm[key_added]`` (or ``adata.obsm[key_added]``) : DataFrame
        Predictions, one column per target feature.

    and ``.uns[key_added]['params']`` : dict
        The model kind, source and target.

    An :class:`~scmm.models.EnsembleModel` also writes its interval bounds next to the
    predictions, under ``key_added + '_lower'`` and ``key_added + '_upper'``.

    Examples
    --------
    >>> import numpy as np, anndata as ad, mudata as md, scmm
    >>> rng = np.random.default_rng(0)
    >>> rna = ad.AnnData(rng.poisson(2.0, (60, 30)).astype("float32"))
    >>> prot = ad.AnnData(rng.normal(size=(60, 4)).astype("float32"))
    >>> prot.var_names = ["CD3", "CD4", "CD8", "CD19"]  # distinct from the gene names
    >>> mdata = md.MuData({"rna": rna, "prot": prot})
    >>> model = scmm.tl.fit_baseline(mdata, "rna", "prot", method="ridge", n_components=5)
    >>> query = md.MuData({"rna": rna[:10].copy()})
    >>> scmm.tl.predict(model, query)
    >>> query["rna"].obsm["scmm_ridge"].shape
    (10, 4)
    """
    key_added = key_added or _keys.prediction(model.name)
    if isinstance(data, AnnData):
        src, tgt, holder = data, None, data
    else:
        src = check_modality(data, model.source, "model.source")
        tgt = data.mod.get(model.target)
        holder = data
    pred = model.predict(src, allow_missing_features=allow_missing_features)
    outputs = {key_added: pred}
    if isinstance(model, EnsembleModel):  # its interval travels with the prediction
        outputs.update(zip(_keys.interval(key_added), model.interval_bounds(pred), strict=True))
    params = {"model": model.kind, "source": model.source, "target": model.target}
    if tgt is not None:
        idx = src.obs_names.get_indexer(tgt.obs_names)
        if (idx < 0).any():
            msg = (
                f"{int((idx < 0).sum())} cells of the target modality {model.target!r} have no "
                f"{model.source!r} values to predict from; subset to paired cells first."
            )
            raise ValueError(msg)
        if list(tgt.var_names) != model.target_features:
            msg = (
                f"The {model.target!r} modality's features differ from the model's targets; "
                "drop it (or predict from the source AnnData) to get a DataFrame in `.obsm`."
            )
            raise ValueError(msg)
        for key, values in outputs.items():
            tgt.layers[key] = values[idx]
    else:
        for key, values in outputs.items():
            src.obsm[key] = pd.DataFrame(
                values, index=src.obs_names.copy(), columns=pd.Index(model.target_features)
            )
    holder.uns[key_added] = {"params": _h5_safe(params)}
