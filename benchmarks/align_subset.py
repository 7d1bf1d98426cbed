"""Does ``predict(align=...)`` go wrong on a query of one cell type?

    python benchmarks/align_subset.py       # REAP-seq run 2 → 3 and → 5′, mlp and ridge
    python benchmarks/align_subset.py --pairs reap2_to_reap3 --methods mlp --aligns symphony

``align="standardize"`` gives each gene of the query the reference's mean and standard
deviation, which assumes the query holds the reference's mix of cells (``--aligns`` takes
the other methods of ``scmm.tl.predict``'s ``align``). For each pair of
``benchmarks/transfer.py`` (its genes, proteins and normalisation), the method is fitted once
on every reference cell (seed 0) and predicts three queries from the query dataset's RNA,
with and without each alignment: all its cells, its T-like cells (any of :data:`T_GENES`
detected) and its myeloid-like cells (summed :data:`MYELOID_GENES` above the median, not
T-like), the kind of subset a user predicts after clustering (markers the pair lacks are
skipped). Scores on the measured proteins: per-protein Pearson, RMSE and the mean absolute
bias (mean prediction minus mean measured value, per protein). Writes ``<tag>.csv`` and
``<tag>.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
import transfer

from scmm import metrics

T_GENES = ("CD3D", "CD3E", "CD3G")
MYELOID_GENES = ("LYZ", "S100A8", "S100A9", "CST3", "FCN1")


def _expression(mdata, genes) -> np.ndarray:
    """Summed expression of those of ``genes`` the pair keeps (cells × 1)."""
    rna = mdata["rna"]
    columns = [rna.var_names.get_loc(g) for g in genes if g in rna.var_names]
    if not columns:
        msg = f"None of {genes} is among the pair's genes."
        raise KeyError(msg)
    x = rna.X[:, columns]
    return np.asarray(x.sum(axis=1)).ravel()


def subsets(mdata) -> dict[str, np.ndarray]:
    """Cell masks of the query: all, T-like and myeloid-like (from its RNA only)."""
    t_like = _expression(mdata, T_GENES) > 0
    myeloid = _expression(mdata, MYELOID_GENES)
    return {
        "all": np.ones(mdata.n_obs, dtype=bool),
        "T-like": t_like,
        "myeloid-like": (myeloid > np.median(myeloid)) & ~t_like,
    }


def run(pair: str, method: str, aligns) -> list[dict]:
    reference, query, _ = transfer.PAIRS[pair]
    ref, qry, _ = transfer.prepare(reference, query, 0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = transfer.METHODS[method](ref, None, 0)
    y_all = np.asarray(qry["prot"].X, np.float64)
    rows = []
    for subset, cells in subsets(qry).items():
        y = y_all[cells]
        for align in (None, *aligns):
            p, _ = transfer._predict(model, qry, cells, align)
            row = {
                "pair": pair,
                "method": method,
                "subset": subset,
                "n_cells": int(cells.sum()),
                "align": align or "none",
                "pearson_per_protein": float(metrics.pearson_per_feature(y, p)),
                "rmse": float(np.sqrt(((p - y) ** 2).mean())),
                "mean_abs_bias": float(np.abs((p - y).mean(axis=0)).mean()),
            }
            print(row, flush=True)
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pairs",
        nargs="+",
        default=["reap2_to_reap3", "reap23_to_5prime"],
        choices=list(transfer.PAIRS),
    )
    parser.add_argument("--methods", nargs="+", default=["mlp", "ridge"], choices=["mlp", "ridge"])
    parser.add_argument(
        "--aligns", nargs="+", default=["standardize"], choices=list(transfer.PREDICT_ALIGN)
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "align_subset"
    )
    parser.add_argument("--tag", default="align_subset", help="file name stem of the outputs")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    rows = [
        row
        for pair in args.pairs
        for method in args.methods
        for row in run(pair, method, args.aligns)
    ]
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / f"{args.tag}.csv", index=False)
    markdown = table.to_markdown(index=False, floatfmt=".3f")
    (args.out / f"{args.tag}.md").write_text(markdown + "\n")
    print(markdown)


if __name__ == "__main__":
    main()
