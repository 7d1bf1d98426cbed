"""scmm.nn.MLP, MLPModel and fit_mlp / lr_range_test on the fit contract."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import scmm
from scmm.models import MLPModel
from scmm.nn import MLP, MLP_PRESETS
from scmm.train import TrainingConfig
from scmm.train._data import to_torch_batch

from .conftest import make_paired, make_wide_target, spy_toarray

FAST = {"max_epochs": 4, "training": {"batch_size": 32, "device": "cpu", "verbose": False}}


# --- nn.MLP -------------------------------------------------------------------------------------
def test_mlp_skip_head_widths():
    assert MLP(10, 3, (8, 6, 4), skip="none").head.in_features == 4
    assert MLP(10, 3, (8, 6, 4), skip="all").head.in_features == 18
    assert MLP(10, 3, (8, 6, 4), skip=2).head.in_features == 10
    with pytest.raises(ValueError, match="skip"):
        MLP(10, 3, (8,), skip=3)
    with pytest.raises(ValueError, match="skip"):
        MLP(10, 3, (8,), skip="some")


def test_mlp_block_structure_and_dropout():
    net = MLP(10, 3, (8, 4), dropout=0.3)
    kinds = [type(m).__name__ for m in net.trunk[0]]
    assert kinds == ["Linear", "BatchNorm1d", "SiLU", "Dropout"]
    assert all(
        type(m).__name__ != "BatchNorm1d" for m in MLP(10, 3, (8,), batchnorm=False).trunk[0]
    )


def test_presets_match_original_architectures():
    cite = MLP.from_preset("cite_svd", 64, 140)
    assert [b[0].out_features for b in cite.trunk] == [512, 256, 128, 64]
    assert cite.head.in_features == 512 + 256 + 128 + 64
    atac = MLP.from_preset("multiome_raw", 1000, 50)
    assert [b[0].out_features for b in atac.trunk] == [2000] * 4
    both = MLP.from_preset("svd_plus_raw", (32, 500), 10)
    assert [b[0].out_features for b in both.branch_blocks[1]] == [512, 256]
    assert both.trunk[0][0].in_features == 256 + 32
    assert both.head.in_features == 3 * 256
    assert set(MLP_PRESETS) == {"cite_svd", "multiome_raw", "svd_plus_raw", "svd_plus_raw_wide"}
    with pytest.raises(ValueError, match="preset"):
        MLP.from_preset("nope", 3, 3)


def test_svd_plus_raw_forward_with_sparse_raw_matches_dense():
    net = MLP.from_preset("svd_plus_raw", (5, 40), 3).eval()
    svd = torch.randn(7, 5)
    raw = sp.random(7, 40, density=0.1, format="csr", random_state=0, dtype=np.float32)
    raw_t = to_torch_batch(raw)  # what the training loader gives the network
    assert raw_t.layout == torch.sparse_coo
    dense = net(svd, torch.from_numpy(raw.toarray()))
    sparse = net(svd, raw_t)
    torch.testing.assert_close(dense, sparse, rtol=1e-5, atol=1e-5)
    # gradients flow to the first (sparse) layer
    net.train()
    net(svd, raw_t).sum().backward()
    assert net.branch_blocks[1][0][0].weight.grad.abs().sum() > 0


# --- fit_mlp ------------------------------------------------------------------------------------
def test_fit_mlp_contract_and_history():
    mdata = make_paired(n_cells=120)
    model = scmm.tl.fit_mlp(
        mdata, "rna", "prot", n_components=8, hidden=[16, 8], train="train", rng=0, **FAST
    )
    pred = mdata["prot"].layers["scmm_mlp"]
    assert pred.shape == mdata["prot"].shape and np.isfinite(pred).all()
    uns = mdata.uns["scmm_mlp"]
    assert uns["params"]["model"] == "mlp" and uns["params"]["training"]["max_epochs"] == 4
    assert "pearson_per_cell" in uns["scores"]
    assert len(model.history["train_loss"]) == 4
    assert model.history["n_train"] == int(mdata.obs["train"].sum())


def test_fit_mlp_beats_mean_on_learnable_problem():
    mdata = make_paired(n_cells=300, n_prot=8)
    scmm.tl.fit_mlp(
        mdata,
        "rna",
        "prot",
        n_components=10,
        hidden=[32, 16],
        train="train",
        rng=0,
        max_epochs=30,
        training={"batch_size": 64, "lr": 1e-2, "device": "cpu", "verbose": False},
    )
    test = ~mdata.obs["train"].to_numpy()
    y = mdata["prot"].X[test]
    pred = mdata["prot"].layers["scmm_mlp"][test]
    r = np.mean([np.corrcoef(pred[i], y[i])[0, 1] for i in range(len(y))])
    mean_pred = np.broadcast_to(mdata["prot"].X[~test].mean(0), y.shape)
    r_mean = np.mean([np.corrcoef(mean_pred[i], y[i])[0, 1] for i in range(len(y))])
    assert r > r_mean + 0.2


def test_fit_mlp_same_rng_same_result():
    a, b, c = (make_paired(n_cells=100) for _ in range(3))
    kw = {"n_components": 6, "hidden": [16], "dropout": 0.1, **FAST}
    for m, seed in ((a, 3), (b, 3), (c, 4)):
        scmm.tl.fit_mlp(m, "rna", "prot", rng=seed, **kw)
    pa, pb, pc = (m["prot"].layers["scmm_mlp"] for m in (a, b, c))
    np.testing.assert_array_equal(pa, pb)
    assert np.abs(pa - pc).max() > 1e-5


def test_fit_mlp_target_svd_and_raw_inputs():
    mdata = make_paired(n_cells=100, n_prot=10)
    m1 = scmm.tl.fit_mlp(
        mdata, "rna", "prot", n_components=6, hidden=[16], target_svd=3, key_added="t", **FAST
    )
    assert m1.net.n_out == 3 and mdata["prot"].layers["t"].shape == (100, 10)
    # the predictions lie in the 3-dim affine span of the target components
    P = mdata["prot"].layers["t"] - m1.target_encoder.mean
    assert np.linalg.matrix_rank(P, tol=1e-3 * np.abs(P).max()) <= 3
    m2 = scmm.tl.fit_mlp(
        mdata, "rna", "prot", input="svd+raw", n_components=6, hidden=[16], key_added="r", **FAST
    )
    assert m2.params["preset"] == "svd_plus_raw_wide" and m2.net.n_in == [6, 40]
    with pytest.raises(ValueError, match="preset"):
        scmm.tl.fit_mlp(mdata, "rna", "prot", input="raw", preset="svd_plus_raw", **FAST)


def test_mlp_save_load_roundtrip(tmp_path):
    mdata = make_paired(n_cells=100)
    model = scmm.tl.fit_mlp(mdata, "rna", "prot", n_components=6, hidden=[16], target_svd=4, **FAST)
    before = model.predict(mdata)
    model.save(tmp_path / "m")
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "m")
    loaded = scmm.models.load(tmp_path / "m")
    assert isinstance(loaded, MLPModel)
    np.testing.assert_array_equal(loaded.predict(mdata), before)
    assert loaded.history["train_loss"] == model.history["train_loss"]


NEURAL_FITS = [
    ("fit_mlp", "MLPModel"),
    ("fit_autoencoder", "AutoencoderModel"),
    ("fit_pathway_mlp", "PathwayMLPModel"),
    ("fit_deepsets", "DeepSetsModel"),
]


@pytest.mark.parametrize(("fit", "cls"), NEURAL_FITS)
def test_fit_and_model_class_defaults_agree(fit, cls):
    """Training options travel as one object; a fit's defaults are its model class's."""
    fit_params = inspect.signature(getattr(scmm.tl, fit)).parameters
    model_params = inspect.signature(getattr(scmm.models, cls)).parameters
    copied = set(fit_params) & set(TrainingConfig.__dataclass_fields__)
    assert not copied, copied  # in `training`; `max_epochs` is one of the keyword options
    assert fit_params["contract"].kind is inspect.Parameter.VAR_KEYWORD
    assert "max_epochs" in scmm.tl.NeuralFitKeywords.__annotations__
    for name in set(fit_params) & set(model_params) - {"training"}:
        assert fit_params[name].default == model_params[name].default, name


def test_model_training_defaults():
    assert scmm.models.MLPModel.default_training() == TrainingConfig()
    deepsets = scmm.models.DeepSetsModel.default_training()
    assert (deepsets.max_epochs, deepsets.batch_size, deepsets.swa, deepsets.loss) == (
        30,
        256,
        False,
        "mse",
    )
    model = scmm.models.DeepSetsModel(training={"lr": 1e-2})
    assert model.config == deepsets.replace(lr=1e-2)
    # a TrainingConfig is taken as it is, the model's defaults aside
    assert scmm.models.DeepSetsModel(training=TrainingConfig()).config == TrainingConfig()


def test_training_argument():
    mdata = make_paired(n_cells=80)
    kw = {"n_components": 5, "hidden": [8], "rng": 0}
    model = scmm.tl.fit_mlp(mdata, "rna", "prot", max_epochs=2, training={"lr": 1e-2}, **kw)
    assert model.config.lr == 1e-2 and model.config.max_epochs == 2
    assert model.config.verbose == scmm.settings.verbose  # left out: the settings' value
    config = TrainingConfig(max_epochs=3, batch_size=16, verbose=False)
    model = scmm.tl.fit_mlp(mdata, "rna", "prot", training=config, **kw)
    assert model.config == config
    model = scmm.tl.fit_mlp(mdata, "rna", "prot", max_epochs=1, training=config, **kw)
    assert model.config == config.replace(max_epochs=1)
    with pytest.raises(ValueError, match=r"unknown options \['learning_rate'\]"):
        scmm.tl.fit_mlp(mdata, "rna", "prot", training={"learning_rate": 1e-2}, **kw)
    with pytest.raises(TypeError, match="TrainingConfig"):
        scmm.tl.fit_mlp(mdata, "rna", "prot", training=[("lr", 1e-2)], **kw)


def test_tl_lr_range_test():
    mdata = make_paired(n_cells=120)
    res = scmm.tl.lr_range_test(
        mdata,
        "rna",
        "prot",
        n_components=6,
        hidden=[16],
        n_steps=30,
        batch_size=32,
        device="cpu",
        rng=0,
    )
    assert len(res.lrs) >= 10 and res.suggestion is not None
    assert res.lrs.min() >= 1e-6 and res.suggestion <= 1.0
    assert "scmm_mlp" not in mdata.uns


@pytest.mark.filterwarnings("ignore:.*does not beat the mean profile")  # tiny synthetic fit
def test_sparse_target_stays_sparse_and_matches_dense(monkeypatch):
    kw = {**FAST, "hidden": [16], "n_components": 5, "train": "train", "rng": 0}
    mdata = make_wide_target()
    dense = mdata.copy()
    dense["out"].X = dense["out"].X.toarray()
    q = mdata["out"].n_vars
    n_test = int((~mdata.obs["train"]).sum())
    densified = spy_toarray(monkeypatch)
    scmm.tl.fit_mlp(mdata, "rna", "out", key_added="s", **kw)
    monkeypatch.undo()
    # only training batches (32 cells) and the held-out cells' targets for the scores
    rows = sorted({r for r, c in densified if c == q})
    assert rows and max(rows) == n_test and 32 in rows
    scmm.tl.fit_mlp(dense, "rna", "out", key_added="s", **kw)
    np.testing.assert_allclose(mdata["out"].layers["s"], dense["out"].layers["s"], rtol=1e-5)
    sparse_scores, dense_scores = mdata.uns["s"]["scores"], dense.uns["s"]["scores"]
    assert sparse_scores.keys() == dense_scores.keys()
    for key, value in dense_scores.items():
        assert sparse_scores[key] == pytest.approx(value), key
    assert sp.issparse(mdata["out"].X)


def test_fit_unknown_keyword_names_the_function_and_its_options(paired):
    with pytest.raises(TypeError, match=r"fit_mlp\(\) got unexpected keyword.*'hiden'.*max_epochs"):
        scmm.tl.fit_mlp(paired, "rna", "prot", hiden=[8], max_epochs=1, rng=0)
