"""DeepSets on gene–peak windows: invariances, chunking, save/load, peak contributions."""

from __future__ import annotations

import anndata as ad
import matplotlib.pyplot as plt
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import scmm
from scmm.models._gene_activity import windows_arrays
from scmm.nn import DeepSetsNet, pair_features
from scmm.train._data import to_torch_batch


def make_windows(n_genes, n_peaks, rng, *, counts=None):
    """Genes × peaks window dict as `gene_peak_windows` stores it (explicit zeros kept)."""
    counts = rng.integers(2, 7, n_genes) if counts is None else np.asarray(counts)
    rows, cols = [], []
    for g, k in enumerate(counts):
        cols.extend(sorted(rng.choice(n_peaks, size=k, replace=False)))
        rows.extend([g] * k)
    rows, cols = np.asarray(rows), np.asarray(cols)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_genes))])
    dist = rng.integers(-50_000, 50_000, len(rows)).astype(np.float32)
    dist[0] = 0.0  # a peak on the TSS: stored zero
    in_body = (dist > 0).astype(np.float32)
    width = rng.integers(200, 1500, len(rows)).astype(np.float32)

    def csr(data):
        return sp.csr_matrix((data, cols.astype(np.int32), indptr.copy()), shape=(n_genes, n_peaks))

    return {
        "pairs": csr(np.ones(len(rows), np.float32)),
        "distance": csr(dist),
        "in_body": csr(in_body),
        "width": csr(width),
        "params": {"rna": "rna", "atac": "atac"},
    }


def make_multiome(n_cells=90, n_genes=10, n_peaks=40, *, seed=0):
    rng = np.random.default_rng(seed)
    counts = [0, 1, *list(rng.integers(2, 7, n_genes - 2))]
    windows = make_windows(n_genes, n_peaks, rng, counts=counts)
    state = rng.normal(size=(n_cells, 2))
    open_p = 1 / (1 + np.exp(-(state @ rng.normal(size=(2, n_peaks)) - 1.0)))
    atac = (rng.random((n_cells, n_peaks)) < open_p) * rng.uniform(5, 30, (n_cells, n_peaks))
    w = windows["pairs"].toarray()
    rna = (
        atac @ w.T / 30
        + state @ rng.normal(size=(2, n_genes))
        + rng.normal(scale=0.3, size=(n_cells, n_genes))
    )
    names = [f"c{i}" for i in range(n_cells)]
    mdata = md.MuData(
        {
            "atac": ad.AnnData(
                sp.csr_matrix(atac.astype(np.float32)),
                obs=pd.DataFrame(index=names),
                var=pd.DataFrame(
                    index=[f"chr1_{1000 * i}_{1000 * i + 500}" for i in range(n_peaks)]
                ),
            ),
            "rna": ad.AnnData(
                rna.astype(np.float32),
                obs=pd.DataFrame(index=names),
                var=pd.DataFrame(index=[f"gene{g}" for g in range(n_genes)]),
            ),
        }
    )
    mdata.obs["train"] = np.arange(n_cells) % 5 != 0
    mdata.uns["windows"] = windows
    return mdata


def build_net(windows, n_context=4, *, seed=0, **kwargs):
    arr = windows_arrays(windows)
    n_genes, n_peaks = (int(s) for s in arr["shape"])
    torch.manual_seed(seed)
    net = DeepSetsNet(
        n_context,
        np.repeat(np.arange(n_genes), np.diff(arr["indptr"])),
        arr["indices"],
        pair_features(arr["distance"], arr["width"], arr["in_body"]),
        n_genes,
        n_peaks,
        channels=3,
        hidden=8,
        context_hidden=16,
        gene_embedding=4,
        dropout=0.0,
        accessibility_scale=10.0,
        **kwargs,
    )
    # non-trivial weights everywhere (the gene bias starts at 0)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return net.eval()


def inputs(n_cells, n_peaks, rng, density=0.3):
    atac = (
        sp.random(
            n_cells, n_peaks, density=density, format="csr", dtype=np.float32, random_state=rng
        )
        * 20
    )
    return torch.from_numpy(rng.normal(size=(n_cells, 4)).astype(np.float32)), sp.csr_matrix(atac)


def test_invariant_to_peak_order():
    rng = np.random.default_rng(1)
    windows = make_windows(12, 50, rng)
    ctx, atac = inputs(30, 50, rng)
    net = build_net(windows)
    with torch.no_grad():
        ref = net(ctx, to_torch_batch(atac))
    perm = rng.permutation(50)  # new column j holds old peak perm[j]
    inv = np.argsort(perm)
    permuted = {}
    for key in ("pairs", "distance", "in_body", "width"):
        coo = windows[key].tocoo()
        m = sp.csr_matrix((coo.data, (coo.row, inv[coo.col])), shape=coo.shape)
        m.sort_indices()
        permuted[key] = m
    # explicit zeros survive the permutation (same pattern for every field)
    assert permuted["distance"].nnz == windows["distance"].nnz
    net_p = build_net(permuted)
    with torch.no_grad():
        out = net_p(ctx, to_torch_batch(atac[:, perm]))
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)
    # and the peak order matters to nothing else: a different net input does change it
    with torch.no_grad():
        other = net(ctx, to_torch_batch(atac[:, perm]))
    assert not np.allclose(other.numpy(), ref.numpy())


def test_genes_with_zero_or_one_peak():
    rng = np.random.default_rng(2)
    windows = make_windows(5, 20, rng, counts=[0, 1, 3, 0, 2])
    net = build_net(windows)
    ctx, atac = inputs(8, 20, rng, density=0.5)
    with torch.no_grad():
        out = net(ctx, to_torch_batch(atac)).numpy()
        base = net.base(net.encode_context(ctx)).numpy()
    assert np.isfinite(out).all()
    # no peaks: only the context/gene-embedding term
    np.testing.assert_allclose(out[:, [0, 3]], base[:, [0, 3]], rtol=1e-6)
    # one peak: its accessibility moves the prediction, exactly zero when closed
    peak = windows["pairs"].indices[0]
    closed, opened = atac.tolil(), atac.tolil()
    closed[:, peak] = 0
    opened[:, peak] = 25.0
    with torch.no_grad():
        out_closed = net(ctx, to_torch_batch(closed.tocsr())).numpy()
        out_open = net(ctx, to_torch_batch(opened.tocsr())).numpy()
    np.testing.assert_allclose(out_closed[:, 1], base[:, 1], rtol=1e-6)
    assert np.abs(out_open[:, 1] - base[:, 1]).min() > 1e-6


def test_chunked_and_unchunked_agree():
    rng = np.random.default_rng(3)
    windows = make_windows(15, 60, rng)
    net = build_net(windows)
    net.fused_rho = False  # the torch path (a GPU's) is the one with chunks
    ctx, atac = inputs(20, 60, rng)
    x = to_torch_batch(atac)
    grads = []
    outs = []
    for rows in (None, 7):
        net.zero_grad()
        out = net(ctx, x, chunk_rows=rows)
        (out**2).sum().backward()
        outs.append(out.detach().numpy())
        grads.append({n: p.grad.clone() for n, p in net.named_parameters()})
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-6)
    for name in grads[0]:
        np.testing.assert_allclose(
            grads[0][name], grads[1][name], rtol=1e-4, atol=1e-6, err_msg=name
        )
    # the memory budget sets the chunks: a tiny budget gives many chunks and the same output
    small = build_net(windows, max_memory_mb=1e-3)
    small.fused_rho = False
    assert small.chunk_rows() < 10
    with torch.no_grad():
        np.testing.assert_allclose(small(ctx, x).numpy(), outs[0], rtol=1e-5, atol=1e-6)


def test_fused_cpu_kernels_equal_the_torch_path():
    """The fused pooling/ρ kernels give the torch path's rows, values and gradients."""
    rng = np.random.default_rng(5)
    windows = make_windows(12, 50, rng, counts=[0, 1, 6, 3, 0, 4, 5, 2, 6, 1, 3, 2])
    net = build_net(windows)
    ctx, atac = inputs(16, 50, rng, density=0.25)
    atac = atac.tolil()
    atac[3, :] = 0  # a cell with no open peak
    atac = atac.tocsr()
    atac.data[atac.indptr[5]] = 0.0  # an explicit zero: an active row without signal
    weight = torch.from_numpy(rng.normal(size=(16, 12)).astype(np.float32))
    results = {}
    for fused in (True, False):
        net.fused_rho = fused
        for x in (to_torch_batch(atac), torch.from_numpy(atac.toarray())):
            net.zero_grad()
            out = net(ctx, x)
            (out * weight).sum().backward()
            grads = {n: p.grad.clone() for n, p in net.named_parameters()}
            results.setdefault(fused, []).append((out.detach(), grads))
    for (out_f, grad_f), (out_r, grad_r) in zip(results[True], results[False], strict=True):
        np.testing.assert_allclose(out_f.numpy(), out_r.numpy(), rtol=1e-5, atol=1e-5)
        for name, g in grad_r.items():
            np.testing.assert_allclose(
                grad_f[name].numpy(), g.numpy(), rtol=1e-5, atol=1e-5, err_msg=name
            )
    # the same active (cell, gene) rows in the same order, and the same pooled signal
    x = to_torch_batch(atac)
    with torch.no_grad():
        G = net.phi_weights()
        fused_rows = net._fused_pooled(x, G)
        ref_rows = net.active_pooled(net.entries(x), G)
    for a, b in zip(fused_rows[:2], ref_rows[:2], strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_allclose(fused_rows[2].numpy(), ref_rows[2].numpy(), rtol=1e-6, atol=1e-6)
    assert not (fused_rows[0] == 3).any()
    # a batch with no open peak at all: the context/gene term only, on both paths
    empty = to_torch_batch(sp.csr_matrix((4, 50), dtype=np.float32))
    with torch.no_grad():
        base = net.base(net.encode_context(ctx[:4]))
        for fused in (True, False):
            net.fused_rho = fused
            np.testing.assert_allclose(net(ctx[:4], empty).numpy(), base.numpy(), rtol=1e-6)


def test_dense_rho_matches_forward():
    rng = np.random.default_rng(4)
    windows = make_windows(9, 30, rng)
    net = build_net(windows)
    ctx, atac = inputs(10, 30, rng)
    x = to_torch_batch(atac)
    with torch.no_grad():
        c = net.encode_context(ctx)
        pooled = net.pooled(net.entries(x), net.phi_weights(), 10, 0, 9)
        dense = net.rho(pooled, c, 0, 9)
        np.testing.assert_allclose(dense.numpy(), net(ctx, x).numpy(), rtol=1e-5, atol=1e-6)
        # the pooled signal is the sparse product a · g(f) over each gene's window
        G = net.phi_weights().numpy()
        arr = windows_arrays(windows)
        a = atac.toarray() / net.accessibility_scale
        for g in range(9):
            pairs = np.arange(arr["indptr"][g], arr["indptr"][g + 1])
            expected = a[:, arr["indices"][pairs]] @ G[pairs]
            np.testing.assert_allclose(pooled[:, g].numpy(), expected, rtol=1e-5, atol=1e-6)


def fit(mdata, source="atac", **kwargs):
    options = dict(
        train="train",
        max_epochs=3,
        channels=3,
        hidden=8,
        context_hidden=16,
        gene_embedding=4,
        n_components=5,
        rng=0,
    )
    training = {"batch_size": 32, "verbose": False, **kwargs.pop("training", {})}
    options.update(kwargs)
    return scmm.tl.fit_deepsets(mdata, source, "rna", training=training, **options)


def test_fit_writes_and_save_load(tmp_path):
    mdata = make_multiome()
    model = fit(mdata)
    pred = mdata["rna"].layers["scmm_deepsets"]
    assert pred.shape == (90, 10) and np.isfinite(pred).all()
    assert set(mdata.uns["scmm_deepsets"]["scores"]) >= {"pearson_per_cell", "pearson_per_feature"}
    model.save(tmp_path / "m")
    loaded = scmm.models.load(tmp_path / "m")
    assert isinstance(loaded, scmm.models.DeepSetsModel)
    np.testing.assert_array_equal(loaded.predict(mdata), model.predict(mdata))
    # new cells with the peaks in another order: aligned by name, same predictions
    atac = mdata["atac"]
    perm = np.random.default_rng(0).permutation(atac.n_vars)
    query = md.MuData({"atac": atac[:, perm].copy()})
    np.testing.assert_allclose(loaded.predict(query), model.predict(mdata), rtol=1e-5, atol=1e-6)
    # same rng, same model
    again = fit(mdata.copy())
    np.testing.assert_array_equal(again.predict(mdata), model.predict(mdata))


def test_learns_the_signal():
    """RNA depends on window peaks and a cell state: held-out genes are well predicted."""
    mdata = make_multiome(n_cells=200, seed=1)
    fit(mdata, max_epochs=12, training={"batch_size": 64, "lr": 1e-2})
    scores = mdata.uns["scmm_deepsets"]["scores"]
    assert scores["pearson_per_feature"] > 0.5


def test_missing_windows_names_the_step():
    mdata = make_multiome()
    del mdata.uns["windows"]
    with pytest.raises(ValueError, match="gene_peak_windows"):
        fit(mdata)
    mdata = make_multiome()
    other = md.MuData({"atac2": mdata["atac"].copy(), "rna": mdata["rna"].copy()})
    other.obs["train"] = mdata.obs["train"].to_numpy()
    other.uns["windows"] = mdata.uns["windows"]
    with pytest.raises(ValueError, match="not target"):
        fit(other, source="atac2")


def test_peak_contributions_sum_and_gradient():
    mdata = make_multiome(seed=2)
    model = fit(mdata, max_epochs=5)
    gene = "gene4"
    df = scmm.tl.peak_contributions(model, mdata, gene)
    n_pairs = mdata.uns["windows"]["pairs"][4].nnz
    assert len(df) == n_pairs
    assert list(df.columns[:6]) == [
        "peak",
        "distance",
        "width",
        "in_body",
        "accessibility",
        "contribution",
    ]
    assert df["distance"].is_monotonic_increasing
    # exact: the per-peak shares sum to the pooled signal of each channel
    signal = df[[c for c in df.columns if c.startswith("signal_")]].sum().to_numpy()
    np.testing.assert_allclose(signal, df.attrs["pooled"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        df["contribution"].sum(), df.attrs["local_effect"], rtol=1e-5, atol=1e-7
    )
    # the pooled signal is the network's own pooling of these cells
    X = model.source_matrix(mdata)
    with torch.no_grad():
        net = model.net
        pooled = net.pooled(net.entries(to_torch_batch(X)), net.phi_weights(), X.shape[0], 4, 5)
    np.testing.assert_allclose(
        pooled[:, 0].numpy().mean(0), df.attrs["pooled"], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        df.attrs["prediction"], model.predict(mdata)[:, 4].mean(), rtol=1e-4, atol=1e-5
    )
    # gradient × input of one cell matches a finite difference of the local path (the
    # cell's SVD context held fixed)
    cols = [model.source_features.index(p) for p in df["peak"]]
    cell = int(np.flatnonzero(X[:, cols].toarray().any(axis=1))[0])
    one = scmm.tl.peak_contributions(model, mdata, gene, cells=[cell])
    row = one.loc[one["accessibility"] > 0].iloc[0]
    j = model.source_features.index(row["peak"])
    svd, raw = model._inputs(X[[cell]])
    ctx = torch.from_numpy(np.asarray(svd, np.float32))
    eps = 1e-2
    moved = []
    for sign in (1, -1):
        bumped = raw.tolil()
        bumped[0, j] = bumped[0, j] * (1 + sign * eps)
        with torch.no_grad():
            moved.append(model.net(ctx, to_torch_batch(bumped.tocsr()))[0, 4].item())
    std = model._scale["target_std"][4]
    finite = (moved[0] - moved[1]) / (2 * eps) * std
    np.testing.assert_allclose(finite, row["contribution"], rtol=1e-2, atol=1e-5)


def test_peak_contributions_plot_and_errors():
    mdata = make_multiome(seed=3)
    model = fit(mdata, max_epochs=1)
    df = scmm.tl.peak_contributions(model, mdata, "gene2", cells=mdata["atac"].obs_names[:10])
    assert df.attrs["n_cells"] == 10
    ax = scmm.pl.peak_contributions(df)
    assert len(ax.patches) == len(df)
    assert "gene2" in ax.get_title()
    plt.close("all")
    empty = scmm.tl.peak_contributions(model, mdata, "gene0")  # no peaks in its window
    assert len(empty) == 0
    with pytest.raises(ValueError, match="not a target"):
        scmm.tl.peak_contributions(model, mdata, "nope")
    with pytest.raises(TypeError, match="DataFrame"):
        scmm.pl.peak_contributions(model)


@pytest.mark.filterwarnings("ignore:.*does not beat the mean profile")  # tiny synthetic fit
def test_training_reads_row_views_and_sparse_targets(monkeypatch):
    """No copy of the training rows, targets densified a batch at a time, same fit as dense."""
    from scmm._utils import RowSubset

    from .conftest import spy_toarray

    mdata = make_multiome(n_cells=120)
    sparse_rna = mdata.copy()
    sparse_rna.mod["rna"].X = sp.csr_matrix(np.where(mdata["rna"].X > 0.5, mdata["rna"].X, 0))
    dense_rna = sparse_rna.copy()
    dense_rna.mod["rna"].X = dense_rna["rna"].X.toarray()
    seen = []
    fit_model = scmm.models.DeepSetsModel.fit

    def spy(self, X, Y, **kwargs):
        seen.append((type(X), type(Y)))
        return fit_model(self, X, Y, **kwargs)

    monkeypatch.setattr(scmm.models.DeepSetsModel, "fit", spy)
    densified = spy_toarray(monkeypatch)
    model = fit(sparse_rna, write_predictions=False)
    monkeypatch.undo()
    assert seen == [(RowSubset, sp.csr_matrix)]
    n_genes, n_test = mdata["rna"].n_vars, int((~mdata.obs["train"]).sum())
    # target rows densified: training batches of 32 cells and the held-out cells' (for scores)
    assert {r for r, c in densified if c == n_genes} <= {32, 96 % 32, n_test}
    # the standardisation, per batch, is the dense one: same fit from a dense target
    dense = fit(dense_rna, write_predictions=False)
    np.testing.assert_array_equal(dense._scale["target_std"], model._scale["target_std"])
    np.testing.assert_array_equal(dense.predict(dense_rna), model.predict(sparse_rna))
    Y = dense_rna["rna"].X[dense_rna.obs["train"].to_numpy()]
    np.testing.assert_allclose(model._scale["target_mean"], Y.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model._scale["target_std"], Y.std(axis=0), rtol=1e-4)
    atac = mdata["atac"].X[mdata.obs["train"].to_numpy()]
    np.testing.assert_allclose(model._scale["accessibility"][0], np.abs(atac.data).mean(), 1e-6)
    assert model.history["train_loss"][-1] < model.history["train_loss"][0]


def test_unstandardised_targets_train_on_target_units():
    mdata = make_multiome()
    model = fit(mdata, standardize=False, write_predictions=False)
    np.testing.assert_array_equal(model._scale["target_mean"], 0.0)
    np.testing.assert_array_equal(model._scale["target_std"], 1.0)
    Y = mdata["rna"].X[mdata.obs["train"].to_numpy()]
    # the network starts from each gene's mean in target units
    assert np.isfinite(model.predict(mdata)).all()
    assert model.history["train_loss"][0] < ((Y - Y.mean(axis=0)) ** 2).mean() * 3


def test_prediction_is_one_array_in_training_batches():
    """Predictions come in training-size batches and are unstandardised afterwards."""
    mdata = make_multiome()
    model = fit(mdata, training={"batch_size": 16}, write_predictions=False)
    outputs = []  # the network's standardised output, batch by batch (a torch forward hook)
    hook = model.net.register_forward_hook(lambda net, args, out: outputs.append(out.detach()))
    try:
        pred = model.predict(mdata)
    finally:
        hook.remove()
    n = mdata["atac"].n_obs
    assert [len(o) for o in outputs] == [min(16, n - s) for s in range(0, n, 16)]
    assert pred.dtype == np.float32 and pred.flags.owndata  # one array, not a view of pieces
    standardised = np.concatenate([o.float().numpy() for o in outputs])
    expected = standardised * model._scale["target_std"] + model._scale["target_mean"]
    np.testing.assert_allclose(pred, expected, rtol=1e-6, atol=1e-6)
