"""The input space of a model: how its values were prepared and what they looked like.

A fit records, for the source and the target, the :func:`scmm.pp.normalize` call that made
the values (``.uns['scmm_normalize']`` of the modality, when the model reads ``.X``; otherwise
"unknown") and summary statistics of the training cells: the fraction of integer values, the
minimum and maximum, quantiles of the per-cell sums and, for the source, each feature's mean
and standard deviation. Predicting reads the record back: raw counts reaching a model trained
on normalised values are an error naming the normalisation to apply (as are values clearly
made another way: :mod:`scmm._normalisation_check`), inputs far outside the training
distribution a warning with the numbers, and missing features are filled at their training
means. Models saved before this record existed have none: nothing is checked for
them.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
from anndata import AnnData

from ._normalisation_check import check_space, normalize_call
from ._utils import row_blocks
from ._validate import COUNTS_INTEGER_FRACTION, match_features
from .pp import normalize_adata

#: A training input with fewer integral values than this was normalised.
NORMALISED_INTEGER_FRACTION = 0.5
#: Median |shift| of the query's feature means, in training standard deviations, that warns.
FAR_SHIFT = 3.0
#: Median per-cell sum beyond this factor of the training cells' 1–99% range warns.
FAR_SUM_FACTOR = 2.0


def summarize(X, *, features: bool = True) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Statistics of the cells × features matrix ``X``, read a block of rows at a time.

    Parameters
    ----------
    X
        Dense, sparse or backed matrix (or a :class:`~scmm._utils.RowSubset`).
    features
        Also compute each feature's mean and standard deviation.

    Returns
    -------
    JSON-able statistics (``n_cells``, ``integer_fraction`` of the stored non-zero values,
    ``min``, ``max``, ``row_sum`` quantiles 1%, 50%, 99%) and the arrays ``mean`` and ``sd``
    (float32, one per feature; empty dict when ``features=False``).
    """
    n_obs, n_vars = X.shape
    total, squares = np.zeros(n_vars), np.zeros(n_vars)
    row_sums = np.zeros(n_obs)
    n_values = n_integer = 0
    low, high = np.inf, -np.inf
    start = 0
    for _, part in row_blocks(X):
        values = part.data if sp.issparse(part) else part[part != 0]
        values = np.asarray(values, dtype=np.float64)
        if values.size:
            n_values += values.size
            n_integer += int(np.count_nonzero(values == np.rint(values)))
            low, high = min(low, values.min()), max(high, values.max())
        row_sums[start : start + part.shape[0]] = np.asarray(part.sum(axis=1)).ravel()
        start += part.shape[0]
        if features:
            total += np.asarray(part.sum(axis=0), dtype=np.float64).ravel()
            sq = part.multiply(part) if sp.issparse(part) else np.square(part, dtype=np.float64)
            squares += np.asarray(sq.sum(axis=0), dtype=np.float64).ravel()
    if n_values < n_obs * n_vars:  # implicit or explicit zeros
        low, high = min(low, 0.0), max(high, 0.0)
    stats = {
        "n_cells": int(n_obs),
        "integer_fraction": float(n_integer / n_values) if n_values else 1.0,
        "min": float(low) if np.isfinite(low) else 0.0,
        "max": float(high) if np.isfinite(high) else 0.0,
        "row_sum": [float(q) for q in np.quantile(row_sums, [0.01, 0.5, 0.99])]
        if n_obs
        else [0.0, 0.0, 0.0],
    }
    arrays = {}
    if features:
        n = max(n_obs, 1)
        mean = total / n
        sd = np.sqrt(np.maximum(squares / n - mean**2, 0.0))
        arrays = {"mean": mean.astype(np.float32), "sd": sd.astype(np.float32)}
    return stats, arrays


def normalize_record(adata: AnnData, layer: str | None) -> dict[str, Any] | None:
    """Return the :func:`scmm.pp.normalize` call that made the values a model reads, if known.

    Only ``.X`` is written by :func:`scmm.pp.normalize`, so a model reading a layer gets
    ``None`` ("unknown").
    """
    record = adata.uns.get("scmm_normalize")
    if layer is not None or not isinstance(record, dict) or "method" not in record:
        return None
    out = {}
    for key, value in record.items():  # read back from h5: numpy scalars and strings
        out[str(key)] = value.item() if isinstance(value, np.generic) else value
    return out


def is_counts(stats: dict[str, Any]) -> bool:
    """Whether ``stats`` (of :func:`summarize`) look like counts: non-negative integers."""
    return stats["min"] >= 0 and stats["integer_fraction"] >= COUNTS_INTEGER_FRACTION


def _describe(stats: dict[str, Any]) -> str:
    q01, q50, q99 = stats["row_sum"]
    return (
        f"per-cell sums {q01:,.4g} / {q50:,.4g} / {q99:,.4g} (1% / median / 99%), values "
        f"{stats['min']:.4g} to {stats['max']:,.4g}, {100 * stats['integer_fraction']:.0f}% of "
        "non-zero values integers"
    )


def warn_counts_at_fit(stats: dict[str, Any], mod: str, arg: str, name: str) -> None:
    """Warn when the training values ``mdata[mod]`` (read from ``arg``) look like raw counts.

    Binary values (0/1, e.g. binarised peaks) are not counts.
    """
    if not is_counts(stats) or stats["max"] <= 1:
        return
    warnings.warn(
        f"The {name} values `mdata[{mod!r}].{arg}` look like raw counts (non-negative "
        f"integers; {_describe(stats)}): models learn from normalised values (on raw counts "
        f"an MLP scored per-cell Pearson 0.35 instead of 0.89). Run e.g. "
        f"`scmm.pp.normalize(mdata, {mod!r})` (or `method='clr'` for proteins, `'tfidf'` for "
        "peaks) first, or pass a layer of normalised values.",
        UserWarning,
        stacklevel=5,
    )


def check_query(
    space: dict[str, Any] | None,
    stats: dict[str, Any],
    arrays: dict[str, np.ndarray],
    train_arrays: dict[str, np.ndarray],
    *,
    mod: str,
    arg: str,
) -> None:
    """Check the query's source values (model feature order) against the training record.

    Raises a ``ValueError`` when raw counts reach a model trained on normalised values, and
    warns, with the numbers, when they lie far outside the training distribution.

    Parameters
    ----------
    space
        The model's record of its source (``model.input_space['source']``), or ``None``.
    stats
        :func:`summarize` statistics of the query.
    arrays
        The query's per-feature ``mean`` (and ``sd``).
    train_arrays
        The training cells' per-feature ``mean`` and ``sd`` (may be empty).
    mod
        Source modality name, for messages.
    arg
        Where the values were read from, for messages.
    """
    if space is None:
        return
    trained_on_counts = space["integer_fraction"] >= NORMALISED_INTEGER_FRACTION
    if is_counts(stats) and stats["max"] > 0 and not trained_on_counts:
        msg = (
            f"`{arg}` holds non-negative integers like raw counts ({_describe(stats)}), but the "
            f"model was trained on normalised values ({_describe(space)}). Normalise the cells "
            f"first with {normalize_call(mod, space.get('normalize'))}"
            + (
                ", or pass `normalize=True` to have the model apply it to the raw counts."
                if space.get("normalize")
                else "."
            )
        )
        raise ValueError(msg)
    reasons = []
    if space["min"] >= 0 > stats["min"]:
        reasons.append(f"negative values (down to {stats['min']:.4g}) where training had none")
    q01, _, q99 = space["row_sum"]
    median = stats["row_sum"][1]
    if q01 > 0 and (median > FAR_SUM_FACTOR * q99 or median < q01 / FAR_SUM_FACTOR):
        reasons.append(
            f"median per-cell sum {median:,.4g} against {q01:,.4g}–{q99:,.4g} for 98% of the "
            "training cells"
        )
    if "mean" in train_arrays and "mean" in arrays:
        sd = train_arrays["sd"].astype(np.float64)
        ok = sd > 0
        if ok.any():
            shift = np.abs(arrays["mean"][ok] - train_arrays["mean"][ok]) / sd[ok]
            median_shift = float(np.median(shift))
            if median_shift > FAR_SHIFT:
                reasons.append(
                    f"feature means shifted by a median {median_shift:.2g} training standard "
                    "deviations"
                )
    if reasons:
        warnings.warn(
            f"`{arg}` lies far outside the model's training inputs: {'; '.join(reasons)}. "
            f"The training values were made by {normalize_call(mod, space.get('normalize'))}; "
            "prepare the new cells the same way, or expect unreliable predictions.",
            UserWarning,
            stacklevel=4,
        )


def record_fit(
    src: AnnData,
    tgt: AnnData,
    X_train,
    Y_train,
    *,
    mods: tuple[str, str],
    layers: tuple[str | None, str | None],
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Record the input space of a fit on ``X_train`` → ``Y_train``; warn on raw counts.

    Parameters
    ----------
    src, tgt
        The source and target modalities.
    X_train, Y_train
        Their values on the training cells.
    mods
        The source and target modality names.
    layers
        The source and target layers (``None``: ``.X``).

    Returns
    -------
    The JSON record (``source`` and ``target``: ``normalize``, ``layer`` and the
    :func:`summarize` statistics) and the source's per-feature ``mean`` and ``sd``.
    """
    record, arrays = {}, {}
    for role, adata, values, mod, layer in zip(
        ("source", "target"), (src, tgt), (X_train, Y_train), mods, layers, strict=True
    ):
        stats, stat_arrays = summarize(values, features=role == "source")
        arg = f"layers[{layer!r}]" if layer else "X"
        warn_counts_at_fit(stats, mod, arg, role)
        record[role] = {"normalize": normalize_record(adata, layer), "layer": layer, **stats}
        arrays = arrays or stat_arrays
    return record, arrays


def check_source(
    space: dict[str, Any],
    X,
    found: np.ndarray,
    train_arrays: dict[str, np.ndarray],
    *,
    mod: str,
    arg: str,
    query=None,
    has_counts: bool = False,
) -> None:
    """:func:`check_query` of ``X`` (model feature order; features not ``found`` still 0).

    The missing features, later filled at their training means, are left out of the feature
    comparison and counted in the per-cell sums at those means; the counts check sees only
    the values the data holds. ``query`` (all the query's features, before alignment) and
    ``has_counts`` go to :func:`scmm._normalisation_check.check_space` first.
    """
    stats, arrays = summarize(X)
    means = train_arrays.get("mean")
    if not found.all() and means is not None:
        offset = float(np.asarray(means, np.float64)[~found].sum())
        stats["row_sum"] = [q + offset for q in stats["row_sum"]]
    train = {k: v[found] for k, v in train_arrays.items()}
    arrays = {k: v[found] for k, v in arrays.items()}
    if query is not None:
        check_space(space, query, stats, arrays, train, mod=mod, arg=arg, has_counts=has_counts)
    check_query(space, stats, arrays, train, mod=mod, arg=arg)


def features_to_normalise(
    adata: AnnData,
    record: dict[str, Any] | None,
    features: list[str],
    feature_ids: list[str] | None,
    mod: str,
) -> AnnData:
    """Return the query's features whose counts make each cell's total, as in training.

    ``record['n_features']`` (of :func:`scmm.pp.normalize`) is how many features the training
    cells' totals were taken over. When those are exactly the model's features, the query is
    restricted to them (a view) when it has them all: its other features (the rest of a
    transcriptome, peaks called elsewhere) must not enter its totals. When the training totals
    were over more features than the model reads (it was subset after normalising), the
    query's own features make its totals, with a warning when they are far fewer than the
    training cells had. An older record (no ``n_features``) leaves ``adata`` as it is.
    """
    n_norm = (record or {}).get("n_features")
    if n_norm is None or adata.n_vars == 0:
        return adata
    if n_norm == len(features):
        if adata.n_vars <= n_norm:
            return adata
        idx = match_features(adata.var, features, feature_ids)[0]
        if not (idx >= 0).all():  # missing ones are refused or filled later
            return adata
        restricted = adata[:, np.sort(idx)]  # the training totals exactly
        layer = record.get("layer", "counts")
        counts = restricted.layers[layer] if layer in restricted.layers else restricted.X
        empty = np.asarray(counts.sum(axis=1)).ravel() == 0
        if empty.any():
            msg = (
                f"{int(empty.sum())} cells (e.g. {list(restricted.obs_names[empty][:3])}) have "
                f"no counts in the model's {len(features):,} features of {mod!r}, over which "
                "the training cells' totals were taken: they cannot be normalised the same "
                "way. Drop them first, e.g. `adata = adata[np.asarray(adata[:, "
                "model.source_features].X.sum(axis=1)).ravel() > 0].copy()`."
            )
            raise ValueError(msg)
        return restricted
    if adata.n_vars < n_norm / 2:
        warnings.warn(
            f"The training cells were normalised over {n_norm:,} features of {mod!r} (each "
            f"cell's total), these cells over their {adata.n_vars:,}: their normalised values "
            "are on another scale. Pass the query with all its features (the model picks its "
            "own), not only the model's.",
            UserWarning,
            stacklevel=4,
        )
    return adata


def normalized_copy(
    adata: AnnData,
    record: dict[str, Any] | None,
    mod: str,
    *,
    training_idf: np.ndarray | None = None,
) -> AnnData:
    """Return a shallow copy of ``adata`` normalised by the recorded ``scmm.pp.normalize`` call.

    ``predict(..., normalize=True)``: raw counts are read as :func:`scmm.pp.normalize` reads
    them (``record['layer']``, ``.X`` when that layer is absent); ``adata`` is not modified.
    For ``"tfidf"`` with the model's ``training_idf``, the copy holds the term frequencies
    alone (IDF 1), to be weighed by the training IDF once the features are aligned
    (:func:`weigh_features`); without it, by these cells' own IDF, with a warning.
    """
    import pandas as pd

    if record is None:
        msg = (
            "`normalize=True` needs the `scmm.pp.normalize` call that made the training "
            "values, but this model does not know it (fitted on values scmm did not "
            "normalise, on a layer, or saved by an older scmm). Normalise the cells the way "
            "the training data was, and predict with `normalize=False`."
        )
        raise ValueError(msg)
    tmp = AnnData(
        X=adata.X,
        obs=pd.DataFrame(index=adata.obs_names.copy()),
        var=adata.var.copy(),
        layers=dict(adata.layers.items()),
    )
    layer = record.get("layer", "counts")
    idf = None
    if record["method"] == "tfidf" and training_idf is not None:
        idf = np.ones(tmp.n_vars, dtype=np.float32)
    elif record["method"] == "tfidf":
        warnings.warn(
            "This model stores no IDF of its training cells (saved by an earlier scmm, or "
            "fitted on TF-IDF not made by `scmm.pp.normalize`): `normalize=True` weighs each "
            "peak by "
            "these cells' own frequencies, which a handful of cells cannot estimate. Predict "
            "for many cells together, or refit the model.",
            UserWarning,
            stacklevel=4,
        )
    try:
        normalize_adata(
            tmp, mod, method=record["method"], layer=None if layer == "X" else layer, idf=idf
        )
    except (ValueError, KeyError) as err:
        msg = (
            f"`normalize=True` applies {normalize_call(mod, record)} to raw counts, which "
            f"failed: {err}"
        )
        raise type(err)(msg) from err
    return tmp


def weigh_features(X, idf: np.ndarray):
    """Return ``X`` (cells × the model's features) with each column times its ``idf``."""
    idf = np.asarray(idf, np.float32)
    if sp.issparse(X):
        return sp.csr_matrix(X @ sp.diags(idf))
    return np.asarray(X, np.float32) * idf


#: Median relative difference between a query's IDF and the training cells' that warns.
IDF_TOLERANCE = 0.05


def check_idf(var, features: list[str], training_idf: np.ndarray) -> None:
    """Warn when a query's TF-IDF weighed its peaks by an IDF far from the training cells'.

    ``var`` is the query's ``.var``; its ``'scmm_idf'`` (written by :func:`scmm.pp.normalize`)
    is compared, on the peaks it shares with the model's ``features``
    (:func:`scmm._validate.match_features`).
    """
    if "scmm_idf" not in var.columns:
        return
    idx, _, _ = match_features(var, features)
    found = idx >= 0
    train = np.asarray(training_idf, np.float64)[found]
    query = var["scmm_idf"].to_numpy(np.float64)[idx[found]]
    has = train > 0
    if not has.any():
        return
    diff = float(np.median(np.abs(query[has] - train[has]) / train[has]))
    if diff > IDF_TOLERANCE:
        warnings.warn(
            f"The query's TF-IDF weighed its peaks by its own cells' IDF, a median "
            f"{diff:.0%} away from the training cells' (`.var['scmm_idf']`): its values are "
            "not those the model was trained on. Pass the raw counts with "
            "`scmm.tl.predict(..., normalize=True)` to use the training cells' IDF.",
            UserWarning,
            stacklevel=4,
        )
