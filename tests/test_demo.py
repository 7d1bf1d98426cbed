"""The demo pipeline on real data (bmmc_cite, donor s1d1 → s1d2) and the console script."""

import subprocess
import sys
import warnings

import mudata as md
import pytest

from scmm import cli


def test_demo_runs_on_bmmc_cite_and_ridge_matches_the_reference(data_dir, tmp_path, capsys):
    rows = cli.demo("bmmc_cite", out=tmp_path, methods=["mean", "ridge"], data_dir=str(data_dir))
    scores = {r["method"]: r["pearson_per_cell"] for r in rows}
    # measured outside the project with the same preprocessing: ridge ≈ 0.84, mean ≈ 0.62
    assert scores["ridge"] == pytest.approx(0.84, abs=0.015)
    assert scores["mean"] == pytest.approx(0.62, abs=0.015)
    out = capsys.readouterr().out
    assert "| ridge |" in out and "289 held-out cells" in out
    assert "the file names them '<modality>:<name>'" in out  # CD44 is a gene and a protein
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mdata = md.read_h5mu(tmp_path / "scmm_demo.h5mu")
    assert mdata.var_names.is_unique and "prot:CD44" in mdata["prot"].var_names
    assert {"scmm_mean", "scmm_ridge"} <= set(mdata["prot"].layers)
    assert (tmp_path / "scmm_demo.png").stat().st_size > 10_000


def test_console_script_reports_missing_data_clearly(tmp_path):
    env = {
        "SCMM_DATA_DIR": str(tmp_path),
        "SCMM_CACHE_DIR": str(tmp_path / "cache"),
        "PATH": "/usr/bin:/bin",
        "SCMM_OFFLINE": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "scmm", "demo", "--data-dir", str(tmp_path), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1
    assert "bmmc_cite_starter_rna.h5ad" in proc.stderr
