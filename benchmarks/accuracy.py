"""Accuracy of every scmm method on every real dataset, held-out cells, several seeds.

    python benchmarks/accuracy.py                  # everything, 3 seeds
    python benchmarks/accuracy.py --quick          # bmmc_cite, 1 seed, a few methods (< 5 min)
    python benchmarks/accuracy.py --tasks bmmc_cite --methods ridge mlp --seeds 0 1 2
    python benchmarks/accuracy.py --summarise results/*/accuracy_runs.csv   # merge split runs
                                   # (a later file's run replaces the same run of an earlier one)
    python benchmarks/accuracy.py --summarise results/*/accuracy_runs.csv --compact  # README
    python benchmarks/accuracy.py --summarise results/*/accuracy_runs.csv --versus ensemble mlp
                                   # per-seed differences of two methods (mean ± s.e.)
    python benchmarks/accuracy.py --tasks bmmc_cite --methods ensemble --member-scores
                                   # also each ensemble member's own held-out score

Prints a Markdown table (mean ± sd over seeds) and writes it, with a CSV of every run, to
``benchmarks/results/``. Methods that use an input SVD run with ``svd_fit_on="train"`` (scmm's
default) and, with ``--svd-fit-on both``, also ``"all"`` (SVD fitted on every cell's inputs,
as in the 2022 competition). Data: ``$SCMM_DATA_DIR`` (``make benchmark`` sets it).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _methods import METHODS

import scmm
from scmm import metrics
from scmm.datasets import TASKS, load_task
from scmm.models._ensemble import _mean_prediction

QUICK = {"tasks": ["bmmc_cite"], "methods": ["mean", "ridge", "kernel_ridge", "mlp"], "seeds": [0]}


def run(
    tasks, methods, seeds, svd_fit_on, out_dir: Path, seeds_all=None, member_scores=False
) -> list[dict]:
    rows = []
    for task_name in tasks:
        mdata, task = load_task(task_name, windows=TASKS[task_name].assembly is not None)
        y = mdata[task.target].X
        y = y.toarray() if hasattr(y, "toarray") else np.asarray(y)
        test = ~mdata.obs["train"].reindex(mdata[task.target].obs_names).to_numpy()
        runs = [
            (name, fit_on, seed)
            for name in methods
            if METHODS[name].applies_to(task)
            for fit_on in (svd_fit_on if METHODS[name].uses_svd else ["train"])
            for seed in (seeds if fit_on == "train" or seeds_all is None else seeds_all)
        ]
        # seed by seed (every method of a seed, then the next seed): a run stopped early
        # keeps whole seeds, each with every method measured in it
        runs.sort(key=lambda r: r[2])
        for name, fit_on, seed in runs:
            method = METHODS[name]
            key = f"bench_{name}"
            start = time.perf_counter()
            model = method.fit(mdata, task, key_added=key, rng=seed, svd_fit_on=fit_on)
            seconds = time.perf_counter() - start
            layers = mdata[task.target].layers
            pred = layers[key]
            coverage = np.nan  # of the 90% intervals, for methods that give them
            if f"{key}_lower" in layers:
                lower, upper = layers[f"{key}_lower"][test], layers[f"{key}_upper"][test]
                coverage = float(((y[test] >= lower) & (y[test] <= upper)).mean())
            row = {
                "task": task_name,
                "split": task.description,
                "method": name,
                "svd_fit_on": fit_on,
                "seed": seed,
                **_scores(y[test], pred[test]),
                "fit_seconds": seconds,
                "interval_coverage": coverage,
            }
            rows.append(row)
            print(
                f"{task_name:22s} {name:14s} svd_fit_on={fit_on:5s} seed={seed} "
                f"cell={row['pearson_per_cell']:.4f} "
                f"feature={row['pearson_per_feature']:.4f} "
                f"rmse={row['rmse']:.4f} coverage={coverage:.3f} {seconds:.1f}s",
                flush=True,
            )
            if member_scores and name == "ensemble":
                rows += _member_rows(model, mdata, task, test, y[test], row)
            for k in (key, f"{key}_lower", f"{key}_upper"):
                layers.pop(k, None)
            # after every run, so that a stopped run keeps what it measured
            out_dir.mkdir(parents=True, exist_ok=True)
            _write_csv(rows, out_dir / "accuracy_runs.csv")
    return rows


def _member_rows(model, mdata, task, test, y_test, row) -> list[dict]:
    """Rows ``ensemble:<member>``: each member's final prediction (averaged over its seeds, as
    the ensemble uses it) scored on the held-out cells, to see what the weights combine."""
    src = mdata[task.source]
    X = src[mdata[task.target].obs_names[test]].X
    rows = []
    for name, fits, weights in zip(model.member_names, model.fitted, model.weights, strict=True):
        scores = _scores(y_test, _mean_prediction(fits, X))
        rows.append(
            {
                **row,
                "method": f"ensemble:{name}",
                **scores,
                "fit_seconds": np.nan,
                "interval_coverage": np.nan,
            }
        )
        print(
            f"  member {name:14s} cell={rows[-1]['pearson_per_cell']:.4f} "
            f"feature={rows[-1]['pearson_per_feature']:.4f} mean weight={weights.mean():.2f} "
            f"({len(fits)} fit{'s' if len(fits) > 1 else ''})",
            flush=True,
        )
    return rows


def _scores(y_test: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {
        "pearson_per_cell": metrics.pearson_per_cell(y_test, pred),
        "pearson_per_feature": metrics.pearson_per_feature(y_test, pred),
        "rmse": metrics.rmse(y_test, pred),
    }


def _write_csv(rows, path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _read_csv(path: Path) -> list[dict]:
    numeric = (
        "seed",
        "pearson_per_cell",
        "pearson_per_feature",
        "rmse",
        "fit_seconds",
        "interval_coverage",
    )
    with path.open() as fh:
        rows = [
            {k: float(v) if k in numeric else v for k, v in r.items()} for r in csv.DictReader(fh)
        ]
    for r in rows:  # runs from before the coverage column
        r.setdefault("interval_coverage", np.nan)
    return rows


def _merge_runs(paths: list[Path]) -> list[dict]:
    """Runs of several CSVs; a later file's run replaces an earlier one of the same task,
    method, ``svd_fit_on`` and seed (e.g. a method rerun after a change of its defaults)."""
    runs: dict[tuple, dict] = {}
    for path in paths:
        for r in _read_csv(path):
            runs[(r["task"], r["method"], r["svd_fit_on"], r["seed"])] = r
    return list(runs.values())


def summarise(rows) -> str:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["split"], r["method"], r["svd_fit_on"]), []).append(r)

    def fmt(values):
        values = np.asarray(values)
        return (
            f"{values.mean():.3f} ± {values.std(ddof=1):.3f}"
            if len(values) > 1
            else (f"{values.mean():.3f}")
        )

    def coverage(rs):
        values = [r["interval_coverage"] for r in rs]
        return "—" if np.isnan(values).all() else fmt(values)

    lines = [
        "| dataset, split | method | svd_fit_on | per-cell Pearson | mean per-feature Pearson "
        "| RMSE | 90% interval coverage | fit s | seeds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (task, split, method, fit_on), rs in sorted(
        groups.items(),
        key=lambda kv: (kv[0][0], -np.mean([r["pearson_per_cell"] for r in kv[1]])),
    ):
        lines.append(
            f"| {task}: {split} | {method} | {fit_on} | "
            f"{fmt([r['pearson_per_cell'] for r in rs])} | "
            f"{fmt([r['pearson_per_feature'] for r in rs])} | {fmt([r['rmse'] for r in rs])} | "
            f"{coverage(rs)} | {np.mean([r['fit_seconds'] for r in rs]):.1f} | {len(rs)} |"
        )
    return "\n".join(lines)


def versus(rows, first: str, second: str) -> str:
    """Per-cell Pearson of ``first`` minus ``second``, paired by seed (runs of both only)."""
    score = {
        (r["task"], r["svd_fit_on"], r["method"], r["seed"]): r["pearson_per_cell"] for r in rows
    }
    lines = [
        f"| task | svd_fit_on | {first} | {second} | difference (mean ± s.e.) | ahead | seeds |",
        "|---|---|---|---|---|---|---|",
    ]
    for task, fit_on in sorted({(t, f) for t, f, m, _ in score if m == first}):
        seeds = sorted(
            s
            for t, f, m, s in score
            if (t, f, m) == (task, fit_on, first) and (task, fit_on, second, s) in score
        )
        if not seeds:
            continue
        a = np.array([score[task, fit_on, first, s] for s in seeds])
        b = np.array([score[task, fit_on, second, s] for s in seeds])
        d = a - b
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.nan
        lines.append(
            f"| {task} | {fit_on} | {a.mean():.4f} | {b.mean():.4f} | {d.mean():+.4f} ± {se:.4f} "
            f"| {int((d > 0).sum())} of {len(d)} | {len(d)} |"
        )
    return "\n".join(lines)


def _sd(values: np.ndarray) -> str:
    return f" ± {values.std(ddof=1):.3f}" if len(values) > 1 else ""


def compact(rows) -> str:
    """One row per dataset and method: per-cell and per-feature Pearson with
    ``svd_fit_on="train"`` (mean ± sd over seeds) and per-cell Pearson with ``"all"``."""
    order = {t: i for i, t in enumerate(TASKS)}
    methods = {m: i for i, m in enumerate(METHODS)}
    lines = [
        "| dataset, split | method | per-cell Pearson (svd_fit_on=train, 3 seeds) "
        "| mean per-feature Pearson | per-cell, svd_fit_on=all |",
        "|---|---|---|---|---|",
    ]
    keys = sorted(
        {(r["task"], r["split"], r["method"]) for r in rows},
        key=lambda k: (order.get(k[0], len(order)), methods.get(k[2], len(methods))),
    )
    for task, split, method in keys:
        train = [
            r for r in rows if (r["task"], r["method"], r["svd_fit_on"]) == (task, method, "train")
        ]
        every = [
            r for r in rows if (r["task"], r["method"], r["svd_fit_on"]) == (task, method, "all")
        ]
        if not train:
            continue
        cell = np.array([r["pearson_per_cell"] for r in train])
        feat = np.array([r["pearson_per_feature"] for r in train])
        alls = f"{np.mean([r['pearson_per_cell'] for r in every]):.3f}" if every else "—"
        lines.append(
            f"| {task}: {split} | {method} | {cell.mean():.3f}{_sd(cell)} "
            f"| {feat.mean():.3f}{_sd(feat)} | {alls} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=sorted(TASKS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=sorted(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--svd-fit-on", choices=["train", "all", "both"], default="both")
    parser.add_argument(
        "--seeds-all",
        nargs="+",
        type=int,
        default=None,
        help="seeds of the svd_fit_on='all' rows (default: --seeds)",
    )
    parser.add_argument(
        "--member-scores",
        action="store_true",
        help="also score each ensemble member's final (seed-averaged) fit on the held-out cells "
        "(rows 'ensemble:<member>')",
    )
    parser.add_argument("--quick", action="store_true", help="bmmc_cite, 1 seed, few methods")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: small networks run fastest single-threaded on a CPU)",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--summarise",
        nargs="+",
        type=Path,
        default=None,
        metavar="CSV",
        help="only print the table of earlier runs (accuracy_runs.csv files), e.g. of runs split "
        "across processes",
    )
    parser.add_argument(
        "--compact", action="store_true", help="with --summarise: the README's shorter table"
    )
    parser.add_argument(
        "--versus",
        nargs=2,
        metavar=("METHOD", "OTHER"),
        default=None,
        help="with --summarise: per-cell Pearson of METHOD minus OTHER, paired by seed",
    )
    args = parser.parse_args()
    if args.summarise:
        rows = _merge_runs(args.summarise)
        if args.versus:
            print(versus(rows, *args.versus))
        else:
            print(compact(rows) if args.compact else summarise(rows))
        return
    torch.set_num_threads(args.threads)
    scmm.settings.verbose = False
    tasks, methods, seeds = args.tasks, args.methods, args.seeds
    if args.quick:
        tasks, seeds = QUICK["tasks"], QUICK["seeds"]
        methods = [m for m in QUICK["methods"] if m in METHODS]
    fit_on = ["train", "all"] if args.svd_fit_on == "both" else [args.svd_fit_on]
    rows = run(
        tasks,
        methods,
        seeds,
        fit_on,
        args.out,
        seeds_all=args.seeds_all,
        member_scores=args.member_scores,
    )
    table = summarise(rows)
    print("\n" + table)
    name = "accuracy_quick" if args.quick else "accuracy"
    command = "python benchmarks/accuracy.py " + " ".join(sys.argv[1:])
    (args.out / f"{name}.md").write_text(f"Command: `{command.strip()}`\n\n{table}\n")


if __name__ == "__main__":
    main()
