"""Every model by its public name (its class, fit function and where it applies) and every task.

The command line (``scmm fit --method``, ``scmm demo``), the benchmark tasks and the ensemble
read this table; the model's own options (its architecture parameters) come from its class's
``__init__`` signature, resolved only when a model is fitted. The table holds names, not
objects, so that ``scmm --help`` reads it without importing torch; ``tests/test_registry.py``
checks it against the classes and the fit functions. Adding a model adds one line here (see
the docs page "Adding a model"). :data:`TASKS` names the real-data tasks of the demo, the
benchmarks and the results tables (loaded by :func:`scmm.datasets.load_task`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Methods of ``scmm.tl.predict(..., align=...)`` (``scmm predict --align``), in
#: ``scmm/tl/_align.py``.
ALIGN_METHODS = ("standardize", "moments", "symphony")

#: (source, target) modality pairs of CITE-seq and of multiome data.
CITE = (("rna", "prot"),)
MULTIOME = (("atac", "rna"),)


@dataclass(frozen=True)
class ModelEntry:
    """One model as the command line, the benchmarks and the ensemble name it.

    Attributes
    ----------
    model
        Its class in :mod:`scmm.models` (whose ``__init__`` lists its own options).
    fit
        Its function in :mod:`scmm.tl`.
    fixed
        Keywords ``fit`` is always called with for this name (e.g. ``method="ridge"``).
    defaults
        Keyword defaults of the command line and the benchmarks, which ``--param`` may replace
        (e.g. ``gene_sets="hallmark"``: a collection name is read from the data folder).
    windows
        It reads gene–peak windows (``mdata.uns['windows']``, from ``--assembly``).
    pairs
        The (source, target) modalities the demo and the benchmarks run it on; None: all.
    named_genes
        It needs gene symbols as source names (gene sets).
    uses_svd
        ``svd_fit_on`` changes its result (the benchmarks run both values).
    ensemble
        It may be a member of :func:`scmm.tl.fit_ensemble`.
    """

    model: str
    fit: str
    fixed: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    windows: bool = False
    pairs: tuple[tuple[str, str], ...] | None = None
    named_genes: bool = False
    uses_svd: bool = True
    ensemble: bool = False


def _baseline(method: str, **facts: Any) -> ModelEntry:
    return ModelEntry("BaselineModel", "fit_baseline", fixed={"method": method}, **facts)


#: The models by public name (``scmm fit --method``), in the order the demo reports them.
MODELS: dict[str, ModelEntry] = {
    "mean": _baseline("mean", uses_svd=False, ensemble=True),
    "ridge": _baseline("ridge", ensemble=True),
    "knn": _baseline("knn", ensemble=True),
    "kernel_ridge": _baseline("kernel_ridge", ensemble=True),
    "linear": ModelEntry("LinearModel", "fit_linear"),
    "mlp": ModelEntry("MLPModel", "fit_mlp", ensemble=True),
    "autoencoder": ModelEntry("AutoencoderModel", "fit_autoencoder", pairs=CITE),
    "pathway_mlp": ModelEntry(
        "PathwayMLPModel",
        "fit_pathway_mlp",
        defaults={"gene_sets": "hallmark"},
        pairs=CITE,
        named_genes=True,
    ),
    "gene_activity": ModelEntry(
        "GeneActivityModel",
        "fit_baseline",
        fixed={"method": "gene_activity"},
        windows=True,
        pairs=MULTIOME,
        uses_svd=False,
    ),
    "deepsets": ModelEntry(
        "DeepSetsModel", "fit_deepsets", windows=True, pairs=MULTIOME, ensemble=True
    ),
}


def ensemble_members() -> tuple[str, ...]:
    """Return the names :func:`scmm.tl.fit_ensemble` accepts as members."""
    return tuple(name for name, entry in MODELS.items() if entry.ensemble)


@dataclass(frozen=True)
class Task:
    """A prediction task on a real dataset: what predicts what, normalised how, scored where.

    Attributes
    ----------
    dataset
        The loader in :mod:`scmm.datasets` (e.g. ``"bmmc_cite"``).
    source, target
        The modality predicted from and the one predicted.
    source_norm, target_norm
        Their :func:`scmm.pp.normalize` methods.
    test_batches
        The held-out batches (``obs['batch']``); None: a random 20% of the cells.
    description
        One line saying which cells are held out.
    assembly
        Genome assembly of the ATAC peaks (multiome tasks), for gene–peak windows.
    gene_names
        The features are named (gene symbols), as gene sets need.
    """

    dataset: str
    source: str
    target: str
    source_norm: str
    target_norm: str
    test_batches: tuple[str, ...] | None = None
    description: str = ""
    assembly: str | None = None
    gene_names: bool = True


#: The tasks by name: the splits of scmm's results tables.
TASKS: dict[str, Task] = {
    "bmmc_cite": Task(
        "bmmc_cite", "rna", "prot", "log_cp10k", "clr", ("s1d2",), "train donor s1d1 → score s1d2"
    ),
    "bmmc_cite_rev": Task(
        "bmmc_cite", "rna", "prot", "log_cp10k", "clr", ("s1d1",), "train donor s1d2 → score s1d1"
    ),
    "pbmc10k_cite": Task(
        "pbmc10k_cite",
        "rna",
        "prot",
        "log_cp10k",
        "clr",
        None,
        "random 80/20 (seed 0)",
        gene_names=False,
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
