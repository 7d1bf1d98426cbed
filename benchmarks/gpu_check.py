"""Train fit_mlp on a Kaggle-sized synthetic CITE-seq problem and print speed and memory.

Kaggle CITE: 70,988 training cells, 22,050 genes -> 140 proteins. The synthetic RNA is a
sparse low-rank log-count matrix; proteins depend on its factors. Prints one table row per
configuration: cells/s (training, excluding the SVD), peak GPU memory, and the per-cell
Pearson on held-out cells (a sanity check, not an accuracy benchmark).

Usage::

    python benchmarks/gpu_check.py               # full size, CUDA + bf16 (needs a GPU)
    python benchmarks/gpu_check.py --small --device cpu   # tiny CPU smoke run
"""

from __future__ import annotations

import argparse
import time

import anndata as ad
import mudata as md
import numpy as np
import scipy.sparse as sp
import torch

import scmm


def synthetic_cite(n_cells: int, n_genes: int, n_prot: int, seed: int = 0) -> md.MuData:
    rng = np.random.default_rng(seed)
    k = 20
    factors = rng.normal(size=(n_cells, k)).astype(np.float32)
    loadings = (rng.normal(size=(k, n_genes)) * 0.3).astype(np.float32)
    # sparse counts: ~8% non-zero, built block-wise to keep memory low
    blocks = []
    for start in range(0, n_cells, 8192):
        f = factors[start : start + 8192]
        rate = np.exp(f @ loadings - 3.0)
        counts = rng.poisson(rate).astype(np.float32)
        blocks.append(sp.csr_matrix(np.log1p(counts)))
    X = sp.vstack(blocks).tocsr()
    W = rng.normal(size=(k, n_prot)).astype(np.float32)
    prot = np.tanh(factors @ W / np.sqrt(k)) + 0.1 * rng.normal(size=(n_cells, n_prot))
    rna = ad.AnnData(X)
    rna.obs_names = [f"c{i}" for i in range(n_cells)]
    rna.var_names = [f"g{i}" for i in range(n_genes)]
    protein = ad.AnnData(prot.astype(np.float32))
    protein.obs_names = rna.obs_names
    protein.var_names = [f"p{i}" for i in range(n_prot)]
    mdata = md.MuData({"rna": rna, "prot": protein})
    mdata.obs["train"] = rng.random(n_cells) < 0.9
    return mdata


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="2,000 cells x 2,000 genes")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    n_cells, n_genes = (2000, 2000) if args.small else (70_988, 22_050)
    t0 = time.perf_counter()
    mdata = synthetic_cite(n_cells, n_genes, 140)
    print(f"synthetic data {n_cells} x {n_genes} in {time.perf_counter() - t0:.1f}s")
    cuda = torch.cuda.is_available() and args.device != "cpu"
    card = torch.cuda.get_device_name(0) if cuda else "CPU"
    rows = []
    configs = [
        ("svd64 cite_svd bs512", {"input": "svd", "n_components": 64, "batch_size": 512}),
        ("svd256 cite_svd bs512", {"input": "svd", "n_components": 256, "batch_size": 512}),
        (
            "svd+raw default preset bs512",
            {"input": "svd+raw", "n_components": 64, "batch_size": 512},
        ),
    ]
    for name, kw in configs:
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        model = scmm.tl.fit_mlp(
            mdata,
            "rna",
            "prot",
            train="train",
            max_epochs=args.epochs,
            device=args.device,
            verbose=False,
            rng=0,
            key_added=f"gpu_{name.split()[0]}",
            **kw,
        )
        h = model.history
        n_train = h["n_train"]
        cells_s = n_train * len(h["epoch"]) / h["time_s"]
        peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan")
        score = mdata.uns[f"gpu_{name.split()[0]}"]["scores"]["pearson_per_cell"]
        prec = model.config.precision_value()
        rows.append((name, prec, cells_s, peak, h["time_s"], score))
    print(
        f"\ndevice: {card}, {n_cells} cells x {n_genes} genes -> 140 proteins, {args.epochs} epochs"
    )
    print("| config | precision | cells/s | peak GPU MiB | train s | per-cell r |")
    print("|---|---|---|---|---|---|")
    for name, prec, cs, peak, t, r in rows:
        print(f"| {name} | {prec} | {cs:,.0f} | {peak:,.0f} | {t:.1f} | {r:.3f} |")


if __name__ == "__main__":
    main()
