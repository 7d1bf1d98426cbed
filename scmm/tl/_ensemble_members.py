"""The members ``fit_ensemble`` accepts, and each member's spec from its fit function's options."""

from __future__ import annotations

import inspect
from typing import Any

from ..models import BASELINE_METHODS as BASELINES
from ..models import BaselineModel, DeepSetsModel, MLPModel
from ._deepsets import fit_deepsets
from ._mlp import fit_mlp
from ._training import keyword_parameters, training_options

#: Member names ``fit_ensemble`` accepts.
MEMBERS = (*BASELINES, "mlp", "deepsets")
#: The default members; ``"deepsets"`` joins them where the data has gene–peak windows.
DEFAULT_MEMBERS = ("ridge", "knn", "kernel_ridge", "mlp")
#: ``fit_mlp`` keywords a member may not override (the ensemble sets them, or they would
#: make the member fits collide).
_MLP_FIXED = (
    "train",
    "layer",
    "target_layer",
    "svd_fit_on",
    "key_added",
    "write_predictions",
    "control_features",
    "rng",
    "validation",
)
#: Training options a member may not set (the member fits would share the checkpoints).
_TRAINING_FIXED = ("checkpoint_dir", "resume")


def _architecture(fit, cls) -> list[str]:
    """Return the keywords of ``fit`` that its model class ``cls`` takes (its own options)."""
    own = set(inspect.signature(cls).parameters) - {"training"}
    return [name for name in inspect.signature(fit).parameters if name in own]


def member_spec(method: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the spec of one ensemble member: ``fit_baseline``, ``fit_mlp`` or ``fit_deepsets``.

    Parameters
    ----------
    method
        A name of :data:`MEMBERS`.
    options
        Keyword arguments replacing the defaults (those of ``fit_baseline`` for a baseline,
        of ``fit_mlp`` for ``"mlp"``, of ``fit_deepsets`` for ``"deepsets"``).

    Returns
    -------
    ``{"kind": ..., "params": ...}`` for :class:`~scmm.models.EnsembleModel`.
    """
    options = dict(options or {})
    if method in ("mlp", "deepsets"):
        fit, cls = (fit_mlp, MLPModel) if method == "mlp" else (fit_deepsets, DeepSetsModel)
        arch = _architecture(fit, cls)
        defaults = {
            name: p.default for name, p in keyword_parameters(fit).items() if name not in _MLP_FIXED
        }
        _check_options(method, options, defaults)
        args = {**defaults, **options}
        training = training_options(args["training"], max_epochs=args["max_epochs"])
        fixed = [k for k in _TRAINING_FIXED if training.get(k)]
        if fixed:
            msg = f"`member_options[{method!r}]['training']` may not set {fixed}."
            raise ValueError(msg)
        model = cls(**{k: args[k] for k in arch}, training=training)
    else:
        defaults = {"n_components": 32, "n_neighbors": 20, "alphas": None}
        _check_options(method, options, defaults)
        model = BaselineModel(method, **{**defaults, **options})
    return {"kind": model.kind, "params": model.params}


def _check_options(method: str, options: dict, allowed: dict) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        msg = (
            f"`member_options[{method!r}]` has unknown options {unknown}; "
            f"use keywords of the member's fit function: {sorted(allowed)}."
        )
        raise ValueError(msg)


def _check_methods(methods, member_options) -> list[str]:
    methods = [methods] if isinstance(methods, str) else list(methods)
    if not methods:
        msg = f"`methods` is empty; pick members among {MEMBERS}."
        raise ValueError(msg)
    bad = [m for m in methods if m not in MEMBERS]
    if bad:
        msg = f"`methods` holds {bad}, not among {MEMBERS}."
        raise ValueError(msg)
    if len(set(methods)) != len(methods):
        msg = f"`methods={methods}` names a member twice; list each once (use `n_seeds`)."
        raise ValueError(msg)
    extra = sorted(set(member_options or {}) - set(methods))
    if extra:
        msg = f"`member_options` has entries {extra} for methods not in `methods={methods}`."
        raise ValueError(msg)
    return methods
