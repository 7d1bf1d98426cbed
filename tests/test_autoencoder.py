"""scmm.nn.AutoencoderMLP, AutoencoderModel and fit_autoencoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import scmm
from scmm.datasets import load_task
from scmm.models import AutoencoderModel
from scmm.nn import MLP, AutoencoderMLP
from scmm.train import seeded

from .conftest import make_paired

FAST = {
    "max_epochs": 4,
    "training": {"batch_size": 32, "device": "cpu", "verbose": False},
    "n_components": 10,
}


# --- nn ---------------------------------------------------------------------------------------
def test_encoder_starts_as_the_plain_mlp():
    with seeded(3):
        ae = AutoencoderMLP(12, 4, (16,), 8)
    with seeded(3):
        mlp = MLP(12, 4, (16, 8), skip="none")
    for (name, a), (_, b) in zip(
        ae.mlp.state_dict().items(), mlp.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    x = torch.randn(5, 12)
    ae.eval(), mlp.eval()
    torch.testing.assert_close(ae(x), mlp(x), rtol=0, atol=0)
    assert ae.embed(x).shape == (5, 8)


def test_decoder_output_is_linear_and_reaches_negative_values():
    with seeded(0):  # a fixed initialisation: the test must not depend on global torch state
        ae = AutoencoderMLP(6, 2, (16,), 4)
    assert isinstance(ae.decoder[-1], torch.nn.Linear)
    assert ae.decoder[-1].out_features == 6
    # fit the reconstruction alone (via auxiliary_loss) to inputs that are mostly negative
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=gen) - 2.0
    opt = torch.optim.Adam(ae.parameters(), lr=1e-2)
    ae.train()
    for _ in range(300):
        opt.zero_grad()
        ae(x)
        ae.auxiliary_loss().backward()
        opt.step()
    ae.eval()
    with torch.no_grad():
        recon = ae.decode(ae.embed(x))
    assert (recon < 0).float().mean() > 0.9
    np.testing.assert_allclose(recon.mean(0), x.mean(0), atol=0.3)


def test_auxiliary_loss_only_in_training_and_weighted():
    ae = AutoencoderMLP(6, 2, (8,), 3, reconstruction_weight=2.5)
    x = torch.randn(10, 6)
    ae.eval()
    ae(x)
    assert ae.auxiliary_loss() is None
    ae.train()
    ae(x)
    loss = ae.auxiliary_loss()
    expected = 2.5 * torch.nn.functional.mse_loss(ae.decode(ae.embed(x)), x)
    torch.testing.assert_close(loss, expected)
    assert ae.auxiliary_loss() is None  # consumed
    ae0 = AutoencoderMLP(6, 2, (8,), 3, reconstruction_weight=0.0).train()
    ae0(x)
    assert ae0.auxiliary_loss() is None
    with pytest.raises(ValueError, match="reconstruction_weight"):
        AutoencoderMLP(6, 2, reconstruction_weight=-1)


# --- fit ----------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:.*does not beat the mean profile")  # tiny synthetic fit
@pytest.mark.parametrize("skip", ["none", "all"])
def test_weight_zero_equals_the_plain_mlp(skip):
    m = make_paired()
    kw = {**FAST, "rng": 0, "train": "train", "dropout": 0.1, "skip": skip}
    scmm.tl.fit_mlp(m, "rna", "prot", input="svd", hidden=[16, 8], key_added="mlp", **kw)
    ae = {"hidden": [16], "latent": 8}
    scmm.tl.fit_autoencoder(m, "rna", "prot", reconstruction_weight=0, key_added="ae0", **ae, **kw)
    scmm.tl.fit_autoencoder(m, "rna", "prot", reconstruction_weight=1, key_added="ae1", **ae, **kw)
    layers = m["prot"].layers
    np.testing.assert_allclose(layers["ae0"], layers["mlp"], rtol=0, atol=1e-6)
    # the reconstruction term does change the fit
    assert np.abs(layers["ae1"] - layers["mlp"]).max() > 1e-3


def test_fit_writes_predictions_embedding_and_scores():
    m = make_paired()
    model = scmm.tl.fit_autoencoder(m, "rna", "prot", latent=5, rng=1, train="train", **FAST)
    assert isinstance(model, AutoencoderModel)
    key = "scmm_autoencoder"
    assert m["prot"].layers[key].shape == m["prot"].shape
    emb = m["rna"].obsm[key]
    assert emb.shape == (m["rna"].n_obs, 5)
    np.testing.assert_allclose(model.embed(m), emb, rtol=0, atol=0)
    assert m.uns[key]["params"]["reconstruction_weight"] == 0.1
    assert set(m.uns[key]["scores"]) >= {"pearson_per_cell", "pearson_per_feature"}
    assert len(model.history["train_loss"]) == FAST["max_epochs"]


def test_same_rng_same_result_other_rng_differs():
    m = make_paired()
    for key, rng in (("a", 0), ("b", 0), ("c", 1)):
        scmm.tl.fit_autoencoder(m, "rna", "prot", rng=rng, key_added=key, **FAST)
    layers = m["prot"].layers
    np.testing.assert_array_equal(layers["a"], layers["b"])
    assert not np.allclose(layers["a"], layers["c"])


def test_save_load_identical(tmp_path):
    m = make_paired()
    model = scmm.tl.fit_autoencoder(
        m, "rna", "prot", hidden=[12, 10], latent=4, decoder_hidden=[7], rng=0, **FAST
    )
    model.save(tmp_path / "ae")
    loaded = scmm.models.load(tmp_path / "ae")
    assert isinstance(loaded, AutoencoderModel)
    assert loaded.params == model.params
    np.testing.assert_array_equal(loaded.predict(m), model.predict(m))
    np.testing.assert_array_equal(loaded.embed(m), model.embed(m))
    assert loaded.net.decoder[0].out_features == 7


def test_argument_errors():
    m = make_paired()
    with pytest.raises(ValueError, match="reconstruction_weight"):
        scmm.tl.fit_autoencoder(m, "rna", "prot", reconstruction_weight=-0.5, **FAST)
    with pytest.raises(ValueError, match="latent"):
        scmm.tl.fit_autoencoder(m, "rna", "prot", latent=0, **FAST)
    with pytest.raises(KeyError, match="not a modality"):
        scmm.tl.fit_autoencoder(m, "rna", "atac", **FAST)
    assert "scmm_autoencoder" not in m["rna"].obsm


def test_real_bmmc_cite_short(data_dir):
    mdata, _ = load_task("bmmc_cite", data_dir=data_dir)
    model = scmm.tl.fit_autoencoder(
        mdata,
        "rna",
        "prot",
        train="train",
        rng=0,
        max_epochs=5,
        training={"device": "cpu", "verbose": False},
    )
    scores = mdata.uns["scmm_autoencoder"]["scores"]
    assert scores["pearson_per_cell"] > 0.5  # the mean profile alone gives about 0.7
    assert mdata["rna"].obsm["scmm_autoencoder"].shape == (
        mdata["rna"].n_obs,
        model.params["latent"],
    )
