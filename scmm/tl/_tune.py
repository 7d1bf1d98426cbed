"""``tune_mlp``: architecture search for :func:`fit_mlp` with Optuna, on held-out cells.

Design notes
------------
- Every trial calls :func:`fit_mlp` itself (no second training path), on a private MuData that
  holds only the *fitting* cells (training cells minus the tuning cells), and scores the
  model's predictions for the tuning cells with :func:`scmm.metrics.pearson_per_cell`. The
  user's MuData is only read, and only at the rows of the training cells: cells outside
  ``train`` (the test cells) never enter a trial, not even their source values.
- ``mdata.uns[key_added]`` is written once, after the last trial; a failing trial leaves the
  MuData as it was.
- The result holds ``fit_mlp`` keyword arguments, so the best configuration is refitted with
  ``fit_mlp(mdata, source, target, **result.fixed, **result.best_params)``.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData
from mudata import MuData

from .. import _keys, metrics
from .._settings import settings
from .._validate import _listing, align_cells, check_modality, get_matrix
from ..pp._rng import as_generator
from ._contract import _h5_safe, _train_mask, _versions
from ._mlp import fit_mlp

logger = logging.getLogger("scmm")

#: The default search space (see :func:`tune_mlp`).
_SEARCH_SPACE: dict[str, Any] = {
    "n_layers": [1, 2, 3],
    "width": [128, 256, 512, 1024],
    "skip": ["none", "all", 2, 3],
    "dropout": (0.0, 0.5),
    "lr": (1e-4, 1e-2),
    "weight_decay": (1e-5, 1e-1),
    "loss": ["mse", "correlation", "mixed"],
}
_RANGES = ("dropout", "lr", "weight_decay")  # keys that take a (low, high) range
_LOG = ("lr", "weight_decay")  # ranges sampled on a log scale
_LOSSES = ("mse", "correlation", "mixed")
#: ``fit_mlp`` arguments a trial sets from the search space.
_SEARCHED = ("hidden", "skip", "dropout", "lr", "weight_decay", "loss")
#: ``fit_mlp`` arguments ``tune_mlp`` sets itself (data, outputs, per-trial state).
_MANAGED = (
    "input",
    "n_components",
    "max_epochs",
    "batch_size",
    "train",
    "layer",
    "target_layer",
    "svd_fit_on",
    "key_added",
    "rng",
    "verbose",
    "validation",
    "log_dir",
    "checkpoint_dir",
    "resume",
)
_TRIAL_KEY = "scmm_tune_trial"  # key of the trial fits in the private MuData


@dataclass
class TuneResult:
    """Result of :func:`tune_mlp`.

    Attributes
    ----------
    best_params
        :func:`fit_mlp` keyword arguments of the best trial: ``hidden``, ``skip``,
        ``dropout``, ``lr``, ``weight_decay`` and ``loss``.
    best_score
        Mean per-cell Pearson of the best trial on the tuning cells.
    trials
        One row per trial: ``number``, ``score`` (NaN for a failed trial), ``duration``
        (seconds), ``state`` (``"COMPLETE"`` or ``"FAIL"``), then the trial's parameters
        ``hidden`` (widths as text, e.g. ``"256,128"``), ``skip`` (as text), ``dropout``,
        ``lr``, ``weight_decay`` and ``loss``.
    fixed
        The :func:`fit_mlp` keyword arguments shared by every trial (``input``,
        ``n_components``, ``max_epochs``, ``batch_size`` and ``fit_kwargs``);
        ``fit_mlp(mdata, source, target, **result.fixed, **result.best_params)`` refits the
        best configuration.
    tuning_cells
        Names of the held-out cells the trials were scored on.
    """

    best_params: dict[str, Any]
    best_score: float
    trials: pd.DataFrame
    fixed: dict[str, Any] = field(default_factory=dict)
    tuning_cells: pd.Index = field(default_factory=pd.Index)


def _check_space(search_space: dict | None) -> dict[str, Any]:
    """Return the default search space updated with ``search_space``, checked."""
    if search_space is None:
        return dict(_SEARCH_SPACE)
    if not isinstance(search_space, dict):
        msg = f"`search_space` must be a dict, got {type(search_space).__name__}."
        raise TypeError(msg)
    space = dict(_SEARCH_SPACE)
    for key, spec in search_space.items():
        if key not in _SEARCH_SPACE:
            msg = (
                f"`search_space` has the unknown key {key!r}; use {_listing(_SEARCH_SPACE)} "
                "(other `fit_mlp` options go to `fit_kwargs`)."
            )
            raise ValueError(msg)
        where = f"`search_space[{key!r}]`"
        if isinstance(spec, tuple):
            if key not in _RANGES:
                msg = f"{where} cannot be a (low, high) range; give a list of choices."
                raise ValueError(msg)
            if len(spec) != 2 or not all(isinstance(v, int | float) for v in spec):
                msg = f"{where}={spec!r}: a range is a tuple of two numbers (low, high)."
                raise ValueError(msg)
            if not spec[0] < spec[1] or (key in _LOG and spec[0] <= 0):
                msg = f"{where}={spec!r}: need low < high" + (
                    " and low > 0 (sampled on a log scale)." if key in _LOG else "."
                )
                raise ValueError(msg)
            values = list(spec)
        elif isinstance(spec, list):
            if not spec:
                msg = f"{where} is an empty list; give at least one choice."
                raise ValueError(msg)
            values = spec
        else:
            values = [spec]
        for v in values:
            _check_value(key, v)
        plain = [v.item() if isinstance(v, np.generic) else v for v in values]  # for Optuna
        if isinstance(spec, tuple):
            space[key] = tuple(plain)
        else:
            space[key] = plain if isinstance(spec, list) else plain[0]
    return space


def _check_value(key: str, v) -> None:
    where = f"`search_space[{key!r}]`"
    is_int = isinstance(v, int | np.integer) and not isinstance(v, bool)
    is_num = isinstance(v, int | float | np.number) and not isinstance(v, bool)
    if key in ("n_layers", "width"):
        ok, need = is_int and v >= 1, "positive ints"
    elif key == "skip":
        ok, need = v in ("none", "all") or (is_int and v >= 1), "'none', 'all' or positive ints"
    elif key == "loss":
        ok, need = v in _LOSSES, f"one of {_LOSSES}"
    elif key == "dropout":
        ok, need = is_num and 0 <= v < 1, "numbers in [0, 1)"
    elif key == "lr":
        ok, need = is_num and v > 0, "positive numbers"
    else:  # weight_decay
        ok, need = is_num and v >= 0, "non-negative numbers"
    if not ok:
        msg = f"{where} holds {v!r}; its values must be {need}."
        raise ValueError(msg)


def _check_fit_kwargs(fit_kwargs: dict | None) -> dict[str, Any]:
    fit_kwargs = dict(fit_kwargs or {})
    allowed = set(inspect.signature(fit_mlp).parameters) - {"mdata", "source", "target"}
    for key in fit_kwargs:
        if key in _SEARCHED:
            how = "`n_layers` and `width`" if key == "hidden" else repr(key)
            msg = (
                f"`fit_kwargs` sets {key!r}, which is searched; fix it through `search_space` "
                f"instead (a single value for {how})."
            )
            raise ValueError(msg)
        if key in _MANAGED:
            msg = (
                f"`fit_kwargs` sets {key!r}, which `tune_mlp` sets itself; pass it to "
                "`tune_mlp` if it is one of its arguments, or drop it."
            )
            raise ValueError(msg)
        if key not in allowed:
            msg = f"`fit_kwargs` has {key!r}, which is not an argument of `scmm.tl.fit_mlp`."
            raise ValueError(msg)
    return fit_kwargs


def _obs_column(mdata: MuData, src: AnnData, name: str, arg: str) -> pd.Series:
    """Return ``.obs[name]`` of the MuData (or the source modality) in the source's cell order."""
    if name in mdata.obs.columns:
        return mdata.obs[name].reindex(src.obs_names)
    if name in src.obs.columns:
        return src.obs[name]
    names = list(dict.fromkeys([*mdata.obs.columns, *src.obs.columns]))
    msg = f"`{arg}={name!r}` is not a column of `.obs` (has: {_listing(names) or 'none'})."
    raise KeyError(msg)


def _tuning_mask(
    mdata: MuData,
    src: AnnData,
    train: np.ndarray,
    validation,
    groupby: str | None,
    validation_fraction: float,
    gen: np.random.Generator,
) -> tuple[np.ndarray, list[str] | None]:
    """Return the bool mask of the tuning cells (within ``train``) and the held-out groups."""
    n = src.n_obs
    if groupby is not None:
        labels = _obs_column(mdata, src, groupby, "groupby")
        in_train = labels[train]
        groups = sorted(pd.unique(in_train.dropna()).tolist(), key=str)
        if validation is None:
            if len(groups) < 2:
                msg = (
                    f"`groupby={groupby!r}` has {len(groups)} group(s) among the training cells; "
                    "holding one out needs at least two."
                )
                raise ValueError(msg)
            chosen = [groups[int(gen.integers(len(groups)))]]
        else:
            chosen = list(validation) if isinstance(validation, list | tuple) else [validation]
            for label in chosen:
                if label not in groups:
                    msg = (
                        f"`validation={label!r}` is not a group of `.obs[{groupby!r}]` among the "
                        f"training cells (has: {_listing(groups)})."
                    )
                    raise ValueError(msg)
            if set(chosen) >= set(groups):
                msg = "`validation` holds out every group; leave at least one to fit on."
                raise ValueError(msg)
        mask = labels.isin(chosen).to_numpy() & train
        return mask, [str(g) for g in chosen]
    if validation is None:
        if not 0 < validation_fraction < 1:
            msg = f"`validation_fraction={validation_fraction}` must be in (0, 1)."
            raise ValueError(msg)
        train_idx = np.flatnonzero(train)
        n_tune = max(1, round(validation_fraction * len(train_idx)))
        mask = np.zeros(n, dtype=bool)
        mask[gen.choice(train_idx, size=n_tune, replace=False)] = True
        return mask, None
    if isinstance(validation, str):
        col = _obs_column(mdata, src, validation, "validation")
        if col.dtype != bool:
            msg = f"`.obs[{validation!r}]` must be boolean (True = tuning cell), got {col.dtype}."
            raise ValueError(msg)
        mask = col.to_numpy()
    elif isinstance(validation, list | tuple):
        msg = "`validation` as a list of groups needs `groupby`, the `.obs` column they are in."
        raise ValueError(msg)
    else:
        mask = np.asarray(validation)
        if mask.dtype != bool or mask.shape != (n,):
            msg = (
                f"`validation` must be a bool mask over the {n} cells, the name of a boolean "
                "`.obs` column, or (with `groupby`) group labels."
            )
            raise ValueError(msg)
    if (mask & ~train).any():
        msg = (
            f"`validation` selects {int((mask & ~train).sum())} cells outside `train`; the test "
            "cells are never used for tuning, so pick tuning cells among the training cells."
        )
        raise ValueError(msg)
    return mask.copy(), None


def _rows(adata: AnnData, rows: np.ndarray, layer: str | None, arg: str):
    """Return the values of ``adata`` (``.X`` or ``layer``) at ``rows`` only, checked, copied."""
    X = get_matrix(adata[rows], layer, arg)  # only these rows are read and checked
    return sp.csr_matrix(X) if sp.issparse(X) else np.array(X)


def _trials_table(study) -> pd.DataFrame:
    rows = []
    for t in study.trials:
        p = t.user_attrs.get("fit_params", {})
        hidden = p.get("hidden")
        rows.append(
            {
                "number": int(t.number),
                "score": np.nan if t.value is None else float(t.value),
                "duration": np.nan if t.duration is None else t.duration.total_seconds(),
                "state": t.state.name,
                "hidden": "" if hidden is None else ",".join(str(w) for w in hidden),
                "skip": str(p.get("skip", "")),
                "dropout": float(p.get("dropout", np.nan)),
                "lr": float(p.get("lr", np.nan)),
                "weight_decay": float(p.get("weight_decay", np.nan)),
                "loss": str(p.get("loss", "")),
            }
        )
    return pd.DataFrame(rows, columns=["number", "score", "duration", "state", *_SEARCHED])


def tune_mlp(
    mdata: MuData,
    source: str,
    target: str,
    *,
    n_trials: int | None = 20,
    timeout: float | None = None,
    validation=None,
    groupby: str | None = None,
    validation_fraction: float = 0.2,
    search_space: dict[str, Any] | None = None,
    fit_kwargs: dict[str, Any] | None = None,
    input: str = "svd+raw",
    n_components: int = 64,
    max_epochs: int = 40,
    batch_size: int = 64,
    train=None,
    layer: str | None = None,
    target_layer: str | None = None,
    key_added: str | None = None,
    verbose: bool | None = None,
    rng=None,
) -> TuneResult:
    """Search the architecture and training options of :func:`fit_mlp` with Optuna.

    Each trial draws a configuration from the search space (Optuna's TPE sampler, seeded from
    ``rng``), fits :func:`fit_mlp` on the training cells minus the held-out *tuning* cells and
    scores it by the mean per-cell Pearson (:func:`scmm.metrics.pearson_per_cell`, the 2022
    competition metric) of its predictions for the tuning cells. The tuning cells are
    chosen among the training cells only:

    - with ``groupby`` (an ``.obs`` column such as the donor or batch), whole groups: the
      groups named by ``validation``, else one group drawn from ``rng``, so the score is that
      of cells from an unseen donor or batch;
    - else the cells ``validation`` selects (bool mask or boolean ``.obs`` column), or a
      random ``validation_fraction`` of the training cells drawn from ``rng``.

    Cells outside ``train`` (the test cells) are never read: neither their source nor their
    target values enter any trial (NaN there is fine), so the tuned model can still be scored
    honestly on them. The MuData is not modified except for ``mdata.uns[key_added]``, written
    after the last trial. Optuna is an optional dependency: ``pip install 'scmm[tune]'``.

    Parameters
    ----------
    mdata
        Paired data holding ``source`` and ``target`` for the same cells.
    source
        Modality predicted from.
    target
        Modality to predict.
    n_trials
        Number of trials (None: until ``timeout``).
    timeout
        Stop starting new trials after this many seconds (None: after ``n_trials``).
    validation
        The tuning cells: None (chosen as above), a bool mask over the cells or the name of a
        boolean ``.obs`` column (within ``train``); with ``groupby``, a group label or a list
        of them.
    groupby
        ``.obs`` column (of the MuData or the source modality) whose groups are held out
        whole, e.g. the donor or batch.
    validation_fraction
        Fraction of the training cells held out at random, without ``groupby`` and
        ``validation``.
    search_space
        Replaces entries of the default search space, by key::

            {"n_layers": [1, 2, 3], "width": [128, 256, 512, 1024],
             "skip": ["none", "all", 2, 3], "dropout": (0.0, 0.5),
             "lr": (1e-4, 1e-2), "weight_decay": (1e-5, 1e-1),
             "loss": ["mse", "correlation", "mixed"]}

        A list gives the choices, a ``(low, high)`` tuple a range (``dropout`` uniform,
        ``lr`` and ``weight_decay`` log-uniform) and a single value fixes the option.
        ``n_layers`` trunk blocks each draw a width from ``width`` (:func:`fit_mlp`'s
        ``hidden``); an int ``skip`` (the head reads the last k blocks) is capped at
        ``n_layers``. Any other key is a ``ValueError``.
    fit_kwargs
        Further :func:`fit_mlp` options shared by every trial (e.g. ``{"swa": False}``);
        not the searched ones, nor those set here (``train``, ``layer``, ``rng``, ...).
    input
        ``"svd"``, ``"raw"`` or ``"svd+raw"``, as for :func:`fit_mlp`.
    n_components
        Number of SVD components of the source, as for :func:`fit_mlp`.
    max_epochs
        Training epochs of each trial.
    batch_size
        Cells per step.
    train
        Training cells: a boolean mask, the name of a boolean ``.obs`` column, or ``None``
        for all cells. Tuning uses only these.
    layer
        Source layer instead of ``.X``.
    target_layer
        Target layer instead of ``.X``.
    key_added
        Key in ``mdata.uns``; default ``"scmm_tune_mlp"``.
    verbose
        Optuna's progress bar and per-trial log lines; None: ``scmm.settings.verbose``.
    rng
        Seed or :class:`numpy.random.Generator` (tuning cells, sampler, every trial's fit):
        the same ``rng`` and ``n_trials`` give the same trials.

    Returns
    -------
    A :class:`~scmm.tl.TuneResult` with ``best_params``, ``best_score``, the ``trials`` table, the
    ``fixed`` options and the ``tuning_cells``. Draw it with :func:`scmm.pl.tune_trials`.
    Writes

    ``mdata.uns[key_added]['best_params']`` : dict
        :func:`fit_mlp` keyword arguments of the best trial.
    ``mdata.uns[key_added]['best_score']`` : float
        Its mean per-cell Pearson on the tuning cells.
    ``mdata.uns[key_added]['trials']`` : DataFrame
        The trials table.
    ``mdata.uns[key_added]['params']`` : dict
        The arguments, the tuning groups, cell counts and package versions.

    Examples
    --------
    >>> import numpy as np, anndata as ad, mudata as md, scmm
    >>> rng = np.random.default_rng(0)
    >>> rna = ad.AnnData(np.log1p(rng.poisson(2.0, (60, 30))).astype("float32"))
    >>> prot = ad.AnnData(rng.normal(size=(60, 4)).astype("float32"))
    >>> prot.var_names = ["CD3", "CD4", "CD8", "CD19"]  # distinct from the gene names
    >>> mdata = md.MuData({"rna": rna, "prot": prot})
    >>> result = scmm.tl.tune_mlp(
    ...     mdata, "rna", "prot", n_trials=2, n_components=5, max_epochs=1,
    ...     search_space={"n_layers": [1, 2], "width": [8, 16]}, verbose=False, rng=0,
    ... )
    >>> len(result.trials), sorted(result.best_params)
    (2, ['dropout', 'hidden', 'loss', 'lr', 'skip', 'weight_decay'])
    >>> model = scmm.tl.fit_mlp(
    ...     mdata, "rna", "prot", **result.fixed, **result.best_params, verbose=False
    ... )
    """
    try:
        import optuna
    except ImportError as err:
        msg = "`tune_mlp` needs Optuna: `pip install 'scmm[tune]'`."
        raise ImportError(msg) from err

    # -- check everything before the first trial ------------------------------------------------
    src = check_modality(mdata, source, "source")
    tgt = check_modality(mdata, target, "target")
    if source == target:
        msg = f"`source` and `target` are both {source!r}; pass two different modalities."
        raise ValueError(msg)
    if n_trials is None and timeout is None:
        msg = "`n_trials` and `timeout` are both None; set at least one to end the search."
        raise ValueError(msg)
    if n_trials is not None and (isinstance(n_trials, bool) or int(n_trials) < 1):
        msg = f"`n_trials={n_trials!r}` must be a positive int (or None with `timeout`)."
        raise ValueError(msg)
    if timeout is not None and not timeout > 0:
        msg = f"`timeout={timeout!r}` must be a positive number of seconds (or None)."
        raise ValueError(msg)
    space = _check_space(search_space)
    extra = _check_fit_kwargs(fit_kwargs)
    key_added = key_added or _keys.prediction("tune_mlp")
    verbose = settings.verbose if verbose is None else bool(verbose)
    gen = as_generator(rng)
    order = align_cells(src, tgt, f"source={source!r}", f"target={target!r}")
    train_mask = _train_mask(mdata, src, train)
    tune_mask, groups = _tuning_mask(
        mdata, src, train_mask, validation, groupby, validation_fraction, gen
    )
    fit_idx = np.flatnonzero(train_mask & ~tune_mask)
    tune_idx = np.flatnonzero(tune_mask)
    if len(tune_idx) == 0 or len(fit_idx) < 2:
        msg = (
            f"The tuning split leaves {len(fit_idx)} cells to fit on and {len(tune_idx)} to "
            "score on; need at least 2 and 1. Hold out fewer (or more) training cells."
        )
        raise ValueError(msg)
    sampler_seed = int(gen.integers(0, 2**31 - 1))
    fit_seed = int(gen.integers(0, 2**31 - 1))

    # -- the data of the trials: training cells only ---------------------------------------------
    names = src.obs_names
    X_fit = _rows(src, fit_idx, layer, "layer")
    X_tune = _rows(src, tune_idx, layer, "layer")
    Y_fit = _rows(tgt, order[fit_idx], target_layer, "target_layer")
    Y_tune = _rows(tgt, order[tune_idx], target_layer, "target_layer")
    Y_fit = (Y_fit.toarray() if sp.issparse(Y_fit) else Y_fit).astype(np.float32)
    Y_tune = (Y_tune.toarray() if sp.issparse(Y_tune) else Y_tune).astype(np.float32)
    with warnings.catch_warnings():
        # a private container: mudata's notices about it (e.g. shared var names) are noise
        warnings.simplefilter("ignore")
        fit_data = MuData(
            {
                source: AnnData(
                    X_fit,
                    obs=pd.DataFrame(index=names[fit_idx].copy()),
                    var=pd.DataFrame(index=src.var_names.copy()),
                ),
                target: AnnData(
                    Y_fit,
                    obs=pd.DataFrame(index=names[fit_idx].copy()),
                    var=pd.DataFrame(index=tgt.var_names.copy()),
                ),
            }
        )
    fixed = {
        "input": input,
        "n_components": n_components,
        "max_epochs": max_epochs,
        "batch_size": batch_size,
        **extra,
    }
    logger.info(
        "tune_mlp: fitting on %d cells, scoring on %d tuning cells%s",
        len(fit_idx),
        len(tune_idx),
        f" ({groupby} = {', '.join(groups)})" if groups else "",
    )

    def objective(trial) -> float:
        n_layers = int(_suggest(trial, "n_layers", space["n_layers"]))
        hidden = [int(_suggest(trial, f"width_{i + 1}", space["width"])) for i in range(n_layers)]
        skip = _suggest(trial, "skip", space["skip"])
        if not isinstance(skip, str):
            skip = min(int(skip), n_layers)
        params = {
            "hidden": hidden,
            "skip": skip,
            "dropout": float(_suggest(trial, "dropout", space["dropout"])),
            "lr": float(_suggest(trial, "lr", space["lr"])),
            "weight_decay": float(_suggest(trial, "weight_decay", space["weight_decay"])),
            "loss": str(_suggest(trial, "loss", space["loss"])),
        }
        trial.set_user_attr("fit_params", params)
        model = fit_mlp(
            fit_data,
            source,
            target,
            **fixed,
            **params,
            verbose=False,
            key_added=_TRIAL_KEY,
            rng=fit_seed,
        )
        pred = model.predict_array(X_tune)
        if not np.isfinite(pred).all():
            return float("nan")  # diverged: Optuna records a failed trial and goes on
        return float(metrics.pearson_per_cell(Y_tune, pred))

    # -- the search ------------------------------------------------------------------------------
    verbosity = optuna.logging.get_verbosity()
    if not verbose:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=sampler_seed)
        )
        study.optimize(
            objective,
            n_trials=None if n_trials is None else int(n_trials),
            timeout=timeout,
            show_progress_bar=verbose,
        )
    finally:
        optuna.logging.set_verbosity(verbosity)
    trials = _trials_table(study)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        msg = (
            f"All {len(study.trials)} trials failed (non-finite predictions); narrow the "
            "`search_space` (e.g. smaller `lr`) or run more trials."
        )
        raise RuntimeError(msg)
    best = max(complete, key=lambda t: t.value)
    best_params = dict(best.user_attrs["fit_params"])
    best_score = float(best.value)

    mdata.uns[key_added] = {
        "best_params": _h5_safe(best_params),
        "best_score": best_score,
        "trials": trials,
        "params": _h5_safe(
            {
                "source": source,
                "target": target,
                "layer": layer,
                "target_layer": target_layer,
                "n_trials": n_trials,
                "timeout": timeout,
                "groupby": groupby,
                "tuning_groups": groups,
                "n_fit_cells": len(fit_idx),
                "n_tuning_cells": len(tune_idx),
                "fixed": fixed,
                "search_space": {k: repr(v) for k, v in space.items()},
                "versions": {**_versions(), "optuna": optuna.__version__},
            }
        ),
    }
    return TuneResult(
        best_params=best_params,
        best_score=best_score,
        trials=trials,
        fixed=fixed,
        tuning_cells=names[tune_idx].copy(),
    )


def _suggest(trial, name: str, spec):
    """Draw one value of a search-space entry: a list of choices, a (low, high) range, fixed."""
    if isinstance(spec, list):
        return trial.suggest_categorical(name, spec)
    if isinstance(spec, tuple):
        return trial.suggest_float(name, float(spec[0]), float(spec[1]), log=name in _LOG)
    return spec
