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
- The search space (its default, checks and draws) lives in ``_tune_space.py``, the choice and
  reading of the tuning cells in ``_tune_cells.py``; this module runs the trials.
- The result holds ``fit_mlp`` keyword arguments, so the best configuration is refitted with
  ``fit_mlp(mdata, source, target, **result.fit_kwargs)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from mudata import MuData

from .. import _keys, metrics
from .._docs import FIT_DATA, doc_params
from .._settings import settings
from .._utils import SeedLike, as_generator
from .._validate import align_cells, check_modality
from .._validate import train_mask as training_cells
from ._contract import _h5_safe, _versions
from ._mlp import fit_mlp
from ._tune_cells import _fit_and_tune_rows, _trial_data, _tuning_mask
from ._tune_space import _SEARCHED, _check_fit_kwargs, _check_space, _trial_params, fit_mlp_kwargs

logger = logging.getLogger("scmm")

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
        ``n_components``, ``max_epochs``, ``fit_kwargs`` and ``training`` with
        ``batch_size``); ``fit_mlp(mdata, source, target, **result.fit_kwargs)`` refits the
        best configuration.
    tuning_cells
        Names of the held-out cells the trials were scored on.
    """

    best_params: dict[str, Any]
    best_score: float
    trials: pd.DataFrame
    fixed: dict[str, Any] = field(default_factory=dict)
    tuning_cells: pd.Index = field(default_factory=pd.Index)

    @property
    def fit_kwargs(self) -> dict[str, Any]:
        """:func:`fit_mlp` keyword arguments of the best trial (a new dict each time).

        ``fixed`` and ``best_params``, the searched training options (``lr``,
        ``weight_decay``, ``loss``) in ``training``.
        """
        return fit_mlp_kwargs(self.fixed, self.best_params)


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


@doc_params(fit_data=FIT_DATA)
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
    input: Literal["svd", "raw", "svd+raw"] = "svd+raw",
    n_components: int = 64,
    max_epochs: int = 40,
    batch_size: int = 64,
    train=None,
    layer: str | None = None,
    target_layer: str | None = None,
    key_added: str | None = None,
    verbose: bool | None = None,
    rng: SeedLike | np.random.Generator | None = None,
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
    after the last trial. Optuna is an optional dependency: from the scmm
    repository, ``pip install -e '.[tune]'``.

    Parameters
    ----------
    {fit_data}
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
        Further :func:`fit_mlp` options shared by every trial (e.g.
        ``{"training": {"swa": False}}``); not the searched ones, nor those set here
        (``train``, ``layer``, ``rng``, ``batch_size``, ...).
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
    >>> import scmm
    >>> mdata = scmm.datasets.toy_cite()  # synthetic: 60 cells, 30 genes, 4 proteins
    >>> result = scmm.tl.tune_mlp(
    ...     mdata, "rna", "prot", n_trials=2, n_components=5, max_epochs=1,
    ...     search_space={"n_layers": [1, 2], "width": [8, 16]}, verbose=False, rng=0,
    ... )
    >>> len(result.trials), sorted(result.best_params)
    (2, ['dropout', 'hidden', 'loss', 'lr', 'skip', 'weight_decay'])
    >>> kwargs = result.fit_kwargs
    >>> kwargs["training"]["verbose"] = False
    >>> model = scmm.tl.fit_mlp(mdata, "rna", "prot", **kwargs)
    """
    try:
        import optuna
    except ImportError as err:
        msg = "`tune_mlp` needs Optuna: from the scmm repository, `pip install -e '.[tune]'`."
        raise ImportError(msg) from err

    # -- check everything before the first trial ------------------------------------------------
    src = check_modality(mdata, source, "source")
    tgt = check_modality(mdata, target, "target")
    _check_run(source, target, n_trials, timeout)
    space = _check_space(search_space)
    extra = _check_fit_kwargs(fit_kwargs)
    key_added = key_added or _keys.prediction("tune_mlp")
    verbose = settings.verbose if verbose is None else bool(verbose)
    gen = as_generator(rng)
    order = align_cells(src, tgt, f"source={source!r}", f"target={target!r}")
    train_mask = training_cells(mdata, src, train)
    tune_mask, groups = _tuning_mask(
        mdata, src, train_mask, validation, groupby, validation_fraction, gen
    )
    fit_idx, tune_idx = _fit_and_tune_rows(train_mask, tune_mask)
    sampler_seed = int(gen.integers(0, 2**31 - 1))
    fit_seed = int(gen.integers(0, 2**31 - 1))

    # -- the data of the trials: training cells only ---------------------------------------------
    fit_data, X_tune, Y_tune = _trial_data(
        src, tgt, source, target, (fit_idx, tune_idx, order), layer, target_layer
    )
    fixed = {
        "input": input,
        "n_components": n_components,
        "max_epochs": max_epochs,
        **extra,
        "training": {"batch_size": batch_size, **(extra.get("training") or {})},
    }
    logger.info(
        "tune_mlp: fitting on %d cells, scoring on %d tuning cells%s",
        len(fit_idx),
        len(tune_idx),
        f" ({groupby} = {', '.join(groups)})" if groups else "",
    )

    def fit_and_predict(params: dict[str, Any]):
        kwargs = fit_mlp_kwargs(fixed, params)
        kwargs["training"]["verbose"] = False
        model = fit_mlp(fit_data, source, target, **kwargs, key_added=_TRIAL_KEY, rng=fit_seed)
        return model.predict_array(X_tune)

    # -- the search ------------------------------------------------------------------------------
    study = _search(
        optuna, _objective(space, fit_and_predict, Y_tune), sampler_seed, n_trials, timeout, verbose
    )
    trials = _trials_table(study)
    best = _best_trial(optuna, study)
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
        tuning_cells=src.obs_names[tune_idx].copy(),
    )


def _check_run(source: str, target: str, n_trials: int | None, timeout: float | None) -> None:
    """Check the arguments that say what is tuned and when the search ends."""
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


def _objective(
    space: dict[str, Any],
    fit_and_predict: Callable[[dict[str, Any]], np.ndarray],
    Y_tune: np.ndarray,
) -> Callable[[Any], float]:
    """Return Optuna's objective: draw a configuration, fit it, score the tuning cells."""

    def objective(trial) -> float:
        params = _trial_params(trial, space)
        trial.set_user_attr("fit_params", params)
        try:
            pred = fit_and_predict(params)
        except FloatingPointError:  # training or its predictions diverged (not finite)
            return float("nan")  # Optuna records a failed trial and goes on
        if not np.isfinite(pred).all():
            return float("nan")
        return float(metrics.pearson_per_cell(Y_tune, pred))

    return objective


def _search(optuna, objective, sampler_seed: int, n_trials, timeout, verbose: bool):
    """Run the Optuna study (TPE, seeded), with Optuna's own logging restored afterwards."""
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
    return study


def _best_trial(optuna, study):
    """Return the completed trial with the highest score; raise when every trial failed."""
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        msg = (
            f"All {len(study.trials)} trials failed (non-finite predictions); narrow the "
            "`search_space` (e.g. smaller `lr`) or run more trials."
        )
        raise RuntimeError(msg)
    return max(complete, key=lambda t: t.value)
