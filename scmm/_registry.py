"""Every model by its public name: its class, fit function and where it applies, in one table.

The command line (``scmm fit --method``, ``scmm demo``), the benchmark tasks and the ensemble
read this table; the model's own options (its architecture parameters) come from its class's
``__init__`` signature, resolved only when a model is fitted. The table holds names, not
objects, so that ``scmm --help`` reads it without importing torch; ``tests/test_registry.py``
checks it against the classes and the fit functions. Adding a model adds one line here (see
the docs page "Adding a model").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
