"""The ``training`` and ``max_epochs`` arguments of the neural ``fit_*`` functions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._settings import settings
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
