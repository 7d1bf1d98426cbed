"""Held-out scores of a fit, side by side with the mean profile on the same cells.

The mean profile (every cell gets each target's training mean) is what per-cell Pearson gives
for free: on ATAC → RNA it already scores 0.58 on ``mop_snare2``. A model is only useful where
it beats it, so the scores carry it and the gain, and a fit that does not beat it warns.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._utils import CONTROL_PATTERN, harmonize_protein_names
from .._validate import check_measured_normalised
from . import _correlation as metrics


def control_mask(names: pd.Index, controls: str | Sequence[str] | None) -> np.ndarray:
    """Which targets are isotype controls: ``"auto"`` (by name), a list of names, or ``None``."""
    names = pd.Index([str(n) for n in names])
    if controls is None:
        return np.zeros(len(names), dtype=bool)
    if isinstance(controls, str):
        if controls != "auto":
            msg = f"`control_features={controls!r}` must be 'auto', a list of target names or None."
            raise ValueError(msg)
        return np.array([bool(CONTROL_PATTERN.search(n)) for n in names], dtype=bool)
    wanted = pd.Index([str(c) for c in controls])
    unknown = wanted.difference(names)
    if len(unknown):
        msg = (
            f"`control_features` names {list(unknown)[:10]} that are not target features; pass "
            "names of `mdata[target].var_names`."
        )
        raise KeyError(msg)
    return names.isin(wanted)


def control_names(names: pd.Index, controls: str | Sequence[str] | None) -> list[str]:
    """Names of the isotype-control targets (see :func:`control_mask`)."""
    return [str(n) for n in names[control_mask(names, controls)]]


def _scores(Y, P, ctrl: np.ndarray) -> dict:
    """Scores over the targets that are not controls (all of them when all are controls)."""
    keep = ~ctrl if not ctrl.all() else np.ones_like(ctrl)
    Y = Y if keep.all() else Y[:, np.flatnonzero(keep)]
    P = P if keep.all() else P[:, np.flatnonzero(keep)]
    return {
        "pearson_per_cell": metrics.pearson_per_cell(Y, P),
        "pearson_per_feature": metrics.pearson_per_feature(Y, P) if not ctrl.all() else 0.0,
        "rmse": metrics.rmse(Y, P),
    }


def column_means(Y) -> np.ndarray:
    """Each column's mean of the dense or sparse ``Y`` (float32), the mean profile."""
    return np.asarray(Y.mean(axis=0), dtype=np.float32).ravel()


def held_out_scores(
    Y_test, pred_test, train_mean, names: pd.Index, *, controls: str | Sequence[str] | None = "auto"
) -> dict:
    """Scores of ``pred_test``, of the mean profile ``train_mean``, and the model's gain.

    The scores (per-cell and per-feature Pearson, RMSE) leave out the isotype controls, which
    carry no signal to predict; they are scored apart (``controls_pearson_per_feature``).

    Parameters
    ----------
    Y_test
        Measured values of the held-out cells, cells × targets (dense or sparse).
    pred_test
        Predictions for the same cells and targets.
    train_mean
        Each target's mean over the training cells: the mean profile every cell gets.
    names
        The target names (to find the isotype controls).
    controls
        ``"auto"`` (names matching isotype / IgG / control), a list of names, or None.

    Returns
    -------
    One flat dict of numbers (``pd.Series(scores)`` stays numeric): ``n_cells``, the model's
    ``pearson_per_cell``, ``pearson_per_feature`` and ``rmse``, the same with a
    ``mean_profile_`` prefix, ``gain_pearson_per_cell``, ``gain_pearson_per_feature``,
    ``rmse_reduction`` and, where there are controls, ``n_controls`` and
    ``controls_pearson_per_feature``.

    Examples
    --------
    >>> import numpy as np, pandas as pd, scmm
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.normal(size=(50, 3))
    >>> names = pd.Index(["CD3", "CD4", "IgG1_ctrl"])
    >>> s = scmm.metrics.held_out_scores(Y, Y + 0.1, Y.mean(axis=0), names)
    >>> s["n_controls"], round(s["pearson_per_feature"], 3)
    (1, 1.0)
    """
    ctrl = control_mask(names, controls)
    reference = np.broadcast_to(np.asarray(train_mean, np.float32), Y_test.shape)
    model, ref = _scores(Y_test, pred_test, ctrl), _scores(Y_test, reference, ctrl)
    out = {"n_cells": int(Y_test.shape[0]), **model}
    out.update({f"mean_profile_{k}": v for k, v in ref.items()})
    out["gain_pearson_per_cell"] = model["pearson_per_cell"] - ref["pearson_per_cell"]
    out["gain_pearson_per_feature"] = model["pearson_per_feature"] - ref["pearson_per_feature"]
    out["rmse_reduction"] = ref["rmse"] - model["rmse"]
    if ctrl.any():
        cols = np.flatnonzero(ctrl)
        Yc = Y_test[:, cols]
        out["n_controls"] = int(ctrl.sum())
        out["controls_pearson_per_feature"] = metrics.pearson_per_feature(
            Yc.toarray() if sp.issparse(Yc) else Yc, pred_test[:, cols]
        )
    return out


def warn_below_mean_profile(scores: dict, key: str) -> None:
    """Warn when the model does not beat the mean profile on the held-out cells."""
    worse = []
    for score, name in (
        ("pearson_per_cell", "per-cell"),
        ("pearson_per_feature", "mean per-feature"),
    ):
        model, mean = scores[score], scores[f"mean_profile_{score}"]
        if model <= mean:
            worse.append(f"{name} Pearson {model:.3f} vs {mean:.3f}")
    if worse:
        warnings.warn(
            f"`{key}` does not beat the mean profile (each target's training mean for every "
            f"cell) on the {scores['n_cells']} held-out cells: {'; '.join(worse)}. Its "
            "predictions add nothing over the average there; try a baseline "
            "(`scmm.tl.fit_baseline`), more training cells, or check the inputs. Scores: "
            f"`mdata.uns[{key!r}]['scores']`.",
            UserWarning,
            stacklevel=4,
        )


def match_targets(model_targets, measured, *, proteins: bool = True) -> dict:
    """Pair a model's targets with a query's measured proteins by harmonised name.

    Both name lists go through :func:`scmm.pp.harmonize_protein_names` (``CD3_TotalSeqB``
    meets ``CD3``, ``PD-1`` meets ``CD279``, a second clone ``CD4_2`` meets only a
    ``CD4_2``). Isotype controls are never paired. Genes (``proteins=False``) are paired by
    their exact names: no aliases (the gene ``CD8A`` is not the protein ``CD8``), and no
    controls (``CTRL`` and ``PIGG`` are genes).

    Returns
    -------
    dict with ``shared`` (harmonised names, in the model's order), ``model_index`` and
    ``measured_index`` (int arrays: the columns of each side, in that order),
    ``left_out_model`` and ``left_out_measured`` (the other names, as each side writes them;
    controls included).

    Examples
    --------
    >>> import scmm
    >>> m = scmm.metrics.match_targets(["CD3_TotalSeqB", "PD-1", "CD8a"], ["CD279", "CD3", "IgG1"])
    >>> m["shared"], m["left_out_model"], m["left_out_measured"]
    (['CD3', 'CD279'], ['CD8a'], ['IgG1'])
    """
    if proteins:
        model = harmonize_protein_names(model_targets)
        query = harmonize_protein_names(measured)
    else:
        model, query = (
            pd.DataFrame(
                {"original_name": [str(n) for n in names], "isotype_control": False},
                index=pd.Index([str(n) for n in names], name="name"),
            )
            for names in (model_targets, measured)
        )
        for side, label in ((model, "model"), (query, "query")):  # ambiguous: never paired
            dup = side.index.duplicated(keep=False)
            names = np.asarray(side.index, dtype=object)
            names[dup] = [f"\0{label} duplicated {i}" for i in np.flatnonzero(dup)]
            side.index = pd.Index(names, name="name")
    usable = ~model["isotype_control"].to_numpy()
    in_query = model.index.isin(query.index[~query["isotype_control"].to_numpy()])
    shared = model.index[usable & in_query]
    model_index = model.index.get_indexer(shared)
    measured_index = query.index.get_indexer(shared)
    left_model = np.setdiff1d(np.arange(len(model)), model_index)
    left_query = np.setdiff1d(np.arange(len(query)), measured_index)
    return {
        "shared": [str(n) for n in shared],
        "model_index": model_index,
        "measured_index": measured_index,
        "left_out_model": [str(n) for n in model["original_name"].to_numpy()[left_model]],
        "left_out_measured": [str(n) for n in query["original_name"].to_numpy()[left_query]],
    }


def measured_rows(measured_cells, predicted_cells, fix: str) -> tuple[np.ndarray, np.ndarray]:
    """Which predicted cells were measured, and their rows among the measured cells.

    Predicted cells without measurements (proteins measured for some cells only) are left out
    with a warning; none measured is a ``ValueError`` ending in ``fix``.
    """
    rows = pd.Index(measured_cells).get_indexer(predicted_cells)
    keep = rows >= 0
    if not keep.any():
        msg = (
            f"None of the {len(rows)} predicted cells is among the measured cells (e.g. "
            f"{list(predicted_cells[:3])} vs {list(measured_cells[:3])}): {fix}."
        )
        raise ValueError(msg)
    if not keep.all():
        warnings.warn(
            f"{int((~keep).sum())} of the {len(rows)} predicted cells have no measured values "
            f"(e.g. {list(predicted_cells[~keep][:3])}): scoring the other {int(keep.sum())}.",
            UserWarning,
            stacklevel=3,
        )
    return keep, rows[keep]


def _labelled(x, names, arg: str, names_arg: str):
    """Return the matrix, feature names and cell names (or ``None``) of ``x``."""
    if isinstance(x, AnnData):
        matrix, own, cells = x.X, x.var_names, x.obs_names
    elif isinstance(x, pd.DataFrame):
        matrix, own, cells = x.to_numpy(), x.columns, x.index
    else:
        if names is None:
            msg = f"Pass `{names_arg}` (one name per column of `{arg}`), or `{arg}` as an AnnData."
            raise TypeError(msg)
        return x, [str(n) for n in names], None
    own = [str(n) for n in own]
    if names is not None and [str(n) for n in names] != own:
        msg = (
            f"`{names_arg}` differs from the names `{arg}` carries ({own[:5]} …); leave "
            f"`{names_arg}` out to use them."
        )
        raise ValueError(msg)
    return matrix, own, cells


def shared_target_scores(
    measured, measured_names=None, predicted=None, model_targets=None, *, proteins: bool = True
) -> dict:
    """Score predictions on the proteins both the model and the query have.

    Columns are paired by :func:`match_targets`; the others (extra query proteins, isotype
    controls, targets the query did not measure) are left out and listed. Cells are paired by
    name when both sides carry names (an AnnData and a DataFrame, as
    :func:`scmm.tl.predict` writes it; predicted cells without measurements are left out with a
    warning), else by position.

    Parameters
    ----------
    measured
        Measured values, normalised as the model's training targets were: an AnnData (its
        ``.X``; names from ``var_names``, cells from ``obs_names``), a DataFrame, or a cells ×
        ``measured_names`` matrix (dense or sparse).
    measured_names
        The query's protein names, for a matrix ``measured``.
    predicted
        Predictions: a cells × targets DataFrame (``query[source].obsm[key]``), or a matrix of the
        same cells in the same order as ``measured``, columns ``model_targets``.
    model_targets
        The model's target names, for a matrix ``predicted``.
    proteins
        Pair antibody names after harmonising them (default); ``False`` for genes, paired by
        their names (see :func:`match_targets`).

    Returns
    -------
    dict with ``n_cells``, ``n_shared``, ``pearson_per_cell``, ``pearson_per_feature`` (mean),
    ``rmse``, ``per_feature_pearson`` (dict name → Pearson), and the lists ``shared``,
    ``left_out_model``, ``left_out_measured``.

    Raises
    ------
    ValueError
        No protein in common, no predicted cell measured (or, by position, other numbers of
        cells), or measured raw counts against normalised predictions.

    Examples
    --------
    >>> import numpy as np, scmm
    >>> rng = np.random.default_rng(0)
    >>> measured = rng.normal(size=(40, 3))  # CD3, CD4 and an isotype control
    >>> predicted = measured[:, [1, 0]] + 0.1  # the model predicts CD4, CD3
    >>> s = scmm.metrics.shared_target_scores(
    ...     measured, ["CD3", "CD4", "IgG1"], predicted, ["CD4_TotalSeqA", "CD3_TotalSeqA"]
    ... )
    >>> s["shared"], s["left_out_measured"], round(s["pearson_per_feature"], 3)
    (['CD4', 'CD3'], ['IgG1'], 1.0)
    """
    if predicted is None:
        msg = "Pass `predicted`, e.g. `query['rna'].obsm['scmm_mlp']`."
        raise TypeError(msg)
    measured, measured_names, measured_cells = _labelled(
        measured, measured_names, "measured", "measured_names"
    )
    predicted, model_targets, predicted_cells = _labelled(
        predicted, model_targets, "predicted", "model_targets"
    )
    match = match_targets(model_targets, measured_names, proteins=proteins)
    if not match["shared"]:
        msg = (
            f"The query measures none of the model's targets (model: "
            f"{list(model_targets)[:8]}; query: {list(measured_names)[:8]}), even after "
            "harmonising the names with `scmm.pp.harmonize_protein_names`."
        )
        raise ValueError(msg)
    if measured_cells is not None and predicted_cells is not None:
        keep, rows = measured_rows(
            measured_cells, predicted_cells, "pass the measurements of the predicted cells"
        )
        predicted = predicted[keep]
        measured = measured[rows]
    elif measured.shape[0] != predicted.shape[0]:
        msg = f"`measured` has {measured.shape[0]} cells, `predicted` {predicted.shape[0]}."
        raise ValueError(msg)
    y = measured[:, match["measured_index"]]
    y = np.asarray(y.toarray() if sp.issparse(y) else y, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)[:, match["model_index"]]
    check_measured_normalised(
        y, p, "`measured`", "`scmm.pp.normalize(query, 'prot', method='clr')` for proteins"
    )
    per_feature = np.atleast_1d(metrics.pearson_per_feature(y, p, average=False))
    return {
        "n_cells": int(y.shape[0]),
        "n_shared": len(match["shared"]),
        "pearson_per_cell": float(metrics.pearson_per_cell(y, p)) if y.shape[1] > 1 else np.nan,
        "pearson_per_feature": float(np.mean(per_feature)),
        "rmse": float(metrics.rmse(y, p)),
        "per_feature_pearson": dict(zip(match["shared"], map(float, per_feature), strict=True)),
        "shared": match["shared"],
        "left_out_model": match["left_out_model"],
        "left_out_measured": match["left_out_measured"],
    }
