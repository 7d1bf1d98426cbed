"""scmm against the peer tools a biologist would otherwise use, on the same held-out cells.

    pip install -e ".[peers]"        # scvi-tools (totalVI, MultiVI), in its own environment
    pip install --no-deps sciPENN    # its numba<=0.50 pin does not build on Python 3.11
    python benchmarks/peers.py                           # every CITE task, both peers, seeds 0 1 2
    python benchmarks/peers.py --tasks bmmc_cite --peers totalvi --seeds 0 1 2
    python benchmarks/peers.py --tasks pbmc_multiome mop_snare2 --peers multivi   # ATAC -> RNA
    python benchmarks/peers.py --tasks mop_snare2 --peers multivi --peers-only --threads 2
    python benchmarks/peers.py --summarise benchmarks/results/peers*/peers_runs.csv

The tasks, their normalisation and their splits are those of ``benchmarks/accuracy.py``
(:func:`scmm.datasets.load_task`); scmm's ``mlp`` and ``kernel_ridge`` run at their benchmark
defaults in the same process, on the same split, with ``svd_fit_on="train"`` and ``"all"``.

totalVI follows the scvi-tools tutorial "Integration of CITE-seq and scRNA-seq data", which
predicts held-out proteins: ``TOTALVI(adata, latent_distribution="normal",
n_layers_decoder=2)`` (every training default), fitted on the raw counts of every cell's RNA,
with the held-out cells' proteins set to zero and a batch key separating training and held-out
cells, so that totalVI treats their proteins as missing. Its held-out predictions are
``get_normalized_expression`` proteins (count scale, the mean of 25 posterior samples,
``transform_batch`` = the training cells' batch) with ``include_protein_background=True,
sample_protein_mixing=False`` as in the tutorial: the row ``totalVI``, the headline. The same
fit's denoised proteins (``include_protein_background=False``, the background removed) are the
row ``totalVI denoised``; both rows carry the one fit's seconds. (Rows labelled ``totalVI`` in
CSVs written before this protocol were the denoised proteins of the default 1-layer decoder;
do not merge them with new runs.) Both are transformed by the same
``scmm.pp.normalize(method="clr")`` as scmm's protein targets (``check_counts=False``: the
predicted counts are not integers), and scored by ``scmm.metrics`` as in ``accuracy.py``.
sciPENN (defaults, but ``min_genes=0`` so that no held-out cell is dropped) predicts in its own
space; :func:`fit_scipenn` maps that back to normalised counts before the same CLR.
Because both peers see the held-out cells' RNA while fitting, their fair scmm comparison is
``svd_fit_on="all"`` (the held-out inputs also shape scmm's SVD); the CSV labels their rows so.
On the ATAC → RNA tasks the peer is MultiVI (scvi-tools, every default): fitted on the raw
counts of every cell's ATAC and of the training cells' RNA, the held-out cells' RNA set to zero
(MultiVI's mark of a missing modality), its decoded expression of the held-out cells
log-CP10k-normalised by the same ``scmm.pp.normalize`` as scmm's targets; peer
``multivi_modality`` registers the modality as its batch, as MultiVI's tutorial does for
unpaired cells (:func:`fit_multivi`). scButterfly, the
other published translator on the package index, does not install beside torch 2.13 and
numpy 2 (docs, *Results*).

Every peer and scmm row is run once per ``--seeds`` (default 0 1 2); the table gives the mean
± sd over the seeds (``accuracy.py``'s summary).

Writes ``peers_runs.csv`` (one row per fit and output, the columns of ``accuracy_runs.csv``) and
``peers.md`` (the table of ``accuracy.py --summarise``) to ``--out``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _methods import METHODS
from accuracy import _merge_runs, _write_csv, summarise

import scmm
from scmm import metrics
from scmm.datasets import TASKS, Task, load_task

CITE_TASKS = [name for name, t in TASKS.items() if (t.source, t.target) == ("rna", "prot")]
SCMM_METHODS = ("mlp", "kernel_ridge")
INSTALL_HINT = (
    "totalVI and MultiVI need scvi-tools, which scmm does not install: "
    '`pip install -e ".[peers]"` (or `pip install "scvi-tools>=1.1"`), best in an environment '
    "of its own."
)


def _import_scvi():
    try:
        import scvi
    except ImportError as err:
        raise SystemExit(f"{INSTALL_HINT} ({err})") from err
    return scvi


def _import_scipenn():
    try:
        from sciPENN.sciPENN_API import sciPENN_API
    except ImportError as err:
        msg = (
            "sciPENN is not installed. Its release (0.9.6) pins numba<=0.50, which does not build "
            f"on Python 3.11: `pip install --no-deps sciPENN` ({err})."
        )
        raise SystemExit(msg) from err
    return sciPENN_API


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float32)


def _to_target_space(counts: np.ndarray, task: Task, names) -> np.ndarray:
    """Count-scale predictions normalised by the same ``scmm.pp.normalize`` as the targets."""
    import anndata as ad
    import mudata as md

    pred = md.MuData({task.target: ad.AnnData(counts.astype(np.float32), var={"name": names})})
    scmm.pp.normalize(pred, task.target, method=task.target_norm, layer=None, check_counts=False)
    return np.asarray(pred[task.target].X)


def fit_totalvi(mdata, task: Task, test: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """totalVI as the scvi-tools CITE-seq/scRNA-seq integration tutorial; two outputs.

    Returns the held-out cells' predictions in the target space: ``"totalVI"`` with the protein
    background (``include_protein_background=True, sample_protein_mixing=False``, the
    tutorial's imputed proteins, as the measured counts hold the background) and
    ``"totalVI denoised"`` without it, from the same fit.
    """
    import anndata as ad

    scvi = _import_scvi()
    scvi.settings.seed = seed
    rna, prot = mdata[task.source], mdata[task.target]
    if not (rna.obs_names == prot.obs_names).all():
        msg = f"Task {task.dataset!r}: RNA and protein cells differ; totalVI needs paired cells."
        raise ValueError(msg)
    proteins = _dense(prot.layers["counts"])
    proteins[test] = 0.0  # held-out cells' proteins: missing for totalVI (a batch of zeros)
    adata = ad.AnnData(
        rna.layers["counts"].copy(),
        obs={"split": np.where(test, "held_out", "train")},
        var={"gene": rna.var_names.to_numpy()},
    )
    adata.obs_names = rna.obs_names
    adata.obsm["protein_expression"] = proteins
    scvi.model.TOTALVI.setup_anndata(
        adata, protein_expression_obsm_key="protein_expression", batch_key="split"
    )
    model = scvi.model.TOTALVI(adata, latent_distribution="normal", n_layers_decoder=2)
    model.train(enable_progress_bar=False)  # every training default; no progress bar in logs
    out = {}
    for label, background in (("totalVI", True), ("totalVI denoised", False)):
        _, predicted = model.get_normalized_expression(
            indices=np.flatnonzero(test),
            n_samples=25,
            return_mean=True,
            transform_batch=["train"],
            return_numpy=True,
            include_protein_background=background,
            sample_protein_mixing=False,
        )
        out[label] = _to_target_space(np.asarray(predicted), task, prot.var_names)
    return out


def fit_scipenn(mdata, task: Task, test: np.ndarray, seed: int) -> np.ndarray:
    """sciPENN at its defaults (but ``min_genes=0``); held-out predictions in the target space.

    The training cells' RNA and proteins and the held-out cells' RNA go to
    :func:`scipenn_counts`; its normalised counts are CLR-transformed by ``scmm.pp.normalize``
    like the targets.
    """
    import anndata as ad
    import pandas as pd

    rna, prot = mdata[task.source], mdata[task.target]
    genes = ad.AnnData(
        rna.layers["counts"].copy(),
        obs=pd.DataFrame(index=rna.obs_names.astype(str)),
        var=pd.DataFrame(index=rna.var_names.astype(str)),
    )
    proteins = ad.AnnData(
        _dense(prot.layers["counts"])[~test],
        obs=pd.DataFrame(index=prot.obs_names[~test].astype(str)),
        var=pd.DataFrame(index=prot.var_names.astype(str)),
    )
    counts = scipenn_counts(genes[~test].copy(), proteins, genes[test].copy(), seed)
    return _to_target_space(counts, task, prot.var_names)


def scipenn_counts(
    genes, proteins, query, seed: int, *, batch_key: str | None = None
) -> np.ndarray:
    """sciPENN fitted on ``genes`` and ``proteins`` (raw counts), predicting ``query``'s proteins.

    ``sciPENN_API(gene_trainsets=[genes], protein_trainsets=[proteins], gene_test=query)`` at
    its defaults but ``min_genes=0`` (the default 200 would drop query cells with fewer
    detected genes); ``batch_key`` (a column of both training AnnData's ``obs``) is passed as
    ``train_batchkeys=[batch_key]``, so that sciPENN standardises each batch on its own, and
    the query is one test batch. sciPENN predicts proteins in its own space (per-cell
    total-normalised, ``log1p``, z-scored within each training batch): the z-scores are mapped
    back with the training cells' mean and sd (``ddof=1``, as ``scanpy.pp.scale``; averaged
    over the batches, weighted by their cells), then ``expm1``-ed. Returns the query cells'
    normalised protein counts (cells × proteins, in ``query``'s order).
    """
    import tempfile

    import scanpy as sc

    sciPENN_API = _import_scipenn()
    np.random.seed(seed)  # sciPENN draws its validation cells with numpy's global state
    torch.manual_seed(seed)
    # training proteins in sciPENN's space, for the way back (its own preprocessing, replayed)
    space = proteins.copy()
    sc.pp.normalize_total(space)
    sc.pp.log1p(space)
    x = np.asarray(space.X)
    batches = space.obs[batch_key].to_numpy() if batch_key else np.zeros(space.n_obs)
    mean, sd = np.zeros(x.shape[1]), np.zeros(x.shape[1])
    for b in np.unique(batches):
        rows = batches == b
        s = x[rows].std(axis=0, ddof=1)
        mean += rows.mean() * x[rows].mean(axis=0)
        sd += rows.mean() * np.where(s > 0, s, 1.0)
    api = sciPENN_API(
        [genes],
        [proteins],
        query,
        train_batchkeys=[batch_key] if batch_key else None,
        min_genes=0,
        use_gpu=False,
    )
    # a fresh folder, so that it never loads old weights; relative, as sciPENN 0.9.6 loops
    # forever making the folders of an absolute path
    with tempfile.TemporaryDirectory() as weights:
        api.train(weights_dir=os.path.relpath(weights))
    predicted = api.predict()
    order = predicted.obs_names.get_indexer(query.obs_names)
    if (order < 0).any():
        msg = f"sciPENN returned no prediction for {int((order < 0).sum())} query cells."
        raise RuntimeError(msg)
    z = np.asarray(predicted.X)[order]
    return np.clip(np.expm1(z * sd + mean), 0.0, None)


def totalvi_query_counts(
    genes, proteins: np.ndarray, query, seed: int, *, batch_key: str = "batch"
) -> np.ndarray:
    """totalVI reference → query mapping (scArches); the query cells' imputed protein counts.

    The scvi-tools tutorials' recipe: the reference model as in "Integration of CITE-seq and
    scRNA-seq data" (``TOTALVI(latent_distribution="normal", n_layers_decoder=2)``, every
    training default) with the scArches parameters of "CITE-seq reference mapping with
    totalVI" / "Reference mapping with scvi-tools" (``use_layer_norm="both",
    use_batch_norm="none"``, which ``load_query_data`` needs to update only the new batch's
    weights), fitted on the raw counts of ``genes`` with ``proteins`` in
    ``obsm["protein_expression"]`` and ``obs[batch_key]`` as batch; then
    ``TOTALVI.prepare_query_anndata`` and ``TOTALVI.load_query_data(query, model)`` with the
    query's proteins all zero (its own batch: totalVI reads them as missing), ``train(
    max_epochs=200, plan_kwargs=dict(weight_decay=0.0, scale_adversarial_loss=0.0))`` and
    ``get_normalized_expression(n_samples=25, return_mean=True, transform_batch=<the
    reference's batches>, include_protein_background=True, sample_protein_mixing=False)`` for
    the query cells (the tutorial's imputed proteins: the measured counts hold the background).
    ``query.obs[batch_key]`` must name batches the reference does not have. Returns the query
    cells' protein counts (cells × proteins).
    """
    scvi = _import_scvi()
    scvi.settings.seed = seed
    reference = genes.copy()
    reference.obsm["protein_expression"] = np.asarray(proteins, dtype=np.float32)
    scvi.model.TOTALVI.setup_anndata(
        reference, batch_key=batch_key, protein_expression_obsm_key="protein_expression"
    )
    model = scvi.model.TOTALVI(
        reference,
        latent_distribution="normal",
        n_layers_decoder=2,
        use_layer_norm="both",
        use_batch_norm="none",
    )
    model.train(enable_progress_bar=False)
    mapped = query.copy()
    mapped.obsm["protein_expression"] = np.zeros(
        (mapped.n_obs, proteins.shape[1]), dtype=np.float32
    )
    scvi.model.TOTALVI.prepare_query_anndata(mapped, model)
    query_model = scvi.model.TOTALVI.load_query_data(mapped, model)
    query_model.train(
        max_epochs=200,
        plan_kwargs={"weight_decay": 0.0, "scale_adversarial_loss": 0.0},
        enable_progress_bar=False,
    )
    _, predicted = query_model.get_normalized_expression(
        mapped,
        n_samples=25,
        return_mean=True,
        transform_batch=list(np.unique(reference.obs[batch_key].astype(str))),
        include_protein_background=True,
        sample_protein_mixing=False,
        return_numpy=True,
    )
    return np.asarray(predicted)


def fit_multivi(
    mdata, task: Task, test: np.ndarray, seed: int, *, modality_batch: bool = False
) -> np.ndarray:
    """MultiVI (scvi-tools) at its defaults; held-out RNA predicted from ATAC, target space.

    Fitted on the raw counts of every cell's ATAC and of the training cells' RNA: the held-out
    cells' RNA counts are set to zero, which MultiVI reads as a missing modality (its
    ``x.sum(dim=1) > 0`` masks), so they enter as ATAC-only cells. Their predictions are
    ``get_normalized_expression`` (the decoded per-cell gene frequencies, from the latent mean
    of the ATAC encoder), then log-CP10k-normalised by the same ``scmm.pp.normalize`` as the
    targets.

    ``modality_batch=True`` registers the modality (paired training cells, ATAC-only held-out
    cells) as ``batch_key``, as MultiVI's tutorial does for unpaired cells (its adversarial
    classifier then mixes the two in the latent space), and decodes the held-out cells as the
    paired batch (``transform_batch``).
    """
    import anndata as ad
    import mudata as md
    import pandas as pd
    import scipy.sparse as sp

    scvi = _import_scvi()
    scvi.settings.seed = seed
    rna, atac = mdata[task.target], mdata[task.source]
    order = atac.obs_names.get_indexer(rna.obs_names)
    if (order < 0).any():
        msg = f"Task {task.dataset!r}: some RNA cells have no ATAC; MultiVI needs paired cells."
        raise ValueError(msg)
    keep = sp.diags((~test).astype(np.float32))  # held-out rows of RNA counts -> zero
    counts = sp.csr_matrix(keep @ sp.csr_matrix(rna.layers["counts"], dtype=np.float32))
    counts.eliminate_zeros()
    obs = pd.DataFrame({"split": np.where(test, "held_out", "train")}, index=rna.obs_names)
    data = md.MuData(
        {
            "rna": ad.AnnData(counts, obs=obs, var=pd.DataFrame(index=rna.var_names)),
            "atac": ad.AnnData(
                sp.csr_matrix(atac.layers["counts"][order], dtype=np.float32),
                obs=obs,
                var=pd.DataFrame(index=atac.var_names),
            ),
        }
    )
    data.obs["split"] = obs["split"]
    scvi.model.MULTIVI.setup_mudata(
        data,
        batch_key="split" if modality_batch else None,
        modalities={"rna_layer": "rna", "atac_layer": "atac"},
    )
    model = scvi.model.MULTIVI(data)
    model.train(enable_progress_bar=False)  # every training default; no progress bar in logs
    predicted = model.get_normalized_expression(
        indices=np.flatnonzero(test),
        transform_batch=["train"] if modality_batch else None,
        return_numpy=True,
    )
    return _to_target_space(np.asarray(predicted), task, rna.var_names)


#: Peers: the label of their rows, their fit function, the (source, target) pair they predict.
#: A fit function returns the held-out predictions, or ``{row label: predictions}`` for a fit
#: with several outputs (totalVI).
PEERS = {
    "totalvi": ("totalVI", fit_totalvi, ("rna", "prot")),
    "scipenn": ("sciPENN", fit_scipenn, ("rna", "prot")),
    "multivi": ("MultiVI", fit_multivi, ("atac", "rna")),
    "multivi_modality": (
        "MultiVI+modality batch",
        lambda *args: fit_multivi(*args, modality_batch=True),
        ("atac", "rna"),
    ),
}


def _row(task_name, task, method, fit_on, seed, y, pred, seconds) -> dict:
    return {
        "task": task_name,
        "split": task.description,
        "method": method,
        "svd_fit_on": fit_on,
        "seed": seed,
        "pearson_per_cell": metrics.pearson_per_cell(y, pred),
        "pearson_per_feature": metrics.pearson_per_feature(y, pred),
        "rmse": metrics.rmse(y, pred),
        "fit_seconds": seconds,
        "interval_coverage": np.nan,
    }


def run(tasks, peers, seeds, out: Path, scmm_methods=SCMM_METHODS) -> list[dict]:
    rows: list[dict] = []

    def record(row):
        rows.append(row)
        print(
            f"{row['task']:22s} {row['method']:14s} svd_fit_on={row['svd_fit_on']:5s} "
            f"seed={row['seed']} cell={row['pearson_per_cell']:.4f} "
            f"feature={row['pearson_per_feature']:.4f} rmse={row['rmse']:.4f} "
            f"{row['fit_seconds']:.1f}s",
            flush=True,
        )
        out.mkdir(parents=True, exist_ok=True)
        _write_csv(rows, out / "peers_runs.csv")

    loaded = {name: load_task(name) for name in tasks}  # small sets (mop_snare2: 10,309 nuclei)
    for seed in seeds:  # every task's first seed before the next seed
        for task_name, (mdata, task) in loaded.items():
            y = _dense(mdata[task.target].X)
            test = ~mdata.obs["train"].reindex(mdata[task.target].obs_names).to_numpy(dtype=bool)
            for name in scmm_methods:
                for fit_on in ("train", "all"):
                    start = time.perf_counter()
                    METHODS[name].fit(mdata, task, key_added="peers", rng=seed, svd_fit_on=fit_on)
                    seconds = time.perf_counter() - start
                    pred = mdata[task.target].layers.pop("peers")
                    record(_row(task_name, task, name, fit_on, seed, y[test], pred[test], seconds))
            for peer in peers:
                label, fit, kind = PEERS[peer]
                if (task.source, task.target) != kind:
                    continue
                start = time.perf_counter()
                preds = fit(mdata, task, test, seed)
                seconds = time.perf_counter() - start
                for name, pred in (preds if isinstance(preds, dict) else {label: preds}).items():
                    record(_row(task_name, task, name, "all", seed, y[test], pred, seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=CITE_TASKS, choices=sorted(TASKS))
    parser.add_argument("--peers", nargs="+", default=list(PEERS), choices=list(PEERS))
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=[0, 1, 2],
        help="one run of every row per seed; the table gives mean ± sd (default: 0 1 2)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1, as accuracy.py)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "peers")
    parser.add_argument(
        "--peers-only",
        action="store_true",
        help="skip scmm's rows (e.g. where accuracy.py already has them and the peer is slow)",
    )
    parser.add_argument(
        "--summarise",
        nargs="+",
        type=Path,
        default=None,
        metavar="CSV",
        help="only print the table of earlier runs (peers_runs.csv files)",
    )
    args = parser.parse_args()
    if args.summarise:
        print(summarise(_merge_runs(args.summarise)))
        return
    # fail before any fit when a peer is missing
    if {"totalvi", "multivi", "multivi_modality"} & set(args.peers):
        _import_scvi()
    if "scipenn" in args.peers:
        _import_scipenn()
    torch.set_num_threads(args.threads)
    scmm.settings.verbose = False
    rows = run(
        args.tasks, args.peers, args.seeds, args.out, () if args.peers_only else SCMM_METHODS
    )
    table = summarise(rows)
    print("\n" + table)
    command = "python benchmarks/peers.py " + " ".join(sys.argv[1:])
    (args.out / "peers.md").write_text(f"Command: `{command.strip()}`\n\n{table}\n")


if __name__ == "__main__":
    main()
