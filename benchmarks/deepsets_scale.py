"""DeepSets forward + backward at Kaggle-size windows (synthetic), memory and time.

    python benchmarks/deepsets_scale.py [--batches 4] [--threads 1] [--max-memory-mb 1024]
    python benchmarks/deepsets_scale.py --paths fused reference --profile   # before/after

``--paths`` runs the same batches through each path of ρ's local term in turn (``fused``: the
fused CPU kernel, the default on CPU; ``reference``: torch operations in memory-bounded
chunks, as before the kernel and as on a GPU), so their step times come from one run;
``--profile`` adds a ``torch.profiler`` step per path and prints each operator's share.

Windows of the 2022 competition's multiome data: 228,942 peaks, 23,418 genes, ~20 peaks per
gene (random peaks and distances); a batch of 256 cells with ~3% of peaks open (TF-IDF-like
values); a 64-component context. Runs a few optimiser steps (forward, MSE backward, AdamW) and
reports the process's peak resident memory and the time per epoch per 1,000 cells extrapolated
from the mean step time (the first step, a warm-up, excluded).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import scipy.sparse as sp
import torch

from scmm.nn import DeepSetsNet, pair_features
from scmm.train._data import to_torch_batch

N_PEAKS, N_GENES, PEAKS_PER_GENE = 228_942, 23_418, 20


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--density", type=float, default=0.03)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--max-memory-mb", type=float, default=1024.0)
    parser.add_argument("--hidden", type=int, default=64, help="width of ρ")
    parser.add_argument(
        "--paths", nargs="+", choices=["fused", "reference"], default=["fused"], help="ρ paths"
    )
    parser.add_argument("--profile", action="store_true", help="profile one step per path")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    counts = rng.poisson(PEAKS_PER_GENE, N_GENES)
    pair_gene = np.repeat(np.arange(N_GENES), counts)
    # each gene's peaks: a contiguous genomic neighbourhood, as real windows are
    centre = rng.integers(0, N_PEAKS - 60, N_GENES)
    pair_peak = np.concatenate(
        [
            c + np.sort(rng.choice(60, k, replace=False))
            for c, k in zip(centre, np.minimum(counts, 60), strict=True)
        ]
    )
    pair_gene = np.repeat(np.arange(N_GENES), np.minimum(counts, 60))
    n_pairs = len(pair_gene)
    feats = pair_features(
        rng.integers(-50_000, 50_000, n_pairs),
        rng.integers(200, 1500, n_pairs),
        rng.integers(0, 2, n_pairs),
    )
    net = DeepSetsNet(
        64,
        pair_gene,
        pair_peak,
        feats,
        N_GENES,
        N_PEAKS,
        accessibility_scale=20.0,
        max_memory_mb=args.max_memory_mb,
        hidden=args.hidden,
    )
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    b = args.batch_size
    setup_rss = rss_mb()
    print(
        f"{n_pairs:,} pairs ({n_pairs / N_GENES:.1f} peaks/gene), batch {b} cells at "
        f"{args.density:.0%} density, threads {torch.get_num_threads()}, "
        f"max_memory_mb {args.max_memory_mb:.0f} (chunk rows {net.chunk_rows():,})"
    )
    batches = [
        (
            sp.random(
                b,
                N_PEAKS,
                density=args.density,
                format="csr",
                dtype=np.float32,
                random_state=rng,
                data_rvs=lambda n: rng.uniform(5, 40, n),
            ),
            torch.from_numpy(rng.normal(size=(b, 64)).astype(np.float32)),
            torch.from_numpy(rng.normal(size=(b, N_GENES)).astype(np.float32)),
        )
        for _ in range(args.batches)
    ]

    def step(atac, ctx, y):
        start = time.perf_counter()
        x = to_torch_batch(atac)
        opt.zero_grad()
        loss = torch.mean((net(ctx, x) - y) ** 2)
        loss.backward()
        opt.step()
        return time.perf_counter() - start

    times = {path: [] for path in args.paths}
    for i, batch in enumerate(batches):
        for path in args.paths:  # interleaved: both paths see the same machine state
            net.fused_rho = path == "fused"
            times[path].append(step(*batch))
            with torch.no_grad():
                cells, _, _ = net.active_pooled(
                    net.entries(to_torch_batch(batch[0])), net.phi_weights()
                )
            print(
                f"{path} step {i}: {times[path][-1]:.2f} s, {batch[0].nnz:,} open peaks, "
                f"{len(cells):,} active (cell, gene) rows, peak RSS {rss_mb():,.0f} MB",
                flush=True,
            )
    print(f"setup RSS {setup_rss:,.0f} MB; peak RSS {rss_mb():,.0f} MB")
    for path, ts in times.items():
        per_step = float(np.mean(ts[1:] if len(ts) > 1 else ts))
        print(
            f"{path}: {per_step:.2f} s per step of {b} cells -> {per_step / b * 1000:.1f} s per "
            f"epoch per 1,000 cells ({per_step / b * 105_942 / 60:.1f} min per epoch on the "
            "105,942 competition training cells)"
        )
    if args.profile:
        for path in args.paths:
            net.fused_rho = path == "fused"
            print(f"\nprofile, {path} path (one step; share of the step's CPU time by operator)")
            print(profile_shares(lambda: step(*batches[0])))


def profile_shares(fn, top: int = 12) -> str:
    """Self CPU time of the ``top`` operators of one call of ``fn``, as shares of the total."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    rows = [f"  total {total / 1e6:.2f} s"]
    rows += [f"  {e.self_cpu_time_total / total:6.1%}  {e.key}" for e in events[:top] if total > 0]
    return "\n".join(rows)


if __name__ == "__main__":
    main()
