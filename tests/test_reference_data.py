"""The named CITE-seq references (REAP-seq runs 2 and 3, 10x 5′ PBMC): loaders and checks."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scmm
from scmm.datasets._reference import _REAP_RUNS, read_dense_tsv

from .conftest import real_data_dir

DATA = real_data_dir()
needs_data = pytest.mark.skipif(
    DATA is None, reason="real data not found: set SCMM_DATA_DIR to the scmm data folder"
)
REAP = "cite/reapseq_pbmc"
FIVE = "cite/pbmc_5prime_totalseqc"


@pytest.fixture(scope="module")
def reap():
    if DATA is None:
        pytest.skip("real data not found")
    return scmm.datasets.reapseq_pbmc(data_dir=DATA)


@needs_data
def test_reapseq_both_runs(reap):
    rna, prot = reap["rna"], reap["prot"]
    assert rna.shape == (7488, 32738) and prot.shape == (7488, 48)
    assert isinstance(rna.X, sp.csr_matrix) and rna.X.dtype == np.float32
    assert isinstance(prot.X, np.ndarray)
    assert reap.obs["batch"].value_counts().to_dict() == {"run3": 4330, "run2": 3158}
    assert isinstance(reap.obs["batch"].dtype, pd.CategoricalDtype)
    assert rna.obs_names.equals(prot.obs_names) and rna.obs_names.is_unique
    # symbols as gene names; counts are integers, not normalised
    assert {"CD3E", "MS4A1", "LYZ"} <= set(rna.var_names)
    np.testing.assert_array_equal(rna.X.data, np.round(rna.X.data))
    assert rna.X.sum(axis=1).min() > 100
    # the barcode's \r of the protein files' Windows line endings is gone
    assert not prot.obs_names.str.contains("\r").any()
    var = prot.var
    assert var["isotype_control"].dtype == bool
    controls = var.index[var["isotype_control"]]
    assert sorted(var.loc[controls, "original_name"]) == [
        "Blank",
        "Control_Mouse_IgG2b_CATAAAGG",
        "Control_Rat_IgG1_TCACGGTA",
        "Mouse_IgG1_TGTGTATA",
    ]
    targets = var.index[~var["isotype_control"]]
    assert len(targets) == 44
    assert len({t.split("_")[0] for t in targets}) == 40  # distinct targets
    assert {"CD4", "CD4_2", "CD8", "CD8_2", "CD8_3", "CD45", "CD45_2", "CD279"} <= set(targets)
    assert var.loc["CD8_3", "original_name"] == "CD8a_ACCCGCAC"
    assert var.loc["HLA-DR", "original_name"] == "HLA-DRA_TAGACGAC"
    # CD3 protein is high on cells with CD3E RNA (the rows belong together)
    cd3e = rna[:, "CD3E"].X.toarray().ravel() > 0
    cd3 = prot[:, "CD3"].X.ravel()
    assert np.median(cd3[cd3e]) > 2 * np.median(cd3[~cd3e])


@needs_data
def test_reapseq_one_run_has_the_same_names(reap):
    run2 = scmm.datasets.reapseq_pbmc(2, data_dir=DATA)
    assert run2["rna"].shape == (3158, 32738)
    assert (run2.obs["batch"] == "run2").all()
    # the runs list antibodies in other orders; each run alone names them the same way
    assert run2["prot"].var.equals(reap["prot"].var)
    cells = run2.obs_names
    np.testing.assert_array_equal(run2["prot"].X, reap["prot"][cells].X)


def test_reapseq_unknown_run():
    with pytest.raises(ValueError, match="run=4"):
        scmm.datasets.reapseq_pbmc(4)


@needs_data
def test_pbmc_5prime_cite():
    mdata = scmm.datasets.pbmc_5prime_cite(data_dir=DATA)
    rna, prot = mdata["rna"], mdata["prot"]
    assert rna.shape == (5000, 3000) and prot.shape == (5000, 8)
    assert isinstance(rna.X, sp.csr_matrix) and rna.X.dtype == np.float32
    assert list(prot.var_names) == ["CD3", "CD4", "CD14", "CD15", "CD16", "CD19", "CD25", "CD56"]
    assert not prot.var["isotype_control"].any()
    np.testing.assert_array_equal(prot.X, np.round(prot.X))
    assert rna.obs_names.equals(prot.obs_names)
    assert "batch" not in mdata.obs


# --- damaged files are refused ---------------------------------------------------------


def _tsv(n_genes: int, n_cells: int, *, short_row: int | None = None, crlf=False) -> bytes:
    rng = np.random.default_rng(0)
    end = "\r\n" if crlf else "\n"
    lines = ["\t".join(f"CELL{j}-s4" for j in range(n_cells))]
    for i in range(n_genes):
        values = rng.poisson(1.0, n_cells if i != short_row else n_cells - 1)
        lines.append("\t".join([f"G{i}", *map(str, values)]))
    return gzip.compress((end.join(lines) + end).encode())


def test_read_dense_tsv_streams_and_strips_cr(tmp_path):
    path = tmp_path / "m.txt.gz"
    path.write_bytes(_tsv(30, 12, crlf=True))
    features, barcodes, X = read_dense_tsv(path, block_rows=7)  # several blocks
    assert (X != read_dense_tsv(path)[2]).nnz == 0  # one block: the same matrix
    assert list(features[:2]) == ["G0", "G1"] and len(features) == 30
    assert barcodes[-1] == "CELL11-s4"  # no trailing \r
    assert isinstance(X, sp.csr_matrix) and X.shape == (12, 30)
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(X[:, 0].toarray().ravel(), rng.poisson(1.0, 12))


@pytest.mark.parametrize("damage", ["short_row", "cut_gzip", "not_numbers"])
def test_read_dense_tsv_refuses_damaged_file(tmp_path, damage):
    path = tmp_path / "m.txt.gz"
    if damage == "short_row":
        content = _tsv(40, 10, short_row=17)
    elif damage == "cut_gzip":
        whole = _tsv(400, 50)
        content = whole[: len(whole) // 2]
    else:
        content = gzip.compress(b"A\tB\nG0\t1\tx\n")
    path.write_bytes(content)
    with pytest.raises(ValueError, match="damaged or truncated"):
        read_dense_tsv(path)


def _copy(src: Path, dst: Path, *, cut: bool = False) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2] if cut else data)


@needs_data
@pytest.mark.parametrize("which", ["rna", "protein"])
def test_reapseq_refuses_truncated_file(tmp_path, monkeypatch, which):
    monkeypatch.delenv("SCMM_DATA_DIR", raising=False)
    rna_file, prot_file, _ = _REAP_RUNS[2]
    if which == "rna":  # half a gzip stream of the real file
        _copy(DATA / REAP / rna_file, tmp_path / REAP / rna_file, cut=True)
        _copy(DATA / REAP / prot_file, tmp_path / REAP / prot_file)
    else:  # a small well-formed RNA file, then a protein file cut in half
        (tmp_path / REAP).mkdir(parents=True)
        (tmp_path / REAP / rna_file).write_bytes(_tsv(5, 4))
        _copy(DATA / REAP / prot_file, tmp_path / REAP / prot_file, cut=True)
    with pytest.raises(ValueError, match="damaged or truncated") as info:
        scmm.datasets.reapseq_pbmc(2, data_dir=tmp_path)
    assert (rna_file if which == "rna" else prot_file) in str(info.value)


@needs_data
def test_reapseq_refuses_file_with_missing_rows(tmp_path, monkeypatch):
    """Well-formed but shorter than published (e.g. cut at a line and recompressed)."""
    monkeypatch.delenv("SCMM_DATA_DIR", raising=False)
    rna_file, prot_file, _ = _REAP_RUNS[2]
    (tmp_path / REAP).mkdir(parents=True)
    with gzip.open(DATA / REAP / rna_file, "rt", newline="") as fh:
        head = [next(fh) for _ in range(101)]
    (tmp_path / REAP / rna_file).write_bytes(gzip.compress("".join(head).encode()))
    _copy(DATA / REAP / prot_file, tmp_path / REAP / prot_file)
    with pytest.raises(ValueError, match=r"expected \(3158, 32738\)"):
        scmm.datasets.reapseq_pbmc(2, data_dir=tmp_path)


@needs_data
def test_pbmc_5prime_refuses_truncated_rda(tmp_path, monkeypatch):
    monkeypatch.delenv("SCMM_DATA_DIR", raising=False)
    _copy(DATA / FIVE / "scRNAseq.rda", tmp_path / FIVE / "scRNAseq.rda")
    _copy(DATA / FIVE / "scADTseq.rda", tmp_path / FIVE / "scADTseq.rda", cut=True)
    with pytest.raises(ValueError, match=r"scADTseq\.rda is damaged or truncated"):
        scmm.datasets.pbmc_5prime_cite(data_dir=tmp_path)


def test_missing_files_name_the_source(tmp_path, monkeypatch):
    monkeypatch.delenv("SCMM_DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="GSE100501"):
        scmm.datasets.reapseq_pbmc(3, data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="MultimodalExperiment"):
        scmm.datasets.pbmc_5prime_cite(data_dir=tmp_path)
