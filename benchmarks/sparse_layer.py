"""Forward + backward time, memory and outputs of scmm.nn.SparseLinear's backends.

Two masks: a random 2,000 × 2,000 mask at 5 % density, and the pathway mask of
``bmmc_cite`` (1,000 genes → 134 proteins × 10 hidden units) built with
``scmm.pp.pathway_connectivity`` from the hallmark and Reactome gene sets (when the data are
present: ``SCMM_DATA_DIR`` or ``../shared/data``). Prints a Markdown table with, per backend:

- the median over ``--repeats`` timed steps (after warm-up) of forward, a sum-of-squares loss
  and backward;
- the memory of one such step above what the layer and the input already hold (peak resident
  memory on CPU, measured in a fresh process per backend with large allocations returned to the
  system at once, so the peak is that of live tensors; peak allocated memory on CUDA);
- the largest absolute difference from ``dense_masked`` (the reference) of the output, the input
  gradient and the weight gradient, every backend starting from the same weights.

The optional ``sparselinear`` backend is measured when the package is installed
(``make sparselinear``).

    python benchmarks/sparse_layer.py --repeats 20 --threads 2
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
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


def _step(layer: torch.nn.Module, x: torch.Tensor) -> None:
    """One training step of the layer alone: forward, sum-of-squares loss, backward."""
    for p in layer.parameters():
        p.grad = None
    y = layer(x)
    (y * y).sum().backward()
    if x.is_cuda:
        torch.cuda.synchronize()


def time_step(layer: torch.nn.Module, x: torch.Tensor, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        _step(layer, x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _step(layer, x)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def _make_layer(mask: sp.csr_matrix, backend: str, device: torch.device) -> SparseLinear:
    gen = torch.Generator().manual_seed(0)  # every backend starts from the same weights
    return SparseLinear(*mask.shape, mask, backend=backend, generator=gen).to(device)


def _input(mask: sp.csr_matrix, batch: int, device: torch.device) -> torch.Tensor:
    return torch.randn(batch, mask.shape[0], generator=torch.Generator().manual_seed(0)).to(device)


def _outputs(layer: SparseLinear, x: torch.Tensor) -> tuple[np.ndarray, ...]:
    """Output, input gradient and weight gradient (in ``indices`` order) of one step."""
    x = x.clone().requires_grad_(True)
    for p in layer.parameters():
        p.grad = None
    y = layer(x)
    w = torch.linspace(-1, 1, y.numel(), device=y.device).reshape(y.shape)
    (y * w).sum().backward()
    if layer.backend == "dense_masked":
        gw = layer.weight.grad[layer.indices[0], layer.indices[1]]
    else:
        gw = layer.values.grad
    return tuple(t.detach().cpu().double().numpy() for t in (y, x.grad, gw))


def _rss_mib(field: str) -> float:
    """``VmRSS`` (current) or ``VmHWM`` (peak) of this process, in MiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def step_memory(mask_file: str, backend: str, batch: int, device: str) -> float:
    """MiB one step needs above the layer and its input (run in a fresh process, see main)."""
    dev = torch.device(device)
    mask = sp.load_npz(mask_file).tocsr()
    layer = _make_layer(mask, backend, dev)
    x = _input(mask, batch, dev)
    _step(layer, x)  # lazy initialisations and the gradients' own memory
    if dev.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        _step(layer, x)
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    base = _rss_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    _step(layer, x)
    return _rss_mib("VmHWM") - base


def _measure_memory(mask: sp.csr_matrix, backend: str, args: argparse.Namespace) -> str:
    """Run :func:`step_memory` in a fresh process; "–" where it cannot be measured."""
    if torch.device(args.device).type != "cuda" and not Path("/proc/self/clear_refs").exists():
        return "–"
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "mask.npz")
        sp.save_npz(path, sp.csr_matrix(mask, dtype=np.float32))
        # large blocks mmap-ed and unmapped when freed: resident memory follows live tensors
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
        code = (
            "import json, sys, torch; sys.path.insert(0, sys.argv[1]); "
            f"torch.set_num_threads({args.threads}); "
            "from sparse_layer import step_memory; "
            "print(json.dumps(step_memory(*sys.argv[2:4], int(sys.argv[4]), sys.argv[5])))"
        )
        argv = [str(Path(__file__).parent), path, backend, str(args.batch), args.device]
        out = subprocess.run(
            [sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True
        )
    if out.returncode != 0:
        print(f"(memory of {backend!r} not measured: {out.stderr.strip().splitlines()[-1]})")
        return "–"
    return f"{json.loads(out.stdout.strip().splitlines()[-1]):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backends", nargs="*", default=list(SPARSE_BACKENDS))
    parser.add_argument("--no-pathway", action="store_true", help="only the random mask")
    parser.add_argument(
        "--no-memory", dest="memory", action="store_false", help="skip the memory column"
    )
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
    print(
        "| mask | in × out | density | backend | parameters | ms / step | vs dense_masked "
        "| step MiB | max abs diff (y, ∂x, ∂w) |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---|")
    for mask_name, mask in masks.items():
        n_in, n_out = mask.shape
        x = _input(mask, args.batch, device)
        rows = []
        ref_ms = ref_out = None
        for backend in ["dense_masked", *[b for b in args.backends if b != "dense_masked"]]:
            if backend == "sparselinear" and not has_sl:
                rows.append((backend, "–", "not installed", "–", "–"))
                continue
            layer = _make_layer(mask, backend, device)
            n_params = sum(p.numel() for p in layer.parameters())
            out = _outputs(layer, x)
            ref_out = out if backend == "dense_masked" else ref_out
            diff = ", ".join(
                f"{np.max(np.abs(a - b)):.1e}" for a, b in zip(out, ref_out, strict=True)
            )
            ms = time_step(layer, x, args.repeats, args.warmup)
            ref_ms = ms if backend == "dense_masked" else ref_ms
            del layer
            mem = _measure_memory(mask, backend, args) if args.memory else "–"
            rows.append((backend, f"{n_params:,}", ms, mem, diff))
        dense = torch.nn.Linear(n_in, n_out, device=device)
        rows.append(
            (
                "nn.Linear (no mask)",
                f"{n_in * n_out + n_out:,}",
                time_step(dense, x, args.repeats, args.warmup),
                "–",
                "–",
            )
        )
        density = mask.nnz / (n_in * n_out)
        for backend, n_params, ms, mem, diff in rows:
            if isinstance(ms, float):
                cell, rel = f"{ms:.1f}", f"{ref_ms / ms:.2f}×"
            else:
                cell, rel = ms, "–"
            print(
                f"| {mask_name} | {n_in:,} × {n_out:,} | {density:.3f} | {backend} | "
                f"{n_params} | {cell} | {rel} | {mem} | {diff} |"
            )


if __name__ == "__main__":
    main()
