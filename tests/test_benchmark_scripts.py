"""The benchmark scripts read the package's tasks and models: they start and print their help."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


SCRIPTS = [
    "accuracy.py",
    "peers.py",
    "transfer.py",
    "ensemble_members.py",
    "align_subset.py",
    "align_unseen_type.py",
    "query_calibration.py",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_script_starts(script):
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout


def test_benchmark_methods_are_the_registry_s_and_the_ensemble():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from _methods import METHODS
    finally:
        sys.path.remove(str(BENCHMARKS))
    from scmm._registry import MODELS

    assert list(METHODS) == [*MODELS, "ensemble"]


def test_transfer_batch_inputs_give_every_batch_the_pooled_moments():
    """``transfer.py``'s ``*_batch`` methods: each reference batch's genes standardised onto
    the pooled training cells' mean and sd; the caller's MuData untouched; one batch as is."""
    import anndata as ad
    import mudata as md
    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(BENCHMARKS))
    try:
        from transfer import _batch_standardised
    finally:
        sys.path.remove(str(BENCHMARKS))
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (60, 5)), rng.normal(3, 2, (40, 5))]).astype(np.float32)
    X[:, 4] = 1.0  # a constant gene stays finite
    batch = pd.Categorical(["a"] * 60 + ["b"] * 40)
    obs = pd.DataFrame({"batch": batch}, index=[f"c{i}" for i in range(100)])
    rna = ad.AnnData(X.copy(), obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(5)]))
    prot = ad.AnnData(np.ones((100, 2)), obs=obs.copy(), var=pd.DataFrame(index=["p0", "p1"]))
    mdata = md.MuData({"rna": rna, "prot": prot})
    out = _batch_standardised(mdata, None)
    Y = np.asarray(out["rna"].X, np.float64)
    for b in ("a", "b"):
        rows = np.asarray(batch == b)
        np.testing.assert_allclose(Y[rows].mean(axis=0), X.mean(axis=0), atol=1e-4)
        np.testing.assert_allclose(Y[rows, :4].std(axis=0), X[:, :4].std(axis=0), rtol=1e-4)
    assert np.isfinite(Y).all()
    np.testing.assert_array_equal(mdata["rna"].X, X)
    one = mdata[np.asarray(batch == "a")].copy()
    assert _batch_standardised(one, None) is one
