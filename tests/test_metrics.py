import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import pearsonr, spearmanr

import scmm
from scmm import metrics


def _reference_per_cell(y, p):
    out = []
    for a, b in zip(y, p, strict=True):
        out.append(0.0 if a.std() == 0 or b.std() == 0 else pearsonr(a, b)[0])
    return np.array(out)


def test_pearson_per_cell_matches_scipy_float64_with_zero_variance_rows():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(30, 12))
    p = y + rng.normal(size=y.shape)
    y[3] = 1.0  # constant measured row
    p[5] = -2.0  # constant predicted row
    r = metrics.pearson_per_cell(y, p, average=False)
    np.testing.assert_allclose(r, _reference_per_cell(y, p), rtol=1e-10, atol=1e-12)
    assert r[3] == 0 and r[5] == 0
    np.testing.assert_allclose(metrics.pearson_per_cell(y, p), r.mean(), rtol=1e-12)


def test_pearson_per_feature_is_per_cell_of_transpose():
    rng = np.random.default_rng(1)
    y, p = rng.normal(size=(40, 5)), rng.normal(size=(40, 5))
    np.testing.assert_allclose(
        metrics.pearson_per_feature(y, p, average=False),
        _reference_per_cell(y.T, p.T),
        rtol=1e-10,
    )


def test_sparse_and_float32_inputs_accumulate_in_float64():
    rng = np.random.default_rng(2)
    y = rng.poisson(0.5, size=(50, 20)).astype(np.float32)
    p = (y + rng.normal(size=y.shape)).astype(np.float32)
    dense = metrics.pearson_per_cell(y.astype(np.float64), p.astype(np.float64))
    assert metrics.pearson_per_cell(sp.csr_matrix(y), p) == pytest.approx(dense, rel=1e-12)


def test_spearman_and_rmse():
    rng = np.random.default_rng(3)
    y, p = rng.normal(size=(10, 8)), rng.normal(size=(10, 8))
    ref = np.mean([spearmanr(a, b)[0] for a, b in zip(y, p, strict=True)])
    assert metrics.spearman_per_cell(y, p) == pytest.approx(ref, rel=1e-10)
    assert metrics.rmse(y, p) == pytest.approx(np.sqrt(((y - p) ** 2).mean()), rel=1e-12)


def test_shape_mismatch_and_nan_are_errors():
    with pytest.raises(ValueError, match="shape"):
        metrics.pearson_per_cell(np.zeros((3, 4)), np.zeros((3, 5)))
    bad = np.ones((3, 4))
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="`predicted` contains 1 NaN"):
        metrics.rmse(np.ones((3, 4)), bad)


@pytest.mark.parametrize("sparse", [False, True])
def test_metrics_in_row_blocks_equal_whole_matrix(monkeypatch, sparse):
    rng = np.random.default_rng(5)
    y = rng.normal(size=(50, 12)) * (rng.random((50, 12)) < 0.5)
    p = y + rng.normal(size=y.shape)
    y[:, 3] = 0.0  # a constant feature scores 0
    whole = {
        "cell": metrics.pearson_per_cell(y, p, average=False),
        "feature": metrics.pearson_per_feature(y, p, average=False),
        "rmse": metrics.rmse(y, p),
        "spearman": metrics.spearman_per_cell(y, p, average=False),
    }
    monkeypatch.setattr(scmm.settings, "block_rows", 7)  # 8 blocks, the last one short
    Y = sp.csr_matrix(y) if sparse else y
    np.testing.assert_allclose(metrics.pearson_per_cell(Y, p, average=False), whole["cell"])
    blocked = metrics.pearson_per_feature(Y, p, average=False)
    np.testing.assert_allclose(blocked, whole["feature"], rtol=1e-12, atol=1e-14)
    assert blocked[3] == 0.0
    assert metrics.rmse(Y, p) == pytest.approx(whole["rmse"], rel=1e-12)
    np.testing.assert_allclose(metrics.spearman_per_cell(Y, p, average=False), whole["spearman"])
