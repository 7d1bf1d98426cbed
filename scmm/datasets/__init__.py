"""Real paired single-cell datasets, gene annotations, gene sets, tasks and a synthetic toy.

A task (:func:`load_task`) is a dataset normalised and split as scmm's results were measured.

Files are looked up under ``data_dir=``, then ``$SCMM_DATA_DIR``, then a user cache; missing
files with a public URL are downloaded with pooch and their sha256 checked (see
:func:`fetch`).
"""

from __future__ import annotations

from ._annotation import gene_annotation
from ._fetch import fetch
from ._gene_sets import gene_sets
from ._open_problems import read_open_problems_2022
from ._paired import bmmc_cite, mop_snare2, pbmc10k_cite, pbmc10k_protein_200, pbmc_multiome
from ._reference import pbmc_5prime_cite, reapseq_pbmc
from ._tasks import TASKS, Task, load_task
from ._toy import toy_cite, toy_multiome

__all__ = [
    "TASKS",
    "Task",
    "bmmc_cite",
    "fetch",
    "gene_annotation",
    "gene_sets",
    "load_task",
    "mop_snare2",
    "pbmc10k_cite",
    "pbmc10k_protein_200",
    "pbmc_5prime_cite",
    "pbmc_multiome",
    "read_open_problems_2022",
    "reapseq_pbmc",
    "toy_cite",
    "toy_multiome",
]
