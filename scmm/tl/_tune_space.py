"""The search space of ``tune_mlp``: its default, the checks of the user's, and the draws.

A trial's configuration is drawn entry by entry: a list is a categorical choice, a
``(low, high)`` tuple a float range (``lr`` and ``weight_decay`` on a log scale), anything else
a fixed value. ``fit_mlp``'s arguments fall in three groups: searched (set from the space),
managed (set by ``tune_mlp`` itself) and the rest, which ``fit_kwargs`` may fix for all trials.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from .._validate import _listing
from ._mlp import fit_mlp

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
#: Searched options that are training options (they travel in ``fit_mlp``'s ``training``).
_TRAINING_SEARCHED = ("lr", "weight_decay", "loss")
#: ``fit_mlp`` arguments ``tune_mlp`` sets itself (data, outputs, per-trial state).
_MANAGED = (
    "input",
    "n_components",
    "max_epochs",
    "train",
    "layer",
    "target_layer",
    "svd_fit_on",
    "key_added",
    "rng",
    "validation",
)
#: Training options ``tune_mlp`` sets itself.
_MANAGED_TRAINING = ("max_epochs", "batch_size", "verbose", "log_dir", "checkpoint_dir", "resume")


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
    training = fit_kwargs.get("training") or {}
    if not isinstance(training, dict):
        msg = "`fit_kwargs['training']` must be a dict of training options (e.g. {'swa': False})."
        raise TypeError(msg)
    for key in training:
        if key in (*_TRAINING_SEARCHED, *_MANAGED_TRAINING):
            msg = (
                f"`fit_kwargs['training']` sets {key!r}, which `tune_mlp` searches or sets "
                "itself; use `search_space` or the argument of `tune_mlp`."
            )
            raise ValueError(msg)
    return fit_kwargs


def fit_mlp_kwargs(fixed: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Return the :func:`fit_mlp` keyword arguments of ``fixed`` and a trial's ``params``.

    The searched training options (``lr``, ``weight_decay``, ``loss``) join the ``training``
    dict of ``fixed``; the other ``params`` are keywords of their own. Returns a new dict.
    """
    training = {
        **fixed.get("training", {}),
        **{k: params[k] for k in _TRAINING_SEARCHED if k in params},
    }
    rest = {k: v for k, v in params.items() if k not in _TRAINING_SEARCHED}
    return {**fixed, **rest, "training": training}


def _suggest(trial, name: str, spec):
    """Draw one value of a search-space entry: a list of choices, a (low, high) range, fixed."""
    if isinstance(spec, list):
        return trial.suggest_categorical(name, spec)
    if isinstance(spec, tuple):
        return trial.suggest_float(name, float(spec[0]), float(spec[1]), log=name in _LOG)
    return spec


def _trial_params(trial, space: dict[str, Any]) -> dict[str, Any]:
    """Draw one trial's :func:`fit_mlp` keyword arguments from the (checked) search space."""
    n_layers = int(_suggest(trial, "n_layers", space["n_layers"]))
    hidden = [int(_suggest(trial, f"width_{i + 1}", space["width"])) for i in range(n_layers)]
    skip = _suggest(trial, "skip", space["skip"])
    if not isinstance(skip, str):
        skip = min(int(skip), n_layers)
    return {
        "hidden": hidden,
        "skip": skip,
        "dropout": float(_suggest(trial, "dropout", space["dropout"])),
        "lr": float(_suggest(trial, "lr", space["lr"])),
        "weight_decay": float(_suggest(trial, "weight_decay", space["weight_decay"])),
        "loss": str(_suggest(trial, "loss", space["loss"])),
    }
