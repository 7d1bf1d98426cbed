"""Load a task: a real dataset normalised and split as scmm's reported numbers were measured.

As :func:`scanpy.datasets.pbmc3k_processed` hands out a processed dataset; the tasks themselves
(:data:`TASKS`) are in :mod:`scmm._registry`, read by the command line without loading data.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from .._docs import DATA_DIR, doc_params
from .._registry import TASKS, Task

if TYPE_CHECKING:
    from mudata import MuData

logger = logging.getLogger("scmm")


@doc_params(data_dir=DATA_DIR)
def load_task(name: str, *, windows: bool = False, data_dir=None) -> tuple[MuData, Task]:
    """Load, normalise and split the dataset of task ``name``.

    Cells without counts in the source or target modality are dropped first (they cannot be
    normalised); the test cells are the task's held-out batches, else the first 20% of
    ``np.random.default_rng(0).permutation(n_cells)``.

    Parameters
    ----------
    name
        A key of :data:`scmm.datasets.TASKS`.
    windows
        Also compute the gene–peak windows of a multiome task into ``mdata.uns['windows']``
        (:func:`scmm.pp.gene_peak_windows` on the task's assembly), as ``fit_deepsets`` and
        the gene-activity baseline read them.
    {data_dir}

    Returns
    -------
    The normalised MuData (``.obs['train']`` marks the training cells) and the task.

    Examples
    --------
    >>> import scmm
    >>> mdata, task = scmm.datasets.load_task("bmmc_cite")  # doctest: +SKIP
    >>> task.description  # doctest: +SKIP
    'train donor s1d1 → score s1d2'
    """
    from .. import datasets, pp

    if name not in TASKS:
        msg = f"`name={name!r}` is not a task; pass one of {sorted(TASKS)}."
        raise ValueError(msg)
    task = TASKS[name]
    if windows and task.assembly is None:
        msg = f"Task {name!r} has no peaks (no `assembly`); pass `windows=False`."
        raise ValueError(msg)
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
    if windows:
        annotation = datasets.gene_annotation(task.assembly, data_dir=data_dir)
        pp.gene_peak_windows(mdata, task.target, task.source, annotation=annotation)
    return mdata, task
