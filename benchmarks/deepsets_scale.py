"""DeepSets forward + backward at Kaggle-size windows (synthetic), memory and time.

    python benchmarks/deepsets_scale.py [--batches 4] [--threads 1] [--max-memory-mb 1024]
    python benchmarks/deepsets_scale.py --paths fused reference --profile   # before/after

Windows of the 2022 competition's multiome data: 228,942 peaks, 23,418 genes, ~20 peaks per
gene (random peaks and distances); a batch of 256 cells with ~3% of peaks open (TF-IDF-like
values); a 64-component context. Runs a few optimiser steps (forward, MSE backward, AdamW) and
reports the process's peak resident memory and the time per epoch per 1,000 cells extrapolated
from the mean step time (the first step, a warm-up, excluded), wall and process CPU time (all
threads). The step does not depend on the number of cells in the data set: an epoch is
``cells / batch`` such steps.

``--paths`` runs the same batches through each path of DeepSets' pooling and ρ (``fused``: the
fused CPU kernels, the default on CPU; ``reference``: torch operations, ρ in memory-bounded
chunks, as before the kernels and as on a GPU), interleaved step by step so both see the same
machine state; ``--profile`` adds a ``torch.profiler`` step per path and prints each
operator's share of the step's CPU time. ``benchmarks/gpu_check.py --deepsets`` times the same
steps on a GPU.
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
N_CELLS = 105_942


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def full_shape_net(rng, *, hidden: int = 64, max_memory_mb: float = 1024.0) -> DeepSetsNet:
    """A DeepSetsNet over synthetic windows of the competition's shape (64-d context)."""
    counts = np.minimum(rng.poisson(PEAKS_PER_GENE, N_GENES), 60)
    # each gene's peaks: a contiguous genomic neighbourhood, as real windows are
    centre = rng.integers(0, N_PEAKS - 60, N_GENES)
    pair_peak = np.concatenate(
        [c + np.sort(rng.choice(60, k, replace=False)) for c, k in zip(centre, counts, strict=True)]
    )
    pair_gene = np.repeat(np.arange(N_GENES), counts)
    n_pairs = len(pair_gene)
    feats = pair_features(
        rng.integers(-50_000, 50_000, n_pairs),
        rng.integers(200, 1500, n_pairs),
        rng.integers(0, 2, n_pairs),
    )
    return DeepSetsNet(
        64,
        pair_gene,
        pair_peak,
        feats,
        N_GENES,
        N_PEAKS,
        accessibility_scale=20.0,
        max_memory_mb=max_memory_mb,
        hidden=hidden,
    )


def random_batch(rng, b: int, density: float = 0.03):
    """(CSR ATAC, context, targets) of ``b`` synthetic cells."""
    atac = sp.random(
        b,
        N_PEAKS,
        density=density,
        format="csr",
        dtype=np.float32,
        random_state=rng,
        data_rvs=lambda n: rng.uniform(5, 40, n),
    )
    ctx = torch.from_numpy(rng.normal(size=(b, 64)).astype(np.float32))
    y = torch.from_numpy(rng.normal(size=(b, N_GENES)).astype(np.float32))
    return atac, ctx, y


def train_step(net, opt, atac, ctx, y, *, device="cpu", bf16: bool = False) -> None:
    """One optimiser step (MSE) on a batch; ``bf16``: autocast (the net's ρ stays float32)."""
    x = to_torch_batch(atac).to(device)
    opt.zero_grad()
    with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
        loss = torch.mean((net(ctx.to(device), x).float() - y.to(device)) ** 2)
    loss.backward()
    opt.step()


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
    net = full_shape_net(rng, hidden=args.hidden, max_memory_mb=args.max_memory_mb)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    b = args.batch_size
    setup_rss = rss_mb()
    print(
        f"{len(net.pair_gene):,} pairs ({len(net.pair_gene) / N_GENES:.1f} peaks/gene), batch "
        f"{b} cells at {args.density:.0%} density, threads {torch.get_num_threads()}, "
        f"max_memory_mb {args.max_memory_mb:.0f} (chunk rows {net.chunk_rows():,})"
    )
    batches = [random_batch(rng, b, args.density) for _ in range(args.batches)]

    def step(batch) -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        train_step(net, opt, *batch)
        return time.perf_counter() - start, time.process_time() - cpu

    times = {path: [] for path in args.paths}
    for i, batch in enumerate(batches):
        for path in args.paths:  # interleaved: both paths see the same machine state
            net.fused_rho = path == "fused"
            times[path].append(step(batch))
            with torch.no_grad():
                x = to_torch_batch(batch[0])
                cells, _, _ = net.active_pooled(net.entries(x), net.phi_weights())
            print(
                f"{path} step {i}: {times[path][-1][0]:.2f} s ({times[path][-1][1]:.2f} CPU s), "
                f"{batch[0].nnz:,} open peaks, {len(cells):,} active (cell, gene) rows, "
                f"peak RSS {rss_mb():,.0f} MB",
                flush=True,
            )
    print(f"setup RSS {setup_rss:,.0f} MB; peak RSS {rss_mb():,.0f} MB")
    for path, ts in times.items():
        wall, cpu = np.mean(np.asarray(ts[1:] if len(ts) > 1 else ts), axis=0)
        print(
            f"{path}: {wall:.2f} s ({cpu:.2f} CPU s) per step of {b} cells -> "
            f"{wall / b * 1000:.1f} s per epoch per 1,000 cells ({wall / b * N_CELLS / 60:.1f} "
            f"min wall, {cpu / b * N_CELLS / 60:.1f} min CPU per epoch of {N_CELLS:,} cells)"
        )
    if len(args.paths) == 2:
        (w0, c0), (w1, c1) = (np.mean(np.asarray(times[p][1:]), axis=0) for p in args.paths)
        print(f"{args.paths[1]} / {args.paths[0]}: {w1 / w0:.2f}× wall, {c1 / c0:.2f}× CPU")
    if args.profile:
        for path in args.paths:
            net.fused_rho = path == "fused"
            print(f"\nprofile, {path} path (one step; share of the step's CPU time by operator)")
            print(profile_shares(lambda: step(batches[0])))


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
