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
  scores) to ``mdata.uns[key_added]``; predictions larger than
  ``scmm.settings.memory_budget`` are written to a ``.npy`` file on disk, a block of cells at a
  time, and the layer is a read-only memory map of it (the path in
  ``.uns[key_added]['predictions_path']``, and one logged line says so);
- never copies the training (or held-out) rows of a sparse or backed source for models that
  read row blocks (they get a ``RowSubset``, read a block of rows at a time);
- leaves the MuData untouched if anything fails, and returns the fitted model.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import scipy.sparse as sp
from anndata import AnnData
from mudata import MuData

from .. import _disk, _keys, metrics
from .._utils import is_backed
from .._validate import (
    check_finite_predictions,
    get_matrix,
    paired_modalities,
    train_mask,
    warn_constant_rows,
)
from ..metrics import column_means, control_names, warn_below_mean_profile
from ..models import SVD_FIT_ON, BaseModel, attach_reference_distance
from ._prediction_store import predict_to_disk, rows_of

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


def check_pair(
    mdata: MuData, source: str, target: str, svd_fit_on: str
) -> tuple[AnnData, AnnData, np.ndarray]:
    """Check the arguments every fit shares; return the two modalities and the cell order.

    ``order[i]`` is the target row of source cell ``i`` (as ``align_cells`` returns it).
    """
    if svd_fit_on not in SVD_FIT_ON:
        msg = f"`svd_fit_on={svd_fit_on!r}` is not one of {SVD_FIT_ON}."
        raise ValueError(msg)
    return paired_modalities(mdata, source, target)


def fit_params(
    kind: str,
    own: dict[str, Any],
    *,
    source: str,
    target: str,
    layer: str | None,
    target_layer: str | None,
    svd_fit_on: str,
    write_predictions,
    n_train_cells: int,
    controls: list[str],
) -> dict[str, Any]:
    """Return a fit's ``.uns[key_added]['params']``: kind, own parameters, the contract's."""
    return _h5_safe(
        {
            "model": kind,
            **own,
            "source": source,
            "target": target,
            "layer": layer,
            "target_layer": target_layer,
            "svd_fit_on": svd_fit_on,
            "write_predictions": write_predictions,
            "n_train_cells": n_train_cells,
            "control_features": controls or None,
            "versions": _versions(),
        }
    )


def fit_model(
    model: BaseModel,
    mdata: MuData,
    source: str,
    target: str,
    *,
    train=None,
    layer: str | None = None,
    target_layer: str | None = None,
    key_added: str | None = None,
    svd_fit_on: str = "train",
    write_predictions: bool | str = True,
    validation=None,
    control_features="auto",
    rng=None,
) -> BaseModel:
    """Fit ``model`` following the fit contract and write its predictions into ``mdata``.

    ``key_added=None`` writes under ``"scmm_<model.name>"``.
    """
    key_added = key_added or _keys.prediction(model.name)
    src, tgt, order = check_pair(mdata, source, target, svd_fit_on)
    storage = _disk.storage(write_predictions, src.n_obs * tgt.n_vars * 4, "write_predictions")
    controls = control_names(tgt.var_names, control_features)  # checked before fitting
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
    mask = train_mask(mdata, src, train, source)
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
    X_train = rows_of(X, train_idx, model) if subset else X
    Y_train = Y_all[train_idx] if subset else Y_all
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
        rng=rng,
    )
    attach_reference_distance(model, X_train)  # saved with the model; read by `predict`
    # the training rows are not needed past here, only their mean (the scores' mean profile);
    # a row subset is a copy (e.g. 1.2 GiB of RNA at the 2022 competition's Multiome size)
    train_mean = column_means(Y_train)
    del X_train, Y_train
    uns = {
        "params": fit_params(
            model.kind,
            model.params,
            source=source,
            target=target,
            layer=layer,
            target_layer=target_layer,
            svd_fit_on=svd_fit_on,
            write_predictions=write_predictions,
            n_train_cells=int(mask.sum()),
            controls=controls,
        )
    }
    test_idx = np.flatnonzero(~mask)
    inverse = order if identity else np.argsort(order)  # target row → source row
    pred, path, pred_test = None, None, None
    if storage == "memory":
        pred = model.predict_array(X)
        check_finite_predictions(pred, key_added)
    elif storage == "disk":
        path = _disk.new_path(key_added)
    try:
        if path is not None:
            pred_test = predict_to_disk(model, X, inverse, test_idx, path)
            check_finite_predictions(np.load(path, mmap_mode="r"), key_added)
        if subset:
            # metrics read a block of rows at a time: a sparse target is not densified
            Y_test = Y_all[test_idx]
            if pred_test is None:
                pred_test = (
                    pred[test_idx]
                    if pred is not None
                    else model.predict_array(rows_of(X, test_idx, model))
                )
                check_finite_predictions(pred_test, key_added)
            constant = warn_constant_rows(Y_test, "held-out cells")
            uns["scores"] = metrics.held_out_scores(
                Y_test, pred_test, train_mean, tgt.var_names, controls=control_features
            )
            del pred_test
            if not (model.predicts_mean_profile or constant):
                warn_below_mean_profile(uns["scores"], key_added)
            logger.info("%s held-out scores: %s", key_added, uns["scores"])
        if pred is not None and not identity:
            pred = pred[inverse]
        if path is not None:
            pred = np.asarray(np.load(path, mmap_mode="r"))  # read-only, h5mu-writable view
            uns["predictions_path"] = str(path)
    except BaseException:
        if path is not None:
            path.unlink(missing_ok=True)
        raise
    # every output is ready: write them together
    if pred is not None:
        tgt.layers[key_added] = pred
    if path is not None:
        _disk.log_on_disk(
            f"{key_added}: predictions",
            (tgt.n_obs, tgt.n_vars),
            tgt.n_obs * tgt.n_vars * 4,
            _disk.reason(write_predictions, "write_predictions"),
            path,
            f"mdata[{target!r}].layers[{key_added!r}]",
        )
    mdata.uns[key_added] = uns
    return model
