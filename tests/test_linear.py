"""The linear model: fitted through scmm.tl and scmm.models, saved, loaded, on sparse inputs."""

import numpy as np
import pytest
import torch

import scmm
from scmm.models import LinearModel
from scmm.nn import LinearMap


def test_linear_map_is_linear_on_dense_and_sparse_inputs():
    torch.manual_seed(0)
    net = LinearMap([3, 4], 2).eval()
    a, b = torch.randn(5, 3), torch.randn(5, 4)
    out = net(a, b)
    # linear: f(a, b) - f(0, 0) is additive and scales
    zero = net(torch.zeros(5, 3), torch.zeros(5, 4))
    torch.testing.assert_close(net(2 * a, 2 * b) - zero, 2 * (out - zero))
    torch.testing.assert_close(net(a, b.to_sparse_coo()), out)
    with pytest.raises(ValueError, match="expects 2 inputs"):
        net(a)


@pytest.mark.parametrize("input", ["svd", "svd+raw"])
def test_fit_linear_writes_scores_and_reloads(paired, tmp_path, input):
    paired.obs["train"] = np.arange(paired.n_obs) % 4 != 0
    model = scmm.tl.fit_linear(
        paired, "rna", "prot", input=input, n_components=5, train="train", max_epochs=3, rng=0
    )
    assert isinstance(model, LinearModel)
    pred = paired["prot"].layers["scmm_linear"]
    assert pred.shape == paired["prot"].shape and np.isfinite(pred).all()
    assert paired.uns["scmm_linear"]["params"]["model"] == "linear"
    assert "pearson_per_cell" in paired.uns["scmm_linear"]["scores"]
    model.save(tmp_path / "m")
    loaded = scmm.models.load(tmp_path / "m")
    assert isinstance(loaded, LinearModel)
    np.testing.assert_array_equal(loaded.predict(paired), model.predict(paired))


def test_same_rng_same_model_and_class_fit_agrees(paired):
    one = scmm.tl.fit_linear(paired, "rna", "prot", n_components=5, max_epochs=2, rng=1)
    first = paired["prot"].layers["scmm_linear"].copy()
    scmm.tl.fit_linear(paired, "rna", "prot", n_components=5, max_epochs=2, rng=1)
    np.testing.assert_array_equal(paired["prot"].layers["scmm_linear"], first)
    # the class fitted through scmm.models predicts through scmm.tl.predict, as the fit did
    model = LinearModel(n_components=5, training={"max_epochs": 2})
    model.fit_mudata(paired, "rna", "prot", rng=1)
    np.testing.assert_array_equal(model.predict(paired), one.predict(paired))
    scmm.tl.predict(model, paired, key_added="again")
    np.testing.assert_array_equal(paired["prot"].layers["again"], first)


def test_linear_model_defaults():
    config = LinearModel.default_training()
    assert config.swa is False and config.max_epochs == 20
    with pytest.raises(ValueError, match="input='pca'"):
        LinearModel(input="pca")


@pytest.mark.parametrize(("input", "target_svd"), [("svd", None), ("svd+raw", None), ("svd", 2)])
def test_training_starts_at_the_least_squares_map(paired, input, target_svd):
    """With a learning rate of ~0 the fit is the closed-form (tiny-ridge) least-squares map."""
    paired.obs["train"] = np.arange(paired.n_obs) % 4 != 0
    training = {"lr": 1e-12, "min_lr": 0.0, "swa": False, "verbose": False}
    model = scmm.tl.fit_linear(paired, "rna", "prot", input=input, n_components=5,
                               target_svd=target_svd, max_epochs=1, training=training,
                               train="train", write_predictions=False, rng=0)  # fmt: skip
    train = paired.obs["train"].to_numpy()
    X, Y = paired["rna"].X[train], paired["prot"].X[train]
    parts = [p.toarray() if hasattr(p, "toarray") else p for p in model.encoder.transform(X)]
    A = np.hstack([*parts, np.ones((X.shape[0], 1))])
    T = model.target_encoder.encode(np.asarray(Y))
    gram = A.T @ A
    ridge = np.diag(np.r_[1e-3 * np.diag(gram)[:-1], 0.0])  # 1e-3 of each input's own scale
    W = np.linalg.solve(gram + ridge, A.T @ T)
    expected = model.target_encoder.decode((A @ W).astype(np.float32))
    np.testing.assert_allclose(model.predict_array(X), expected, rtol=1e-3, atol=1e-3)
