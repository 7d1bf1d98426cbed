"""Intervals across labs with a few of the query's cells measured: how many are enough?

    python benchmarks/query_calibration.py                    # all pairs, ridge + mlp, 3 seeds
    python benchmarks/query_calibration.py --pairs reap23_to_5prime --methods ridge --seeds 0

No interval built from the reference and the query's RNA covers another lab's protein values
(docs, *Across datasets*: each antibody's level is offset between labs). Many users can
measure the proteins of a few of their own cells (a small CITE-seq run beside the scRNA-seq).
For each pair of ``benchmarks/transfer.py`` (its genes, proteins, normalisation and scored
20% of the query's cells per seed), the method is fitted on every reference cell and
predicts the whole query; then ``n`` cells drawn from the query's other 80% play the measured
ones (``--n-cells``) as :func:`scmm.tl.calibrate` uses them: per protein, the mean residual on
them is added to every prediction (the level offset) and the interval is split-conformal on
their residuals (the absolute residual less its leave-one-out mean offset; the
⌈(n + 1)·0.9⌉-th smallest, per protein).
Scored on the 20%: coverage of the nominal 90% intervals (all values and the worst
protein), mean width, and per-cell Pearson and RMSE before and after the offset (per-protein
Pearson does not change with an offset). ``--measured T-like`` (or ``myeloid-like``) draws the
measured cells from one kind of cell only (``benchmarks/align_subset.py``'s markers): a
non-random sample. Writes ``<tag>.csv`` and ``<tag>.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
import align_subset
import transfer

from scmm import metrics
from scmm.tl._calibrate import _weak, offsets_and_half_widths

N_CELLS = (10, 25, 50, 100, 200)
INTERVAL = 0.9
#: A protein is "negligible" when its per-protein Pearson on the scored cells is at most this:
#: what calibrate's "weak" flag (from the measured cells alone) should find.
NEGLIGIBLE = 0.1


def calibrate(y_cal, p_cal, p_new, interval: float = INTERVAL):
    """Predictions shifted by each protein's mean residual on the measured cells, and bounds
    (the arithmetic of :func:`scmm.tl.calibrate`)."""
    offset, half = offsets_and_half_widths(np.asarray(y_cal, np.float64) - p_cal, interval)
    p = p_new + offset
    return p, (p - half, p + half)


def run(pair: str, method: str, seeds, n_cells, measured: str = "random") -> list[dict]:
    reference, query, _ = transfer.PAIRS[pair]
    ref, qry, _ = transfer.prepare(reference, query, 0.01)
    y_all = np.asarray(qry["prot"].X, np.float64)
    rows = []
    for seed in seeds:
        test = np.zeros(qry.n_obs, dtype=bool)
        test[np.random.default_rng(seed).permutation(qry.n_obs)[: qry.n_obs // 5]] = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            model = transfer.METHODS[method](ref, None, seed)
            seconds = time.perf_counter() - t0
        p_all, _ = transfer._predict(model, qry, np.ones(qry.n_obs, dtype=bool))
        y, p = y_all[test], p_all[test]
        pool = ~test
        if measured != "random":  # a non-random sample: one kind of cell only
            pool &= align_subset.subsets(qry)[measured]
        pool = np.flatnonzero(pool)
        order = np.random.default_rng(1000 + seed).permutation(pool)
        base = {
            "pair": pair,
            "method": method,
            "measured": measured,
            "seed": seed,
            "fit_seconds": round(seconds, 1),
        }
        rows.append(
            {
                **base,
                "n_measured": 0,
                "pearson_per_protein": float(metrics.pearson_per_feature(y, p)),
                "pearson_per_cell": float(metrics.pearson_per_cell(y, p)),
                "rmse": float(np.sqrt(((p - y) ** 2).mean())),
            }
        )
        r_test = metrics.pearson_per_feature(y, p, average=False)
        truly = r_test <= NEGLIGIBLE
        for n in n_cells:
            cal = order[:n]
            p_new, bounds = calibrate(y_all[cal], p_all[cal], p)
            r_cal = metrics.pearson_per_feature(y_all[cal], p_all[cal], average=False)
            flagged = _weak(r_cal, n)[1]
            rows.append(
                {
                    **base,
                    "n_measured": n,
                    "pearson_per_protein": float(metrics.pearson_per_feature(y, p_new)),
                    "pearson_per_cell": float(metrics.pearson_per_cell(y, p_new)),
                    "rmse": float(np.sqrt(((p_new - y) ** 2).mean())),
                    **transfer.interval_scores(y, bounds),
                    # calibrate's "weak" flag against the scored cells' Pearson
                    "n_proteins": len(truly),
                    "n_negligible": int(truly.sum()),
                    "n_flagged": int(flagged.sum()),
                    "n_flagged_negligible": int((flagged & truly).sum()),
                    "flagged_max_pearson": float(r_test[flagged].max()) if flagged.any() else None,
                }
            )
        print(pd.DataFrame(rows[-len(n_cells) - 1 :]).round(3).to_string(index=False), flush=True)
    return rows


def summarise(table: pd.DataFrame) -> str:
    """Mean over seeds per pair, method and number of measured cells (Markdown).

    ``flagged: negligible / other`` sums calibrate's "weak" flags over the seeds,
    split by whether the protein's Pearson on the scored cells is negligible
    (≤ ``NEGLIGIBLE``); ``negligible found`` is how many of those were flagged, and
    ``flagged: highest Pearson`` the highest scored-cell Pearson of a flagged protein.
    """
    keys = ["pair", "method", "n_measured"]
    columns = ["pearson_per_cell", "rmse", *transfer._INTERVAL_FIELDS]
    summary = table.groupby(keys, sort=False)[columns].mean()
    summary["seeds"] = table.groupby(keys, sort=False).size()
    if "n_flagged" in table:
        sums = table.groupby(keys, sort=False)[
            ["n_flagged", "n_flagged_negligible", "n_negligible", "n_proteins"]
        ].sum()
        other = sums["n_flagged"] - sums["n_flagged_negligible"]
        summary["flagged: negligible / other"] = [
            f"{a:.0f} / {b:.0f}" for a, b in zip(sums["n_flagged_negligible"], other, strict=True)
        ]
        summary["negligible found"] = [
            f"{a:.0f} of {b:.0f}"
            for a, b in zip(sums["n_flagged_negligible"], sums["n_negligible"], strict=True)
        ]
        summary["flagged: highest Pearson"] = table.groupby(keys, sort=False)[
            "flagged_max_pearson"
        ].max()
    return summary.reset_index().to_markdown(index=False, floatfmt=".3f")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pairs", nargs="+", default=list(transfer.PAIRS), choices=list(transfer.PAIRS)
    )
    parser.add_argument("--methods", nargs="+", default=["ridge", "mlp"], choices=["ridge", "mlp"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--n-cells", nargs="+", type=int, default=list(N_CELLS))
    parser.add_argument(
        "--measured",
        default="random",
        choices=["random", "T-like", "myeloid-like"],
        help="which query cells play the measured ones: a random sample (default) or only "
        "cells of one kind (benchmarks/align_subset.py's markers), to see a non-random sample",
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "query_calibration"
    )
    parser.add_argument("--tag", default="query_calibration", help="file name stem")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for pair in args.pairs:
        for method in args.methods:
            rows += run(pair, method, args.seeds, args.n_cells, args.measured)
            pd.DataFrame(rows).to_csv(args.out / f"{args.tag}.csv", index=False)
    markdown = summarise(pd.DataFrame(rows))
    (args.out / f"{args.tag}.md").write_text(markdown + "\n")
    print(markdown)


if __name__ == "__main__":
    main()
