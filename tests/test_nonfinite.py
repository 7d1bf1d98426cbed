"""Issue 33: constant target rows, non-finite training and non-finite predictions.

A cell whose target row is constant (e.g. no counts on a small protein panel: equal CLR
values) used to give the correlation loss an infinite ``sqrt`` gradient, hence NaN weights and
NaN predictions written without a word.
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from torch import nn

import scmm
from scmm.train import TrainingConfig, seeded, sparsity_penalty, train
from scmm.train._losses import LOSSES, correlation_loss
from scmm.train._module import PredictionModule

from .conftest import make_paired


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setattr(scmm.settings, "verbose", False)


@pytest.fixture
def paired() -> md.MuData:
    """150 training and 50 held-out cells, 100 genes: enough for the default 64 components."""
    return make_paired(n_cells=200, n_genes=100)


def _constant_targets(mdata: md.MuData, n: int = 12, value: float = 2.0) -> np.ndarray:
    """Make the protein rows of ``n`` training cells constant; return their positions."""
    rows = np.flatnonzero(mdata.obs["train"].to_numpy())[:n]
    mdata["prot"].X[rows] = value
    return rows


def _rows(case: str) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    p, t = torch.randn(5, 6, generator=gen), torch.randn(5, 6, generator=gen)
    if case in ("target", "both"):
        t[1] = 2.0
        t[3] = 0.0
    if case in ("prediction", "both"):
        p[1] = -1.5
        p[2] = 0.0
    if case == "all zero":
        p.zero_()
        t.zero_()
    return p, t


# --- losses -------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["target", "prediction", "both", "all zero"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_and_gradients_finite_on_constant_rows(name, case):
    p, t = _rows(case)
    p.requires_grad_(True)
    loss = LOSSES[name](p, t)
    (grad,) = torch.autograd.grad(loss, p)
    assert torch.isfinite(loss)
    assert torch.isfinite(grad).all()


def test_correlation_loss_leaves_constant_target_rows_out():
    p, t = _rows("target")  # rows 1 and 3 constant
    keep = [0, 2, 4]
    np.testing.assert_allclose(
        float(correlation_loss(p, t)), float(correlation_loss(p[keep], t[keep])), rtol=1e-6
    )
    p.requires_grad_(True)
    (grad,) = torch.autograd.grad(correlation_loss(p, t), p)
    assert (grad[[1, 3]] == 0).all()
    # nothing to correlate: 0, with a zero gradient
    q = torch.randn(3, 4, requires_grad=True)
    loss = correlation_loss(q, torch.ones(3, 4))
    (grad,) = torch.autograd.grad(loss, q)
    assert float(loss.detach()) == 0.0
    assert (grad == 0).all()


def test_correlation_loss_unchanged_on_rows_that_vary():
    """Bit for bit the loss and gradient of the formula before issue 33 (no constant rows)."""

    def before(pred, target):  # scmm 7bfcb0c
        p = pred.float()
        t = target.float()
        p = p - p.mean(dim=1, keepdim=True)
        t = t - t.mean(dim=1, keepdim=True)
        num = (p * t).sum(dim=1)
        den = torch.sqrt((p * p).sum(dim=1) * (t * t).sum(dim=1))
        corr = num / den.clamp_min(1e-8)
        return -corr.mean()

    gen = torch.Generator().manual_seed(3)
    p = torch.randn(64, 134, generator=gen, requires_grad=True)
    t = torch.randn(64, 134, generator=gen)
    new, old = correlation_loss(p, t), before(p, t)
    assert torch.equal(new, old)
    assert torch.equal(torch.autograd.grad(new, p)[0], torch.autograd.grad(old, p)[0])


def test_kl_sparsity_finite_when_sigmoid_saturates():
    p = torch.full((8, 3), 40.0, requires_grad=True)  # sigmoid(40) == 1.0 in float32
    loss = sparsity_penalty(p, "kl")
    (grad,) = torch.autograd.grad(loss, p)
    assert torch.isfinite(loss)
    assert torch.isfinite(grad).all()


# --- training -----------------------------------------------------------------------------------
def test_fit_mlp_with_constant_target_rows_is_finite_and_logged_once(paired, caplog):
    rows = _constant_targets(paired)
    with caplog.at_level(logging.INFO, logger="scmm"):
        model = scmm.tl.fit_mlp(paired, "rna", "prot", train="train", max_epochs=3, rng=0)
    pred = paired["prot"].layers["scmm_mlp"]
    assert np.isfinite(pred).all()
    assert all(np.isfinite(p.detach().numpy()).all() for p in model.net.parameters())
    assert np.isfinite(model.history["train_loss"]).all()
    logged = [r.getMessage() for r in caplog.records if "constant targets" in r.getMessage()]
    n_train = int(paired.obs["train"].sum())
    assert logged == [
        f"{len(rows)} of {n_train} training cells have constant targets: they carry no "
        "per-cell correlation and are left out of the correlation term of the loss."
    ]


class _Explodes(nn.Module):
    """A linear map whose output turns NaN from the ``at``-th training forward pass on."""

    def __init__(self, n_in: int, n_out: int, at: int) -> None:
        super().__init__()
        self.lin = nn.Linear(n_in, n_out)
        self.at, self.calls = at, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lin(x)
        if self.training:
            self.calls += 1
            if self.calls >= self.at:
                out = out * float("nan")
        return out


def test_train_stops_with_the_epoch_and_likely_causes(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(128, 5)).astype(np.float32)
    Y = X @ rng.normal(size=(5, 3)).astype(np.float32)
    Y[:4] = 1.0  # four constant target rows
    with seeded(0):
        net = _Explodes(5, 3, at=6)  # 4 steps per epoch: NaN from the 2nd epoch on
    cfg = TrainingConfig(
        max_epochs=3, batch_size=32, lr=1e-2, swa=False, checkpoint_dir=str(tmp_path), verbose=False
    )
    with pytest.raises(FloatingPointError, match="epoch 2 of 3") as err:
        train(net, X, Y, config=cfg, rng=0)
    msg = str(err.value)
    assert "the training loss is nan" in msg
    assert "`lr=0.01`" in msg
    assert "4 of 128 training cells have constant targets" in msg
    # the last checkpoint is the finite first epoch's, not the broken one
    state = torch.load(tmp_path / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values())


def test_train_names_nonfinite_inputs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 5)).astype(np.float32)
    X[7, 2] = np.inf
    Y = rng.normal(size=(64, 3)).astype(np.float32)
    with seeded(0):
        net = nn.Linear(5, 3)
    cfg = TrainingConfig(max_epochs=2, batch_size=32, loss="mse", swa=False, verbose=False)
    with pytest.raises(FloatingPointError, match=r"epoch 1 of 2.*non-finite input or target"):
        train(net, X, Y, config=cfg, rng=0)


def _nan_loss(monkeypatch):
    data_loss = PredictionModule.data_loss

    def broken(self, pred, y):
        return data_loss(self, pred, y) * float("nan")

    monkeypatch.setattr(PredictionModule, "data_loss", broken)


def _fit_mlp(mdata):
    return scmm.tl.fit_mlp(mdata, "rna", "prot", train="train", max_epochs=2, rng=0)


def _fit_autoencoder(mdata):
    return scmm.tl.fit_autoencoder(mdata, "rna", "prot", train="train", max_epochs=2, rng=0)


def _fit_pathway_mlp(mdata):
    sets = {"S1": ["g1", "g2", "g3"], "S2": ["g4", "g5"], "S3": ["g6", "g7", "g8", "g9"]}
    genes = {"p0": "g1", "p1": "g4", "p2": "g6", "p3": "g2", "p4": "g30", "p5": None}
    return scmm.tl.fit_pathway_mlp(
        mdata,
        "rna",
        "prot",
        gene_sets=sets,
        connectivity={"target_genes": genes},
        train="train",
        max_epochs=2,
        rng=0,
    )


def _fit_ensemble(mdata):
    return scmm.tl.fit_ensemble(
        mdata, "rna", "prot", methods=["ridge", "mlp"], n_folds=2, train="train", rng=0
    )


@pytest.mark.parametrize("fit", [_fit_mlp, _fit_autoencoder, _fit_pathway_mlp, _fit_ensemble])
def test_every_neural_fit_stops_on_nonfinite_training(monkeypatch, paired, fit):
    mdata = paired
    before = (set(mdata.uns), set(mdata["prot"].layers), set(mdata["rna"].obsm))
    _nan_loss(monkeypatch)
    with pytest.raises(FloatingPointError, match="epoch 1 of"):
        fit(mdata)
    assert (set(mdata.uns), set(mdata["prot"].layers), set(mdata["rna"].obsm)) == before


def test_fit_deepsets_stops_on_nonfinite_training(monkeypatch):
    from .test_deepsets import fit, make_multiome

    mdata = make_multiome()
    _nan_loss(monkeypatch)
    with pytest.raises(FloatingPointError, match="epoch 1 of"):
        fit(mdata)
    assert "scmm_deepsets" not in mdata["rna"].layers


# --- writing predictions ------------------------------------------------------------------------
def test_predict_refuses_nonfinite_predictions(paired):
    model = scmm.tl.fit_mlp(paired, "rna", "prot", train="train", max_epochs=2, rng=0)
    with torch.no_grad():
        next(model.net.parameters())[0, 0] = float("nan")
    prot = paired["prot"]
    query = md.MuData(
        {"rna": paired["rna"].copy(), "prot": ad.AnnData(prot.X.copy(), prot.obs, prot.var)}
    )
    with pytest.raises(FloatingPointError, match=r"`scmm_mlp`: .* NaN or infinite .*nothing"):
        scmm.tl.predict(model, query)
    assert "scmm_mlp" not in query["prot"].layers
    assert "scmm_mlp" not in query.uns
    rna_only = md.MuData({"rna": paired["rna"].copy()})
    with pytest.raises(FloatingPointError):
        scmm.tl.predict(model, rna_only)
    assert "scmm_mlp" not in rna_only["rna"].obsm


@pytest.mark.parametrize("write_predictions", [True, "disk"])
def test_fit_refuses_nonfinite_predictions(paired, monkeypatch, tmp_path, write_predictions):
    from scmm.models import BaselineModel

    monkeypatch.setenv("SCMM_DISK_DIR", str(tmp_path))
    predict_array = BaselineModel.predict_array

    def block_of_nan(self, X):
        out = predict_array(self, X)
        out[10:20] = np.nan
        return out

    monkeypatch.setattr(BaselineModel, "predict_array", block_of_nan)
    with pytest.raises(FloatingPointError, match=r"in 10 of 200 cells \(rows 10 to 19\)"):
        scmm.tl.fit_baseline(
            paired,
            "rna",
            "prot",
            method="ridge",
            train="train",
            rng=0,
            write_predictions=write_predictions,
        )
    assert "scmm_ridge" not in paired["prot"].layers
    assert "scmm_ridge" not in paired.uns
    assert not list(tmp_path.glob("*.npy"))


# --- the reproduction on REAP-seq run 2 -------------------------------------------------
_SIX = ("CD14", "CD19", "CD25", "CD3", "CD4", "CD56")


def _read_reapseq(path: Path, cells: np.ndarray | None = None):
    """Cell barcodes, row names and a cells × rows CSR of a REAP-seq gzip TSV (rows × cells).

    Line 1 holds only the barcodes; protein files end lines with ``\\r\\n``. Streamed a line at
    a time; ``cells`` (positions) keeps those columns only.
    """
    names, indptr, indices, data = [], [0], [], []
    with gzip.open(path, "rt", newline="") as f:
        barcodes = np.array(f.readline().rstrip("\r\n").split("\t"))
        keep = np.arange(len(barcodes)) if cells is None else np.asarray(cells)
        for line in f:
            name, _, rest = line.rstrip("\r\n").partition("\t")
            values = np.array(rest.split("\t"), dtype=np.float32)[keep]
            nz = np.flatnonzero(values)
            names.append(name)
            indices.append(nz)
            data.append(values[nz])
            indptr.append(indptr[-1] + len(nz))
    rows_by_cells = sp.csr_matrix(
        (np.concatenate(data), np.concatenate(indices), np.array(indptr)),
        shape=(len(names), len(keep)),
    )
    return barcodes[keep], names, rows_by_cells.T.tocsr()


def _antibody(names: list[str], target: str) -> int:
    """Row of the first antibody for ``target`` (rows are named ``<target>_<barcode>``)."""
    return next(i for i, n in enumerate(names) if n.rsplit("_", 1)[0] == target)


def test_reapseq_small_panel_trains_and_predicts_finite(data_dir):
    """The issue's set-up on a few hundred cells: run 2, six proteins, all cells in training."""
    folder = data_dir / "cite" / "reapseq_pbmc"
    cells, prot_names, prot = _read_reapseq(folder / "GSM2685243_protein_2_PBMCs_matrix.txt.gz")
    six = [_antibody(prot_names, t) for t in _SIX]
    counts = prot[:, six].toarray()
    # equal counts on the six proteins (e.g. none): equal CLR values, a constant target row
    constant = np.flatnonzero(counts.max(axis=1) == counts.min(axis=1))
    assert len(constant) >= 3
    others = np.setdiff1d(np.arange(len(cells)), constant)
    train_cells = np.sort(np.concatenate([constant, others[:400]]))
    rows = np.concatenate([train_cells, others[400:500]])  # then 100 query cells
    barcodes, genes, rna = _read_reapseq(folder / "GSM2685238_mRNA_2_PBMCs_matrix.txt.gz", rows)
    assert list(barcodes) == list(cells[rows])
    n = len(train_cells)
    g = np.flatnonzero(np.asarray((rna[:n] > 0).sum(axis=0)).ravel() >= 20)
    obs = pd.DataFrame(index=barcodes)
    full = md.MuData(
        {
            "rna": ad.AnnData(rna[:, g], obs=obs, var=pd.DataFrame(index=np.array(genes)[g])),
            "prot": ad.AnnData(prot[rows], obs=obs, var=pd.DataFrame(index=prot_names)),
        }
    )
    full["rna"].var_names_make_unique()
    scmm.pp.normalize(full, "rna", method="log_cp10k")
    scmm.pp.normalize(full, "prot", method="clr")  # on the full panel, then the six kept
    Y = full["prot"].X[:n][:, six]
    target = ad.AnnData(
        np.asarray(Y.toarray() if sp.issparse(Y) else Y, dtype=np.float32),
        obs=pd.DataFrame(index=barcodes[:n]),
        var=pd.DataFrame(index=[f"{t}_protein" for t in _SIX]),
    )
    mdata = md.MuData({"rna": full["rna"][:n].copy(), "prot": target})
    mdata.obs["train"] = True

    model = scmm.tl.fit_mlp(mdata, "rna", "prot", train="train", max_epochs=5, rng=0)

    assert np.isfinite(mdata["prot"].layers["scmm_mlp"]).all()  # before the fix: all NaN
    queries = md.MuData({"rna": full["rna"][n:].copy()})
    scmm.tl.predict(model, queries)
    assert np.isfinite(queries["rna"].obsm["scmm_mlp"].to_numpy()).all()
