"""The real-data prediction tasks used by the demo, the benchmarks and the tutorials.

Each task loads a dataset, normalises it the way scmm's reported numbers were measured, and
marks the training cells in ``mdata.obs['train']`` (held-out donor or batches where the data
has them, otherwise the first 20% of ``np.random.default_rng(0).permutation(n_cells)`` are
test cells).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .._registry import MODELS, ModelEntry

if TYPE_CHECKING:  # not imported at run time: `scmm demo --help` reads TASKS and METHODS
    from mudata import MuData

logger = logging.getLogger("scmm")


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
    #: Genome assembly of the ATAC peaks (multiome tasks), for gene–peak windows.
    assembly: str | None = None


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
        assembly="mm10",
    ),
    "pbmc_multiome": Task(
        "pbmc_multiome",
        "atac",
        "rna",
        "tfidf",
        "log_cp10k",
        None,
        "ATAC → RNA, random 80/20 (seed 0)",
        assembly="hg38",
    ),
}


def load_task(name: str, *, data_dir=None) -> tuple[MuData, Task]:
    """Load, normalise and split the dataset of task ``name``.

    Cells without counts in the source or target modality are dropped first (they cannot be
    normalised).

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
    from .. import datasets, pp

    if name not in TASKS:
        msg = f"`dataset={name!r}` is not one of {sorted(TASKS)}."
        raise ValueError(msg)
    task = TASKS[name]
    mdata = getattr(datasets, task.dataset)(data_dir=data_dir)
    keep = np.ones(mdata.n_obs, dtype=bool)
    for mod in (task.source, task.target):
        totals = np.asarray(mdata[mod].layers["counts"].sum(axis=1)).ravel()
        keep &= totals[mdata.obs_names.get_indexer(mdata[mod].obs_names)] > 0
    if not keep.all():  # e.g. 19 nuclei of pbmc_multiome have no ATAC counts
        logger.info("%s: dropping %d cells without counts", name, int((~keep).sum()))
        mdata = mdata[keep].copy()
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

    ``fit(mdata, task, *, key_added, rng, svd_fit_on, data_dir)`` fits on ``mdata.obs['train']``
    and writes predictions to ``mdata[task.target].layers[key_added]`` (``data_dir``: the folder
    of the gene annotation and gene sets it may read); ``kinds`` lists the
    ``(source, target)`` modality pairs it applies to (``None``: all); ``datasets`` the datasets
    it needs (``None``: all; e.g. gene sets need named genes).
    """

    fit: Callable[..., object]
    kinds: tuple[tuple[str, str], ...] | None = None
    uses_svd: bool = True
    datasets: tuple[str, ...] | None = None

    def applies_to(self, task: Task) -> bool:
        """Whether the method can run on ``task``."""
        if self.datasets is not None and task.dataset not in self.datasets:
            return False
        return self.kinds is None or (task.source, task.target) in self.kinds


def ensure_windows(mdata: MuData, task: Task, *, data_dir=None, key: str = "windows") -> None:
    """Compute the task's gene–peak windows into ``mdata.uns[key]`` unless already there."""
    from .. import datasets, pp

    if key in mdata.uns:
        return
    if task.assembly is None:
        msg = f"Task {task.dataset!r} has no `assembly`; gene–peak windows need one."
        raise ValueError(msg)
    annotation = datasets.gene_annotation(task.assembly, data_dir=data_dir)
    pp.gene_peak_windows(mdata, task.target, task.source, annotation=annotation, key_added=key)


def _fit_with(function: str, *, windows=False, **fixed):
    """Build a :class:`Method` fit calling ``scmm.tl.<function>`` on the training cells.

    ``windows`` (a bool, or a callable of the task) computes the gene–peak windows first.
    ``fixed`` holds further keyword arguments; a callable value is called with the task, and a
    ``gene_sets`` collection name is read with :func:`scmm.datasets.gene_sets` from the fit's
    ``data_dir``.
    """

    def fit(mdata, task, *, key_added, rng=0, svd_fit_on="train", data_dir=None):
        from .. import datasets, tl

        if windows(task) if callable(windows) else windows:
            ensure_windows(mdata, task, data_dir=data_dir)
        kwargs = {k: v(task) if callable(v) else v for k, v in fixed.items()}
        if isinstance(kwargs.get("gene_sets"), str):
            kwargs["gene_sets"] = datasets.gene_sets(kwargs["gene_sets"], data_dir=data_dir)
        return getattr(tl, function)(
            mdata,
            task.source,
            task.target,
            train="train",
            key_added=key_added,
            rng=rng,
            svd_fit_on=svd_fit_on,
            **kwargs,
        )

    return fit


def _is_atac(task: Task) -> bool:
    return task.source == "atac"


#: CITE datasets whose genes and proteins are named (gene sets need symbols).
NAMED_CITE = ("bmmc_cite", "pbmc10k_protein_200")

#: The benchmarks' settings beside the models' defaults: 32 SVD components for RNA (the
#: reference numbers) and 64 for the sparser ATAC in the baselines; the MLP on ATAC (raw peaks
#: as input) takes larger batches and fewer epochs to keep the time on 2 CPU cores reasonable.
BENCHMARK_OPTIONS: dict[str, dict] = {
    "BaselineModel": {"n_components": lambda t: 64 if _is_atac(t) else 32},
    "MLPModel": {
        "training": lambda t: {"batch_size": 256 if _is_atac(t) else 64},
        "max_epochs": lambda t: 20 if _is_atac(t) else 40,
    },
}


def _method(entry: ModelEntry) -> Method:
    options = {**entry.fixed, **entry.defaults, **BENCHMARK_OPTIONS.get(entry.model, {})}
    return Method(
        _fit_with(entry.fit, windows=entry.windows, **options),
        kinds=entry.pairs,
        uses_svd=entry.uses_svd,
        datasets=NAMED_CITE if entry.named_genes else None,
    )


#: Methods compared by the demo and ``benchmarks/accuracy.py``: every model of
#: :data:`scmm._registry.MODELS` at its defaults and :data:`BENCHMARK_OPTIONS`.
METHODS: dict[str, Method] = {name: _method(entry) for name, entry in MODELS.items()}
