"""Measured values and predictions of the same cells and features, for the plots."""

from __future__ import annotations

import numpy as np
from mudata import MuData

from .._validate import (
    cell_mask,
    check_measured_normalised,
    check_modality,
    find_predictions,
    get_matrix,
    holds_genes,
)
from ..metrics import match_targets


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


def paired_values(
    mdata: MuData, mod: str, keys, *, layer: str | None = None, cells=None
) -> tuple[list[str], np.ndarray, list[np.ndarray]]:
    """Measured values of ``mdata[mod]`` and the predictions ``keys`` on the same cells.

    Predictions are layers of ``mdata[mod]`` (a fit) or cells × targets DataFrames in a
    modality's ``.obsm`` (:func:`scmm.tl.predict` for a query of another panel, or
    :func:`scmm.tl.calibrate`): their targets are then paired with ``mod``'s features by
    harmonised name (:func:`scmm.metrics.match_targets`; the features every prediction has)
    and their cells by name, and measured raw counts are refused (normalise them as the
    training targets were).

    Returns
    -------
    The feature names (``mod``'s own), the measured values and one prediction per key (the
    selected cells × features, float64).
    """
    adata = check_modality(mdata, mod, "mod")
    keys = [keys] if isinstance(keys, str) else list(keys)
    if not keys:
        msg = "`keys` is empty; pass the key(s) of the predictions to compare."
        raise ValueError(msg)
    mask = np.ones(adata.n_obs, dtype=bool)
    if cells is not None:
        mask = cell_mask(cells, adata.obs_names, "cells", f" of {mod!r}")
    if not mask.any():
        msg = "`cells` selects no cells; select the cells to score."
        raise ValueError(msg)
    found = [find_predictions(mdata, key, mod) for key in keys]
    y = get_matrix(adata, layer)
    if all(in_layers for _, _, in_layers in found):
        names = [str(n) for n in adata.var_names]
        return names, _dense(y[mask]), [f.to_numpy(np.float64)[mask] for _, f, _ in found]
    proteins = not holds_genes(adata, mod)
    # each prediction's targets meet the measured features by name; the plots show those all
    # predictions have (e.g. the reference's 48 proteins and their 6 calibrated ones)
    columns = {}  # measured column -> the column of each prediction
    for i, (key, (_, frame, _)) in enumerate(zip(keys, found, strict=True)):
        match = match_targets(list(frame.columns), adata.var_names, proteins=proteins)
        pairs = dict(zip(match["measured_index"], match["model_index"], strict=True))
        if i == 0:
            columns = {m: [c] for m, c in pairs.items()}
        else:
            columns = {m: [*cs, pairs[m]] for m, cs in columns.items() if m in pairs}
        if not columns:
            msg = (
                f"The predictions {key!r} share no target with mdata[{mod!r}]"
                + (f" that {keys[0]!r} has" if i else "")
                + f" (predicted: {list(frame.columns[:8])}; measured: "
                f"{list(adata.var_names[:8])}), even after harmonising the names with "
                "`scmm.pp.harmonize_protein_names`."
            )
            raise ValueError(msg)
    measured_index = np.array(list(columns), dtype=np.int64)
    model_index = np.array(list(columns.values()), dtype=np.int64).T  # keys × features
    names = adata.obs_names[mask]
    preds = []
    for key, (holder, frame, _) in zip(keys, found, strict=True):
        rows = frame.index.get_indexer(names)
        if (rows < 0).any():
            msg = (
                f"{int((rows < 0).sum())} of the selected cells of {mod!r} have no prediction "
                f"{key!r} (in mdata[{holder!r}].obsm); predict them too, or select the "
                "predicted cells with `cells`."
            )
            raise ValueError(msg)
        preds.append(frame.to_numpy(np.float64)[rows][:, model_index[len(preds)]])
    measured = _dense(y[mask][:, measured_index])
    check_measured_normalised(  # a query's measured panel, read as it came
        measured,
        preds[0],
        f"mdata[{mod!r}]" + (f".layers[{layer!r}]" if layer else ".X"),
        f"`scmm.pp.normalize(mdata, {mod!r}, method='clr')` for proteins",
    )
    features = [str(adata.var_names[i]) for i in measured_index]
    return features, measured, preds
