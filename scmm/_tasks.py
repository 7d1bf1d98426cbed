"""The real-data prediction tasks used by the demo, the benchmarks and the tutorials.

Each task loads a dataset, normalises it the way scmm's reported numbers were measured, and
marks the training cells in ``mdata.obs['train']`` (held-out donor or batches where the data
has them, otherwise the first 20% of ``np.random.default_rng(0).permutation(n_cells)`` are
test cells).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mudata import MuData


@dataclass(frozen=True)
class Task:
    """A prediction task on a real dataset."""

    dataset: str
    source: str
    target: str
    source_norm: str
    target_norm: str
    test_batches: tuple[str, ...] | None = None
    description: str = ""


TASKS: dict[str, Task] = {
    "bmmc_cite": Task(
        "bmmc_cite", "rna", "prot", "log_cp10k", "clr", ("s1d2",), "train donor s1d1 → score s1d2"
    ),
    "bmmc_cite_rev": Task(
        "bmmc_cite", "rna", "prot", "log_cp10k", "clr", ("s1d1",), "train donor s1d2 → score s1d1"
    ),
    "pbmc10k_cite": Task(
        "pbmc10k_cite", "rna", "prot", "log_cp10k", "clr", None, "random 80/20 (seed 0)"
    ),
    "pbmc10k_protein_200": Task(
        "pbmc10k_protein_200", "rna", "prot", "log_cp10k", "clr", None, "random 80/20 (seed 0)"
    ),
    "mop_snare2": Task(
        "mop_snare2",
        "atac",
        "rna",
        "tfidf",
        "log_cp10k",
        ("09K", "09L"),
        "ATAC → RNA, batches 09K + 09L held out",
    ),
    "pbmc_multiome": Task(
        "pbmc_multiome",
        "atac",
        "rna",
        "tfidf",
        "log_cp10k",
        None,
        "ATAC → RNA, random 80/20 (seed 0)",
    ),
}


def load_task(name: str, *, data_dir=None) -> tuple[MuData, Task]:
    """Load, normalise and split the dataset of task ``name``.

    Parameters
    ----------
    name
        A key of :data:`TASKS`.
    data_dir
        Folder holding the data files (see :mod:`scmm.datasets`).

    Returns
    -------
    The MuData (``.obs['train']`` marks training cells) and the task.
    """
    from . import datasets, pp

    if name not in TASKS:
        msg = f"`dataset={name!r}` is not one of {sorted(TASKS)}."
        raise ValueError(msg)
    task = TASKS[name]
    mdata = getattr(datasets, task.dataset)(data_dir=data_dir)
    pp.normalize(mdata, task.source, method=task.source_norm)
    pp.normalize(mdata, task.target, method=task.target_norm)
    if task.test_batches:
        pp.split_cells(mdata, test_batches=list(task.test_batches))
    else:
        pp.split_cells(mdata, test_fraction=0.2, rng=0)
    return mdata, task


@dataclass(frozen=True)
class Method:
    """A method compared by the demo and ``benchmarks/accuracy.py``.

    ``fit(mdata, task, *, key_added, rng, svd_fit_on)`` fits on ``mdata.obs['train']`` and
    writes predictions to ``mdata[task.target].layers[key_added]``; ``kinds`` lists the
    ``(source, target)`` modality pairs it applies to (``None``: all).
    """

    fit: Callable[..., object]
    kinds: tuple[tuple[str, str], ...] | None = None
    uses_svd: bool = True

    def applies_to(self, task: Task) -> bool:
        """Whether the method can run on ``task``."""
        return self.kinds is None or (task.source, task.target) in self.kinds


CITE = (("rna", "prot"),)
MULTIOME = (("atac", "rna"),)


def _baseline(method: str):
    def fit(mdata, task, *, key_added, rng=0, svd_fit_on="train"):
        from . import tl

        n_components = 64 if task.source == "atac" else 32
        return tl.fit_baseline(
            mdata,
            task.source,
            task.target,
            method=method,
            train="train",
            n_components=n_components,
            key_added=key_added,
            rng=rng,
            svd_fit_on=svd_fit_on,
        )

    return fit


#: Methods compared by the demo and ``benchmarks/accuracy.py``. Model issues add their rows.
METHODS: dict[str, Method] = {
    "mean": Method(_baseline("mean"), uses_svd=False),
    "ridge": Method(_baseline("ridge")),
    "knn": Method(_baseline("knn")),
    "kernel_ridge": Method(_baseline("kernel_ridge")),
}
