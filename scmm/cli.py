"""The ``scmm`` console script: ``scmm demo`` runs the main job on a real dataset."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def demo(
    dataset: str = "bmmc_cite",
    *,
    out: str | Path = ".",
    methods: list[str] | None = None,
    data_dir: str | None = None,
) -> list[dict]:
    """Train every method on a real dataset's training cells and score the held-out cells.

    Parameters
    ----------
    dataset
        A task name of ``scmm._tasks.TASKS`` (default: ``bmmc_cite``, donor s1d1 → s1d2).
    out
        Folder for ``scmm_demo.h5mu`` (all predictions) and ``scmm_demo.png``.
    methods
        Methods to run; default all of ``scmm._tasks.METHODS``.
    data_dir
        Folder of the data files (else ``SCMM_DATA_DIR`` or the user cache).

    Returns
    -------
    One row per method: per-cell and mean per-feature Pearson, RMSE, fit seconds.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import _keys, metrics, pl
    from ._tasks import METHODS, load_task

    mdata, task = load_task(dataset, data_dir=data_dir)
    methods = methods or [m for m in METHODS if METHODS[m].applies_to(task)]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        msg = f"`methods` {unknown} are not among {sorted(METHODS)}."
        raise ValueError(msg)
    test = ~mdata.obs["train"].reindex(mdata[task.target].obs_names).to_numpy()
    y = mdata[task.target].X
    rows = []
    print(
        f"scmm demo: {dataset}, {task.source} → {task.target}, {task.description}; "
        f"{int((~test).sum())} training cells, {int(test.sum())} held-out cells"
    )
    for name in methods:
        key = _keys.prediction(name)
        start = time.perf_counter()
        METHODS[name].fit(mdata, task, key_added=key)
        seconds = time.perf_counter() - start
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
    print("\n| method | per-cell Pearson | mean per-feature Pearson | RMSE | fit s |")
    print("|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: -r["pearson_per_cell"]):
        print(
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
    _unique_var_names(mdata)
    mdata.write(out / "scmm_demo.h5mu")
    print(f"\nwrote {out / 'scmm_demo.h5mu'} and {out / 'scmm_demo.png'}")
    return rows


def _unique_var_names(mdata) -> None:
    """Prefix feature names shared by two modalities (gene and protein CD44) with the modality.

    As :meth:`mudata.MuData.var_names_make_unique` does, so the written file reads back
    without MuData's warnings about duplicated names; prints which were renamed.
    """
    import warnings

    import pandas as pd

    names = pd.Index([v for m in mdata.mod.values() for v in m.var_names])
    shared = sorted(set(names[names.duplicated()]))
    if not shared:
        return
    with warnings.catch_warnings():  # MuData announces the prefix: printed below instead
        warnings.simplefilter("ignore", UserWarning)
        mdata.var_names_make_unique()
    print(
        f"{len(shared)} feature names occur in two modalities ({', '.join(shared[:5])}"
        f"{', …' if len(shared) > 5 else ''}); the file names them '<modality>:<name>'."
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``scmm`` console script."""
    from ._tasks import METHODS, TASKS

    parser = argparse.ArgumentParser(prog="scmm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="fit every method on a real dataset and score held-out cells")
    p.add_argument("--dataset", default="bmmc_cite", choices=sorted(TASKS))
    p.add_argument("--out", default=".", help="output folder (default: current folder)")
    p.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=None)
    p.add_argument("--data-dir", default=None, help="data folder (default: $SCMM_DATA_DIR)")
    args = parser.parse_args(argv)
    from ._settings import settings

    settings.verbose = False  # the console script prints tables, not progress bars
    try:
        demo(args.dataset, out=args.out, methods=args.methods, data_dir=args.data_dir)
    except FileNotFoundError as err:
        print(f"scmm demo: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
