"""``read_open_problems_2022`` on small files written in the competition's HDF5 layout."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scmm
from scmm.datasets._open_problems import read_fixed_table


def _write_fixed(path, key: str, values: np.ndarray, cells, columns) -> None:
    """Write a DataFrame the way ``pandas.to_hdf(format="fixed")`` does (one float block)."""
    with h5py.File(path, "w") as f:
        g = f.create_group(key)
        g.attrs.update(
            pandas_type="frame",
            pandas_version="0.15.2",
            ndim=2,
            nblocks=1,
            axis0_variety="regular",
            axis1_variety="regular",
            block0_items_variety="regular",
            encoding="UTF-8",
            errors="strict",
        )
        cols = np.array([c.encode() for c in columns])
        g.create_dataset("axis0", data=cols)
        g.create_dataset("axis1", data=np.array([c.encode() for c in cells]))
        g.create_dataset("block0_items", data=cols)
        g.create_dataset(
            "block0_values",
            data=values.astype(np.float32),
            chunks=(3, values.shape[1]),
            compression="gzip",
        )
        for name in ("axis0", "axis1", "block0_items"):
            g[name].attrs.update(kind="string", name="N.")


def _sparse_values(rng, n, m, density):
    x = rng.random((n, m)) * 5
    x[rng.random((n, m)) > density] = 0
    return x.astype(np.float32)


@pytest.fixture
def kaggle_dir(tmp_path):
    rng = np.random.default_rng(0)
    n_cite, n_multi = 23, 17
    cite_cells = [f"c{i:04x}" for i in range(n_cite)]
    test_cells = [f"t{i:04x}" for i in range(7)]
    multi_cells = [f"m{i:04x}" for i in range(n_multi)]
    genes = [f"ENSG{i:05d}_G{i}" for i in range(31)]
    prots = [f"CD{i}" for i in range(5)]
    peaks = [f"chr{1 + i // 10}:{1000 * i + 10}-{1000 * i + 600}" for i in range(40)]
    peaks[-1] = "GL000194.1:100-900"
    arrays = {
        "cite_in": _sparse_values(rng, n_cite, len(genes), 0.2),
        "cite_tg": rng.normal(size=(n_cite, len(prots))).astype(np.float32),
        "multi_in": _sparse_values(rng, n_multi, len(peaks), 0.05),
        "multi_tg": _sparse_values(rng, n_multi, len(genes), 0.3),
        "cite_test": _sparse_values(rng, 7, len(genes), 0.2),
    }
    _write_fixed(
        tmp_path / "train_cite_inputs.h5", "train_cite_inputs", arrays["cite_in"], cite_cells, genes
    )
    _write_fixed(
        tmp_path / "train_cite_targets.h5",
        "train_cite_targets",
        arrays["cite_tg"],
        cite_cells,
        prots,
    )
    _write_fixed(
        tmp_path / "test_cite_inputs.h5", "test_cite_inputs", arrays["cite_test"], test_cells, genes
    )
    _write_fixed(
        tmp_path / "train_multi_inputs.h5",
        "train_multi_inputs",
        arrays["multi_in"],
        multi_cells,
        peaks,
    )
    _write_fixed(
        tmp_path / "train_multi_targets.h5",
        "train_multi_targets",
        arrays["multi_tg"],
        multi_cells,
        genes,
    )
    all_cells = cite_cells + test_cells + multi_cells
    meta = pd.DataFrame(
        {
            "cell_id": all_cells[::-1],  # another order than the files
            "day": rng.choice([2, 3, 4, 7], len(all_cells)),
            "donor": rng.choice([13176, 31800, 32606], len(all_cells)),
            "cell_type": rng.choice(["HSC", "EryP", "hidden"], len(all_cells)),
            "technology": ["citeseq"] * 0 + ["x"] * len(all_cells),
        }
    )
    meta.to_csv(tmp_path / "metadata.csv", index=False)
    return tmp_path, arrays, meta.set_index("cell_id"), (cite_cells, multi_cells, peaks, genes)


def test_cite_train(kaggle_dir):
    path, arrays, meta, (cite_cells, _, _, genes) = kaggle_dir
    mdata = scmm.datasets.read_open_problems_2022(path, "cite")
    assert set(mdata.mod) == {"rna", "prot"}
    rna, prot = mdata["rna"], mdata["prot"]
    assert sp.issparse(rna.X) and rna.X.format == "csr" and rna.X.dtype == np.float32
    np.testing.assert_array_equal(rna.X.toarray(), arrays["cite_in"])
    np.testing.assert_array_equal(np.asarray(prot.X), arrays["cite_tg"])
    assert list(rna.obs_names) == cite_cells and list(rna.var_names) == genes
    np.testing.assert_array_equal(rna.obs["day"].to_numpy(), meta.loc[cite_cells, "day"])
    assert list(rna.obs["batch"].astype(str)) == list(meta.loc[cite_cells, "donor"].astype(str))
    assert list(mdata.obs["cell_type"].astype(str)) == list(meta.loc[cite_cells, "cell_type"])


def test_multiome_coordinates_and_test_split(kaggle_dir):
    path, arrays, *_ = kaggle_dir
    mdata = scmm.datasets.read_open_problems_2022(path, "multiome")
    atac = mdata["atac"]
    np.testing.assert_array_equal(atac.X.toarray(), arrays["multi_in"])
    np.testing.assert_array_equal(mdata["rna"].X.toarray(), arrays["multi_tg"])
    assert atac.var["chrom"].iloc[0] == "chr1" and atac.var["chrom"].iloc[-1] == "GL000194.1"
    assert atac.var["start"].iloc[3] == 3010 and atac.var["end"].iloc[3] == 3600
    test = scmm.datasets.read_open_problems_2022(path, "cite", split="test")
    assert set(test.mod) == {"rna"} and test["rna"].n_obs == 7


def test_blocks_and_max_cells(kaggle_dir):
    path, arrays, _, _ = kaggle_dir
    X, cells, _ = read_fixed_table(path / "train_cite_inputs.h5", block_rows=4)
    np.testing.assert_array_equal(X.toarray(), arrays["cite_in"])
    assert X.indices.dtype == np.int32
    X, cells, _ = read_fixed_table(path / "train_cite_inputs.h5", max_cells=5, block_rows=2)
    assert X.shape[0] == 5 and len(cells) == 5
    np.testing.assert_array_equal(X.toarray(), arrays["cite_in"][:5])


def test_backed(kaggle_dir, tmp_path_factory):
    path, arrays, _, _ = kaggle_dir
    out = tmp_path_factory.mktemp("out") / "multi.h5mu"
    mdata = scmm.datasets.read_open_problems_2022(path, "multiome", backed=out)
    assert out.is_file() and mdata.isbacked
    np.testing.assert_array_equal(mdata["atac"].X.to_memory().toarray(), arrays["multi_in"])
    assert list(mdata["atac"].var["chrom"])[:2] == ["chr1", "chr1"]
    again = scmm.datasets.read_open_problems_2022(path, "multiome", backed=out)  # reused
    assert again["rna"].shape == mdata["rna"].shape


def test_errors(kaggle_dir, tmp_path_factory):
    path, *_ = kaggle_dir
    with pytest.raises(ValueError, match="task='atac'"):
        scmm.datasets.read_open_problems_2022(path, "atac")
    with pytest.raises(ValueError, match="split='val'"):
        scmm.datasets.read_open_problems_2022(path, split="val")
    with pytest.raises(FileNotFoundError, match=r"test_multi_inputs\.h5"):
        scmm.datasets.read_open_problems_2022(path, "multiome", split="test")
    bad = tmp_path_factory.mktemp("bad") / "train_cite_inputs.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ValueError, match="block0_values"):
        read_fixed_table(bad)
