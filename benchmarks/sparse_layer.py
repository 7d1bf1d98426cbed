"""Forward + backward time of scmm.nn.SparseLinear's backends against a dense masked layer.

Two masks: a random 2,000 × 2,000 mask at 5 % density, and the pathway mask of
``bmmc_cite`` (1,000 genes → 134 proteins × 10 hidden units) built with
``scmm.pp.pathway_connectivity`` from the hallmark and Reactome gene sets (when the data are
present: ``SCMM_DATA_DIR`` or ``../shared/data``). Prints a Markdown table of the median over
``--repeats`` timed steps (after warm-up) of: forward, a sum-of-squares loss, backward.

    python benchmarks/sparse_layer.py --repeats 20 --threads 2
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from scmm.nn import SPARSE_BACKENDS, SparseLinear


def random_mask(n_in: int, n_out: int, density: float, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    return sp.csr_matrix(rng.random((n_in, n_out)) < density)


def pathway_masks(data_dir: Path) -> dict[str, sp.csr_matrix]:
    rna_p = data_dir / "cite/bmmc_cite_starter_rna.h5ad"
    adt_p = data_dir / "cite/bmmc_cite_starter_adt.h5ad"
    if not (rna_p.exists() and adt_p.exists()):
        print(f"(bmmc_cite not found under {data_dir}: pathway rows skipped)")
        return {}
    import anndata as ad
    import mudata as md

    from scmm.pp import pathway_connectivity

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = md.MuData({"rna": ad.read_h5ad(rna_p), "prot": ad.read_h5ad(adt_p)})
    out = {}
    for name in ("hallmark", "reactome"):
        try:
            from scmm.datasets import gene_sets

            sets = gene_sets(name, data_dir=data_dir)
        except Exception as err:  # the benchmark goes on without them
            print(f"(gene sets {name!r} not available: {err})")
            continue
        pathway_connectivity(
            mdata, "rna", "prot", gene_sets=sets, hidden_per_target=10, key_added=name
        )
        info = mdata.uns[name]
        print(
            f"pathway mask {name}: coverage {info['coverage']:.3f}, "
            f"{info['n_targets_without_genes']} targets without genes, "
            f"{info['n_connected_source_genes']} connected genes"
        )
        out[f"bmmc pathway ({name})"] = mdata["rna"].varm[name]
    return out


def time_step(layer: torch.nn.Module, x: torch.Tensor, repeats: int, warmup: int) -> float:
    def step() -> None:
        for p in layer.parameters():
            p.grad = None
        y = layer(x)
        (y * y).sum().backward()
        if x.is_cuda:
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backends", nargs="*", default=list(SPARSE_BACKENDS))
    parser.add_argument("--no-pathway", action="store_true", help="only the random mask")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data_dir = Path(os.environ.get("SCMM_DATA_DIR", Path(__file__).parents[2] / "shared/data"))

    masks = {"random 5%": random_mask(2000, 2000, 0.05)}
    if not args.no_pathway:
        masks.update(pathway_masks(data_dir))
    has_sl = importlib.util.find_spec("sparselinear") is not None
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\ntorch {torch.__version__}, device {device}, {args.threads} threads, "
        f"batch {args.batch}, median of {args.repeats} forward+backward steps "
        f"({platform.processor() or platform.machine()}, load average {load:.1f})\n"
    )
    print("| mask | in × out | density | backend | parameters | ms / step | vs dense_masked |")
    print("|---|---|---|---|---:|---:|---:|")
    for mask_name, mask in masks.items():
        n_in, n_out = mask.shape
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(args.batch, n_in, generator=gen).to(device)
        rows = []
        ref_ms = None
        for backend in ["dense_masked", *[b for b in args.backends if b != "dense_masked"]]:
            if backend == "sparselinear" and not has_sl:
                rows.append((backend, "–", "not installed"))
                continue
            layer = SparseLinear(n_in, n_out, mask, backend=backend, device=device)
            n_params = sum(p.numel() for p in layer.parameters())
            ms = time_step(layer, x, args.repeats, args.warmup)
            ref_ms = ms if backend == "dense_masked" else ref_ms
            rows.append((backend, f"{n_params:,}", ms))
            del layer
        dense = torch.nn.Linear(n_in, n_out, device=device)
        rows.append(
            (
                "nn.Linear (no mask)",
                f"{n_in * n_out + n_out:,}",
                time_step(dense, x, args.repeats, args.warmup),
            )
        )
        density = mask.nnz / (n_in * n_out)
        for backend, n_params, ms in rows:
            if isinstance(ms, float):
                cell, rel = f"{ms:.1f}", f"{ref_ms / ms:.2f}×"
            else:
                cell, rel = ms, "–"
            print(
                f"| {mask_name} | {n_in:,} × {n_out:,} | {density:.3f} | {backend} | "
                f"{n_params} | {cell} | {rel} |"
            )


if __name__ == "__main__":
    main()
