"""``fit_ensemble``: several scmm models stacked per target, with conformal intervals."""

from __future__ import annotations

from typing import Any, Unpack

import numpy as np
from mudata import MuData

from .._docs import FIT_CONTRACT, FIT_DATA, doc_params
from .._settings import settings
from .._validate import train_mask
from ..models import EnsembleModel, check_pair
from ._contract import fit_model
from ._deepsets import get_windows
from ._ensemble_members import DEFAULT_MEMBERS, _check_methods, member_spec
from ._training import EnsembleFitKeywords, fit_keywords


def _has_windows(mdata: MuData, key: str, source: str, target: str) -> bool:
    """Whether ``mdata.uns[key]`` holds gene–peak windows pairing ``target`` with ``source``."""
    if key not in mdata.uns:
        return False
    try:
        get_windows(mdata, key, source, target)
    except ValueError:
        return False
    return True


def _groups(mdata: MuData, src, groupby: str | None, train_mask: np.ndarray):
    if groupby is None:
        return None
    if groupby in mdata.obs.columns:
        col = mdata.obs[groupby].reindex(src.obs_names)
    elif groupby in src.obs.columns:
        col = src.obs[groupby]
    else:
        msg = f"`groupby={groupby!r}` is not a column of `mdata.obs` nor of the source's `.obs`."
        raise KeyError(msg)
    values = col.to_numpy()[train_mask]
    if col.isna().to_numpy()[train_mask].any():
        msg = f"`.obs[{groupby!r}]` is missing for some training cells; fill it in first."
        raise ValueError(msg)
    return values.astype(str)


@doc_params(fit_data=FIT_DATA, fit_contract=FIT_CONTRACT)
def fit_ensemble(
    mdata: MuData,
    source: str,
    target: str,
    *,
    methods: tuple[str, ...] | list[str] | None = None,
    n_seeds: int = 3,
    n_folds: int = 5,
    groupby: str | None = None,
    interval: float = 0.9,
    member_options: dict[str, dict[str, Any]] | None = None,
    **contract: Unpack[EnsembleFitKeywords],
) -> EnsembleModel:
    """Fit several models, stack them per target, and put a calibrated interval around it.

    1. The training cells are cut into ``n_folds`` folds (whole ``groupby`` groups, e.g.
       donors, stay in one fold). Each member is fitted on all folds but one and predicts the
       one left out, so every training cell gets an out-of-fold (OOF) prediction from every
       member. Only training cells are used: the targets of other cells are never read
       (they may be missing or NaN).
    2. Per target, non-negative weights summing to one minimise the members' squared OOF error
       (see :class:`~scmm.models.EnsembleModel` for why not a ridge stacker), pulled towards
       weights shared by all targets as far as cross-validation over the same folds finds it
       helps (many noisy targets, such as genes, or few cells).
    3. Per target, the interval half-width is the conformal quantile of the absolute OOF
       residuals of the combined prediction, each divided by a scale that grows with the
       cell's distance to the reference (its k-NN distance in the members' input embedding,
       over the training cells' median), so that about ``interval`` of the values of new
       cells like the training cells fall inside, and cells far from the reference get wider
       intervals (see :class:`~scmm.models.EnsembleModel`).
    4. The members are refitted on all training cells; the prediction is their weighted sum.

    The cost is ``n_folds + 1`` fits of each member (``n_folds + n_seeds + 1`` for ``"mlp"``
    and ``"deepsets"``: the extra fit, a second seed on the first fold, measures how much
    averaging ``n_seeds`` fits lowers their error, so that the weights trust the average as
    much as it deserves),
    and the OOF predictions hold members × training cells × targets floats (fine for proteins;
    for 23,418 genes of 10,000 cells and four members, 3.7 GB). A backed source
    (``anndata.read_h5ad(..., backed="r")``) is never loaded into memory: every member reads
    it a block of rows at a time, its folds' rows as views. The fit contract holds as for
    every ``fit_*`` (it is the same code): predictions and interval bounds over the memory
    budget go to disk, and an error leaves the MuData as it was.

    Parameters
    ----------
    {fit_data}
    methods
        Members, among ``"mean"``, ``"ridge"``, ``"knn"``, ``"kernel_ridge"`` (as
        :func:`scmm.tl.fit_baseline`), ``"mlp"`` (as :func:`scmm.tl.fit_mlp`) and
        ``"deepsets"`` (as :func:`scmm.tl.fit_deepsets`; needs the gene–peak windows of
        :func:`scmm.pp.gene_peak_windows`), each at the defaults of its fit function. The
        default, None, is ``("ridge", "knn", "kernel_ridge", "mlp")``, plus ``"deepsets"`` when
        ``mdata.uns['windows']`` pairs ``target`` with ``source`` (ATAC → RNA). The four were
        chosen on the training cells of ``pbmc10k_cite`` only (out-of-fold per-cell Pearson of
        every subset, see the ensemble page of the docs): the four together 0.953, the MLP
        alone 0.951; adding ``"mean"`` changed nothing. DeepSets joins where it applies
        because the weights are fitted on out-of-fold predictions of the training cells: a
        member can only lower that error, and the best single ATAC → RNA model should not be
        left out.
    n_seeds
        Final fits of each ``"mlp"`` and ``"deepsets"`` member with different seeds, averaged
        (the cross-fitting fits it once per fold, plus once with a second seed on the first
        fold to measure the seed-to-seed variance the average removes). The default 3, and
        the correction of the weights for it, were chosen on training cells only (an inner
        validation set of ``bmmc_cite``'s training cells, see the ensemble page of the docs).
    n_folds
        Folds of the cross-fitting (at least 2; with ``groupby``, at most the number of
        groups among the training cells).
    groupby
        Column of ``mdata.obs`` (or of the source's ``.obs``) whose groups (donors, batches)
        are kept whole within a fold, so that weights and intervals reflect prediction for a
        new group; None: cells are assigned to folds at random.
    interval
        Nominal coverage of the prediction intervals, in (0, 1).
    member_options
        Per member, keyword arguments replacing its fit function's defaults, e.g.
        ``{"mlp": {"max_epochs": 20}, "ridge": {"n_components": 64}}``.
    validation
        Validation cells of the neural members, as in :func:`scmm.tl.fit_mlp` (their
        validation loss, and early stopping with ``training``'s ``patience``): a bool mask
        over all cells (within ``train``) or a fraction of the training cells. Each member
        fit holds out those among its own training cells (a fold's, or all of them for the
        final fits); the other members ignore it, and the validation cells still count for
        the weights and the intervals (they are training cells). None: the members'
        ``training`` options decide (by default none).
    {fit_contract}

    Returns
    -------
    The fitted :class:`~scmm.models.EnsembleModel` (members in ``model.fitted``, weights in
    ``model.weights``). Writes

    ``mdata[target].layers[key_added]`` : ndarray (n_obs, n_vars)
        Combined predictions for every cell (unless ``write_predictions=False``; a read-only
        memory map of a ``.npy`` file when they are written to disk).
    ``mdata[target].layers[key_added + '_lower']`` : ndarray (n_obs, n_vars)
        Lower interval bound (unless ``write_predictions=False``; on disk with the
        predictions, in a file beside theirs named with the suffix).
    ``mdata[target].layers[key_added + '_upper']`` : ndarray (n_obs, n_vars)
        Upper interval bound (likewise).
    ``mdata.uns[key_added]['params']`` : dict
        The arguments, member names and package versions.
    ``mdata.uns[key_added]['weights']`` : dict
        Per member name, its weight for each target (n_vars,).
    ``mdata.uns[key_added]['shrinkage']`` : float
        How far each target's weights were pulled towards the shared ones (0: not at all,
        1: the same weights for every target), chosen by cross-validation over the folds.
    ``mdata.uns[key_added]['half_width']`` : ndarray (n_vars,)
        Interval half-width per target, for a cell at the reference's median distance (the
        bounds multiply it by ``1 + sigma_slope·max(d / e − 1, 0)``, ``d`` the cell's distance
        ratio, ``e`` the 99th percentile of the training cells' out-of-fold ratio: constant
        widths for cells like the training cells).
    ``mdata.uns[key_added]['sigma_slope']`` : float
        How fast the intervals widen with the distance ratio (absent when the members read no
        SVD embedding: constant widths).
    ``mdata.uns[key_added]['oof_scores']`` : dict
        Mean per-cell Pearson of each member's and of the combined OOF predictions on the
        training cells.
    ``mdata.uns[key_added]['scores']`` : dict
        On the cells outside ``train`` (if any, and only if all their targets are finite):
        per-cell and per-feature Pearson, RMSE, ``interval_coverage`` (fraction of values
        inside the interval) and ``interval_width`` (mean width).

    Examples
    --------
    >>> import numpy as np, scmm
    >>> mdata = scmm.datasets.toy_cite(80)  # synthetic: 80 cells, 30 genes, 4 proteins
    >>> model = scmm.tl.fit_ensemble(
    ...     mdata, "rna", "prot", methods=["mean", "ridge"], n_folds=3,
    ...     member_options={"ridge": {"n_components": 5}},
    ... )
    >>> mdata["prot"].layers["scmm_ensemble_upper"].shape
    (80, 4)
    >>> np.allclose(model.weights.sum(axis=0), 1.0)
    True
    """
    contract = fit_keywords(contract, "fit_ensemble", EnsembleFitKeywords)
    train, svd_fit_on = contract.get("train"), contract.get("svd_fit_on", "train")
    windows_key = (member_options or {}).get("deepsets", {}).get("windows_key", "windows")
    if methods is None:
        with_windows = _has_windows(mdata, windows_key, source, target)
        methods = (*DEFAULT_MEMBERS, "deepsets") if with_windows else DEFAULT_MEMBERS
    methods = _check_methods(methods, member_options)
    src, _, _ = check_pair(mdata, source, target, svd_fit_on)
    specs = [member_spec(m, (member_options or {}).get(m)) for m in methods]
    model = EnsembleModel(specs, n_folds=n_folds, n_seeds=n_seeds, interval=interval)
    if "deepsets" in methods:
        model.windows = get_windows(mdata, windows_key, source, target)
    groups = _groups(mdata, src, groupby, train_mask(mdata, src, train, source))
    own = {
        "methods": methods,
        "members": model.member_names,
        "n_seeds": n_seeds,
        "n_folds": n_folds,
        "groupby": groupby,
        "interval": interval,
    }
    return fit_model(
        model,
        mdata,
        source,
        target,
        **contract,
        params=own,
        fit_kwargs={"groups": groups, "progress": settings.verbose},
    )
