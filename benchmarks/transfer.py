"""Reference → query transfer: predict another run's or another lab's proteins from RNA.

    python benchmarks/transfer.py                                  # all pairs, ridge + mlp, 3 seeds
    python benchmarks/transfer.py --methods ridge --seeds 0 1 2    # the fast half
    python benchmarks/transfer.py --pairs reap2_to_reap3 --methods mlp --seeds 0
    python benchmarks/transfer.py --summarise benchmarks/results/transfer/*.csv   # merge runs

For every pair (reference → query) and method, three kinds of rows, all scored on the same
held-out 20% of the query's cells (a random split per seed):

- ``transfer``: the method fitted on every reference cell (after ``--align``), predicting the
  query from its RNA;
- ``ceiling``: the same method fitted on the other 80% of the query itself;
- ``mean_profile``: the reference's mean protein profile for every query cell.

Genes: those both datasets share by symbol and detect in at least ``--min-cells-frac`` of
their cells (the same genes for every method, so fit times compare). Proteins: the targets
both panels measure, matched by :func:`scmm.pp.harmonize_protein_names` (isotype controls
left out). RNA is normalised (``log_cp10k``) and proteins (``clr``) within each dataset on
these genes and proteins only, so both sides see the same features.

Metrics: per-protein Pearson (the primary one), per-cell Pearson, and per-cell Pearson after
standardising each protein within its own dataset (measured values over the query's scored
cells, predictions over the same cells), which removes antibody-titration offsets no RNA model
can know. Prints the genes and proteins of each pair, a Markdown table (mean ± sd over seeds)
and writes it with a CSV of every row to ``--out``.

New alignments and methods are one function each: add them to :data:`ALIGNERS` or
:data:`METHODS`. :data:`VARIANTS` holds the ideas tried to close the cross-lab gap (feature
transforms, joint SVD, Harmony, Symphony, reference-neighbour transfer ``seurat_knn``), each a
function of the reference's and the query's arrays (``--methods`` takes their names too; see
docs/transfer.md, "Closing the gap"). :data:`PEERS` runs sciPENN and totalVI (fit code in
``benchmarks/peers.py``; their own environment, docs/transfer.md, "Peers on the transfer
pairs") on the same pairs, splits and scores.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import NamedTuple

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

import scmm
from scmm import metrics
from scmm._keys import INTERVAL_SUFFIXES
from scmm._utils._svd import fit_svd
from scmm.metrics import match_targets
from scmm.models._baseline import ridge_loo
from scmm.tl._align import ALIGN_METHODS

# --- data --------------------------------------------------------------------------------

_CACHE: dict[str, md.MuData] = {}


def _dataset(name: str) -> md.MuData:
    """Raw counts of ``reap2``, ``reap3``, ``reap23``, ``pbmc10k`` or ``pbmc5prime``."""
    if name not in _CACHE:
        if name.startswith("reap"):
            both = scmm.datasets.reapseq_pbmc()
            _CACHE["reap23"] = both
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="var_names are not unique")
                for run in ("2", "3"):
                    _CACHE[f"reap{run}"] = both[both.obs["batch"] == f"run{run}"].copy()
        elif name == "pbmc10k":
            _CACHE[name] = scmm.datasets.pbmc10k_protein_200()
        elif name == "pbmc5prime":
            _CACHE[name] = scmm.datasets.pbmc_5prime_cite()
        else:
            msg = f"unknown dataset {name!r}"
            raise ValueError(msg)
    return _CACHE[name]


#: pair name → (reference, query, what shifts)
PAIRS = {
    "reap2_to_reap3": ("reap2", "reap3", "run (same lab)"),
    "reap3_to_reap2": ("reap3", "reap2", "run (same lab)"),
    "reap23_to_5prime": ("reap23", "pbmc5prime", "lab + chemistry"),
    "pbmc10k_to_5prime": ("pbmc10k", "pbmc5prime", "lab + chemistry (10x 3′ → 5′)"),
}


def _counts(adata: ad.AnnData, cols) -> sp.csr_matrix | np.ndarray:
    x = adata.layers["counts"] if "counts" in adata.layers else adata.X
    return x[:, cols]


def _subset(mdata: md.MuData, genes: pd.Index, prot_cols, prot_names) -> md.MuData:
    """RNA on ``genes``, proteins ``prot_cols`` renamed ``prot_names``; normalised here."""
    rna, prot = mdata["rna"], mdata["prot"]
    new_rna = ad.AnnData(
        sp.csr_matrix(_counts(rna, rna.var_names.get_indexer(genes)), dtype=np.float32),
        obs=pd.DataFrame(index=rna.obs_names.copy()),
        var=pd.DataFrame(index=genes.copy()),
    )
    new_prot = ad.AnnData(
        np.asarray(_counts(prot, prot_cols), dtype=np.float32),
        obs=pd.DataFrame(index=prot.obs_names.copy()),
        var=pd.DataFrame(index=pd.Index(prot_names)),
    )
    if "batch" in rna.obs:
        new_rna.obs["batch"] = rna.obs["batch"].to_numpy()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*names are not unique")
        out = md.MuData({"rna": new_rna, "prot": new_prot})
    scmm.pp.normalize(out, "rna", method="log_cp10k")
    scmm.pp.normalize(out, "prot", method="clr")
    if PROTEIN_CLR["over"] == "panel":  # as a user normalises: CLR over the whole panel
        panel = ad.AnnData(np.asarray(_counts(prot, slice(None)), dtype=np.float32))
        panel.var_names = [f"p{i}" for i in range(panel.n_vars)]
        panel.obs_names = prot.obs_names.copy()
        whole = md.MuData({"prot": panel})
        scmm.pp.normalize(whole, "prot", method="clr")
        out["prot"].X = np.asarray(whole["prot"].X[:, prot_cols], dtype=np.float32)
    return out


def _row_name(method: str) -> str:
    """The rows of a ``--clr-over panel`` run are named apart: they score other targets."""
    return method if PROTEIN_CLR["over"] == "shared" else f"{method}_clr_panel"


#: ``over``: ``"shared"`` (CLR over the proteins both panels measure) or ``"panel"`` (over the
#: dataset's whole panel, controls included, then the shared ones taken): ``--clr-over``.
PROTEIN_CLR = {"over": "shared"}


def prepare(reference: str, query: str, min_cells_frac: float):
    """Reference and query on their shared, detected genes and shared proteins."""
    ref, qry = _dataset(reference), _dataset(query)
    match = match_targets(ref["prot"].var_names, qry["prot"].var_names)
    shared = pd.Index(ref["rna"].var_names).intersection(qry["rna"].var_names, sort=False)
    keep = np.ones(len(shared), dtype=bool)
    for m in (ref, qry):
        x = _counts(m["rna"], m["rna"].var_names.get_indexer(shared))
        detected = np.asarray((x > 0).sum(axis=0)).ravel()
        keep &= detected >= min_cells_frac * m.n_obs
    genes = shared[keep]
    info = {
        "n_genes": len(genes),
        "n_shared_symbols": len(shared),
        "proteins": match["shared"],
        "left_out_reference": match["left_out_model"],
        "left_out_query": match["left_out_measured"],
        "genes": list(genes),
    }
    ref_sub = _subset(ref, genes, match["model_index"], match["shared"])
    qry_sub = _subset(qry, genes, match["measured_index"], match["shared"])
    info["dropped_cells"] = [m.n_obs for m in (ref_sub, qry_sub)]
    ref_sub, qry_sub = _with_counts(ref_sub), _with_counts(qry_sub)
    info["dropped_cells"] = [
        n - m.n_obs for n, m in zip(info["dropped_cells"], (ref_sub, qry_sub), strict=True)
    ]
    return ref_sub, qry_sub, info


def _with_counts(mdata: md.MuData) -> md.MuData:
    """Drop cells without counts on these genes or proteins (as :func:`scmm.datasets.load_task`).

    With a handful of shared proteins some cells have none (42 of REAP-seq's on its 6 proteins
    shared with the 5′ set): their CLR row is constant, which makes ``fit_mlp``'s correlation
    loss NaN.
    """
    keep = np.ones(mdata.n_obs, dtype=bool)
    for mod in ("rna", "prot"):
        keep &= np.asarray(mdata[mod].layers["counts"].sum(axis=1)).ravel() > 0
    return mdata if keep.all() else mdata[keep].copy()


# --- alignments: (reference, query) → (reference, query), never reading query proteins ----


def align_none(reference: md.MuData, query: md.MuData) -> tuple[md.MuData, md.MuData]:
    """No alignment: each dataset normalised on its own (today's behaviour)."""
    return reference, query


ALIGNERS: dict[str, Callable] = {"none": align_none}
#: alignments applied by ``scmm.tl.predict(..., align=...)`` to the query (see scmm/tl/_align.py)
PREDICT_ALIGN = ALIGN_METHODS

# --- methods: fit(mdata, train mask or None, seed) → fitted model, predictions in KEY -------

KEY = "transfer_fit"


def fit_ridge(mdata: md.MuData, train, seed: int):
    """``scmm.tl.fit_baseline(method="ridge")`` on 32 SVD components (the accuracy benchmark's)."""
    return scmm.tl.fit_baseline(
        mdata, "rna", "prot", method="ridge", n_components=32, train=train, rng=seed, key_added=KEY
    )


def fit_mlp(mdata: md.MuData, train, seed: int):
    """``scmm.tl.fit_mlp`` at the accuracy benchmark's CITE settings (40 epochs, batch 64)."""
    return scmm.tl.fit_mlp(
        mdata,
        "rna",
        "prot",
        max_epochs=40,
        training={"batch_size": 64, "verbose": False},
        train=train,
        rng=seed,
        key_added=KEY,
    )


#: the members of the ``ensemble`` method (the default's fast ones; no MLP)
ENSEMBLE_MEMBERS = ("ridge", "knn", "kernel_ridge")


def fit_ensemble(mdata: md.MuData, train, seed: int):
    """``scmm.tl.fit_ensemble`` of :data:`ENSEMBLE_MEMBERS`, 90% intervals.

    Folds are the reference's batches where the training cells hold several (``groupby``,
    REAP-seq runs 2 + 3: one fold per run), random 5 folds otherwise. Only the training
    cells' proteins are read (the query's are used for scoring only).
    """
    rna = mdata["rna"]
    batch = rna.obs["batch"] if "batch" in rna.obs else None
    mask = np.ones(rna.n_obs, dtype=bool) if train is None else np.asarray(train)
    n_batches = 0 if batch is None else batch[mask].nunique()
    return scmm.tl.fit_ensemble(
        mdata,
        "rna",
        "prot",
        methods=ENSEMBLE_MEMBERS,
        groupby="batch" if n_batches > 1 else None,
        n_folds=min(5, n_batches) if n_batches > 1 else 5,
        interval=0.9,
        train=train,
        rng=seed,
        key_added=KEY,
    )


def _batch_standardised(mdata: md.MuData, train) -> md.MuData:
    """A copy whose training cells' RNA is standardised within each of their batches.

    Each gene of each batch is given the pooled training cells' mean and standard deviation
    (the per-gene standardisation of ``predict(align="standardize")``, applied to every
    reference batch): what training with a ``batch_key=`` would feed the network. One batch:
    unchanged.
    """
    rows = np.ones(mdata.n_obs, dtype=bool) if train is None else np.asarray(train)
    rna = mdata["rna"]
    if "batch" not in rna.obs or rna.obs["batch"][rows].nunique() < 2:
        return mdata
    out = mdata.copy()
    X = out["rna"].X
    X = np.asarray(X.toarray() if sp.issparse(X) else X, np.float64)
    batch = rna.obs["batch"].astype(str).to_numpy()
    pooled_mean, pooled_sd = X[rows].mean(axis=0), X[rows].std(axis=0)
    X[rows] = _zscore(X[rows], batch[rows]) * pooled_sd + pooled_mean
    out["rna"].X = X.astype(np.float32)
    return out


def fit_batch(fit: Callable, mdata: md.MuData, train, seed: int):
    """``fit`` on the reference's RNA standardised within each of its batches
    (:func:`_batch_standardised`); the query is predicted with ``align="standardize"``
    (:data:`METHOD_ALIGN`), the same per-gene standardisation."""
    fitted = _batch_standardised(mdata, train)
    model = fit(fitted, train, seed)
    if fitted is not mdata:
        mdata["prot"].layers[KEY] = fitted["prot"].layers[KEY]
    return model


METHODS: dict[str, Callable] = {
    "ridge": fit_ridge,
    "mlp": fit_mlp,
    "ensemble": fit_ensemble,
    "ridge_batch": partial(fit_batch, fit_ridge),
    "mlp_batch": partial(fit_batch, fit_mlp),
}
#: the ``predict(align=...)`` a method's transfer rows always use (else ``--align``'s)
METHOD_ALIGN = {"ridge_batch": "standardize", "mlp_batch": "standardize"}

# --- gap variants: (reference, query, seed) → query predictions, on the normalised arrays ----
# Each variant reads the reference's RNA, proteins and batches and the query's RNA only (never
# its proteins): ``Side(X, Y, batch)`` with ``Y`` None on the query side. The ceiling row runs
# the same variant with the query's other 80% as the reference.


class Side(NamedTuple):
    X: np.ndarray  # cells × genes, log_cp10k (dense)
    Y: np.ndarray | None  # cells × proteins, clr (None on the query side)
    batch: np.ndarray  # batch label per cell
    counts: np.ndarray | None = None  # cells × proteins, raw counts (reference side only)


def _zscore(X: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """Each gene standardised within each batch (constant genes → 0)."""
    out = np.empty_like(X, dtype=np.float32)
    for b in np.unique(batch):
        rows = batch == b
        x = X[rows]
        sd = x.std(axis=0)
        out[rows] = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    return out


def _svd(X: np.ndarray, k: int, seed: int) -> np.ndarray:
    return np.asarray(fit_svd(X, k, seed), np.float64)


def _ridge(Zr: np.ndarray, Yr: np.ndarray, Zq: np.ndarray) -> np.ndarray:
    coef, intercept, _ = ridge_loo(Zr, np.asarray(Yr, np.float64), list(np.logspace(-2, 4, 13)))
    return Zq @ coef.T + intercept


def _knn_mean(Zr: np.ndarray, Yr: np.ndarray, Zq: np.ndarray, k: int) -> np.ndarray:
    """Mean protein of each query cell's ``k`` nearest reference cells (cosine)."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k, metric="cosine").fit(Zr)
    idx = nn.kneighbors(Zq, return_distance=False)
    return np.asarray(Yr, np.float64)[idx].mean(axis=1)


def _harmony(Z: np.ndarray, batch: np.ndarray, seed: int) -> np.ndarray:
    import harmonypy

    meta = pd.DataFrame({"batch": pd.Categorical(batch.astype(str))})
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        ho = harmonypy.run_harmony(Z, meta, ["batch"], random_state=seed, verbose=False)
    zc = np.asarray(ho.Z_corr)
    return zc.T if zc.shape[0] != Z.shape[0] else zc


def _features(ref: Side, qry: Side, how: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-dataset feature transform: ``log`` (as is), ``z`` (per-batch gene z-score), ``bin``
    (detected or not, then z-scored), ``rank`` (within-cell rank of the expressed genes)."""
    if how == "log":
        return ref.X, qry.X
    if how == "bin":
        return (
            _zscore((ref.X > 0).astype(np.float32), ref.batch),
            _zscore((qry.X > 0).astype(np.float32), qry.batch),
        )
    if how == "rank":
        from scipy.stats import rankdata

        def ranks(X):
            r = rankdata(X, axis=1).astype(np.float32)
            return r / X.shape[1]

        return _zscore(ranks(ref.X), ref.batch), _zscore(ranks(qry.X), qry.batch)
    return _zscore(ref.X, ref.batch), _zscore(qry.X, qry.batch)


def _similar_detection(ref: Side, qry: Side, max_log2: float = 1.0) -> np.ndarray:
    """Genes whose detection rate differs by at most 2**max_log2-fold (query RNA only)."""
    dr, dq = (ref.X > 0).mean(axis=0), (qry.X > 0).mean(axis=0)
    return np.abs(np.log2((dr + 1e-3) / (dq + 1e-3))) <= max_log2


def _targets(ref: Side, targets: str) -> np.ndarray:
    """The reference's proteins in the head's target space (``gap_variant``'s ``targets``)."""
    c = np.asarray(ref.counts, np.float64)
    if targets == "total":
        total = c.sum(axis=1, keepdims=True)
        return np.log1p(c / np.where(total > 0, total, 1.0) * np.median(total))
    y = np.log1p(c)
    if targets == "zlog_batch":  # each reference batch on its own, as sciPENN does
        return _zscore(y, ref.batch)
    sd = y.std(axis=0)
    return (y - y.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def _from_targets(p: np.ndarray, targets: str) -> np.ndarray:
    """Predictions in a target space → the pair's CLR.

    ``"total"``: back to (normalised) counts and CLR-transformed, as the peers' predicted
    counts are. ``"zlog"`` and ``"zlog_batch"``: each protein standardised over the query
    cells (its scale in the query's CLR is unknown: taken equal for all), then centred over the
    proteins.
    """
    if targets == "total":
        return _clr(np.expm1(np.clip(p, 0.0, None)), [f"p{j}" for j in range(p.shape[1])])
    sd = p.std(axis=0)
    p = (p - p.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    return p - p.mean(axis=1, keepdims=True)


def gap_variant(
    ref: Side,
    qry: Side,
    seed: int,
    *,
    features: str = "z",
    k: int = 32,
    joint: bool = False,
    harmony: bool = False,
    head: str = "ridge",
    genes: str = "all",
    targets: str = "clr",
    n_neighbors: int = 20,
) -> np.ndarray:
    """Features → SVD (reference's, or joint reference + query) → optional Harmony → head.

    ``targets`` is what the head is fitted on (see :func:`_targets`): ``"clr"`` (the pair's
    CLR), ``"zlog"`` / ``"zlog_batch"`` (each protein's log1p counts standardised within the
    reference, or within each of its batches, as sciPENN does; no other protein enters a
    cell's value) or ``"total"`` (sciPENN's protein normalisation: counts over the cell's
    protein total, times the median total, log1p).
    """
    if targets != "clr":
        ref = ref._replace(Y=_targets(ref, targets))
        p = gap_variant(
            ref,
            qry,
            seed,
            features=features,
            k=k,
            joint=joint,
            harmony=harmony,
            head=head,
            genes=genes,
            n_neighbors=n_neighbors,
        )
        return _from_targets(p, targets)
    if genes == "similar_detection":
        keep = _similar_detection(ref, qry)
        ref, qry = ref._replace(X=ref.X[:, keep]), qry._replace(X=qry.X[:, keep])
    Xr, Xq = _features(ref, qry, features)
    V = _svd(np.vstack([Xr, Xq]) if joint else Xr, k, seed)
    Zr, Zq = Xr @ V.T, Xq @ V.T
    if harmony:
        batch = np.concatenate([ref.batch, qry.batch])
        Z = _harmony(np.vstack([Zr, Zq]), batch, seed)
        Zr, Zq = Z[: len(Zr)], Z[len(Zr) :]
    if head == "knn":
        return _knn_mean(Zr, ref.Y, Zq, n_neighbors)
    return _ridge(Zr, ref.Y, Zq)


def symphony_variant(ref: Side, qry: Side, seed: int, *, k: int = 32, head: str = "ridge"):
    """symphonypy: PCA of the scaled reference, Harmony over its batches, query mapped."""
    import symphonypy

    mean, sd = ref.X.mean(axis=0), ref.X.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    Xr = (ref.X - mean) / sd
    V = _svd(Xr, k, seed)
    a_ref = ad.AnnData(ref.X.astype(np.float32))
    a_ref.var["mean"], a_ref.var["std"] = mean, sd
    a_ref.varm["PCs"] = V.T
    a_ref.obsm["X_pca"] = Xr @ V.T
    a_ref.obs["batch"] = pd.Categorical(ref.batch.astype(str))
    a_q = ad.AnnData(qry.X.astype(np.float32))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if len(np.unique(ref.batch)) > 1:
            symphonypy.pp.harmony_integrate(a_ref, "batch", random_seed=seed)
        else:
            a_ref.obsm["X_pca_harmony"] = a_ref.obsm["X_pca"]
        symphonypy.tl.map_embedding(a_q, a_ref, use_genes_column=None)
    Zr, Zq = np.asarray(a_ref.obsm["X_pca_harmony"]), np.asarray(a_q.obsm["X_pca_harmony"])
    if head == "knn":
        return _knn_mean(Zr, ref.Y, Zq, 20)
    return _ridge(Zr, ref.Y, Zq)


#: name → variant; ``ridge_np`` reimplements ``ridge`` (uncentred SVD of log values) as a check
VARIANTS: dict[str, Callable] = {
    "ridge_np": partial(gap_variant, features="log"),
    "ridge_z": gap_variant,
    "ridge_z_k16": partial(gap_variant, k=16),
    "ridge_z_k64": partial(gap_variant, k=64),
    "ridge_z_k128": partial(gap_variant, k=128),
    "ridge_bin": partial(gap_variant, features="bin"),
    "ridge_rank": partial(gap_variant, features="rank"),
    "ridge_z_simdet": partial(gap_variant, genes="similar_detection"),
    "ridge_zjoint": partial(gap_variant, joint=True),
    "ridge_zjoint_harmony": partial(gap_variant, joint=True, harmony=True),
    "ridge_z_zlog": partial(gap_variant, targets="zlog"),
    "ridge_z_zlogb": partial(gap_variant, targets="zlog_batch"),
    "ridge_z_zlogb_k128": partial(gap_variant, targets="zlog_batch", k=128),
    "seurat_knn_zlogb": partial(
        gap_variant, joint=True, harmony=True, head="knn", targets="zlog_batch"
    ),
    "seurat_knn_zlog": partial(gap_variant, joint=True, harmony=True, head="knn", targets="zlog"),
    "ridge_z_total": partial(gap_variant, targets="total"),
    "seurat_knn_total": partial(gap_variant, joint=True, harmony=True, head="knn", targets="total"),
    "ridge_symphony": symphony_variant,
    "seurat_knn": partial(gap_variant, joint=True, harmony=True, head="knn"),
    "seurat_knn_noharmony": partial(gap_variant, joint=True, head="knn"),
    "seurat_knn_k50": partial(gap_variant, joint=True, harmony=True, head="knn", n_neighbors=50),
    "knn_symphony": partial(symphony_variant, head="knn"),
}


def _side(mdata: md.MuData, rows: np.ndarray | None = None, *, targets: bool = True) -> Side:
    rna = mdata["rna"] if rows is None else mdata["rna"][rows]
    X = rna.X.toarray() if sp.issparse(rna.X) else np.asarray(rna.X)
    Y = counts = None
    if targets:
        prot = mdata["prot"] if rows is None else mdata["prot"][rows]
        Y = np.asarray(prot.X, np.float64)
        c = prot.layers["counts"]
        counts = np.asarray(c.toarray() if sp.issparse(c) else c, np.float64)
    batch = rna.obs["batch"].to_numpy() if "batch" in rna.obs else np.zeros(rna.n_obs)
    return Side(X.astype(np.float32), Y, np.asarray(batch).astype(str), counts)


# --- peers: sciPENN and totalVI (benchmarks/peers.py), given raw counts as their APIs intend ---
# Each gets the reference's RNA and protein counts (shared genes and proteins, every reference
# cell; for the ceiling the query's other 80%) and the scored query cells' RNA counts, never
# their proteins; its predicted protein counts are CLR-transformed like the targets.


def _peer_counts(mdata: md.MuData, rows: np.ndarray | None, prefix: str):
    """Raw RNA counts of ``rows`` (AnnData; ``obs["batch"]``) and their raw protein counts."""
    rows = np.ones(mdata.n_obs, dtype=bool) if rows is None else rows
    rna = mdata["rna"][rows]
    batch = rna.obs["batch"].astype(str).to_numpy() if "batch" in rna.obs else "reference"
    genes = ad.AnnData(
        sp.csr_matrix(rna.layers["counts"], dtype=np.float32),
        obs=pd.DataFrame({"batch": batch}, index=[f"{prefix}{i}" for i in range(rna.n_obs)]).astype(
            {"batch": "category"}
        ),
        var=pd.DataFrame(index=rna.var_names.astype(str)),
    )
    c = mdata["prot"][rows].layers["counts"]
    return genes, np.asarray(c.toarray() if sp.issparse(c) else c, np.float32)


def _clr(counts: np.ndarray, names) -> np.ndarray:
    """Predicted protein counts → ``scmm.pp.normalize(method="clr")``, as the targets."""
    prot = ad.AnnData(np.asarray(counts, np.float32), var=pd.DataFrame(index=pd.Index(names)))
    out = md.MuData({"prot": prot})
    scmm.pp.normalize(out, "prot", method="clr", layer=None, check_counts=False)
    return np.asarray(out["prot"].X, np.float64)


def peer_scipenn(genes: ad.AnnData, proteins: np.ndarray, query: ad.AnnData, seed: int):
    """:func:`peers.scipenn_counts`: reference RNA + proteins as one trainset (its batches as
    ``train_batchkeys`` where it has several), the query's RNA as ``gene_test``."""
    from peers import scipenn_counts

    prot = ad.AnnData(proteins, obs=genes.obs.copy())
    several = genes.obs["batch"].nunique() > 1
    return scipenn_counts(genes, prot, query, seed, batch_key="batch" if several else None)


def peer_totalvi(genes: ad.AnnData, proteins: np.ndarray, query: ad.AnnData, seed: int):
    """:func:`peers.totalvi_query_counts`: totalVI on the reference, the query mapped into it
    with its proteins missing (scvi-tools' tutorials)."""
    from peers import totalvi_query_counts

    return totalvi_query_counts(genes, proteins, query, seed)


PEERS: dict[str, Callable] = {"scipenn": peer_scipenn, "totalvi": peer_totalvi}


#: ``--no-peer-ceiling`` sets this False: peers' transfer rows only (their ceiling fits are slow)
PEER_CEILING = {"fit": True}


def _peer(method: str, ref: md.MuData, qry: md.MuData, test: np.ndarray, seed: int):
    """Transfer and ceiling predictions of a peer for the scored query cells, and fit seconds.

    The ceiling's prediction is None (no row) when ``PEER_CEILING["fit"]`` is False.
    """
    query, _ = _peer_counts(qry, test, "query")
    query.obs["batch"] = pd.Categorical(np.full(query.n_obs, "query"))
    preds, seconds = [None, None], [np.nan, np.nan]
    settings = ((ref, None), (qry, ~test)) if PEER_CEILING["fit"] else ((ref, None),)
    for i, (reference, rows) in enumerate(settings):
        genes, proteins = _peer_counts(reference, rows, "ref")
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        t0 = time.perf_counter()
        counts = PEERS[method](genes, proteins, query.copy(), seed)
        seconds[i] = time.perf_counter() - t0
        print(
            f"{method}: {genes.n_obs} reference cells → {query.n_obs} query cells, "
            f"{seconds[i]:.0f} s, load before (1/5/15 min) {load}",
            flush=True,
        )
        preds[i] = _clr(counts, qry["prot"].var_names)
    return preds[0], preds[1], seconds[0], seconds[1]


# --- scoring --------------------------------------------------------------------------------


def _standardise(x: np.ndarray) -> np.ndarray:
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, np.nan)


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Per-protein Pearson, per-cell Pearson, per-cell Pearson of within-dataset z-scores."""
    constant = np.allclose(p, p[:1])
    out = {
        "pearson_per_protein": np.nan if constant else float(metrics.pearson_per_feature(y, p)),
        "pearson_per_cell": float(metrics.pearson_per_cell(y, p)),
        "pearson_per_cell_std": np.nan,
    }
    if not constant and y.shape[1] > 1:
        out["pearson_per_cell_std"] = float(
            metrics.pearson_per_cell(_standardise(y), _standardise(p))
        )
    return out


def _predict(
    model, query: md.MuData, cells: np.ndarray, align: str | None = None
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Predictions for the query's ``cells`` and their interval bounds (None: no interval)."""
    rna = query["rna"][cells].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shift warnings are expected on another dataset
        scmm.tl.predict(model, rna, key_added="transfer", align=align)
    names = list(query["prot"].var_names)
    keys = [f"transfer{suffix}" for suffix in INTERVAL_SUFFIXES]
    bounds = None
    if all(k in rna.obsm for k in keys):
        bounds = tuple(rna.obsm[k][names].to_numpy() for k in keys)
    return rna.obsm["transfer"][names].to_numpy(), bounds


def interval_scores(y: np.ndarray, bounds) -> dict[str, float]:
    """Coverage of the intervals (all values; the worst protein's) and their mean width."""
    if bounds is None:
        return {
            "interval_coverage": np.nan,
            "interval_coverage_worst": np.nan,
            "interval_width": np.nan,
        }
    lower, upper = bounds
    inside = (y >= lower) & (y <= upper)
    return {
        "interval_coverage": float(inside.mean()),
        "interval_coverage_worst": float(inside.mean(axis=0).min()),
        "interval_width": float((upper - lower).mean()),
    }


def run_pair(pair: str, methods, seeds, align: str, min_cells_frac: float) -> list[dict]:
    reference, query, shift = PAIRS[pair]
    ref, qry, info = prepare(reference, query, min_cells_frac)
    print(
        f"\n## {pair}: {reference} ({ref.n_obs} cells) → {query} ({qry.n_obs} cells), {shift}\n"
        f"genes: {info['n_genes']} of {info['n_shared_symbols']} shared symbols detected in "
        f">= {min_cells_frac:.0%} of the cells of both (first: {info['genes'][:8]})\n"
        f"proteins ({len(info['proteins'])}): {info['proteins']}\n"
        f"left out: reference only {info['left_out_reference']}; "
        f"query only {info['left_out_query']}\n"
        f"cells without counts on these genes or proteins, dropped: reference "
        f"{info['dropped_cells'][0]}, query {info['dropped_cells'][1]}",
        flush=True,
    )
    predict_align = align if align in PREDICT_ALIGN else None
    if predict_align is None:
        ref, qry = ALIGNERS[align](ref, qry)
    y_all = np.asarray(qry["prot"].X, dtype=np.float64)
    base = {
        "pair": pair,
        "align": align,
        "n_reference": ref.n_obs,
        "n_genes": info["n_genes"],
        "n_proteins": len(info["proteins"]),
    }
    rows = []
    for seed in seeds:
        test = np.zeros(qry.n_obs, dtype=bool)
        test[np.random.default_rng(seed).permutation(qry.n_obs)[: qry.n_obs // 5]] = True
        y = y_all[test]
        ref_mean = np.asarray(ref["prot"].X).mean(axis=0)
        rows.append(
            {
                **base,
                "method": _row_name("mean_profile"),
                "setting": "mean_profile",
                "seed": seed,
                "n_query_scored": int(test.sum()),
                "fit_seconds": 0.0,
                **scores(y, np.broadcast_to(ref_mean, y.shape)),
            }
        )
        for method in methods:
            if method in VARIANTS:
                variant, query_side = VARIANTS[method], _side(qry, test, targets=False)
                query_side = query_side._replace(batch=np.full(int(test.sum()), "query"))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    t0 = time.perf_counter()
                    p_transfer = variant(_side(ref), query_side, seed)
                    t_ref = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    p_ceiling = variant(_side(qry, ~test), query_side, seed)
                    t_q = time.perf_counter() - t0
                rows += _rows(base, pair, method, seed, test, y, p_transfer, p_ceiling, t_ref, t_q)
                continue
            if method in PEERS:
                peer = _peer(method, ref, qry, test, seed)
                rows += _rows(base, pair, method, seed, test, y, *peer)
                continue
            fit = METHODS[method]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                model = fit(ref, None, seed)
                t_ref = time.perf_counter() - t0
                p_transfer, b_transfer = _predict(
                    model, qry, test, METHOD_ALIGN.get(method, predict_align)
                )
                within = qry.copy()
                t0 = time.perf_counter()
                fit(within, ~test, seed)
                t_q = time.perf_counter() - t0
                layers = within["prot"].layers
                p_ceiling = np.asarray(layers[KEY])[test]
                b_ceiling = None
                if all(f"{KEY}{s}" in layers for s in INTERVAL_SUFFIXES):
                    b_ceiling = tuple(
                        np.asarray(layers[f"{KEY}{s}"])[test] for s in INTERVAL_SUFFIXES
                    )
            rows += _rows(
                base,
                pair,
                method,
                seed,
                test,
                y,
                p_transfer,
                p_ceiling,
                t_ref,
                t_q,
                (b_transfer, b_ceiling),
            )
    return rows


def _rows(
    base, pair, method, seed, test, y, p_transfer, p_ceiling, t_ref, t_q, bounds=(None, None)
) -> list[dict]:
    """The transfer and ceiling rows of one method and seed (printed as they come)."""
    rows = []
    for setting, p, secs, b in (
        ("transfer", p_transfer, t_ref, bounds[0]),
        ("ceiling", p_ceiling, t_q, bounds[1]),
    ):
        if p is None:  # a peer run with --no-peer-ceiling
            continue
        row = {
            **base,
            "align": METHOD_ALIGN.get(method, base["align"]),
            "method": _row_name(method),
            "setting": setting,
            "seed": seed,
            "n_query_scored": int(test.sum()),
            "fit_seconds": round(secs, 2),
            **scores(y, p),
            **interval_scores(y, b),
        }
        rows.append(row)
        coverage = (
            ""
            if b is None
            else f", 90% interval coverage {row['interval_coverage']:.1%} (worst protein "
            f"{row['interval_coverage_worst']:.1%}, width {row['interval_width']:.2f})"
        )
        print(
            f"{pair} {method:5s} {setting:9s} seed {seed}: per-protein "
            f"{row['pearson_per_protein']:.3f}, per-cell {row['pearson_per_cell']:.3f}, "
            f"per-cell std {row['pearson_per_cell_std']:.3f}, fit {secs:.1f} s{coverage}",
            flush=True,
        )
    return rows


# --- tables ---------------------------------------------------------------------------------

_FIELDS = [
    "pair",
    "align",
    "method",
    "setting",
    "seed",
    "n_reference",
    "n_query_scored",
    "n_genes",
    "n_proteins",
    "pearson_per_protein",
    "pearson_per_cell",
    "pearson_per_cell_std",
    "fit_seconds",
]
#: the interval columns (empty for methods without intervals)
_INTERVAL_FIELDS = ["interval_coverage", "interval_coverage_worst", "interval_width"]
_FIELDS += _INTERVAL_FIELDS


def _fmt(values, digits: int = 3) -> str:
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return "—"
    return f"{v.mean():.{digits}f}" + (f" ± {v.std(ddof=1):.{digits}f}" if v.size > 1 else "")


def summarise(rows: list[dict]) -> str:
    """Markdown table: one line per pair × method, transfer beside ceiling and mean profile."""
    df = pd.DataFrame(rows)
    for col in ("pearson_per_protein", "pearson_per_cell", "pearson_per_cell_std", "fit_seconds"):
        df[col] = df[col].astype(float)
    for col in _INTERVAL_FIELDS:  # absent from CSVs written before they existed
        df[col] = pd.to_numeric(df[col], errors="coerce") if col in df else np.nan
    with_intervals = df[_INTERVAL_FIELDS[0]].notna().any()
    lines = [
        "| pair | align | method | seeds | genes | proteins | per-protein: transfer / ceiling "
        "(ratio) | per-cell: transfer / ceiling | per-cell std: transfer / ceiling | "
        "mean profile per-cell | fit s: reference / query 80% |"
        + (
            " 90% interval coverage: transfer / ceiling | worst protein: transfer / ceiling "
            "| mean width: transfer / ceiling |"
            if with_intervals
            else ""
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|"
        + ("---|---|---|" if with_intervals else ""),
    ]
    for (pair, align), g in df.groupby(["pair", "align"], sort=False):
        for method in g[g.setting != "mean_profile"].method.unique():
            panel = method.endswith("_clr_panel")  # its mean profile is of the same targets
            mean = g[(g.setting == "mean_profile") & (g.method.str.endswith("_clr_panel") == panel)]
            t = g[(g.method == method) & (g.setting == "transfer")]
            c = g[(g.method == method) & (g.setting == "ceiling")]
            ratio = t.pearson_per_protein.mean() / c.pearson_per_protein.mean()
            lines.append(
                f"| {pair} | {align} | {method} | {t.seed.nunique()} | {int(t.n_genes.iloc[0])} "
                f"| {int(t.n_proteins.iloc[0])} | {_fmt(t.pearson_per_protein)} / "
                f"{_fmt(c.pearson_per_protein)} ({ratio:.0%}) | {_fmt(t.pearson_per_cell)} / "
                f"{_fmt(c.pearson_per_cell)} | {_fmt(t.pearson_per_cell_std)} / "
                f"{_fmt(c.pearson_per_cell_std)} | {_fmt(mean.pearson_per_cell)} | "
                f"{_fmt(t.fit_seconds, 1)} / {_fmt(c.fit_seconds, 1)} |"
                + (_interval_cells(t, c) if with_intervals else "")
            )
    return "\n".join(lines)


def _interval_cells(t: pd.DataFrame, c: pd.DataFrame) -> str:
    """Coverage (%), the worst protein's coverage (%) and mean width: transfer / ceiling."""

    def pct(v):
        return _fmt(100 * np.asarray(v, float), 1)

    return (
        f" {pct(t.interval_coverage)} / {pct(c.interval_coverage)} | "
        f"{pct(t.interval_coverage_worst)} / {pct(c.interval_coverage_worst)} | "
        f"{_fmt(t.interval_width, 2)} / {_fmt(c.interval_width, 2)} |"
    )


def _read(paths) -> list[dict]:
    rows: dict[tuple, dict] = {}
    for path in paths:
        with Path(path).open() as fh:
            for row in csv.DictReader(fh):
                rows[tuple(row[k] for k in ("pair", "align", "method", "setting", "seed"))] = row
    return list(rows.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    parser.add_argument(
        "--methods", nargs="+", default=["ridge", "mlp"], choices=[*METHODS, *VARIANTS, *PEERS]
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--align",
        default="none",
        choices=[*ALIGNERS, *PREDICT_ALIGN],
        help="how reference and query are aligned before fitting (never with query proteins)",
    )
    parser.add_argument(
        "--min-cells-frac",
        type=float,
        default=0.01,
        help="keep genes detected in at least this fraction of the cells of both datasets",
    )
    parser.add_argument(
        "--peer-ceiling",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also fit the peers (scipenn, totalvi) within the query (the ceiling rows)",
    )
    parser.add_argument(
        "--clr-over",
        choices=("shared", "panel"),
        default="shared",
        help="proteins the CLR of each dataset is taken over: the shared ones (default) or "
        "its whole panel (as a user normalises their own data), then the shared ones kept",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "transfer")
    parser.add_argument("--tag", default="transfer", help="file name stem of the outputs")
    parser.add_argument("--summarise", nargs="+", type=Path, default=None, metavar="CSV")
    args = parser.parse_args()
    if args.summarise:
        print(summarise(_read(args.summarise)))
        return
    torch.set_num_threads(args.threads)
    PEER_CEILING["fit"] = args.peer_ceiling
    PROTEIN_CLR["over"] = args.clr_over
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.tag}_runs.csv"
    rows: list[dict] = []
    for pair in args.pairs:
        rows += run_pair(pair, args.methods, args.seeds, args.align, args.min_cells_frac)
        with path.open("w", newline="") as fh:  # after every pair: a stopped run keeps pairs
            writer = csv.DictWriter(fh, fieldnames=_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    table = summarise(rows)
    (args.out / f"{args.tag}.md").write_text(table + "\n")
    print("\n" + table)
    print(f"\nwrote {path} and {args.out / f'{args.tag}.md'}")


if __name__ == "__main__":
    main()
