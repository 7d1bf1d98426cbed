"""The ``training`` argument of the neural ``fit_*`` functions and the fit-contract keywords."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, Literal, get_args, get_type_hints

import numpy as np

from .._settings import settings
from ..models import BindingKeywords
from ..train import TrainingConfig

_FIELDS = tuple(TrainingConfig.__dataclass_fields__)


def training_options(
    training: TrainingConfig | Mapping[str, Any] | None, *, max_epochs: int | None = None
) -> dict[str, Any]:
    """Return the training options a ``fit_*`` function hands to its model.

    A :class:`~scmm.train.TrainingConfig` is taken as it is. A dict (or ``None``) holds the
    options that differ from the model's defaults; ``device`` and ``verbose`` it leaves out
    (or sets to ``None``) take ``scmm.settings``' values. ``max_epochs``, when given,
    replaces the one of ``training``.
    """
    if isinstance(training, TrainingConfig):
        options = training.to_dict()
    elif training is None or isinstance(training, Mapping):
        options = dict(training or {})
        unknown = sorted(set(options) - set(_FIELDS))
        if unknown:
            msg = (
                f"`training` has unknown options {unknown}; use fields of "
                f"`scmm.train.TrainingConfig`: {', '.join(_FIELDS)}."
            )
            raise ValueError(msg)
        if options.get("device") is None:
            options["device"] = settings.device
        if options.get("verbose") is None:
            options["verbose"] = settings.verbose
    else:
        msg = (
            f"`training` is a {type(training).__name__}; pass a `scmm.train.TrainingConfig`, "
            "a dict of its options (e.g. {'lr': 1e-3}) or None."
        )
        raise TypeError(msg)
    if max_epochs is not None:
        options["max_epochs"] = max_epochs
    return options


class FitKeywords(BindingKeywords, total=False):
    """The fit contract's keywords, taken by name by every ``scmm.tl.fit_*`` function.

    The one definition of them (``train``, ``layer``, ``target_layer``, ``svd_fit_on`` and ``rng``
    from :class:`scmm.models.BindingKeywords`, which every model's ``fit_mudata`` takes too):
    each ``fit_*`` takes them as ``**contract`` (PEP 692), checks
    them at run time (an unknown keyword raises a :class:`TypeError` naming it and these) and
    hands them to the shared fit path. Documented in each ``fit_*``'s page; left out, they
    default to ``svd_fit_on="train"``, ``write_predictions=True``, ``control_features="auto"``
    and ``None`` for the others.
    """

    key_added: str | None
    write_predictions: bool | Literal["auto", "memory", "disk"]
    control_features: Literal["auto"] | list[str] | None


class NeuralFitKeywords(FitKeywords, total=False):
    """:class:`FitKeywords` and the training shortcuts of the neural ``fit_*`` functions.

    ``max_epochs`` (default: the model's) replaces the one of ``training``; ``validation``
    (a bool mask over the cells, or a fraction of the training cells) picks the validation
    cells, overriding ``training``'s ``validation_fraction``.
    """

    max_epochs: int | None
    validation: np.ndarray | float | None


class EnsembleFitKeywords(FitKeywords, total=False):
    """:class:`FitKeywords` and ``validation``, of :func:`scmm.tl.fit_ensemble`.

    ``validation`` picks the validation cells of the ensemble's neural members.
    """

    validation: np.ndarray | float | None


#: The defaults of the fit-contract keywords (those of :func:`scmm.tl.fit_*` when left out).
FIT_DEFAULTS: dict[str, Any] = {
    "train": None,
    "layer": None,
    "target_layer": None,
    "svd_fit_on": "train",
    "key_added": None,
    "rng": None,
    "write_predictions": True,
    "control_features": "auto",
    "max_epochs": None,
    "validation": None,
}


def fit_keywords(
    contract: Mapping[str, Any], function: str, allowed: type = FitKeywords
) -> dict[str, Any]:
    """Return ``contract`` (the ``**contract`` of ``function``) after checking its names.

    A name outside ``allowed`` raises the :class:`TypeError` Python would raise for an
    unexpected keyword, naming the valid ones.
    """
    known = allowed.__required_keys__ | allowed.__optional_keys__
    unknown = sorted(set(contract) - known)
    if unknown:
        msg = (
            f"{function}() got unexpected keyword arguments {unknown}; besides its own "
            f"parameters it takes {', '.join(sorted(known))}."
        )
        raise TypeError(msg)
    return dict(contract)


def neural_options(
    training: TrainingConfig | Mapping[str, Any] | None,
    contract: Mapping[str, Any],
    function: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a neural ``fit_*``'s keywords: the model's training options, the fit contract's."""
    contract = fit_keywords(contract, function, NeuralFitKeywords)
    max_epochs = contract.pop("max_epochs", None)
    return training_options(training, max_epochs=max_epochs), contract


def keyword_parameters(function) -> dict[str, inspect.Parameter]:
    """Every keyword a ``fit_*`` takes: its keyword-only parameters and its ``**contract`` keys."""
    out = {}
    for name, prm in inspect.signature(function).parameters.items():
        if prm.kind is inspect.Parameter.KEYWORD_ONLY:
            out[name] = prm
        elif prm.kind is inspect.Parameter.VAR_KEYWORD:
            (keywords,) = get_args(get_type_hints(function)[name])
            for key, annotation in keywords.__annotations__.items():
                out[key] = inspect.Parameter(
                    key,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=FIT_DEFAULTS[key],
                    annotation=getattr(annotation, "__forward_arg__", annotation),
                )
    return out
