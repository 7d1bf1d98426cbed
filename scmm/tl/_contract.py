"""The fit contract every ``scmm.tl.fit_*`` function follows, in one place.

``fit_X(mdata, source, target, *, train=None, layer=None, target_layer=None, key_added=None,
svd_fit_on="train", rng=None, ...)``:

- trains on the cells ``train`` selects (bool mask over the cells, or the name of a boolean
  ``.obs`` column; default all cells) from ``mdata[source].X`` (or ``layer``) to
  ``mdata[target].X`` (or ``target_layer``); the two modalities must hold the same cells
  (matched by ``obs_names``);
- the input SVD is fitted on the training cells (``svd_fit_on="train"``) or on all cells'
  *inputs* (``"all"``; targets of held-out cells are never used);
- only the training cells' targets are read for fitting (checked: no NaN); the held-out
  cells' targets only score the predictions, and may be missing (NaN: no scores);
- writes predictions for all cells to ``mdata[target].layers[key_added]`` (unless
  ``write_predictions=False``) and parameters (and, when there are held-out cells, their
  scores) to ``mdata.uns[key_added]``; predictions larger than
  ``scmm.settings.memory_budget`` are written to a ``.npy`` file on disk, a block of cells at a
  time, and the layer is a read-only memory map of it (the path in
  ``.uns[key_added]['predictions_path']``, and one logged line says so);
- never copies the training (or held-out) rows of a sparse or backed source for models that
  read row blocks (they get a ``RowSubset``, read a block of rows at a time);
- leaves the MuData untouched if anything fails, and returns the fitted model.

Every ``fit_*`` builds its model and calls :func:`fit_model`, the one fit path. A model adds to
it through hooks of :class:`~scmm.models.BaseModel`, never through a case of its own here:
:meth:`~scmm.models.BaseModel.derived_outputs` (layers beside the predictions, e.g. an
ensemble's interval bounds: in memory or on disk with them),
:meth:`~scmm.models.BaseModel.extra_scores` (held-out scores beyond the contract's) and
:meth:`~scmm.models.BaseModel.fit_summary` (further ``.uns[key_added]`` entries); a ``fit_*``
passes its own ``.uns`` parameters (``params``) and further keywords of ``model.fit``
(``fit_kwargs``, e.g. an ensemble's ``groups``).
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Unpack

import numpy as np
import scipy.sparse as sp
from anndata import AnnData
from mudata import MuData

from .. import _disk, _keys, metrics
from .._validate import (
    check_finite_predictions,
    check_output_keys,
    holds_genes,
    warn_constant_rows,
)
from ..metrics import control_names, warn_below_mean_profile
from ..models import (
    BaseModel,
    BindingKeywords,
    as_model_targets,
    check_pair,
    fit_cells,
    query_ratio,
    rows_of,
)
from ._prediction_store import derived, output_paths, predict_to_disk

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
    key_added: str | None = None,
    write_predictions: bool | str = True,
    validation=None,
    control_features="auto",
    params: dict[str, Any] | None = None,
    fit_kwargs: dict[str, Any] | None = None,
    **binding: Unpack[BindingKeywords],
) -> BaseModel:
    """Fit ``model`` following the fit contract and write its predictions into ``mdata``.

    ``key_added=None`` writes under ``"scmm_<model.name>"``. The keywords are the contract's
    (see the module; ``binding`` those of :class:`~scmm.models.BindingKeywords`, the cells and
    values the fit reads, handed to the models' one fit path); ``params`` are the fit
    function's own entries of ``.uns[key_added]['params']`` (default ``model.params``),
    ``fit_kwargs`` further keyword arguments of ``model.fit`` (e.g. ``{"groups": ...,
    "progress": ...}`` of :meth:`scmm.models.EnsembleModel.fit`).
    """
    key_added = key_added or _keys.prediction(model.name)
    layer, target_layer = binding.get("layer"), binding.get("target_layer")
    svd_fit_on = binding.get("svd_fit_on", "train")
    pair = check_pair(mdata, source, target, svd_fit_on)
    src, tgt, order = pair
    n_bytes = src.n_obs * tgt.n_vars * 4  # per layer: the predictions and each derived output
    storage = _disk.storage(
        write_predictions, n_bytes * (1 + len(model.output_suffixes)), "write_predictions"
    )
    if isinstance(control_features, str) and control_features == "auto":
        # genes have no isotype controls (`CTRL` and `PIGG` are genes)
        control_features = None if holds_genes(tgt, target) else "auto"
    controls = control_names(tgt.var_names, control_features)  # checked before fitting
    if storage is not None:
        keys = [key_added + suffix for suffix in ("", *model.output_suffixes)]
        check_output_keys(tgt.layers, keys, mdata.uns, key_added, f"mdata[{target!r}].layers")
    fitted = fit_cells(
        model, mdata, source, target, validation=validation, fit_kwargs=fit_kwargs, pair=pair,
        **binding,
    )  # fmt: skip
    X, mask = fitted.X, fitted.mask
    test_idx = np.flatnonzero(~mask)
    subset = not mask.all()
    identity = np.array_equal(order, np.arange(len(order)))
    uns = {
        "params": fit_params(
            model.kind,
            model.params if params is None else params,
            source=source,
            target=target,
            layer=layer,
            target_layer=target_layer,
            svd_fit_on=svd_fit_on,
            write_predictions=write_predictions,
            n_train_cells=int(mask.sum()),
            controls=controls,
        ),
        **model.fit_summary(),
    }
    inverse = order if identity else np.argsort(order)  # target row → source row
    distance = _reference_ratio(model, X)  # per source row, for derived outputs and scores
    path = _disk.new_path(key_added) if storage == "disk" else None
    outputs, pred_test = {}, None
    try:
        if storage is not None:
            outputs, pred_test = _predictions(
                model, X, path, inverse, test_idx, distance, key_added
            )
        if subset:
            scores = _held_out_scores(
                model, X, tgt, target_layer, order[test_idx], test_idx, pred_test,
                train_mean=fitted.train_mean, distance=distance, controls=control_features,
                key_added=key_added,
            )  # fmt: skip
            if scores is not None:
                uns["scores"] = scores
    except BaseException:
        if path is not None:
            for p in output_paths(model, path).values():
                p.unlink(missing_ok=True)
        raise
    # every output is ready: write them together
    for suffix, values in outputs.items():
        tgt.layers[key_added + suffix] = values
    if path is not None:
        uns["predictions_path"] = str(path)
        for suffix, p in output_paths(model, path).items():
            _disk.log_on_disk(
                f"{key_added}{suffix}: " + ("predictions" if not suffix else "derived output"),
                (tgt.n_obs, tgt.n_vars),
                n_bytes,
                _disk.reason(write_predictions, "write_predictions"),
                p,
                f"mdata[{target!r}].layers[{key_added + suffix!r}]",
            )
    mdata.uns[key_added] = uns
    return model


def _predictions(model, X, path, inverse, test_idx, distance, key_added: str):
    """Predict every cell, in memory (``path`` None) or to ``path`` and the files beside it.

    Returns the predictions and derived outputs in target row order (``inverse[t]`` the source
    row of target row ``t``), by key suffix (``""``: the predictions; on disk read-only,
    h5mu-writable views of the files), and the held-out cells' (source rows ``test_idx``)
    predictions or None. Raises before anything is written if a value is not finite.
    """
    if path is not None:
        pred_test = predict_to_disk(model, X, inverse, test_idx, path, distance)
        files = output_paths(model, path).items()
        outputs = {s: np.asarray(np.load(p, mmap_mode="r")) for s, p in files}
        for suffix, values in outputs.items():
            check_finite_predictions(values, key_added + suffix)
        return outputs, pred_test
    pred = model.predict_array(X)
    check_finite_predictions(pred, key_added)
    pred_test = pred[test_idx] if len(test_idx) else None
    if not np.array_equal(inverse, np.arange(len(inverse))):
        pred = pred[inverse]
    extra = derived(model, pred, _take(distance, inverse))
    for suffix, values in extra.items():
        check_finite_predictions(values, key_added + suffix)
    return {"": pred, **extra}, pred_test


def _reference_ratio(model: BaseModel, X) -> np.ndarray | None:
    """Each source row's reference-distance ratio, where the model's derived outputs read it."""
    if not model.output_suffixes:
        return None
    found = query_ratio(model, X)
    return None if found is None else found[0]


def _take(values: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if values is None else values[rows]


def _held_out_scores(
    model: BaseModel,
    X,
    tgt: AnnData,
    target_layer: str | None,
    target_rows: np.ndarray,
    test_idx: np.ndarray,
    pred_test: np.ndarray | None,
    *,
    train_mean: np.ndarray,
    distance: np.ndarray | None,
    controls,
    key_added: str,
) -> dict | None:
    """Scores of the held-out cells (source rows ``test_idx``); None when targets are missing."""
    Y = tgt.X if target_layer is None else tgt.layers[target_layer]  # checked by `fit_cells`
    # metrics read a block of rows at a time: a sparse target is not densified
    Y_test = as_model_targets(Y[target_rows], model)
    if not np.isfinite(Y_test.data if sp.issparse(Y_test) else Y_test).all():
        logger.info("%s: held-out cells have missing targets: no held-out scores", key_added)
        return None
    if pred_test is None:
        pred_test = model.predict_array(rows_of(X, test_idx, model))
        check_finite_predictions(pred_test, key_added)
    constant = warn_constant_rows(Y_test, "held-out cells")
    scores = metrics.held_out_scores(
        Y_test, pred_test, train_mean, tgt.var_names, controls=controls
    )
    scores.update(model.extra_scores(Y_test, pred_test, _take(distance, test_idx)))
    if not (model.predicts_mean_profile or constant):
        warn_below_mean_profile(scores, key_added)
    logger.info("%s held-out scores: %s", key_added, scores)
    return scores
