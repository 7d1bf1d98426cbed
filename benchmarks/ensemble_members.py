"""How the defaults of ``scmm.tl.fit_ensemble`` were chosen: on training cells only.

    python benchmarks/ensemble_members.py --task pbmc10k_cite
    python benchmarks/ensemble_members.py --task bmmc_cite --holdout 0.2 --seeds 0 1 2

Without ``--holdout``: cross-fits every candidate member (``n_folds`` folds, at the defaults
``fit_ensemble`` gives them) on the task's *training* cells and prints, for every subset of the
candidates, the per-cell Pearson of the convex OOF combination (weights fitted on the same OOF
predictions, a few parameters per target: the same small optimism for every subset).

With ``--holdout f``: a fraction ``f`` of the *training* cells is set aside (an inner
validation set, drawn with each seed) and the ensemble is run on the rest exactly as
``fit_ensemble`` runs it; on the inner validation cells it compares the final predictor (the
members refitted on all remaining cells, ``refit=True``, against the average of the members'
fold fits, ``refit=False``), per-target against shared weights, each member alone, and the
coverage of the 90% intervals. Test cells are never read in either mode. Each member's fit
time is printed too.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch

import scmm
from scmm import metrics
from scmm.cli._demo import settings
from scmm.datasets import TASKS, load_task
from scmm.models import EnsembleModel
from scmm.models._conformal import conformal_half_width
from scmm.models._ensemble import make_folds
from scmm.models._stacking import convex_weights, seed_noise_reduction, stacking_weights
from scmm.tl._ensemble_members import MEMBERS, member_spec

#: The MLP member's options on ATAC inputs, as ``benchmarks/accuracy.py`` gives them.
ATAC_MLP = settings("mlp", TASKS["mop_snare2"])


def _fit(name, X, Y, src, tgt, atac: bool, seed: int):
    options = ATAC_MLP if atac and name == "mlp" else None
    model = EnsembleModel._build(member_spec(name, options))
    model.fit(X, Y, source_features=src.var_names, target_features=tgt.var_names, rng=seed)
    return model


def cross_fit(names, X, Y, folds, src, tgt, atac, seed, X_eval=None):
    """OOF predictions (members × cells × targets) and, for ``X_eval``, the mean of the fold fits'
    predictions (members × eval cells × targets)."""
    oof = np.zeros((len(names), *Y.shape), np.float32)
    bag = None if X_eval is None else np.zeros((len(names), X_eval.shape[0], Y.shape[1]))
    for m, name in enumerate(names):
        start = time.perf_counter()
        for k, val in enumerate(folds):
            tr = np.setdiff1d(np.arange(X.shape[0]), val)
            model = _fit(name, X[tr], Y[tr], src, tgt, atac, seed * 100 + k)
            oof[m, val] = model.predict_array(X[val])
            if bag is not None:
                bag[m] += model.predict_array(X_eval) / len(folds)
        print(
            f"{name:14s} OOF per-cell {metrics.pearson_per_cell(Y, oof[m]):.4f} "
            f"({time.perf_counter() - start:.0f} s for {len(folds)} fits)",
            flush=True,
        )
    return oof, bag


def shared_weights(oof: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """One convex weight vector for all targets, broadcast to members × targets."""
    w = convex_weights(oof.reshape(oof.shape[0], -1, 1), Y.reshape(-1, 1))
    return np.repeat(w, Y.shape[1], axis=1)


def subsets(oof, Y, names) -> None:
    results = []
    for size in range(1, len(names) + 1):
        for subset in itertools.combinations(range(len(names)), size):
            W = convex_weights(oof[list(subset)], Y)
            combined = np.einsum("mij,mj->ij", oof[list(subset)], W)
            label = "+".join(names[i] for i in subset)
            results.append((metrics.pearson_per_cell(Y, combined), label))
    for score, label in sorted(results, reverse=True):
        print(f"{score:.4f}  {label}")


def holdout(names, X, Y, src, tgt, atac, args, seed) -> list[tuple[str, float, float, float]]:
    """Ensemble variants scored on an inner validation set of the training cells."""
    gen = np.random.default_rng(seed)
    inner = np.zeros(X.shape[0], bool)
    inner[gen.permutation(X.shape[0])[: round(args.holdout * X.shape[0])]] = True
    XA, YA, XB, YB = X[~inner], Y[~inner], X[inner], Y[inner]
    folds = make_folds(XA.shape[0], args.n_folds, None, gen)
    oof, bag = cross_fit(names, XA, YA, folds, src, tgt, atac, seed, X_eval=XB)
    refit = np.stack(
        [_fit(n, XA, YA, src, tgt, atac, seed * 100 + 99).predict_array(XB) for n in names]
    )
    rows = []

    def score(label, pred, half_width=None):
        coverage = np.nan
        if half_width is not None:
            coverage = float((np.abs(YB - pred) <= half_width).mean())
        rows.append(
            (
                label,
                metrics.pearson_per_cell(YB, pred),
                metrics.pearson_per_feature(YB, pred),
                coverage,
            )
        )

    k = len(folds)
    pooled = (refit + k * bag) / (k + 1)  # the refit and the fold fits, averaged
    neural = np.array([n == "mlp" for n in names])[:, None, None]
    mixed = np.where(neural, pooled, refit)  # pooled for the MLP only
    finals = [("refit", refit), ("fold-average", bag), ("pooled", pooled), ("mlp-pooled", mixed)]
    if args.mlp_seeds > 1 and "mlp" in names:  # the MLP refitted with several seeds, averaged
        m = names.index("mlp")
        seeds = refit.copy()
        for s in range(1, args.mlp_seeds):
            fit = _fit("mlp", XA, YA, src, tgt, atac, seed * 100 + 99 - s)
            seeds[m] += fit.predict_array(XB)
        seeds[m] /= args.mlp_seeds
        score(f"mlp refit x{args.mlp_seeds}", seeds[m])
        finals.append((f"mlp-refit-x{args.mlp_seeds}", seeds))
    for m, name in enumerate(names):
        score(f"{name} refit", refit[m])
        score(f"{name} fold-average", bag[m])
        score(f"{name} pooled", pooled[m])
    weightings = [("per-target", convex_weights(oof, YA)), ("shared", shared_weights(oof, YA))]
    if args.mlp_seeds > 1 and "mlp" in names:
        # the weights told that the final MLP averages mlp_seeds fits (fit_ensemble's default):
        # a second seed on the first fold estimates the seed-to-seed variance
        m, val = names.index("mlp"), folds[0]
        tr = np.setdiff1d(np.arange(XA.shape[0]), val)
        twin = _fit("mlp", XA[tr], YA[tr], src, tgt, atac, seed * 100 + 50).predict_array(XA[val])
        noise = np.zeros((len(names), YA.shape[1]))
        noise[m] = seed_noise_reduction(oof[m, val], twin, args.mlp_seeds)
        weightings.append(("per-target seed-corrected", convex_weights(oof, YA, noise)))
        W, lam, _ = stacking_weights(oof, YA, folds, noise)  # fit_ensemble's default
        print(f"seed {seed}: shrinkage chosen by the folds {lam}", flush=True)
        weightings.append(("seed-corrected, shrunk", W))
    for wname, W in weightings:
        q = conformal_half_width(YA - np.einsum("mij,mj->ij", oof, W), 0.9)
        for final, P in finals:
            score(f"ensemble {wname} {final}", np.einsum("mij,mj->ij", P, W), q)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="pbmc10k_cite", choices=sorted(TASKS))
    parser.add_argument("--members", nargs="+", default=list(MEMBERS), choices=MEMBERS)
    parser.add_argument("--n-folds", type=int, default=5)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--holdout",
        type=float,
        default=0.0,
        help="fraction of the training cells set aside to compare ensemble variants on",
    )
    parser.add_argument(
        "--mlp-seeds", type=int, default=1, help="with --holdout: also the MLP refit with n seeds"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    scmm.settings.verbose = False
    mdata, task = load_task(args.task)
    train = mdata.obs["train"].to_numpy()
    src, tgt = mdata[task.source], mdata[task.target]
    X = src.X[train]
    Y = tgt.X[tgt.obs_names.get_indexer(src.obs_names[train])]
    Y = np.asarray(Y.toarray() if hasattr(Y, "toarray") else Y, np.float32)
    atac = task.source == "atac"
    if not args.holdout:
        for seed in args.seeds:
            folds = make_folds(X.shape[0], args.n_folds, None, np.random.default_rng(seed))
            oof, _ = cross_fit(args.members, X, Y, folds, src, tgt, atac, seed)
            subsets(oof, Y, args.members)
        return
    table: dict[str, list] = {}
    for seed in args.seeds:
        for label, *values in holdout(args.members, X, Y, src, tgt, atac, args, seed):
            table.setdefault(label, []).append(values)
            print(f"seed {seed} {label:34s} " + " ".join(f"{v:.4f}" for v in values), flush=True)
    print(f"\n{args.task}, inner validation = {args.holdout:.0%} of the training cells")
    print("| variant | per-cell Pearson | per-feature Pearson | 90% coverage |\n|---|---|---|---|")
    for label, values in sorted(table.items(), key=lambda kv: -np.mean([v[0] for v in kv[1]])):
        cell, feature, coverage = np.mean(values, axis=0)
        cov = "—" if np.isnan(coverage) else f"{coverage:.3f}"
        print(f"| {label} | {cell:.4f} | {feature:.4f} | {cov} |")


if __name__ == "__main__":
    main()
