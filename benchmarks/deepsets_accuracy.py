"""DeepSets against the baselines on the two multiome tasks, held-out cells, one run.

    SCMM_DATA_DIR=../shared/data python benchmarks/deepsets_accuracy.py \\
        [--threads 1] [--epochs 30] [--skip-mlp]

Tasks: ``mop_snare2`` (train on all batches but 09K/09L; mm10 windows) and ``pbmc_multiome``
(random 80/20, seed 0; hg38 windows). Methods: mean, ridge (64 SVD comps), gene activity,
``fit_mlp(input="svd+raw")`` and ``fit_deepsets``. Prints per-cell Pearson (mean over held-out
cells) and mean per-gene Pearson (over held-out cells) with fit times, as a Markdown table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import scmm
from scmm import metrics
from scmm._tasks import TASKS, ensure_windows


def load_task(name: str):
    """``scmm._tasks.load_task`` after dropping cells without counts in some modality."""
    from scmm import datasets, pp

    task = TASKS[name]
    mdata = getattr(datasets, task.dataset)()
    keep = np.ones(mdata.n_obs, dtype=bool)
    for mod in (task.source, task.target):
        counts = np.asarray(mdata[mod].X.sum(axis=1)).ravel()
        keep &= mdata.obs_names.isin(mdata[mod].obs_names[counts > 0])
    if not keep.all():
        print(f"{name}: dropped {(~keep).sum()} cells without counts")
        mdata = mdata[keep].copy()
    pp.normalize(mdata, task.source, method=task.source_norm)
    pp.normalize(mdata, task.target, method=task.target_norm)
    if task.test_batches:
        pp.split_cells(mdata, test_batches=list(task.test_batches))
    else:
        pp.split_cells(mdata, test_fraction=0.2, rng=0)
    return mdata, task


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", nargs="+", default=["mop_snare2", "pbmc_multiome"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--epochs", type=int, default=30, help="fit_deepsets max_epochs")
    parser.add_argument("--skip-mlp", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    fits = {
        "mean": lambda m, t: scmm.tl.fit_baseline(
            m, t.source, t.target, method="mean", train="train", key_added="b_mean"
        ),
        "ridge": lambda m, t: scmm.tl.fit_baseline(
            m,
            t.source,
            t.target,
            method="ridge",
            n_components=64,
            train="train",
            key_added="b_ridge",
            rng=0,
        ),
        "gene_activity": lambda m, t: scmm.tl.fit_baseline(
            m,
            t.source,
            t.target,
            method="gene_activity",
            train="train",
            key_added="b_gene_activity",
        ),
        "deepsets": lambda m, t: scmm.tl.fit_deepsets(
            m,
            t.source,
            t.target,
            train="train",
            key_added="b_deepsets",
            rng=0,
            max_epochs=args.epochs,
            verbose=False,
        ),
        "mlp (svd+raw)": lambda m, t: scmm.tl.fit_mlp(
            m,
            t.source,
            t.target,
            input="svd+raw",
            train="train",
            key_added="b_mlp",
            rng=0,
            verbose=False,
        ),
    }
    if args.skip_mlp:
        del fits["mlp (svd+raw)"]
    print("| task | method | per-cell Pearson | per-gene Pearson | fit s |")
    print("|---|---|---|---|---|")
    for name in args.tasks:
        mdata, task = load_task(name)
        ensure_windows(mdata, task)
        y = mdata[task.target].X
        y = y.toarray() if hasattr(y, "toarray") else np.asarray(y)
        test = ~mdata.obs["train"].reindex(mdata[task.target].obs_names).to_numpy(bool)
        for method, fit in fits.items():
            start = time.perf_counter()
            fit(mdata, task)
            seconds = time.perf_counter() - start
            pred = mdata[task.target].layers[model_key(method)]
            cell = metrics.pearson_per_cell(y[test], pred[test])
            gene = metrics.pearson_per_feature(y[test], pred[test])
            print(
                f"| {name} | {method} | {np.nanmean(cell):.4f} | {np.nanmean(gene):.4f} | "
                f"{seconds:.0f} |",
                flush=True,
            )


def model_key(method: str) -> str:
    return "b_" + {"mlp (svd+raw)": "mlp"}.get(method, method)


if __name__ == "__main__":
    main()
