"""Gene ↔ peak windows (scmm.pp.gene_peak_windows) and gene activity (scmm.pp.gene_activity)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from scmm.pp import gene_activity, gene_peak_windows

UP, DOWN = 1_000, 3_000


def _mdata(genes: list[str], peaks: list[tuple[str, int, int]], *, names: bool = False):
    rna = ad.AnnData(sparse.csr_matrix((4, len(genes)), dtype=np.float32))
    rna.var_names = genes
    atac = ad.AnnData(sparse.random(4, len(peaks), density=0.5, format="csr", random_state=0))
    atac.var_names = [f"{c}_{s}_{e}" for c, s, e in peaks]
    if not names:
        atac.var["chrom"] = [c for c, _, _ in peaks]
        atac.var["start"] = [s for _, s, _ in peaks]
        atac.var["end"] = [e for _, _, e in peaks]
    return md.MuData({"rna": rna, "atac": atac})


def _peak(centre: int, chrom: str = "chr1", half: int = 10) -> tuple[str, int, int]:
    return (chrom, centre - half, centre + half)  # centre = (start + end) // 2


ANNOT = pd.DataFrame(
    {
        "chrom": ["chr1", "chr1", "chr2", "chr1"],
        "start": [10_000, 50_000, 100_000, 10_000],
        "end": [20_000, 60_000, 110_000, 12_000],
        "strand": ["+", "-", "+", "-"],
        "gene_name": ["gA", "gB", "gC", "gA"],  # duplicated gA: first occurrence wins
    }
)
# gA (+, TSS 10_000): window [9_000, 13_000]; gB (-, TSS 59_999): window [56_999, 60_999]
PEAKS = [
    _peak(9_000),  # 0: gA edge, d = -1000
    _peak(8_999),  # 1: just outside gA
    _peak(10_000),  # 2: gA TSS, d = 0, in body
    _peak(13_000),  # 3: gA edge, d = +3000
    _peak(13_001),  # 4: outside
    _peak(60_999),  # 5: gB upstream edge, d = -1000, not in body
    _peak(61_000),  # 6: outside
    _peak(56_999),  # 7: gB downstream edge, d = +3000, in body
    _peak(56_998),  # 8: outside
    _peak(59_999),  # 9: gB TSS, d = 0, in body
    _peak(5_000, "chrUn_JH584304"),  # 10: unknown contig
    _peak(500_000, "chr2"),  # 11: chr2, far from gC's window
]
GENES = ["gA", "gX", "gB", "gC"]
EXPECTED_TSS = {  # (gene row, peak col): (distance, in_body)
    (0, 0): (-1000, 0),
    (0, 2): (0, 1),
    (0, 3): (3000, 1),
    (2, 5): (-1000, 0),
    (2, 7): (3000, 1),
    (2, 9): (0, 1),
}


def _pairs(res: dict) -> dict[tuple[int, int], tuple[float, float]]:
    pairs = res["pairs"].tocoo()
    out = {}
    for key in ("distance", "in_body", "width"):
        m = res[key]
        assert np.array_equal(m.indptr, res["pairs"].indptr)
        assert np.array_equal(m.indices, res["pairs"].indices)
    dist, body = res["distance"].data, res["in_body"].data
    order = np.lexsort((pairs.col, pairs.row))  # CSR data order
    for k, (r, c) in enumerate(zip(pairs.row[order], pairs.col[order], strict=True)):
        out[(int(r), int(c))] = (float(dist[k]), float(body[k]))
    return out


def test_tss_windows_exact_on_both_strands():
    mdata = _mdata(GENES, PEAKS)
    assert gene_peak_windows(mdata, annotation=ANNOT, upstream=UP, downstream=DOWN) is None
    res = mdata.uns["windows"]
    assert res["pairs"].shape == (4, len(PEAKS))
    assert _pairs(res) == {k: (float(d), float(b)) for k, (d, b) in EXPECTED_TSS.items()}
    # distance 0 pairs are stored (explicit zeros) and counted
    assert res["distance"].nnz == len(EXPECTED_TSS) == res["report"]["n_pairs"]
    np.testing.assert_array_equal(res["width"].data, 20.0)
    rep = res["report"]
    assert rep["n_genes_not_in_annotation"] == 1
    assert list(rep["genes_not_in_annotation"]) == ["gX"]
    assert rep["n_genes_without_peaks"] == 1
    assert list(rep["genes_without_peaks"]) == ["gC"]
    assert rep["n_genes_with_peaks"] == 2
    assert rep["n_peaks_unknown_contig"] == 1
    assert list(rep["unknown_contigs"]) == ["chrUn_JH584304"]
    assert rep["median_peaks_per_gene"] == 3.0  # gA 3, gB 3, gC 0
    assert res["params"]["anchor"] == "tss"
    assert res["params"]["upstream"] == UP


def test_swapping_upstream_downstream_mirrors_strands():
    mdata = _mdata(GENES, PEAKS)
    gene_peak_windows(mdata, annotation=ANNOT, upstream=DOWN, downstream=UP)
    got = _pairs(mdata.uns["windows"])
    # gA (+) window is now [7_000, 11_000]; gB (-) now [58_999, 62_999]
    assert got == {
        (0, 0): (-1000.0, 0.0),
        (0, 1): (-1001.0, 0.0),
        (0, 2): (0.0, 1.0),
        (2, 5): (-1000.0, 0.0),
        (2, 6): (-1001.0, 0.0),
        (2, 9): (0.0, 1.0),
    }


def test_peaks_parsed_from_names_and_chr_prefix_harmonised():
    ref = _mdata(GENES, PEAKS)
    gene_peak_windows(ref, annotation=ANNOT, upstream=UP, downstream=DOWN)
    mdata = _mdata(GENES, PEAKS, names=True)
    ann = ANNOT.assign(chrom=ANNOT["chrom"].str.removeprefix("chr"))  # Ensembl-style contigs
    gene_peak_windows(mdata, annotation=ann, upstream=UP, downstream=DOWN)
    assert _pairs(mdata.uns["windows"]) == _pairs(ref.uns["windows"])
    colon = _mdata(GENES, PEAKS, names=True)
    colon["atac"].var_names = [f"{c}:{s}-{e}" for c, s, e in PEAKS]
    gene_peak_windows(colon, annotation=ANNOT, upstream=UP, downstream=DOWN)
    assert _pairs(colon.uns["windows"]) == _pairs(ref.uns["windows"])


def test_gene_body_anchor():
    ann = ANNOT.iloc[:2]
    peaks = [
        _peak(9_500),  # gA 5' of TSS: d = -500
        _peak(15_000),  # gA body: d = 0
        _peak(21_000),  # gA 3' of end (19_999): d = +1001
        _peak(22_999),  # gA last base of window: d = +3000
        _peak(23_000),  # outside
        _peak(60_500),  # gB (-) 5' of TSS 59_999: d = -501
        _peak(55_000),  # gB body
        _peak(48_000),  # gB 3' of its end (50_000): d = +2000
        _peak(46_999),  # outside gB's window [47_000, 60_999]
    ]
    mdata = _mdata(["gA", "gB"], peaks)
    gene_peak_windows(mdata, annotation=ann, upstream=UP, downstream=DOWN, anchor="gene_body")
    assert _pairs(mdata.uns["windows"]) == {
        (0, 0): (-500.0, 0.0),
        (0, 1): (0.0, 1.0),
        (0, 2): (1001.0, 0.0),
        (0, 3): (3000.0, 0.0),
        (1, 5): (-501.0, 0.0),
        (1, 6): (0.0, 1.0),
        (1, 7): (2000.0, 0.0),
    }
    assert mdata.uns["windows"]["params"]["anchor"] == "gene_body"


def test_tss_column_is_used_and_gene_id_matching():
    ann = ANNOT.assign(tss=[10_500, 59_000, 100_000, 11_999], gene_id=["E1", "E2", "E3", "E4"])
    mdata = _mdata(["E1.3", "E2"], [_peak(10_500), _peak(59_500)])
    gene_peak_windows(mdata, annotation=ann, upstream=UP, downstream=DOWN)
    res = mdata.uns["windows"]
    assert res["params"]["match_by"] == "gene_id"
    assert _pairs(res) == {(0, 0): (0.0, 1.0), (1, 1): (-500.0, 1.0)}


def test_renamed_genes_matched_by_their_ensembl_ids():
    """H3F3A in the data is H3-3A in a newer annotation: its id in `var['gene_ids']` matches."""
    ann = ANNOT.assign(gene_id=["ENSG1.2", "ENSG2", "ENSG3", "ENSG4"])
    ann.loc[1, "gene_name"] = "gB_new_name"
    mdata = _mdata(GENES, PEAKS)
    mdata["rna"].var["gene_ids"] = ["ENSG1", "ENSG9", "ENSG2.5", "ENSG3"]
    gene_peak_windows(mdata, annotation=ann, upstream=UP, downstream=DOWN)
    res = mdata.uns["windows"]
    assert res["params"]["match_by"] == "gene_name"
    assert res["report"]["n_genes_matched_by_id"] == 1
    assert res["report"]["genes_not_in_annotation"] == ["gX"]
    assert _pairs(res) == EXPECTED_TSS  # gB's window as if it had kept its name
    del mdata["rna"].var["gene_ids"]  # without ids gB stays unmatched
    gene_peak_windows(mdata, annotation=ann, upstream=UP, downstream=DOWN)
    assert mdata.uns["windows"]["report"]["genes_not_in_annotation"] == ["gX", "gB"]


def test_annotation_files(tmp_path: Path):
    ref = _mdata(GENES, PEAKS)
    gene_peak_windows(ref, annotation=ANNOT, upstream=UP, downstream=DOWN)
    gtf = tmp_path / "genes.gtf"
    lines = []
    for r in ANNOT.itertuples():
        attrs = f'gene_id "id_{r.Index}"; gene_name "{r.gene_name}";'
        for feat in ("gene", "exon"):
            row = [r.chrom, "test", feat, r.start + 1, r.end, ".", r.strand, ".", attrs]
            lines.append("\t".join(map(str, row)))
    gtf.write_text("\n".join(lines) + "\n")
    bed = tmp_path / "genes.bed"
    ANNOT.assign(score=0)[["chrom", "start", "end", "gene_name", "score", "strand"]].to_csv(
        bed, sep="\t", header=False, index=False
    )
    csv = tmp_path / "genes.csv"
    ANNOT.to_csv(csv, index=False)
    for path in (gtf, bed, csv):
        mdata = _mdata(GENES, PEAKS)
        gene_peak_windows(mdata, annotation=path, upstream=UP, downstream=DOWN)
        assert _pairs(mdata.uns["windows"]) == _pairs(ref.uns["windows"]), path.name
        assert mdata.uns["windows"]["params"]["annotation"] == str(path)


def test_h5mu_round_trip_keeps_zero_distances(tmp_path: Path):
    mdata = _mdata(GENES, PEAKS)
    gene_peak_windows(mdata, annotation=ANNOT, upstream=UP, downstream=DOWN)
    path = tmp_path / "w.h5mu"
    mdata.write(path)
    back = md.read_h5mu(path).uns["windows"]
    res = mdata.uns["windows"]
    for key in ("pairs", "distance", "in_body", "width"):
        assert sparse.issparse(back[key])
        np.testing.assert_array_equal(back[key].indptr, res[key].indptr)
        np.testing.assert_array_equal(back[key].indices, res[key].indices)
        np.testing.assert_array_equal(back[key].data, res[key].data)
    assert _pairs(back) == _pairs(res)
    assert back["report"]["n_pairs"] == res["report"]["n_pairs"]
    assert list(back["report"]["genes_not_in_annotation"]) == ["gX"]
    assert back["params"]["anchor"] == "tss"


def test_copy_semantics():
    mdata = _mdata(GENES, PEAKS)
    out = gene_peak_windows(mdata, annotation=ANNOT, upstream=UP, downstream=DOWN, copy=True)
    assert isinstance(out, md.MuData)
    assert "windows" in out.uns
    assert "windows" not in mdata.uns
    gene_peak_windows(mdata, annotation=ANNOT, key_added="w2", upstream=UP, downstream=DOWN)
    assert "w2" in mdata.uns


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rna": "prot"}, ValueError, "`rna='prot'` is not a modality"),
        ({"atac": "peaks"}, ValueError, "`atac='peaks'` is not a modality"),
        ({"upstream": -1}, ValueError, "`upstream` must be a non-negative"),
        ({"downstream": 2.5}, ValueError, "`downstream` must be a non-negative"),
        ({"anchor": "tes"}, ValueError, "`anchor` must be"),
        ({"annotation": ANNOT.drop(columns="strand")}, ValueError, r"lacks columns \['strand'\]"),
        ({"annotation": 3}, TypeError, "`annotation` must be a DataFrame"),
        ({"annotation": "/nonexistent/genes.gtf"}, ValueError, "does not exist"),
    ],
)
def test_input_errors_leave_mdata_untouched(kwargs, error, match):
    mdata = _mdata(GENES, PEAKS)
    kwargs = {"annotation": ANNOT} | kwargs
    with pytest.raises(error, match=match):
        gene_peak_windows(mdata, **kwargs)
    assert "windows" not in mdata.uns


def test_unparseable_peak_names():
    mdata = _mdata(GENES, PEAKS, names=True)
    mdata["atac"].var_names = [f"peak{i}" for i in range(len(PEAKS))]
    with pytest.raises(ValueError, match=r"add the columns to `\.var`"):
        gene_peak_windows(mdata, annotation=ANNOT)


def test_warns_when_most_genes_lack_peaks():
    mdata = _mdata(["gA", "gB", "gC"], [_peak(10_000)])
    with pytest.warns(UserWarning, match="2 of 3 annotated genes have no peak"):
        gene_peak_windows(mdata, annotation=ANNOT, upstream=UP, downstream=DOWN)
    assert mdata.uns["windows"]["report"]["n_genes_without_peaks"] == 2


def test_info_log(caplog):
    mdata = _mdata(GENES, PEAKS)
    with caplog.at_level(logging.INFO, logger="scmm.pp._windows"):
        gene_peak_windows(mdata, annotation=ANNOT, upstream=UP, downstream=DOWN)
    assert "6 pairs" in caplog.text
    assert "1 genes not in annotation" in caplog.text


def _synthetic_genome(rng: np.random.Generator, n_genes: int = 400, n_peaks: int = 1_500):
    """Genes on 3 contigs of 40 Mb; 30% of peaks at TSSs (like real ATAC), the rest uniform."""
    chrom = rng.choice(["chr1", "chr2", "chr3"], n_genes)
    start = rng.integers(0, 39_000_000, n_genes)
    strand = rng.choice(["+", "-"], n_genes)
    length = rng.integers(1_000, 100_000, n_genes)
    ann = pd.DataFrame(
        {
            "chrom": chrom,
            "start": start,
            "end": start + length,
            "strand": strand,
            "gene_name": [f"g{i}" for i in range(n_genes)],
        }
    )
    tss = np.where(strand == "+", start, start + length - 1)
    at_tss = rng.random(n_peaks) < 0.3
    src = rng.integers(0, n_genes, n_peaks)
    pchrom = np.where(at_tss, chrom[src], rng.choice(["chr1", "chr2", "chr3"], n_peaks))
    centre = np.where(
        at_tss, tss[src] + rng.integers(-300, 300, n_peaks), rng.integers(0, 40_000_000, n_peaks)
    )
    centre = np.maximum(centre, 500)
    peaks = list(zip(pchrom, centre - 200, centre + 200, strict=True))
    return ann, peaks


def test_assembly_check_fires_on_shifted_coordinates():
    rng = np.random.default_rng(0)
    ann, peaks = _synthetic_genome(rng)
    genes = list(ann["gene_name"][:50])
    ok = _mdata(genes, peaks)
    gene_peak_windows(ok, annotation=ann)
    assert ok.uns["windows"]["report"]["tss_enrichment"] > 3
    for shift in (20_000, 3_000_000, -5_000_000):
        shifted = [(c, s + shift, e + shift) for c, s, e in peaks if s + shift > 0]
        bad = _mdata(genes, shifted)
        with pytest.raises(ValueError, match="different assemblies"):
            gene_peak_windows(bad, annotation=ann)
        assert "windows" not in bad.uns
        gene_peak_windows(bad, annotation=ann, check_assembly=False)  # the user may insist
        assert bad.uns["windows"]["report"]["tss_enrichment"] < 1.5


def test_assembly_check_far_peaks_and_foreign_contigs():
    far = _mdata(GENES, [_peak(5_000_000 + 10 * i) for i in range(20)])
    with pytest.raises(ValueError, match=r"farther than 1,000,000 bp.*different assemblies"):
        gene_peak_windows(far, annotation=ANNOT)
    foreign = _mdata(GENES, [_peak(10_000 + i, chrom="NC_000067.6") for i in range(20)])
    with pytest.raises(ValueError, match="lie on contigs of the annotation"):
        gene_peak_windows(foreign, annotation=ANNOT)


# --------------------------------------------------------------------------- gene activity


def test_gene_activity_matches_hand_computation():
    # 2 genes x 3 peaks; gene 0 pairs peaks 0 (d=0, explicit zero) and 2 (d=-5000)
    distance = sparse.csr_matrix(
        (np.array([0.0, -5000.0, 2500.0]), np.array([0, 2, 1]), np.array([0, 2, 3])),
        shape=(2, 3),
    )
    assert distance.nnz == 3
    X = np.array([[1.0, 2.0, 3.0], [0.0, 4.0, 0.0]])
    e1, e05 = np.exp(-1.0), np.exp(-0.5)
    expected = np.array([[1.0 + 3.0 * e1, 2.0 * e05], [0.0, 4.0 * e05]])
    dense = gene_activity(X, distance)
    assert isinstance(dense, np.ndarray)
    assert dense.dtype == np.float32
    np.testing.assert_allclose(dense, expected, rtol=1e-6)
    sp = gene_activity(sparse.csr_matrix(X), distance)
    assert sparse.issparse(sp)
    assert sp.dtype == np.float32
    np.testing.assert_allclose(sp.toarray(), expected, rtol=1e-6)
    archr = gene_activity(X, distance, decay=2500.0, offset=np.exp(-1))
    expected_archr = np.array(
        [[1.0 * (1 + e1) + 3.0 * (np.exp(-2) + e1), 2.0 * 2 * e1], [0.0, 4.0 * 2 * e1]]
    )
    np.testing.assert_allclose(archr, expected_archr, rtol=1e-6)


def test_gene_activity_from_windows_and_errors():
    mdata = _mdata(GENES, PEAKS)
    gene_peak_windows(mdata, annotation=ANNOT, upstream=UP, downstream=DOWN)
    dist = mdata.uns["windows"]["distance"]
    X = mdata["atac"].X
    act = gene_activity(X, dist, decay=1000.0)
    assert act.shape == (mdata["atac"].n_obs, mdata["rna"].n_vars)
    Xd = X.toarray()
    expected_gA = Xd[:, 0] * np.exp(-1.0) + Xd[:, 2] + Xd[:, 3] * np.exp(-3.0)
    np.testing.assert_allclose(act.toarray()[:, 0], expected_gA, rtol=1e-5)
    assert not act[:, [1, 3]].toarray().any()  # gX (not annotated) and gC (no peaks)
    with pytest.raises(ValueError, match="same peaks as the windows"):
        gene_activity(X[:, :5], dist)
    with pytest.raises(TypeError, match="scipy sparse"):
        gene_activity(X, dist.toarray())
    with pytest.raises(ValueError, match="`decay` must be a positive"):
        gene_activity(X, dist, decay=0.0)


# --------------------------------------------------------------------------- real data


def _mop_snare2():
    root = os.environ.get("SCMM_DATA_DIR")
    if not root:
        pytest.skip("SCMM_DATA_DIR not set: real data absent")
    data = Path(root) / "multiome" / "mop_snare2"
    bed = Path(root) / "annotation" / "genes_Gencode_mm10.bed"
    if not (data / "regions.txt").exists() or not bed.exists():
        pytest.skip(f"mop_snare2 or the mm10 annotation not found under {root}")
    genes = pd.read_csv(data / "genes.txt", header=None)[0].astype(str).tolist()
    regions = pd.read_csv(data / "regions.txt", header=None)[0].astype(str).tolist()
    ann = pd.read_csv(
        bed, sep="\t", header=None, names=["chrom", "start", "end", "gene_name", "score", "strand"]
    )
    ann["start"] -= 1  # this BED's column 2 is the 1-based GTF start
    rna = ad.AnnData(sparse.csr_matrix((2, len(genes)), dtype=np.float32))
    rna.var_names = genes
    atac = ad.AnnData(sparse.csr_matrix((2, len(regions)), dtype=np.float32))
    atac.var_names = regions
    return md.MuData({"rna": rna, "atac": atac}), ann


def test_real_mop_snare2_mm10():
    mdata, ann = _mop_snare2()
    t0 = time.perf_counter()
    gene_peak_windows(mdata, annotation=ann, upstream=50_000, downstream=50_000)
    elapsed = time.perf_counter() - t0
    res = mdata.uns["windows"]
    rep = res["report"]
    print(
        f"mop_snare2 ±50 kb: {rep['n_genes_with_peaks']}/{rep['n_genes']} genes with peaks, "
        f"median {rep['median_peaks_per_gene']} peaks/gene, {rep['n_pairs']} pairs, "
        f"TSS enrichment {rep['tss_enrichment']:.2f}, {elapsed:.2f} s"
    )
    assert rep["n_genes_not_in_annotation"] == 2  # README: 1,675 of 1,677 genes match
    assert rep["n_genes_with_peaks"] > 0.9 * rep["n_genes"]
    assert 2 <= rep["median_peaks_per_gene"] <= 20
    assert rep["tss_enrichment"] > 2
    assert rep["n_peaks_unknown_contig"] == 0
    # brute-force check of every pair for a sample of genes
    peaks = mdata["atac"].var_names.str.split("_", expand=True).to_frame(index=False)
    pchrom = peaks[0].to_numpy()
    centre = (peaks[1].astype(int).to_numpy() + peaks[2].astype(int).to_numpy()) // 2
    first = ann.drop_duplicates("gene_name").set_index("gene_name")
    dist = res["distance"]
    for row in np.random.default_rng(0).choice(mdata["rna"].n_vars, 100, replace=False):
        name = mdata["rna"].var_names[row]
        if name not in first.index:
            continue
        g = first.loc[name]
        tss = g["start"] if g["strand"] == "+" else g["end"] - 1
        d = (centre - tss) * (1 if g["strand"] == "+" else -1)
        expect = np.flatnonzero((pchrom == g["chrom"]) & (np.abs(d) <= 50_000))
        got = dist.indices[dist.indptr[row] : dist.indptr[row + 1]]
        np.testing.assert_array_equal(got, expect)
        np.testing.assert_array_equal(dist.data[dist.indptr[row] : dist.indptr[row + 1]], d[got])


def test_real_mop_snare2_shifted_is_refused():
    mdata, ann = _mop_snare2()
    shifted = []
    for name in mdata["atac"].var_names:
        c, s, e = name.split("_")
        shifted.append(f"{c}_{int(s) + 5_000_000}_{int(e) + 5_000_000}")
    mdata["atac"].var_names = shifted
    with pytest.raises(ValueError, match="different assemblies"):
        gene_peak_windows(mdata, annotation=ann)
