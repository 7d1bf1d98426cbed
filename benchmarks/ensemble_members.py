"""How the default members of ``scmm.tl.fit_ensemble`` were chosen: on training cells only.

    python benchmarks/ensemble_members.py --task pbmc10k_cite

Cross-fits every candidate member (``n_folds`` folds, at the defaults ``fit_ensemble`` gives
them) on the task's *training* cells and prints, for every subset of the candidates, the
per-cell Pearson of the convex OOF combination (weights fitted on the same OOF predictions,
a few parameters per target: the same small optimism for every subset). Test cells are never
read. Each member's OOF fit time is printed too.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch

import scmm
from scmm import metrics
from scmm._tasks import TASKS, load_task
from scmm.models._ensemble import EnsembleModel, convex_weights, make_folds
from scmm.tl._ensemble import MEMBERS, member_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="pbmc10k_cite", choices=sorted(TASKS))
    parser.add_argument("--members", nargs="+", default=list(MEMBERS), choices=MEMBERS)
    parser.add_argument("--n-folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    scmm.settings.verbose = False
    mdata, task = load_task(args.task)
    train = mdata.obs["train"].to_numpy()
    src, tgt = mdata[task.source], mdata[task.target]
    X = src.X[train]
    Y = tgt.X[tgt.obs_names.get_indexer(src.obs_names[train])]
    Y = np.asarray(Y.toarray() if hasattr(Y, "toarray") else Y, np.float32)
    gen = np.random.default_rng(args.seed)
    folds = make_folds(X.shape[0], args.n_folds, None, gen)
    oof = np.zeros((len(args.members), *Y.shape), np.float32)
    for m, name in enumerate(args.members):
        start = time.perf_counter()
        for k, val in enumerate(folds):
            tr = np.setdiff1d(np.arange(X.shape[0]), val)
            model = EnsembleModel._build(member_spec(name))
            model.fit(
                X[tr],
                Y[tr],
                source_features=src.var_names,
                target_features=tgt.var_names,
                rng=args.seed * 100 + k,
            )
            oof[m, val] = model.predict_array(X[val])
        print(
            f"{name:14s} OOF per-cell {metrics.pearson_per_cell(Y, oof[m]):.4f} "
            f"({time.perf_counter() - start:.0f} s for {args.n_folds} fits)",
            flush=True,
        )
    results = []
    for size in range(1, len(args.members) + 1):
        for subset in itertools.combinations(range(len(args.members)), size):
            W = convex_weights(oof[list(subset)], Y)
            combined = np.einsum("mij,mj->ij", oof[list(subset)], W)
            names = "+".join(args.members[i] for i in subset)
            results.append((metrics.pearson_per_cell(Y, combined), names))
    for score, names in sorted(results, reverse=True):
        print(f"{score:.4f}  {names}")


if __name__ == "__main__":
    main()
