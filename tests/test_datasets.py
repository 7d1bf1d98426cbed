"""Tests of scmm.datasets: registry, fetch (never downloads), loaders on the real files."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import os
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scmm
import scmm.datasets as ds
from scmm.datasets import _fetch
from scmm.datasets._gene_sets import read_gmt
from scmm.datasets._layout import parse_peak_names
from scmm.datasets._registry import REGISTRY

REPO_ROOT = Path(__file__).resolve().parents[1]


def _data_dir() -> Path | None:
    """The real data: $SCMM_DATA_DIR, else ../shared/data next to the repository."""
    env = os.environ.get("SCMM_DATA_DIR")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    return path if path.is_dir() else None


DATA = _data_dir()
needs_data = pytest.mark.skipif(
    DATA is None,
    reason="real data not found: set SCMM_DATA_DIR to the scmm data folder (../shared/data)",
)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch, tmp_path):
    """Empty private cache, and any download attempt fails as if offline."""
    monkeypatch.setenv(_fetch.ENV_CACHE_DIR, str(tmp_path / "cache"))
    # conftest sets SCMM_OFFLINE=1; here downloads go through the fake downloaders instead
    monkeypatch.delenv(_fetch.ENV_OFFLINE, raising=False)

    def offline(url, output_file, pooch_obj, check_only=False):
        msg = f"network disabled in tests ({url})"
        raise ConnectionError(msg)

    monkeypatch.setattr(scmm.settings, "downloader", offline)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- registry ---------------------------------------------------------------------------


def test_registry_entries_are_complete():
    for relpath, entry in REGISTRY.items():
        assert entry.relpath == relpath
        assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256), relpath
        if entry.url is None:
            assert entry.note, f"{relpath}: no URL and no note on where to get it"
        elif entry.url.startswith("https://ftp.ncbi.nlm.nih.gov/geo/samples/"):
            # GEO supplementary file: .../GSMnnnnnn/suppl/<GSM>_<name>, named like relpath
            assert entry.url.rsplit("/", 1)[-1] == relpath.rsplit("/", 1)[-1]
            assert entry.source.startswith("GEO GSE")
        elif entry.url.startswith("https://raw.githubusercontent.com/"):
            # pinned to a commit, and the source names the same repo@commit:path
            repo, commit, path = re.fullmatch(
                r"https://raw\.githubusercontent\.com/([^/]+/[^/]+)/([0-9a-f]{40})/(.+)",
                entry.url,
            ).groups()
            assert entry.source == f"{repo}@{commit}:{path}"
        else:
            assert entry.url.startswith("https://files.pythonhosted.org/")
            assert entry.archive_member and entry.archive_sha256
            assert entry.source.endswith(":" + entry.archive_member)


@needs_data
def test_registry_matches_readme_checksums():
    readme = DATA / "README.md"
    if not readme.is_file():
        pytest.skip(f"{readme} not found")
    # the main block, and the `new:` lines of files added since (registered too)
    listed = dict(
        (m.group(2), m.group(1))
        for m in re.finditer(
            r"^(?:new: )?([0-9a-f]{64})\s+(\S+)$", readme.read_text(), re.MULTILINE
        )
    )
    assert listed == {k: v.sha256 for k, v in REGISTRY.items()}


@needs_data
@pytest.mark.parametrize("relpath", sorted(REGISTRY))
def test_real_file_checksum(relpath):
    path = DATA / relpath
    if not path.is_file():
        pytest.skip(f"{path} not present")
    assert _sha256(path) == REGISTRY[relpath].sha256


# --- fetch ------------------------------------------------------------------------------

REL = "multiome/mop_snare2/genes.txt"


def _put(root: Path, relpath: str, content: bytes) -> Path:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_fetch_data_dir_takes_precedence_over_env(tmp_path, monkeypatch):
    arg_dir, env_dir = tmp_path / "arg", tmp_path / "env"
    from_arg = _put(arg_dir, REL, b"arg")
    from_env = _put(env_dir, REL, b"env")
    monkeypatch.setenv("SCMM_DATA_DIR", str(env_dir))
    assert ds.fetch(REL, data_dir=arg_dir) == from_arg
    assert ds.fetch(REL) == from_env
    # data_dir without the file falls through to the env dir
    assert ds.fetch(REL, data_dir=tmp_path / "empty") == from_env


def test_fetch_offline_error_names_file_places_and_source(tmp_path, monkeypatch):
    monkeypatch.setenv("SCMM_DATA_DIR", str(tmp_path / "env"))
    entry = REGISTRY[REL]
    with pytest.raises(FileNotFoundError) as info:
        ds.fetch(REL, data_dir=tmp_path / "arg")
    msg = str(info.value)
    for part in [REL, str(tmp_path / "arg"), str(tmp_path / "env"), "cache", entry.source]:
        assert part in msg
    assert "download failed" in msg
    assert isinstance(info.value.__cause__, ConnectionError)
    assert not (tmp_path / "arg").exists()  # nothing written into the data dirs
    assert not (tmp_path / "env").exists()


def test_fetch_without_url_never_downloads(tmp_path, monkeypatch):
    monkeypatch.delenv("SCMM_DATA_DIR", raising=False)

    def fail(*args, **kwargs):
        pytest.fail("fetch tried to download a file without a URL")

    monkeypatch.setattr(scmm.settings, "downloader", fail)
    rel = "cite/pbmc10k_protein_v3_200cells.h5ad"
    assert REGISTRY[rel].url is None
    with pytest.raises(FileNotFoundError, match=re.escape(rel)) as info:
        ds.fetch(rel, data_dir=tmp_path)
    assert "scvi-tools" in str(info.value)
    assert "301f52da" in str(info.value)


def test_fetch_unknown_file():
    with pytest.raises(ValueError, match="not a registered data file"):
        ds.fetch("cite/nope.h5ad")


def _serve(monkeypatch, content: bytes) -> list[str]:
    """Make 'downloads' write ``content``; return the list of URLs requested."""
    urls: list[str] = []

    def downloader(url, output_file, pooch_obj, check_only=False):
        urls.append(url)
        Path(output_file).write_bytes(content)

    monkeypatch.setattr(scmm.settings, "downloader", downloader)
    return urls


def test_fetch_download_checks_sha256(tmp_path, monkeypatch):
    monkeypatch.delenv("SCMM_DATA_DIR", raising=False)
    urls = _serve(monkeypatch, b"not the registered bytes\n")
    with pytest.raises(ValueError, match=r"(?i)hash"):
        ds.fetch(REL, data_dir=tmp_path / "empty")
    assert urls == [REGISTRY[REL].url]
    assert not (_fetch.cache_dir() / REL).exists()


@needs_data
def test_fetch_download_lands_in_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("SCMM_DATA_DIR", raising=False)
    _serve(monkeypatch, (DATA / REL).read_bytes())
    path = ds.fetch(REL, data_dir=tmp_path / "empty")
    assert path == _fetch.cache_dir() / REL
    assert _sha256(path) == REGISTRY[REL].sha256
    # found in the cache next time: no second download
    monkeypatch.setattr(
        scmm.settings, "downloader", lambda *a, **k: pytest.fail("downloaded twice")
    )
    assert ds.fetch(REL) == path


@needs_data
@pytest.mark.parametrize("good", [True, False])
def test_fetch_member_of_wheel(tmp_path, monkeypatch, good):
    monkeypatch.delenv("SCMM_DATA_DIR", raising=False)
    rel = "genesets/h.all.v7.5.1.symbols.gmt"
    entry = REGISTRY[rel]
    # a stand-in wheel (so its own checksum is not registered) holding the member
    monkeypatch.setitem(REGISTRY, rel, dataclasses.replace(entry, archive_sha256=None))
    content = (DATA / rel).read_bytes() if good else b"HALLMARK_X\tdesc\tA\n"
    wheel = tmp_path / "fake.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(entry.archive_member, content)
    _serve(monkeypatch, wheel.read_bytes())
    if good:
        path = ds.fetch(rel, data_dir=tmp_path / "empty")
        assert path == _fetch.cache_dir() / rel
        assert _sha256(path) == entry.sha256
    else:
        with pytest.raises(ValueError, match="SHA256"):
            ds.fetch(rel, data_dir=tmp_path / "empty")
        assert not (_fetch.cache_dir() / rel).exists()


# --- loaders ----------------------------------------------------------------------------

LOADERS = {
    # name: {modality: (n_obs, n_vars)}
    "bmmc_cite": {"rna": (600, 1000), "prot": (600, 134)},
    "pbmc10k_cite": {"rna": (6661, 1000), "prot": (6661, 14)},
    "pbmc10k_protein_200": {"rna": (200, 16727), "prot": (200, 14)},
    "mop_snare2": {"rna": (10309, 1677), "atac": (10309, 25734)},
    "pbmc_multiome": {"rna": (1000, 45), "atac": (1000, 174)},
    "pbmc_5prime_cite": {"rna": (5000, 3000), "prot": (5000, 8)},
}
#: loaders with other parameters besides `data_dir` (tested in test_reference_data.py)
OTHER_LOADERS = {"reapseq_pbmc"}


def test_public_api():
    assert set(LOADERS) | OTHER_LOADERS | {
        "gene_annotation",
        "gene_sets",
        "fetch",
        "read_open_problems_2022",
        "toy_cite",
        "toy_multiome",
        "load_task",
        "TASKS",
        "Task",
    } == set(ds.__all__)
    for name in LOADERS:
        params = inspect.signature(getattr(ds, name)).parameters
        assert list(params) == ["data_dir"]
        assert params["data_dir"].kind is inspect.Parameter.KEYWORD_ONLY


def test_toy_cite_is_synthetic_and_reproducible():
    mdata = ds.toy_cite(9, n_genes=5, n_proteins=10, rng=1)
    assert (mdata["rna"].shape, mdata["prot"].shape) == ((9, 5), (9, 10))
    assert list(mdata["prot"].var_names[-3:]) == ["CD45RA", "prot8", "prot9"]
    assert not set(mdata["rna"].var_names) & set(mdata["prot"].var_names)
    again, other = ds.toy_cite(9, n_genes=5, n_proteins=10, rng=1), ds.toy_cite(9, n_genes=5)
    np.testing.assert_array_equal(again["prot"].X, mdata["prot"].X)
    assert not np.array_equal(other["rna"].X, mdata["rna"].X)
    with pytest.raises(ValueError, match="n_genes=0"):
        ds.toy_cite(n_genes=0)
    multiome = ds.toy_multiome(5)
    assert (multiome["rna"].shape, multiome["atac"].shape) == ((5, 3), (5, 24))
    assert {"chrom", "start", "end", "strand", "gene_name"} <= set(multiome["rna"].var.columns)


@pytest.fixture(scope="module")
def loaded():
    cache: dict = {}

    def get(name):
        if name not in cache:
            cache[name] = getattr(ds, name)(data_dir=DATA)
        return cache[name]

    return get


@needs_data
@pytest.mark.parametrize("name", sorted(LOADERS))
def test_loader_contract(name, loaded):
    mdata = loaded(name)
    assert {m: a.shape for m, a in mdata.mod.items()} == LOADERS[name]
    first = next(iter(mdata.mod.values()))
    for mod, adata in mdata.mod.items():
        assert adata.obs_names.equals(first.obs_names)
        assert adata.obs_names.is_unique and adata.var_names.is_unique
        x = adata.X
        if mod in ("rna", "atac"):
            assert isinstance(x, sp.csr_matrix)
            values = x.data
        else:
            assert isinstance(x, np.ndarray | sp.csr_matrix)
            values = x.data if sp.issparse(x) else x
        assert x.dtype == np.float32
        assert values.min() >= 0
        np.testing.assert_array_equal(values, np.round(values))  # integer-valued counts
        assert values.max() > 1  # not binarised or normalised away (atac may be binary-ish)
        counts = adata.layers["counts"]
        assert counts is not x
        diff = counts - x
        assert (abs(diff).max() if sp.issparse(diff) else np.abs(diff).max()) == 0
        for col in ("batch", "cell_type"):
            if col in adata.obs:
                assert isinstance(adata.obs[col].dtype, pd.CategoricalDtype)
                assert (mdata.obs[col].to_numpy() == adata.obs[col].to_numpy()).all()


@needs_data
def test_bmmc_cite(loaded):
    mdata = loaded("bmmc_cite")
    rna, prot = mdata["rna"], mdata["prot"]
    assert rna.obs["batch"].value_counts().to_dict() == {"s1d1": 311, "s1d2": 289}
    assert rna.obs["cell_type"].nunique() == 41
    assert (rna.obs["cell_type"].to_numpy() == prot.obs["cell_type"].to_numpy()).all()
    assert rna.var["gene_ids"].str.startswith("ENSG").all()
    assert not rna.var_names.str.startswith("ENSG").all()  # symbols as names
    assert {"CD4", "CD14"} <= set(prot.var_names)
    assert isinstance(mdata.obs["batch"].dtype, pd.CategoricalDtype)
    # X holds the raw counts, not the normalised X of the source files
    assert rna.X.sum(axis=1).min() > 100


@needs_data
def test_pbmc10k_cite(loaded):
    mdata = loaded("pbmc10k_cite")
    assert list(mdata["rna"].var_names[:2]) == ["gene_0", "gene_1"]
    assert mdata["prot"].var_names[-1] == "protein_13"
    ct = mdata["rna"].obs["cell_type"]
    assert list(ct.cat.categories) == [str(i) for i in range(1, 8)]
    assert "batch" not in mdata["rna"].obs


@needs_data
def test_pbmc10k_protein_200(loaded):
    mdata = loaded("pbmc10k_protein_200")
    assert mdata["prot"].var_names[0] == "CD3_TotalSeqB"
    assert mdata["prot"].var_names.str.endswith("_TotalSeqB").all()
    assert isinstance(mdata["prot"].X, np.ndarray)


def _check_peaks(atac, template):
    var = atac.var
    assert var["chrom"].map(type).eq(str).all()
    assert var["start"].dtype == np.int64 and var["end"].dtype == np.int64
    assert (var["start"] < var["end"]).all()
    rebuilt = [
        template.format(c, s, e) for c, s, e in zip(var.chrom, var.start, var.end, strict=True)
    ]
    assert rebuilt == list(atac.var_names)


@needs_data
def test_mop_snare2(loaded):
    mdata = loaded("mop_snare2")
    obs = mdata["rna"].obs
    assert obs["batch"].nunique() == 12
    assert obs["cell_type"].nunique() == 23
    assert obs["cluster_remapped"].nunique() == 15
    assert mdata.obs["batch"].nunique() == 12
    _check_peaks(mdata["atac"], "{}_{}_{}")
    assert mdata["atac"].var["chrom"].str.startswith("chr").all()


@needs_data
def test_pbmc_multiome(loaded):
    mdata = loaded("pbmc_multiome")
    _check_peaks(mdata["atac"], "{}:{}-{}")
    assert "files" not in mdata["atac"].uns


def test_parse_peak_names_both_formats():
    out = parse_peak_names(["chr1_100_200", "chrX:5-10", "GL000194.1_7_9"])
    assert list(out["chrom"]) == ["chr1", "chrX", "GL000194.1"]
    assert list(out["start"]) == [100, 5, 7] and out["start"].dtype == np.int64
    assert list(out["end"]) == [200, 10, 9] and out["end"].dtype == np.int64
    with pytest.raises(ValueError, match="chr_start_end"):
        parse_peak_names(["chr1_100_200", "CD4"])


def test_missing_data_error_from_loader(tmp_path, monkeypatch):
    monkeypatch.delenv("SCMM_DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="bmmc_cite_starter"):
        ds.bmmc_cite(data_dir=tmp_path)


# --- gene annotation --------------------------------------------------------------------


@needs_data
@pytest.mark.parametrize("assembly", ["hg38", "mm10"])
def test_gene_annotation_tss_on_both_strands(assembly):
    genes = ds.gene_annotation(assembly, data_dir=DATA)
    assert list(genes.columns) == ["chrom", "start", "end", "strand", "gene_name", "gene_id", "tss"]
    for col in ("start", "end", "tss"):
        assert genes[col].dtype == np.int64
    assert set(genes["strand"]) == {"+", "-"}
    assert (genes["start"] >= 0).all() and (genes["start"] < genes["end"]).all()
    plus = genes["strand"] == "+"
    np.testing.assert_array_equal(genes.loc[plus, "tss"], genes.loc[plus, "start"])
    np.testing.assert_array_equal(genes.loc[~plus, "tss"], genes.loc[~plus, "end"] - 1)


@needs_data
def test_gene_annotation_known_genes():
    hg = ds.gene_annotation("hg38", data_dir=DATA).set_index("gene_name")
    assert len(hg) == 78894
    # GENCODE (1-based, inclusive): GAPDH chr12:6534512-6538374 (+), ACTB chr7:5526409-5563902 (-)
    assert hg.loc["GAPDH", ["start", "end", "tss"]].tolist() == [6534511, 6538374, 6534511]
    assert hg.loc["ACTB", ["start", "end", "tss"]].tolist() == [5526408, 5563902, 5563901]
    assert hg.loc["GAPDH", "gene_id"].startswith("ENSG00000111640")
    mm = ds.gene_annotation("mm10", data_dir=DATA)
    assert len(mm) == 48709
    xkr4 = mm.set_index("gene_name").loc["Xkr4"]  # chr1:3205901-3671498 (-), 1-based
    assert [xkr4.start, xkr4.end, xkr4.tss] == [3205900, 3671498, 3671497]
    # the mm10 annotation covers the mop_snare2 genes (same assembly)
    genes = pd.read_csv(DATA / "multiome/mop_snare2/genes.txt", header=None)[0]
    assert genes.isin(mm["gene_name"]).sum() >= 1675


def test_gene_annotation_unknown_assembly():
    with pytest.raises(ValueError, match="hg38"):
        ds.gene_annotation("hg19")


# --- gene sets --------------------------------------------------------------------------


@needs_data
def test_gene_sets_collections():
    hallmark = ds.gene_sets("hallmark", data_dir=DATA)
    assert len(hallmark) == 50
    assert all(k.startswith("HALLMARK_") and len(v) > 0 for k, v in hallmark.items())
    assert "TNF" in hallmark["HALLMARK_TNFA_SIGNALING_VIA_NFKB"]
    c2 = ds.gene_sets("c2", data_dir=DATA)
    reactome = ds.gene_sets("reactome", data_dir=DATA)
    assert len(c2) == 2982
    assert len(reactome) == 1615
    assert all(k.startswith("REACTOME_") for k in reactome)
    assert all(reactome[k] == c2[k] for k in reactome)
    assert sum(k.startswith("WP_") for k in c2) == 664


def test_gene_sets_from_path(tmp_path):
    gmt = tmp_path / "mine.gmt"
    gmt.write_text("SET_A\tdesc\tCD4\tCD8A\n\nSET_B\thttp://x\tMS4A1\t\n")
    expected = {"SET_A": ["CD4", "CD8A"], "SET_B": ["MS4A1"]}
    assert ds.gene_sets(gmt) == expected
    assert ds.gene_sets(str(gmt)) == expected
    assert read_gmt(gmt) == expected


def test_gene_sets_errors(tmp_path):
    with pytest.raises(ValueError, match=r"hallmark.*reactome"):
        ds.gene_sets("kegg")
    bad = tmp_path / "bad.gmt"
    bad.write_text("SET_A\tdesc\tCD4\nSET_A\tdesc\tCD8A\n")
    with pytest.raises(ValueError, match="twice"):
        ds.gene_sets(bad)


def test_loaders_never_write_into_data_dir(tmp_path, monkeypatch):
    if DATA is None:
        pytest.skip("real data not found: set SCMM_DATA_DIR to the scmm data folder")
    # a copy of one dataset's files in a read-only dir: loading works and adds nothing
    ro = tmp_path / "ro"
    for rel in ("cite/bmmc_cite_starter_rna.h5ad", "cite/bmmc_cite_starter_adt.h5ad"):
        (ro / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DATA / rel, ro / rel)
    before = sorted(p for p in ro.rglob("*"))
    for p in ro.rglob("*"):
        p.chmod(0o555 if p.is_dir() else 0o444)
    monkeypatch.delenv("SCMM_DATA_DIR", raising=False)
    try:
        mdata = ds.bmmc_cite(data_dir=ro)
        assert mdata.n_obs == 600
        assert sorted(ro.rglob("*")) == before
    finally:
        for p in ro.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)


def test_offline_switch_forbids_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv(_fetch.ENV_OFFLINE, "1")
    monkeypatch.delenv(_fetch.ENV_DATA_DIR, raising=False)
    urls = _serve(monkeypatch, b"anything")
    with pytest.raises(FileNotFoundError, match=r"downloads are off \(\$SCMM_OFFLINE=1\)"):
        ds.fetch("cite/bmmc_cite_starter_adt.h5ad", data_dir=tmp_path)
    assert urls == []
