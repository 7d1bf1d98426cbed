"""The methods the benchmarks compare on the tasks of :data:`scmm.datasets.TASKS`.

Every model of the registry (``scmm fit --method`` names) as ``scmm demo`` fits it (its
defaults and the demo's settings), plus the stacked ensemble of :func:`scmm.tl.fit_ensemble`.
ATAC tasks must be loaded with their gene–peak windows (``load_task(..., windows=True)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import scmm
from scmm._registry import MODELS, Task
from scmm.cli._demo import applies_to, fit_method, fit_on_task, settings

#: Tasks whose training cells hold several batches (``mop_snare2``: 10 samples): the
#: ensemble keeps each batch within one fold (``groupby="batch"``), as its docs advise.
SEVERAL_TRAINING_BATCHES = ("mop_snare2",)


@dataclass(frozen=True)
class Method:
    """A method compared by ``benchmarks/accuracy.py`` and ``benchmarks/peers.py``.

    ``fit(mdata, task, *, key_added, rng, svd_fit_on, data_dir)`` fits on ``mdata.obs['train']``
    and writes predictions to ``mdata[task.target].layers[key_added]``; ``applies(task)``: it
    runs on ``task``; ``uses_svd``: ``svd_fit_on`` changes its result.
    """

    fit: Callable[..., object]
    applies: Callable[[Task], bool] = lambda task: True
    uses_svd: bool = True

    def applies_to(self, task: Task) -> bool:
        """Whether the method runs on ``task``."""
        return self.applies(task)


def _registered(name: str) -> Method:
    def fit(mdata, task, **kwargs):
        return fit_method(mdata, task, name, **kwargs)

    return Method(fit, lambda task: applies_to(name, task), MODELS[name].uses_svd)


def fit_ensemble(mdata, task, *, data_dir=None, **kwargs):
    """``fit_ensemble`` at its defaults on the training cells (with ATAC windows: DeepSets too).

    ``kwargs``: ``key_added``, ``rng``, ``svd_fit_on``. Its MLP member takes the demo's
    settings of the single MLP on ATAC; ``data_dir`` is unused.
    """
    options = {"groupby": "batch" if task.dataset in SEVERAL_TRAINING_BATCHES else None}
    if task.source == "atac":
        options["member_options"] = {"mlp": settings("mlp", task)}
    return fit_on_task(scmm.tl.fit_ensemble, mdata, task, **options, **kwargs)


#: The registry's models, then the ensemble.
METHODS: dict[str, Method] = {
    **{name: _registered(name) for name in MODELS},
    "ensemble": Method(fit_ensemble),
}
