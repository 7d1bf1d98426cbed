"""Small synthetic fixtures (shapes and edge cases only) and the real-data folder."""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
import matplotlib
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

matplotlib.use("Agg")

_REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch):
    """Tests never download: a missing data file is an error, not a fetch."""
    monkeypatch.setenv("SCMM_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _one_thread():
    """Small tensors: one torch thread avoids OpenMP contention (much faster on 2 busy cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def real_data_dir() -> Path | None:
    """``$SCMM_DATA_DIR`` or ``../shared/data`` next to the repository, if present."""
    for candidate in (os.environ.get("SCMM_DATA_DIR"), _REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "README.md").is_file():
            return Path(candidate)
    return None


def pytest_collection_modifyitems(items):
    """Tests on the real data (the ``data_dir`` fixture) are ``slow``; ``make test`` runs them."""
    for item in items:
        if "data_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = real_data_dir()
    if path is None:
        pytest.skip("real data not found: set SCMM_DATA_DIR to the shared data folder")
    return path


def make_wide_target(n_cells=600, n_targets=4000, *, density=0.01, test_every=5) -> md.MuData:
    """RNA → a wide sparse (CSR) target; every ``test_every``-th cell held out (``.obs``)."""
    rng = np.random.default_rng(0)
    rna = ad.AnnData(np.log1p(rng.poisson(2.0, (n_cells, 30))).astype(np.float32))
    Y = sp.random(n_cells, n_targets, density=density, format="csr", random_state=0)
    Y = Y.astype(np.float32)
    Y.data = np.log1p(100 * Y.data)
    out = ad.AnnData(Y)
    out.var_names = [f"t{i}" for i in range(n_targets)]
    mdata = md.MuData({"rna": rna, "out": out})
    mdata.obs["train"] = np.arange(n_cells) % test_every != 0
    return mdata


def spy_toarray(monkeypatch) -> list[tuple[int, int]]:
    """Record the shape of every CSR matrix densified until ``monkeypatch.undo()``."""
    densified = []
    toarray = sp.csr_matrix.toarray

    def spy(self, *args, **kwargs):
        densified.append(self.shape)
        return toarray(self, *args, **kwargs)

    monkeypatch.setattr(sp.csr_matrix, "toarray", spy)
    return densified


def make_paired(n_cells=120, n_genes=40, n_prot=6, *, seed=0, sparse=True) -> md.MuData:
    """RNA counts with low-rank structure and proteins that depend on it."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n_cells, 3))
    rates = np.exp(0.5 * factors @ rng.normal(size=(3, n_genes)))
    counts = rng.poisson(rates).astype(np.float32)
    prot = factors @ rng.normal(size=(3, n_prot)) + 0.1 * rng.normal(size=(n_cells, n_prot))
    names = [f"cell{i}" for i in range(n_cells)]
    rna = ad.AnnData(
        sp.csr_matrix(np.log1p(counts)) if sparse else np.log1p(counts),
        obs=pd.DataFrame(index=names),
        var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]),
    )
    rna.layers["counts"] = sp.csr_matrix(counts) if sparse else counts
    protein = ad.AnnData(
        prot.astype(np.float32),
        obs=pd.DataFrame(index=names),
        var=pd.DataFrame(index=[f"p{i}" for i in range(n_prot)]),
    )
    mdata = md.MuData({"rna": rna, "prot": protein})
    mdata.obs["train"] = np.arange(n_cells) % 4 != 0
    return mdata


@pytest.fixture
def paired() -> md.MuData:
    return make_paired()


def make_atac_rna(n_obs=120, n_peaks=40, n_genes=5, *, seed=0) -> md.MuData:
    """Peak counts (every cell has some; the last peak none) and RNA that depends on them."""
    rng = np.random.default_rng(seed)
    peaks = rng.poisson(0.5, (n_obs, n_peaks)).astype(np.float32)
    peaks[:, 0] += 1
    peaks[:, -1] = 0
    rna = np.log1p(peaks[:, :n_genes] * 2 + rng.poisson(1.0, (n_obs, n_genes)))
    atac = ad.AnnData(sp.csr_matrix(peaks))
    atac.var_names = [f"chr1:{i * 1000}-{i * 1000 + 500}" for i in range(n_peaks)]
    out = ad.AnnData(rna.astype(np.float32))
    out.var_names = [f"g{i}" for i in range(n_genes)]
    return md.MuData({"atac": atac, "rna": out})


@pytest.fixture
def tfidf_ridge() -> tuple[md.MuData, object]:
    """``make_atac_rna`` with TF-IDF peaks, and a ridge model of RNA fitted on every cell."""
    import scmm

    mdata = make_atac_rna()
    scmm.pp.normalize(mdata, "atac", method="tfidf")
    model = scmm.tl.fit_baseline(
        mdata, "atac", "rna", method="ridge", n_components=6, write_predictions=False, rng=0
    )
    return mdata, model
