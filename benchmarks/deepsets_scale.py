"""DeepSets forward + backward at Kaggle-size windows (synthetic), memory and time.

    python benchmarks/deepsets_scale.py [--batches 4] [--threads 1] [--max-memory-mb 1024]

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
    times = []
    for step in range(args.batches):
        atac = sp.random(
            b,
            N_PEAKS,
            density=args.density,
            format="csr",
            dtype=np.float32,
            random_state=rng,
            data_rvs=lambda n: rng.uniform(5, 40, n),
        )
        ctx = torch.from_numpy(rng.normal(size=(b, 64)).astype(np.float32))
        y = torch.from_numpy(rng.normal(size=(b, N_GENES)).astype(np.float32))
        start = time.perf_counter()
        x = to_torch_batch(atac)
        opt.zero_grad()
        loss = torch.mean((net(ctx, x) - y) ** 2)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
        with torch.no_grad():
            cells, _, _ = net.active_pooled(net.entries(x), net.phi_weights())
        print(
            f"step {step}: {times[-1]:.2f} s, {atac.nnz:,} open peaks, "
            f"{len(cells):,} active (cell, gene) rows, peak RSS {rss_mb():,.0f} MB",
            flush=True,
        )
    per_step = float(np.mean(times[1:] if len(times) > 1 else times))
    print(f"setup RSS {setup_rss:,.0f} MB; peak RSS {rss_mb():,.0f} MB")
    print(
        f"{per_step:.2f} s per step of {b} cells -> {per_step / b * 1000:.1f} s per epoch "
        f"per 1,000 cells ({per_step / b * 105_942 / 60:.1f} min per epoch on the 105,942 "
        "competition training cells)"
    )


if __name__ == "__main__":
    main()
