from __future__ import annotations

import os
import warnings
from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scmm.nn import SparseLinear
from scmm.pp import pathway_connectivity, protein_to_gene
from scmm.pp._protein_genes import _key

DATA = Path(os.environ.get("SCMM_DATA_DIR", "../shared/data"))
TABLE = Path(__file__).parents[1] / "scmm" / "pp" / "protein_genes.tsv"


def _needs(*relpaths: str) -> list[Path]:
    paths = [DATA / p for p in relpaths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        pytest.skip(f"real data not found: {missing} (set SCMM_DATA_DIR)")
    return paths


def _read_gmt(path: Path, prefix: str = "") -> dict[str, list[str]]:
    out = {}
    for line in path.read_text().splitlines():
        f = line.split("\t")
        if f[0].startswith(prefix):
            out[f[0]] = [g for g in f[2:] if g]
    return out


# --------------------------------------------------------------------------- protein_to_gene


def test_protein_to_gene_known_markers():
    expected = {
        "CD4": "CD4",
        "CD8a": "CD8A",
        "CD45RA": "PTPRC",
        "CD45RO": "PTPRC",
        "CD16": "FCGR3A",
        "CD14": "CD14",
        "CD3": "CD3E",
        "CD19": "CD19",
        "HLA-DR": "HLA-DRA",
        "CD11c": "ITGAX",
        "CD56": "NCAM1",
        "CD127": "IL7R",
        "CD25": "IL2RA",
        "TIGIT": "TIGIT",
        "PD-1": "PDCD1",
    }
    mapping, unmapped = protein_to_gene(list(expected))
    assert mapping == expected
    assert unmapped == []


def test_protein_to_gene_normalises_names():
    names = ["CD8a_TotalSeqB", "cd8A", "PD1", "pd_1", "CD4-1", "ADT_CD19", "hla.dr", "PD-1", "CD41"]
    mapping, unmapped = protein_to_gene(names)
    assert mapping == {
        "CD8a_TotalSeqB": "CD8A",
        "cd8A": "CD8A",
        "PD1": "PDCD1",
        "pd_1": "PDCD1",
        "CD4-1": "CD4",
        "ADT_CD19": "CD19",
        "hla.dr": "HLA-DRA",
        "PD-1": "PDCD1",  # the "-1" of PD-1 is not a copy number
        "CD41": "ITGA2B",  # and CD4-1 above is not CD41
    }
    assert unmapped == []


def test_protein_to_gene_isotypes_and_fallback():
    names = ["Mouse-IgG1", "Rat_IgG2b_TotalSeqB", "isotype_ctrl", "GZMB", "Cd999", "CD999"]
    mapping, unmapped = protein_to_gene(names)
    # GZMB and CD999 look like symbols; the lower-case Cd999 does not
    assert mapping == {"GZMB": "GZMB", "CD999": "CD999"}
    assert unmapped == ["Mouse-IgG1", "Rat_IgG2b_TotalSeqB", "isotype_ctrl", "Cd999"]
    # with known genes, the fallback checks them (ignoring case) and returns their spelling
    mapping, unmapped = protein_to_gene(names, genes=["GZMB", "NKG7"])
    assert mapping == {"GZMB": "GZMB"}
    assert "CD999" in unmapped
    mapping, _ = protein_to_gene(["nkg7_TotalSeqB"], genes=["GZMB", "NKG7"])
    assert mapping == {"nkg7_TotalSeqB": "NKG7"}


def test_protein_to_gene_table_overrides(tmp_path):
    mapping, unmapped = protein_to_gene(
        ["CD16", "CD4", "MyAb"], table={"CD16": "FCGR3B", "CD4": None, "MyAb": "MYGENE"}
    )
    assert mapping == {"CD16": "FCGR3B", "MyAb": "MYGENE"}
    assert unmapped == ["CD4"]
    tsv = tmp_path / "extra.tsv"
    tsv.write_text("# my table\nprotein\tgene\nCD16\tFCGR3B\nfoo-bar\tFOO\n")
    mapping, _ = protein_to_gene(["CD16", "FooBar", "CD14"], table=tsv)
    assert mapping == {"CD16": "FCGR3B", "FooBar": "FOO", "CD14": "CD14"}
    with pytest.raises(ValueError, match="is not a file"):
        protein_to_gene(["CD4"], table=tmp_path / "missing.tsv")
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\nCD4\tCD4\n")
    with pytest.raises(ValueError, match="columns 'protein' and 'gene'"):
        protein_to_gene(["CD4"], table=bad)
    with pytest.raises(TypeError, match="single string"):
        protein_to_gene("CD4")


def test_shipped_table_is_consistent():
    df = pd.read_csv(TABLE, sep="\t", comment="#", dtype=str, keep_default_na=False)
    assert list(df.columns[:2]) == ["protein", "gene"]
    keys = df["protein"].map(_key)
    assert not keys.duplicated().any(), df[keys.duplicated(keep=False)]
    empty = df[df["gene"] == ""]
    assert empty["protein"].str.contains("Ig").all()  # only isotype controls map to nothing
    assert df["gene"].str.fullmatch(r"([A-Z0-9-]+)?").all()  # HGNC style, upper case


def test_shipped_table_genes_exist_in_gencode():
    (annot,) = _needs("annotation/gene_coordinates_homo_sapiens.csv.gz")
    symbols = set(pd.read_csv(annot, usecols=["gene_name"])["gene_name"])
    df = pd.read_csv(TABLE, sep="\t", comment="#", dtype=str, keep_default_na=False)
    genes = set(df["gene"]) - {""}
    assert genes <= symbols, sorted(genes - symbols)


def test_real_panels_fully_mapped():
    adt_path, pbmc_path = _needs(
        "cite/bmmc_cite_starter_adt.h5ad", "cite/pbmc10k_protein_v3_200cells.h5ad"
    )
    adt = ad.read_h5ad(adt_path, backed="r")
    mapping, unmapped = protein_to_gene(adt.var_names)
    assert len(adt.var_names) == 134
    assert unmapped == []
    assert mapping["CD45RA"] == mapping["CD45RO"] == mapping["CD45"] == "PTPRC"
    assert mapping["HLA-A-B-C"] == "HLA-A"
    assert mapping["TCRVa7.2"] == "TRAV1-2"
    adt.file.close()
    pbmc = ad.read_h5ad(pbmc_path, backed="r")
    names = list(pbmc.uns["protein_names"])
    pbmc.file.close()
    mapping, unmapped = protein_to_gene(names)
    assert unmapped == []
    assert mapping["CD8a_TotalSeqB"] == "CD8A"
    assert mapping["PD-1_TotalSeqB"] == "PDCD1"
    assert mapping["CD15_TotalSeqB"] == "FUT4"


# ---------------------------------------------------------------------- pathway_connectivity

SOURCE = ["G1", "G2", "G3", "G4", "CD8A", "G5", "SOLO"]
# target names that are genes are matched to the source genes ignoring case
TARGETS = ["CD8a", "CD4", "Mouse-IgG1", "g4", "g5", "solo"]
SETS = {
    "S1": ["G1", "G2", "CD8A"],
    "S2": ["G3", "CD4"],
    "S3": ["G4", "NOT_MEASURED"],
    "S4": ["G5", "G2"],
    "S5": ["UNRELATED1", "UNRELATED2"],
}
# rows = SOURCE, columns = TARGETS
EXPECTED_CONN = np.array(
    [
        [1, 0, 0, 0, 0, 0],  # G1: S1 with CD8A
        [1, 0, 0, 0, 1, 0],  # G2: S1 with CD8A, S4 with G5
        [0, 1, 0, 0, 0, 0],  # G3: S2 with CD4 (CD4 itself is not a source gene)
        [0, 0, 0, 1, 0, 0],  # G4: S3 and itself
        [1, 0, 0, 0, 0, 0],  # CD8A: S1 and itself
        [0, 0, 0, 0, 1, 0],  # G5: S4 and itself
        [0, 0, 0, 0, 0, 1],  # SOLO: in no set, but it is the target's own gene
    ],
    dtype=bool,
)


@pytest.fixture
def mdata() -> md.MuData:
    rng = np.random.default_rng(0)
    rna = ad.AnnData(rng.random((5, len(SOURCE))).astype(np.float32))
    rna.var_names = SOURCE
    rna.var["symbol"] = SOURCE
    prot = ad.AnnData(rng.random((5, len(TARGETS))).astype(np.float32))
    prot.var_names = TARGETS
    return md.MuData({"rna": rna, "prot": prot})


def test_pathway_mask_exact(mdata):
    out = pathway_connectivity(mdata, "rna", "prot", gene_sets=SETS, hidden_per_target=2)
    assert out is None
    mask = mdata["rna"].varm["pathway"]
    assert sp.issparse(mask)
    assert mask.dtype == bool
    assert mask.shape == (len(SOURCE), 2 * len(TARGETS))
    expected = np.repeat(EXPECTED_CONN, 2, axis=1)
    np.testing.assert_array_equal(mask.toarray(), expected)
    info = mdata.uns["pathway"]
    assert info["targets"] == TARGETS
    assert info["target_genes"] == ["CD8A", "CD4", "", "G4", "G5", "SOLO"]
    assert info["unmapped_targets"] == ["Mouse-IgG1"]
    assert info["targets_without_genes"] == ["Mouse-IgG1"]
    assert info["n_targets_without_genes"] == 1
    assert info["coverage"] == pytest.approx(5 / 6)
    assert info["density"] == pytest.approx(expected.sum() / expected.size)
    assert info["n_connected_source_genes"] == 7
    assert info["n_source_genes_in_gene_sets"] == 6
    assert info["n_gene_sets_used"] == 4  # S1..S4; S5 has no source or target gene
    assert info["params"] == {
        "source": "rna",
        "target": "prot",
        "hidden_per_target": 2,
        "min_genes": 1,
        "n_gene_sets": 5,
        "self_connections": True,
    }


def test_pathway_min_genes_drops_weak_targets(mdata):
    pathway_connectivity(mdata, "rna", "prot", gene_sets=SETS, hidden_per_target=1, min_genes=2)
    conn = EXPECTED_CONN.copy()
    conn[:, conn.sum(axis=0) < 2] = False  # CD4, G4 and SOLO have one gene each
    np.testing.assert_array_equal(mdata["rna"].varm["pathway"].toarray(), conn)
    assert mdata.uns["pathway"]["targets_without_genes"] == ["CD4", "Mouse-IgG1", "g4", "solo"]
    assert mdata.uns["pathway"]["coverage"] == pytest.approx(2 / 6)


def test_pathway_target_genes_and_gene_symbols(mdata):
    # Ensembl-like var_names with a symbol column; a dict overriding one target's gene
    mdata["rna"].var_names = [f"ENSG{i:05d}" for i in range(len(SOURCE))]
    with pytest.raises(ValueError, match="check species/symbols"):
        pathway_connectivity(mdata, "rna", "prot", gene_sets=SETS)
    pathway_connectivity(
        mdata,
        "rna",
        "prot",
        gene_sets=SETS,
        hidden_per_target=1,
        gene_symbols="symbol",
        target_genes={"Mouse-IgG1": "G3", "solo": None},
        key_added="pw",
    )
    conn = EXPECTED_CONN.copy()
    conn[:, 2] = conn[:, 1]  # now like CD4: S2 with G3, plus G3 itself
    conn[2, 2] = True
    conn[:, 5] = False
    np.testing.assert_array_equal(mdata["rna"].varm["pw"].toarray(), conn)
    assert mdata.uns["pw"]["unmapped_targets"] == ["solo"]
    assert mdata.uns["pw"]["params"]["gene_symbols"] == "symbol"
    # a var column with the target genes
    mdata["prot"].var["gene"] = ["CD8A", "CD4", "", "G4", "G5", "SOLO"]
    pathway_connectivity(
        mdata,
        "rna",
        "prot",
        gene_sets=SETS,
        hidden_per_target=1,
        gene_symbols="symbol",
        target_genes="gene",
    )
    np.testing.assert_array_equal(mdata["rna"].varm["pathway"].toarray(), EXPECTED_CONN)


def test_pathway_copy_and_write(mdata, tmp_path):
    new = pathway_connectivity(mdata, "rna", "prot", gene_sets=SETS, hidden_per_target=3, copy=True)
    assert new is not mdata
    assert "pathway" not in mdata["rna"].varm
    assert "pathway" not in mdata.uns
    path = tmp_path / "x.h5mu"
    new.write(path)
    back = md.read_h5mu(path)
    np.testing.assert_array_equal(
        back["rna"].varm["pathway"].toarray(), np.repeat(EXPECTED_CONN, 3, axis=1)
    )
    assert list(back.uns["pathway"]["unmapped_targets"]) == ["Mouse-IgG1"]


def test_pathway_mask_feeds_sparse_linear(mdata):
    pathway_connectivity(mdata, "rna", "prot", gene_sets=SETS, hidden_per_target=4)
    mask = mdata["rna"].varm["pathway"]
    layer = SparseLinear(mask.shape[0], mask.shape[1], mask)
    assert layer.nnz == mask.nnz == 4 * EXPECTED_CONN.sum()


def test_pathway_errors(mdata):
    with pytest.raises(ValueError, match="`target='atac'` is not a modality"):
        pathway_connectivity(mdata, "rna", "atac", gene_sets=SETS)
    with pytest.raises(ValueError, match="hidden_per_target"):
        pathway_connectivity(mdata, "rna", "prot", gene_sets=SETS, hidden_per_target=0)
    with pytest.raises(ValueError, match="min_genes"):
        pathway_connectivity(mdata, "rna", "prot", gene_sets=SETS, min_genes=0)
    with pytest.raises(ValueError, match="non-empty mapping"):
        pathway_connectivity(mdata, "rna", "prot", gene_sets={})
    with pytest.raises(ValueError, match="not the string"):
        pathway_connectivity(mdata, "rna", "prot", gene_sets={"S1": "G1"})
    mouse = {k: [g.lower() for g in v] for k, v in SETS.items()}
    with pytest.raises(ValueError, match=r"share no genes .* check species/symbols"):
        pathway_connectivity(mdata, "rna", "prot", gene_sets=mouse)
    with pytest.raises(ValueError, match="gene_symbols='nope'"):
        pathway_connectivity(mdata, "rna", "prot", gene_sets=SETS, gene_symbols="nope")
    with pytest.raises(ValueError, match="target_genes='nope'"):
        pathway_connectivity(mdata, "rna", "prot", gene_sets=SETS, target_genes="nope")


def test_pathway_real_bmmc_hallmark():
    rna_p, adt_p, gmt = _needs(
        "cite/bmmc_cite_starter_rna.h5ad",
        "cite/bmmc_cite_starter_adt.h5ad",
        "genesets/h.all.v7.5.1.symbols.gmt",
    )
    with warnings.catch_warnings():  # genes and proteins share names (CD4, CD38, ...)
        warnings.filterwarnings("ignore", "var_names are not unique", UserWarning)
        m = md.MuData({"rna": ad.read_h5ad(rna_p), "prot": ad.read_h5ad(adt_p)})
    sets = _read_gmt(gmt)
    pathway_connectivity(m, "rna", "prot", gene_sets=sets, hidden_per_target=10)
    info = m.uns["pathway"]
    mask = m["rna"].varm["pathway"]
    assert mask.shape == (1000, 1340)
    assert info["unmapped_targets"] == []
    assert 0.3 < info["coverage"] < 1
    assert info["n_targets_without_genes"] == round(134 * (1 - info["coverage"]))
    # a covered target's columns are identical copies; its own gene is connected
    t = info["targets"].index("CD4")
    cols = mask[:, 10 * t : 10 * t + 10].toarray()
    assert cols.any()
    assert (cols == cols[:, :1]).all()
    rows = np.flatnonzero(m["rna"].var_names == "CD4")
    if rows.size:
        assert cols[rows[0]].all()
