"""Synthetic paired single-cell data with the shapes of the 2022 Kaggle competition.

``make_cite`` (70,988 cells × 22,050 genes → 140 proteins, about 10% non-zero RNA) and
``make_multiome`` (105,942 cells × 228,942 peaks, about 3% non-zero → 23,418 genes) share a
low-rank latent state per cell, so the targets are predictable from the inputs. Matrices are
generated in row blocks straight into CSR (float32 values, int32 indices): nothing is ever
dense except the 140-protein target. ``fraction`` scales the number of cells (1/8, 1/4, 1/2,
1). The same ``rng`` seed (and ``block``) gives the same data; each block of cells has its own
seed, so the blocks a smaller ``fraction`` shares whole with a bigger one are identical.

``write_h5ad`` streams the blocks of one modality to an ``.h5ad`` file that
``anndata.read_h5ad(path, backed="r")`` opens without loading the matrix, for sizes that do not
fit in memory twice.

Usable as a module (``import synthetic`` with ``benchmarks/`` on the path) or a script::

    python benchmarks/synthetic.py multiome --fraction 0.125 --out /tmp/multi

writes ``/tmp/multi_atac.h5ad`` and ``/tmp/multi_rna.h5ad``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from mudata import MuData

CITE = {"n_cells": 70_988, "n_genes": 22_050, "n_proteins": 140, "density": 0.10}
MULTIOME = {
    "n_cells": 105_942,
    "n_peaks": 228_942,
    "n_genes": 23_418,
    "density": 0.03,
    "target_density": 0.10,
}
N_LATENT = 12
BLOCK = 4_000
_TABLE = 1 << 16
_DONORS = np.array(["d13176", "d31800", "d32606"])


@dataclass
class _Features:
    """How one modality's features load on the latent programs."""

    n_features: int
    table: np.ndarray  # (programs, _TABLE): inverse CDF of feature popularity per program
    members: list[np.ndarray]  # features of each program

    @classmethod
    def make(cls, n_features: int, n_programs: int, rng: np.random.Generator) -> _Features:
        program = rng.integers(0, n_programs, n_features)
        popularity = rng.lognormal(0.0, 1.0, n_features)
        table = np.empty((n_programs, _TABLE), np.int32)
        members = []
        for p in range(n_programs):
            feats = np.flatnonzero(program == p).astype(np.int32)
            cum = np.cumsum(popularity[feats])
            q = (np.arange(_TABLE) + 0.5) / _TABLE * cum[-1]
            table[p] = feats[np.minimum(np.searchsorted(cum, q), len(feats) - 1)]
            members.append(feats)
        return cls(n_features, table, members)


def n_cells_of(n_total: int, fraction: float) -> int:
    """Number of cells at ``fraction`` of ``n_total``."""
    if not 0 < fraction <= 1:
        msg = f"`fraction={fraction}` must be in (0, 1]; use 0.125, 0.25, 0.5 or 1."
        raise ValueError(msg)
    return max(1, round(n_total * fraction))


def _block_rngs(seed: int, n_cells: int, block: int):
    for b, start in enumerate(range(0, n_cells, block)):
        ss = np.random.SeedSequence([seed, b])
        yield start, min(start + block, n_cells), np.random.default_rng(ss)


def _latent(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal((n, N_LATENT)).astype(np.float32)


def _counts(
    z: np.ndarray, feats: _Features, density: float, rng: np.random.Generator
) -> sp.csr_matrix:
    """Sparse counts for the cells of latent ``z``: features drawn from each cell's programs."""
    n = len(z)
    w = np.exp(1.5 * z - (1.5 * z).max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    lib = rng.lognormal(0.0, 0.3, n)
    # draws per cell; repeated features add up to counts, so draw a little above the target
    n_draw = rng.poisson(1.25 * density * feats.n_features * lib / np.exp(0.045))
    rows = np.repeat(np.arange(n, dtype=np.int64), n_draw)
    cumw = np.cumsum(w, axis=1, dtype=np.float64)
    cumw[:, -1] = 1.0
    cumw += np.arange(n)[:, None]
    prog = np.searchsorted(cumw.ravel(), rows + rng.random(rows.size)) - rows * w.shape[1]
    np.clip(prog, 0, w.shape[1] - 1, out=prog)
    # popularity-weighted feature of the program (table lookup), 1 in 5 uniform within it
    cols = feats.table[prog, rng.integers(0, _TABLE, rows.size)].astype(np.int64)
    uni = np.flatnonzero(rng.random(rows.size) < 0.2)
    sizes = np.array([len(m) for m in feats.members])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    flat = np.concatenate(feats.members)
    p_uni = prog[uni]
    cols[uni] = flat[offsets[p_uni] + (rng.random(uni.size) * sizes[p_uni]).astype(np.int64)]
    keys, counts = np.unique(rows * feats.n_features + cols, return_counts=True)
    r = keys // feats.n_features
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(r, minlength=n), out=indptr[1:])
    return sp.csr_matrix(
        (counts.astype(np.float32), (keys % feats.n_features).astype(np.int32), indptr),
        shape=(n, feats.n_features),
    )


def _obs(start: int, stop: int, rng: np.random.Generator, prefix: str) -> pd.DataFrame:
    idx = pd.Index([f"{prefix}{i:06d}" for i in range(start, stop)], name="cell_id")
    return pd.DataFrame(
        {
            "donor": _DONORS[rng.integers(0, 3, stop - start)],
            "day": rng.choice([2, 3, 4, 7], stop - start),
        },
        index=idx,
    )


def _peak_names(n: int, rng: np.random.Generator) -> list[str]:
    chrom = np.sort(rng.integers(1, 23, n))
    start = rng.integers(10_000, 240_000_000, n)
    width = rng.integers(200, 1_500, n)
    return [f"chr{c}:{s}-{s + w}" for c, s, w in zip(chrom, start, width, strict=True)]


#: Window half-width (bp) giving ~20 peaks per gene with the uniformly placed peaks of
#: ``_peak_names`` (228,942 peaks over 22 × 240 Mb), as in the competition's Multiome data.
WINDOW = 230_000


def gene_annotation(rng: int = 0) -> pd.DataFrame:
    """Coordinates of the Multiome genes (``g00000`` …) on chr1–chr22, for gene–peak windows.

    The columns :func:`scmm.pp.gene_peak_windows` reads (``chrom``, ``start``, ``end``,
    ``strand``, ``gene_name``); genes are placed uniformly like the peaks, 10–100 kb long.
    """
    n = MULTIOME["n_genes"]
    gen = np.random.default_rng([int(rng), 11])
    start = gen.integers(10_000, 239_000_000, n)
    return pd.DataFrame(
        {
            "chrom": [f"chr{c}" for c in gen.integers(1, 23, n)],
            "start": start,
            "end": start + gen.integers(10_000, 100_000, n),
            "strand": gen.choice(["+", "-"], n),
            "gene_name": [f"g{i:05d}" for i in range(n)],
        }
    )


def iter_blocks(
    task: str, fraction: float = 1.0, *, rng: int = 0, block: int = BLOCK
) -> Iterator[dict]:
    """Yield the data of ``task`` (``"cite"`` or ``"multiome"``) one row block at a time.

    Each item is ``{"obs": DataFrame, <modality>: matrix, ...}``: ``rna`` counts CSR and dense
    ``prot`` for CITE, ``atac`` counts CSR and ``rna`` counts CSR for Multiome.
    """
    if task not in ("cite", "multiome"):
        msg = f"`task={task!r}` is not one of ('cite', 'multiome')."
        raise ValueError(msg)
    seed = int(rng)
    frng = np.random.default_rng(np.random.SeedSequence([seed, 10**6]))
    if task == "cite":
        n = n_cells_of(CITE["n_cells"], fraction)
        genes = _Features.make(CITE["n_genes"], N_LATENT, frng)
        coef = frng.standard_normal((N_LATENT, CITE["n_proteins"])).astype(np.float32) * 0.6
        for start, stop, brng in _block_rngs(seed, n, block):
            z = _latent(brng, stop - start)
            prot = np.tanh(z) @ coef + 0.3 * brng.standard_normal(
                (stop - start, CITE["n_proteins"]), dtype=np.float32
            )
            yield {
                "obs": _obs(start, stop, brng, "c"),
                "rna": _counts(z, genes, CITE["density"], brng),
                "prot": prot.astype(np.float32),
            }
    else:
        n = n_cells_of(MULTIOME["n_cells"], fraction)
        peaks = _Features.make(MULTIOME["n_peaks"], N_LATENT, frng)
        genes = _Features.make(MULTIOME["n_genes"], N_LATENT, frng)
        for start, stop, brng in _block_rngs(seed, n, block):
            z = _latent(brng, stop - start)
            yield {
                "obs": _obs(start, stop, brng, "m"),
                "atac": _counts(z, peaks, MULTIOME["density"], brng),
                "rna": _counts(z, genes, MULTIOME["target_density"], brng),
            }


def _var(task: str, mod: str, rng: int) -> pd.DataFrame:
    n = {
        ("cite", "rna"): CITE["n_genes"],
        ("cite", "prot"): CITE["n_proteins"],
        ("multiome", "atac"): MULTIOME["n_peaks"],
        ("multiome", "rna"): MULTIOME["n_genes"],
    }
    n = n[(task, mod)]
    if mod == "atac":
        names = _peak_names(n, np.random.default_rng([int(rng), 7]))
    else:
        names = [f"{'p' if mod == 'prot' else 'g'}{i:05d}" for i in range(n)]
    return pd.DataFrame(index=pd.Index(names))


def _stack(parts: list):
    if sp.issparse(parts[0]):
        data = np.concatenate([p.data for p in parts])
        indices = np.concatenate([p.indices for p in parts])
        nnz = np.cumsum([0] + [p.nnz for p in parts[:-1]])
        indptr = np.concatenate(
            [np.asarray(p.indptr[:-1], np.int64) + o for p, o in zip(parts, nnz, strict=True)]
            + [np.asarray([nnz[-1] + parts[-1].nnz], np.int64)]
        )
        if indptr[-1] < 2**31:
            indptr = indptr.astype(np.int32)
        shape = (sum(p.shape[0] for p in parts), parts[0].shape[1])
        return sp.csr_matrix((data, indices, indptr), shape=shape)
    return np.concatenate(parts)


def make(task: str, fraction: float = 1.0, *, rng: int = 0, block: int = BLOCK) -> MuData:
    """The synthetic data of ``task`` at ``fraction`` of the competition's cells, in memory.

    Parameters
    ----------
    task
        ``"cite"`` (``rna`` counts → ``prot``) or ``"multiome"`` (``atac`` counts → ``rna``).
    fraction
        Share of the competition's cells.
    rng
        Integer seed.
    block
        Cells generated at a time.

    Returns
    -------
    MuData with the two modalities (counts as float32 CSR, int32 indices where they fit) and
    ``donor`` / ``day`` / ``batch`` in each modality's ``.obs``.
    """
    obs, parts = [], {}
    for item in iter_blocks(task, fraction, rng=rng, block=block):
        obs.append(item.pop("obs"))
        for mod, x in item.items():
            parts.setdefault(mod, []).append(x)
    obs = pd.concat(obs)
    obs["batch"] = obs["donor"]
    mods = {}
    for mod in list(parts):
        X = _stack(parts.pop(mod))
        mods[mod] = ad.AnnData(X, obs=obs.copy(), var=_var(task, mod, rng))
    return MuData(mods)


def make_cite(fraction: float = 1.0, *, rng: int = 0) -> MuData:
    """Synthetic CITE-seq data (see :func:`make`)."""
    return make("cite", fraction, rng=rng)


def make_multiome(fraction: float = 1.0, *, rng: int = 0) -> MuData:
    """Synthetic Multiome data (see :func:`make`)."""
    return make("multiome", fraction, rng=rng)


def write_h5ad(
    paths: dict, task: str, fraction: float = 1.0, *, rng: int = 0, block: int = BLOCK
) -> None:
    """Stream the synthetic data to one ``.h5ad`` file per modality, block by block.

    Only one block is in memory at a time, so the files can be bigger than the memory; open
    them with ``anndata.read_h5ad(path, backed="r")``.

    Parameters
    ----------
    paths
        ``{modality: path}``, e.g. ``{"atac": "atac.h5ad", "rna": "rna.h5ad"}``.
    task, fraction, rng, block
        As in :func:`make`.
    """
    import h5py
    from anndata.io import sparse_dataset, write_elem

    obs = []
    files = {mod: h5py.File(path, "w") for mod, path in paths.items()}
    try:
        for item in iter_blocks(task, fraction, rng=rng, block=block):
            obs.append(item["obs"])
            for mod, f in files.items():
                x = item[mod]
                if not sp.issparse(x):
                    x = sp.csr_matrix(x)
                if "X" not in f:
                    write_elem(f, "X", x)
                else:
                    sparse_dataset(f["X"]).append(x)
        obs = pd.concat(obs)
        obs["batch"] = obs["donor"]
        for mod, f in files.items():
            write_elem(f, "obs", obs)
            write_elem(f, "var", _var(task, mod, rng))
            for key in ("obsm", "varm", "obsp", "varp", "layers", "uns"):
                write_elem(f, key, {})
            f.attrs["encoding-type"] = "anndata"
            f.attrs["encoding-version"] = "0.1.0"
    finally:
        for f in files.values():
            f.close()


def main(argv: list[str] | None = None) -> None:
    """Command line: write one modality of a synthetic dataset to an ``.h5ad`` file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=["cite", "multiome"])
    parser.add_argument("--fraction", type=float, default=0.125)
    parser.add_argument("--rng", type=int, default=0)
    parser.add_argument("--out", required=True, help="prefix; writes <out>_<modality>.h5ad")
    args = parser.parse_args(argv)
    mods = ("rna", "prot") if args.task == "cite" else ("atac", "rna")
    write_h5ad({m: f"{args.out}_{m}.h5ad" for m in mods}, args.task, args.fraction, rng=args.rng)


if __name__ == "__main__":
    main()
