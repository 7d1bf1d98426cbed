"""scmm.nn.PathwayMLP, PathwayMLPModel and fit_pathway_mlp."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import scmm
from scmm.datasets import load_task
from scmm.models import PathwayMLPModel
from scmm.nn import PathwayMLP, SparseLinear

from .conftest import make_paired

FAST = {
    "max_epochs": 4,
    "training": {"batch_size": 32, "device": "cpu", "verbose": False},
    "n_components": 10,
}
# genes g0..g39 of make_paired; proteins p0..p5 mapped to genes explicitly
SETS = {"S1": ["g1", "g2", "g3"], "S2": ["g4", "g5"], "S3": ["g6", "g7", "g8", "g9"]}
TARGET_GENES = {"p0": "g1", "p1": "g4", "p2": "g6", "p3": "g2", "p4": "g30", "p5": None}


def _fit(m, **kw):
    args = {
        "gene_sets": SETS,
        "connectivity": {"target_genes": TARGET_GENES},
        "hidden_per_target": 2,
        "rng": 0,
    }
    return scmm.tl.fit_pathway_mlp(m, "rna", "prot", **{**args, **FAST, **kw})


# --- nn -------------------------------------------------------------------------------------
def test_pathway_mlp_forward_and_gene_locality():
    mask = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 0, 1]], dtype=bool)  # 4 genes, 3 units
    net = PathwayMLP(5, 4, 2, mask, dense_hidden=(6,), head_hidden=(4,)).eval()
    assert isinstance(net.sparse_layer, SparseLinear)
    assert net.sparse_layer.nnz == 5
    svd = torch.randn(7, 5)
    genes = torch.randn(7, 4, requires_grad=True)
    out = net(svd, genes)
    assert out.shape == (7, 2)
    # unit 0 of the pathway layer depends on genes 0 and 1 only
    units = net.pathway(genes)
    (grad,) = torch.autograd.grad(units[:, 0].sum(), genes)
    assert (grad[:, 2:] == 0).all() and (grad[:, :2] != 0).any()
    # sparse gene input gives the same output as dense
    dense = genes.detach()
    torch.testing.assert_close(net(svd, dense.to_sparse()), net(svd, dense))


# --- fit ------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["coo", "dense_masked"])
def test_masked_weights_stay_zero_after_training(backend):
    m = make_paired()
    model = _fit(m, sparse_backend=backend, max_epochs=6)
    layer = model.net.sparse_layer
    assert layer.backend == backend
    w = layer.dense_weight().detach().numpy()  # (units, genes)
    allowed = model.mask.toarray().T
    assert (w[~allowed] == 0).all()
    assert (w[allowed] != 0).mean() > 0.9
    # the weights did train: they moved from their initialisation
    fresh = model._build_net(model._n_in, model.net.n_out).sparse_layer.dense_weight()
    assert np.abs(w - fresh.detach().numpy()).max() > 1e-3


def test_connectivity_written_and_restricted():
    m = make_paired()
    model = _fit(m)
    info = m.uns["pathway"]
    mask = m["rna"].varm["pathway"]
    assert mask.shape == (40, 6 * 2)
    # p0 (g1, S1), p1 (g4, S2), p2 (g6, S3), p3 (g2, S1) covered by sets; p4 by its own gene
    # g30 (in no set); p5 unmapped
    assert info["coverage"] == pytest.approx(5 / 6)
    assert info["unmapped_targets"] == ["p5"]
    assert info["params"]["hidden_per_target"] == 2
    assert model.connected_genes() == [f"g{i}" for i in range(1, 10)] + ["g30"]
    # the model keeps the connected genes and units: p4's own gene g30 is connected to it
    assert model.mask.shape == (10, 10)
    np.testing.assert_array_equal(model.mask.toarray(), mask[model.genes][:, model.units].toarray())
    assert m["prot"].layers["scmm_pathway_mlp"].shape == m["prot"].shape
    assert m.uns["scmm_pathway_mlp"]["params"]["model"] == "pathway_mlp"


def test_gene_set_prior_changes_the_fit():
    m = make_paired()
    _fit(m, key_added="a")
    other = {"S1": ["g10", "g11", "g1"], "S2": ["g20", "g4"], "S3": ["g6", "g33"]}
    _fit(
        m,
        key_added="b",
        gene_sets=other,
        connectivity={"target_genes": TARGET_GENES, "key_added": "pw2"},
    )
    _fit(m, key_added="c")
    layers = m["prot"].layers
    np.testing.assert_array_equal(layers["a"], layers["c"])
    assert not np.allclose(layers["a"], layers["b"])
    assert m["rna"].varm["pw2"].nnz != m["rna"].varm["pathway"].nnz


def test_save_load_identical(tmp_path):
    m = make_paired()
    model = _fit(m, dense_hidden=[8], head_hidden=[5])
    model.save(tmp_path / "pw")
    loaded = scmm.models.load(tmp_path / "pw")
    assert isinstance(loaded, PathwayMLPModel)
    np.testing.assert_array_equal(loaded.predict(m), model.predict(m))
    assert (loaded.mask != model.mask).nnz == 0
    np.testing.assert_array_equal(loaded.genes, model.genes)
    assert loaded.connected_genes() == model.connected_genes()
    # features are aligned by name: shuffled gene order gives the same predictions
    perm = np.random.default_rng(0).permutation(m["rna"].n_vars)
    shuffled = m["rna"][:, perm].copy()
    np.testing.assert_allclose(loaded.predict(shuffled), model.predict(m), rtol=1e-5, atol=1e-5)


def test_errors_leave_mdata_untouched():
    m = make_paired()
    with pytest.raises(ValueError, match="check species/symbols"):
        _fit(m, gene_sets={"S": ["nope1", "nope2"]})
    assert "pathway" not in m.uns
    with pytest.raises(ValueError, match="svd_fit_on"):
        _fit(m, svd_fit_on="everything")
    assert "pathway" not in m.uns
    assert "pathway" not in m["rna"].varm
    with pytest.raises(ValueError, match="sparse_backend"):
        _fit(m, sparse_backend="magic")
    model = PathwayMLPModel()
    with pytest.raises(ValueError, match="no connections"):
        model.set_connectivity(sp.csr_matrix((40, 4)))
    with pytest.raises(RuntimeError, match="no connectivity"):
        model.fit(
            np.ones((10, 40)), np.ones((10, 2)), source_features=range(40), target_features=range(2)
        )


def test_real_bmmc_cite_short(data_dir):
    mdata, _ = load_task("bmmc_cite", data_dir=data_dir)
    sets = scmm.datasets.gene_sets("hallmark", data_dir=data_dir)
    model = scmm.tl.fit_pathway_mlp(
        mdata,
        "rna",
        "prot",
        gene_sets=sets,
        train="train",
        rng=0,
        max_epochs=5,
        training={"device": "cpu", "verbose": False},
    )
    assert 0.3 < mdata.uns["pathway"]["coverage"] < 1
    assert len(model.connected_genes()) > 50
    assert mdata.uns["scmm_pathway_mlp"]["scores"]["pearson_per_cell"] > 0.5
