"""``scmm demo``: every method on a real dataset, trained and scored on held-out cells."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .._registry import MODELS, TASKS
from ._args import add_common
from ._io import Reporter

#: The demo's settings beside the models' defaults, keyed by model class (the benchmarks run
#: the same, so the demo prints the results tables' seed-0 numbers): 32 SVD components for the
#: baselines on RNA (the reference numbers) and 64 on the sparser ATAC; on ATAC (raw peaks as
#: input) the MLP takes larger batches and fewer epochs to keep the time on 2 CPU cores
#: reasonable. Values are given per source modality kind: ``(rna, atac)``.
_OPTIONS: dict[str, dict[str, tuple]] = {
    "BaselineModel": {"n_components": (32, 64)},
    "MLPModel": {"training": ({"batch_size": 64}, {"batch_size": 256}), "max_epochs": (40, 20)},
}


def settings(name: str, task) -> dict:
    """Return the demo's settings of model ``name`` (a registry key) on ``task`` (``_OPTIONS``)."""
    atac = task.source == "atac"
    return {k: v[atac] for k, v in _OPTIONS.get(MODELS[name].model, {}).items()}


def applies_to(name: str, task) -> bool:
    """Whether model ``name`` of :data:`scmm._registry.MODELS` runs on ``task``.

    A model with gene sets needs named genes (``task.gene_names``); one with modality pairs
    runs only on those.
    """
    entry = MODELS[name]
    if entry.named_genes and not task.gene_names:
        return False
    return entry.pairs is None or (task.source, task.target) in entry.pairs


def fit_method(
    mdata,
    task,
    name: str,
    *,
    key_added: str,
    rng: int = 0,
    svd_fit_on: str = "train",
    data_dir: str | Path | None = None,
    **options,
):
    """Fit model ``name`` (a :data:`scmm._registry.MODELS` key) on the task's training cells.

    As the demo does: the registry's fixed keywords and defaults, the demo's settings
    (``_OPTIONS``), then ``options``; predictions go to ``mdata[task.target].layers[key_added]``.
    A model reading gene–peak windows needs them in ``mdata.uns['windows']``
    (``scmm.datasets.load_task(..., windows=True)``); a ``gene_sets`` collection name is read
    with :func:`scmm.datasets.gene_sets`.

    Returns
    -------
    The fitted model.
    """
    from .. import datasets, tl

    entry = MODELS[name]
    kwargs = {**entry.fixed, **entry.defaults, **settings(name, task), **options}
    kwargs |= {"key_added": key_added, "rng": rng, "svd_fit_on": svd_fit_on}
    if isinstance(kwargs.get("gene_sets"), str):
        kwargs["gene_sets"] = datasets.gene_sets(kwargs["gene_sets"], data_dir=data_dir)
    return fit_on_task(getattr(tl, entry.fit), mdata, task, **kwargs)


def fit_on_task(function, mdata, task, **kwargs):
    """Call ``function(mdata, task.source, task.target, train="train", **kwargs)``."""
    return function(mdata, task.source, task.target, train="train", **kwargs)


def demo(
    dataset: str = "bmmc_cite",
    *,
    out: str | Path = ".",
    methods: list[str] | None = None,
    data_dir: str | None = None,
    quiet: bool = False,
) -> list[dict]:
    """Train every method on a real dataset's training cells and score the held-out cells.

    Parameters
    ----------
    dataset
        A task name of :data:`scmm.datasets.TASKS` (default: ``bmmc_cite``, donor s1d1 → s1d2).
    out
        Folder for ``scmm_demo.h5mu`` (all predictions) and ``scmm_demo.png``.
    methods
        Models to run, by their ``scmm fit --method`` names; default every one that applies.
    data_dir
        Folder of the data files (else ``SCMM_DATA_DIR`` or the user cache).
    quiet
        Print nothing (the files are still written).

    Returns
    -------
    One row per method: per-cell and mean per-feature Pearson, RMSE, fit seconds.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .. import _keys, datasets, metrics, pl

    def say(*lines: str, end: str = "\n") -> None:
        if not quiet:
            print(*lines, sep="\n", end=end, flush=True)

    unknown = sorted(set(methods or ()) - set(MODELS))
    if unknown:
        msg = f"`methods` {unknown} are not among {sorted(MODELS)}."
        raise ValueError(msg)
    task = TASKS[dataset] if dataset in TASKS else None  # else load_task names the tasks
    methods = methods or [m for m in MODELS if task is None or applies_to(m, task)]
    windows = task is not None and any(MODELS[m].windows for m in methods)
    mdata, task = datasets.load_task(dataset, windows=windows, data_dir=data_dir)
    test = ~mdata.obs["train"].reindex(mdata[task.target].obs_names).to_numpy()
    y = mdata[task.target].X
    rows = []
    say(
        f"scmm demo: {dataset}, {task.source} → {task.target}, {task.description}; "
        f"{int((~test).sum())} training cells, {int(test.sum())} held-out cells"
    )
    began = time.perf_counter()
    for i, name in enumerate(methods, 1):
        key = _keys.prediction(name)
        # one progress line per method: its name while it fits, then its seconds
        say(f"[{i}/{len(methods)}] fitting {name} …", end="")
        start = time.perf_counter()
        fit_method(mdata, task, name, key_added=key, data_dir=data_dir)
        seconds = time.perf_counter() - start
        say(f" {seconds:.1f} s (elapsed {time.perf_counter() - began:.0f} s)")
        pred = mdata[task.target].layers[key]
        rows.append(
            {
                "method": name,
                "pearson_per_cell": metrics.pearson_per_cell(y[test], pred[test]),
                "pearson_per_feature": metrics.pearson_per_feature(y[test], pred[test]),
                "rmse": metrics.rmse(y[test], pred[test]),
                "seconds": seconds,
            }
        )
    say(
        "",
        "| method | per-cell Pearson | mean per-feature Pearson | RMSE | fit s |",
        "|---|---|---|---|---|",
    )
    for r in sorted(rows, key=lambda r: -r["pearson_per_cell"]):
        say(
            f"| {r['method']} | {r['pearson_per_cell']:.3f} | {r['pearson_per_feature']:.3f} "
            f"| {r['rmse']:.3f} | {r['seconds']:.1f} |"
        )
    best = max(rows, key=lambda r: r["pearson_per_cell"])["method"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fig = pl.predicted_vs_measured(mdata, task.target, _keys.prediction(best), cells=test)
    fig.suptitle(f"{dataset}: {best}, held-out cells")
    fig.savefig(out / "scmm_demo.png", dpi=110)
    plt.close(fig)
    renamed = _unique_var_names(mdata)
    if renamed:
        say(renamed)
    mdata.write(out / "scmm_demo.h5mu")
    say(f"\nwrote {out / 'scmm_demo.h5mu'} and {out / 'scmm_demo.png'}")
    return rows


def _unique_var_names(mdata) -> str | None:
    """Prefix feature names shared by two modalities (gene and protein CD44) with the modality.

    As :meth:`mudata.MuData.var_names_make_unique` does, so the written file reads back
    without MuData's warnings about duplicated names; returns a line saying which were renamed
    (``None`` when no name is shared).
    """
    import warnings

    import pandas as pd

    names = pd.Index([v for m in mdata.mod.values() for v in m.var_names])
    shared = sorted(set(names[names.duplicated()]))
    if not shared:
        return None
    with warnings.catch_warnings():  # MuData announces the prefix: printed below instead
        warnings.simplefilter("ignore", UserWarning)
        mdata.var_names_make_unique()
    return (
        f"{len(shared)} feature names occur in two modalities ({', '.join(shared[:5])}"
        f"{', …' if len(shared) > 5 else ''}); the file names them '<modality>:<name>'."
    )


def add_parser(sub) -> None:
    """Add the ``demo`` command to the subparsers ``sub``."""
    p = sub.add_parser(
        "demo",
        help="fit every method on a real dataset and score held-out cells",
        description="Fit every applicable method on a real dataset's training cells, print "
        "the scores on the held-out cells and write scmm_demo.h5mu (all predictions) and "
        "scmm_demo.png (predicted vs measured for the best method) to --out.",
    )
    p.add_argument(
        "--dataset",
        default="bmmc_cite",
        choices=sorted(TASKS),
        help="the task: dataset and held-out cells (default: bmmc_cite, donor s1d1 → s1d2)",
    )
    p.add_argument("--out", default=".", help="output folder (default: current folder)")
    p.add_argument(
        "--methods",
        nargs="+",
        choices=sorted(MODELS),
        default=None,
        metavar="METHOD",
        help=f"methods to run (default: every one that applies); from {', '.join(MODELS)}",
    )
    add_common(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, report: Reporter) -> int:
    """Run ``scmm demo``."""
    demo(
        args.dataset,
        out=args.out,
        methods=args.methods,
        data_dir=args.data_dir,
        quiet=report.quiet,
    )
    return 0
