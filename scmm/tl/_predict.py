"""``predict``: a fitted model's targets for new cells, written into their MuData or AnnData.

Features are matched by name, the values checked against what the model was trained on, each
cell's distance to the reference measured (and, on request, the query aligned to it), then the
predictions are written where the target modality (or the source's ``.obsm``) takes them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from anndata import AnnData
from mudata import MuData

from .. import _disk, _keys
from .._validate import (
    check_finite_predictions,
    check_modality,
    check_output_keys,
    holds_genes,
)
from ..metrics import match_targets
from ..models import BaseModel
from ..models import check_query_distance as check_query
from ._align import align_query
from ._contract import _h5_safe
from ._prediction_store import derived, output_paths, predict_to_disk


def _target_order(names: pd.Index, targets: list[str]) -> np.ndarray | None:
    """Where each of ``names`` is among the model's ``targets``, matched by name.

    ``None``: the same order; an empty array: not the same features.
    """
    if list(names) == targets:
        return None
    index = pd.Index(targets)
    if not index.is_unique or len(names) != len(index):
        return np.empty(0, dtype=np.int64)
    columns = index.get_indexer(names.astype(str))
    if (columns < 0).any() or len(np.unique(columns)) != len(columns):
        return np.empty(0, dtype=np.int64)
    return columns


def _warn_left_out(matched: dict, target: str) -> None:
    """Warn that the query's target modality is another panel, naming what is left out."""
    warnings.warn(
        f"The query's {target!r} features differ from the model's targets: predictions go to "
        f"the source's `.obsm`; {len(matched['shared'])} targets are measured in both "
        "(names harmonised by `scmm.pp.harmonize_protein_names`, isotype controls left out), "
        f"left out: model only {matched['left_out_model'][:20] or 'none'}, query only "
        f"{matched['left_out_measured'][:20] or 'none'} (all in `.uns[key]['targets']`).",
        UserWarning,
        stacklevel=3,
    )


def predict(
    model: BaseModel,
    data: MuData | AnnData,
    *,
    key_added: str | None = None,
    allow_missing_features: bool = False,
    min_feature_overlap: float = 0.5,
    normalize: bool = False,
    align: str | None = None,
) -> None:
    """Predict the target modality for the cells of ``data`` and write it there.

    Cells may have only the source modality. Source features are matched by name, then by the
    Ensembl ids of ``var['gene_ids']`` (e.g. genes renamed between annotation versions);
    features the data lacks are an error listing them (or filled at their training means with
    a warning when ``allow_missing_features=True``), extra ones are not read (counted).

    The values are checked against what the model was trained on: raw counts reaching a model
    trained on normalised values are an error naming the :func:`scmm.pp.normalize` call to
    apply (or pass ``normalize=True``), and values far outside the training distribution
    (negative values where training had none, per-cell sums or feature means far off) warn
    with the numbers.

    Parameters
    ----------
    model
        A fitted model (returned by a ``fit_*`` function or :func:`scmm.models.load`).
    data
        A MuData holding the model's source modality, or an AnnData of that modality.
    key_added
        Output key; default ``"scmm_<model name>"`` (e.g. ``"scmm_mlp"``, ``"scmm_ridge"``).
    allow_missing_features
        Fill missing source features at their training means instead of raising.
    min_feature_overlap
        Smallest fraction of the model's source features ``data`` must have; below it,
        predicting is refused even with ``allow_missing_features=True``.
    normalize
        ``data`` holds raw counts (``.layers['counts']`` or ``.X``, as
        :func:`scmm.pp.normalize` reads them): normalise them with the call recorded for the
        model's training values first, each cell's total taken over the features the training
        cells' were (the model's own when it was trained on every normalised feature, else all
        of ``data``'s; ``"tfidf"`` weighs the term frequencies by the training cells' IDF,
        stored with the model). ``data`` is not modified.
    align
        Align the cells of ``data`` (another dataset) to the model's training cells before
        predicting, from their source values only: ``"standardize"`` (each feature to the
        training mean and standard deviation), ``"moments"`` (the input embedding's mean and
        standard deviation per component) or ``"symphony"`` (Symphony's mapping into the
        fixed reference embedding); see :mod:`scmm.tl._align` and the transfer page of the
        docs for how they compare. None (default): no alignment.

    Returns
    -------
    ``None``. Writes, when ``data`` is a MuData with the target modality,

    ``data[target].layers[key_added]`` : ndarray (n_obs, n_targets)
        Predictions for the target's cells (all must be present in the source).

    otherwise (also when the target modality holds another panel: features that differ from
    the model's targets, or only some of the source's cells: a warning says so)

    ``data[source].obsm[key_added]`` (or ``adata.obsm[key_added]``) : DataFrame
        Predictions, one column per target feature.

    and ``.uns[key_added]['params']`` : dict
        The model kind, source and target.
    ``.uns[key_added]['targets']`` : dict
        Only when the target modality holds another panel: ``shared`` (harmonised names of
        the targets measured in both, see :func:`scmm.pp.harmonize_protein_names`; isotype
        controls never count), ``left_out_model`` and ``left_out_measured`` (the others, as
        each side names them). A warning names them too.
    ``.uns[key_added]['features']`` : dict
        ``n_features`` (the model's), ``n_found`` in ``data``, ``fraction_found``,
        ``n_matched_by_coordinates`` (peaks named with other separators or ``chr`` prefix),
        ``n_matched_by_id`` (through ``var['gene_ids']``).

    ``data[source].obs[key_added + '_reference_distance']`` : float
        How far each cell lies from the training cells: its mean distance to its 10 nearest
        training cells (of at most 2,000 kept with the model) in the model's input SVD
        embedding, over the median of the same for training cells (each leaving itself
        out). About 1: like the reference; above ``reference_99`` (below): farther than 99%
        of the reference's own cells. Measured on the values before any ``align``: an
        alignment moves the query's embedding onto the reference's without making its
        predictions as good (see the transfer page). Absent for models without an SVD input
        or saved before scmm stored it.
    ``.uns[key_added]['reference_distance']`` : dict
        ``share_beyond_reference_95`` and ``share_beyond_reference_99`` (share of the cells
        beyond the reference's own 95th and 99th percentiles; about 0.05 and 0.01 for
        cells like the reference), ``median_ratio``, ``reference_95``, ``reference_99``
        (those percentiles as ratios) and ``n_neighbors``. When more than 5% of the
        cells lie beyond the 99th percentile (and so many are unlikely by chance: 1% are
        expected), a :class:`UserWarning` says so with these numbers.

    A model with derived outputs (:meth:`~scmm.models.BaseModel.derived_outputs`) writes them
    next to the predictions, e.g. an :class:`~scmm.models.EnsembleModel` its interval bounds
    under ``key_added + '_lower'`` and ``key_added + '_upper'`` (they widen with the cell's
    reference distance).

    Predictions larger than the 2 GiB memory budget (``scmm.settings.memory_budget``; e.g.
    105,942 cells × 23,418 genes, 9.9 GB) are written to a ``.npy`` file in
    ``$SCMM_DISK_DIR`` (default ``./scmm_disk``) a block of cells at a time, and the layer
    (or the DataFrame) reads them from there as a read-only memory map; one logged line says
    where, and ``.uns[key_added]['predictions_path']`` records it. Derived outputs (an
    ensemble's bounds) count towards the budget and go to disk with the predictions, each to
    a file beside theirs named with its suffix (one logged line each).

    Examples
    --------
    >>> import mudata as md, scmm
    >>> mdata = scmm.datasets.toy_cite()  # synthetic: 60 cells, 30 genes, 4 proteins
    >>> model = scmm.tl.fit_baseline(mdata, "rna", "prot", method="ridge", n_components=5)
    >>> query = md.MuData({"rna": mdata["rna"][:10].copy()})
    >>> scmm.tl.predict(model, query)
    >>> query["rna"].obsm["scmm_ridge"].shape
    (10, 4)
    """
    key_added = key_added or _keys.prediction(model.name)
    if isinstance(data, AnnData):
        src, tgt, holder = data, None, data
    else:
        if isinstance(data, MuData) and model.source not in data.mod:
            other = next((m for m in data.mod if m != model.target), "gex")
            msg = (
                f"The model reads modality {model.source!r}, which this MuData does not have "
                f"(has: {', '.join(map(repr, data.mod))}). If one of them holds it under another "
                f"name, pass that AnnData itself (`scmm.tl.predict(model, mdata[{other!r}])`) or "
                f"rename it (`mdata.mod[{model.source!r}] = mdata.mod.pop({other!r})`)."
            )
            raise KeyError(msg)
        src = check_modality(data, model.source, "model.source")
        tgt = data.mod.get(model.target)
        holder = data
    rows = np.arange(src.n_obs)  # the source row of each output row
    matched, columns = None, None
    if tgt is not None:  # checked before predicting: nothing is written on an error
        rows = src.obs_names.get_indexer(tgt.obs_names)
        if (rows < 0).any():
            msg = (
                f"{int((rows < 0).sum())} cells of the target modality {model.target!r} have no "
                f"{model.source!r} values to predict from; subset to paired cells first."
            )
            raise ValueError(msg)
        columns = _target_order(tgt.var_names, model.target_features)
        if columns is not None and len(columns) == 0:
            # another panel: predictions go to the source's .obsm; the shared targets are listed
            matched = match_targets(
                model.target_features, tgt.var_names, proteins=not holds_genes(tgt, model.target)
            )
            _warn_left_out(matched, model.target)
            tgt, rows, columns = None, np.arange(src.n_obs), None
        elif len(rows) < src.n_obs:
            # a layer would hold the measured cells only: the others are the ones to predict
            warnings.warn(
                f"{src.n_obs - len(rows)} of the {src.n_obs} cells of {model.source!r} are not "
                f"in {model.target!r}: the predictions for all of them are written to "
                f"mdata[{model.source!r}].obsm[{key_added!r}] (a layer of {model.target!r} "
                "holds its own cells only).",
                UserWarning,
                stacklevel=2,
            )
            tgt, rows, columns = None, np.arange(src.n_obs), None
    if tgt is not None:
        store, where = tgt.layers, f"mdata[{model.target!r}].layers"
    else:
        where = ("adata" if holder is src else f"mdata[{model.source!r}]") + ".obsm"
        store = src.obsm
    keys = [key_added + suffix for suffix in ("", *model.output_suffixes)]
    check_output_keys(store, keys, holder.uns, key_added, where)
    X, report = model.aligned_source(
        src,
        allow_missing_features=allow_missing_features,
        min_feature_overlap=min_feature_overlap,
        normalize=normalize,
    )
    # (ratio per source row, summary) or None; before any alignment, which would hide the shift
    shift = check_query(model, X, key_added)
    if align is not None:
        X = align_query(model, X, align)
    shape = (len(rows), len(model.target_features))
    n_bytes = 4 * shape[0] * shape[1]  # per layer: the predictions and each derived output
    store = _disk.storage(True, n_bytes * (1 + len(model.output_suffixes)), "")
    distance = None if shift is None else shift[0]  # per source row
    if store == "disk":
        path = _disk.new_path(key_added)
        files = output_paths(model, path)
        predict_to_disk(model, X, rows, np.empty(0, np.int64), path, distance)
        # read-only views of the files
        outputs = {key_added + s: np.asarray(np.load(p, mmap_mode="r")) for s, p in files.items()}
        try:
            for key, values in outputs.items():
                check_finite_predictions(values, key)
        except FloatingPointError:
            for p in files.values():
                p.unlink(missing_ok=True)
            raise
    else:
        pred = model.predict_array(X)
        check_finite_predictions(pred, key_added)
        if not np.array_equal(rows, np.arange(src.n_obs)):
            pred = pred[rows]
        outputs = {key_added: pred}
        extra = derived(model, pred, None if distance is None else distance[rows])
        outputs.update({key_added + suffix: values for suffix, values in extra.items()})
    del X
    if tgt is not None and columns is not None:  # the query's order of the targets
        outputs = {key: values[:, columns] for key, values in outputs.items()}
    params = {
        "model": model.kind,
        "source": model.source,
        "target": model.target,
        "normalize": normalize,
        "align": align,
    }
    if tgt is not None:
        for key, values in outputs.items():
            tgt.layers[key] = values
    else:
        for key, values in outputs.items():
            src.obsm[key] = pd.DataFrame(
                values, index=src.obs_names.copy(), columns=pd.Index(model.target_features)
            )
    uns = {"params": _h5_safe(params), "features": report}
    if shift is not None:
        src.obs[f"{key_added}_reference_distance"] = shift[0]
        uns["reference_distance"] = shift[1]
    if matched is not None:
        uns["targets"] = {k: matched[k] for k in ("shared", "left_out_model", "left_out_measured")}
    if store == "disk":
        uns["predictions_path"] = str(path)
        for suffix, p in files.items():
            _disk.log_on_disk(
                f"{key_added}{suffix}: " + ("predictions" if not suffix else "derived output"),
                shape,
                n_bytes,
                _disk.reason(True, ""),
                p,
                f"{where}[{key_added + suffix!r}]",
            )
    holder.uns[key_added] = uns
