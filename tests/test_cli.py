"""The ``scmm`` command line: fit → predict → evaluate against the Python API, bad arguments."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scmm
from scmm import cli

from .conftest import make_paired

CITE = "cite/bmmc_cite_starter_{}.h5ad"


def scmm_cli(*args, env=None, check=True) -> subprocess.CompletedProcess:
    """Run ``python -m scmm ARGS`` in a fresh process (one torch thread, like the tests)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "scmm", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def read_h5mu(path) -> md.MuData:
    with warnings.catch_warnings():  # gene and protein names overlap (CD4, ...): MuData warns
        warnings.filterwarnings("ignore", "var_names are not unique", UserWarning)
        warnings.filterwarnings("ignore", ".*not created by muon/mudata", UserWarning)
        return md.read_h5mu(path)


@pytest.fixture(scope="module")
def query_rna(data_dir, tmp_path_factory):
    """RNA of donor s1d2 only (counts in a layer, as published): the query of the CLI runs."""
    rna = ad.read_h5ad(data_dir / CITE.format("rna"))
    path = tmp_path_factory.mktemp("query") / "query_rna.h5ad"
    rna[rna.obs["batch"] == "s1d2"].copy().write_h5ad(path)
    return path


def python_api(data_dir, method: str):
    """The same run in Python: normalise from counts, train on s1d1, score s1d2."""
    mods = {
        m: ad.read_h5ad(data_dir / CITE.format(f)) for m, f in [("rna", "rna"), ("prot", "adt")]
    }
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "var_names are not unique", UserWarning)
        mdata = md.MuData(mods)
    scmm.pp.normalize(mdata, "rna", method="log_cp10k")
    scmm.pp.normalize(mdata, "prot", method="clr")
    scmm.pp.split_cells(mdata, test_batches="s1d2")
    if method == "mlp":
        model = scmm.tl.fit_mlp(mdata, "rna", "prot", train="train", rng=0, max_epochs=2)
    else:
        model = scmm.tl.fit_baseline(mdata, "rna", "prot", method=method, train="train", rng=0)
    return mdata.uns[f"scmm_{method}"]["scores"], model, mdata


# two epochs of the MLP do not beat the mean profile per cell: the warning is right there
@pytest.mark.filterwarnings("ignore:.*does not beat the mean profile")
@pytest.mark.parametrize(("method", "extra"), [("mlp", ["--param", "max_epochs=2"]), ("ridge", [])])
def test_fit_predict_evaluate_reproduces_the_python_api(
    method, extra, data_dir, query_rna, tmp_path
):
    files = ["--rna", data_dir / CITE.format("rna"), "--prot", data_dir / CITE.format("adt")]
    model_dir, pred, scores_json = tmp_path / "model", tmp_path / "pred.h5mu", tmp_path / "s.json"
    fit = scmm_cli("fit", *files, "--source", "rna", "--target", "prot", "--method", method,
                   "--test-batches", "s1d2", *extra, "--out", model_dir)  # fmt: skip
    assert f"| scmm_{method} | 289 |" in fit.stdout
    scmm_cli("predict", model_dir, query_rna, "--out", pred)
    measured = data_dir / CITE.format("adt")
    evaluate = scmm_cli("evaluate", pred, "--target", "prot", "--key", f"scmm_{method}",
                        "--measured", measured, "--json", scores_json)  # fmt: skip
    assert f"| scmm_{method} | 289 |" in evaluate.stdout

    expected, model, mdata = python_api(data_dir, method)
    fitted = json.loads((model_dir / "fit.json").read_text())
    assert fitted["normalize"] == {"rna": "log_cp10k", "prot": "clr"}
    assert fitted["n_train_cells"] == 311
    evaluated = json.loads(scores_json.read_text())
    for scores in (fitted["scores"], evaluated):
        assert scores["n_cells"] == expected["n_cells"] == 289
        for name in ("pearson_per_cell", "pearson_per_feature", "rmse"):
            np.testing.assert_allclose(scores[name], expected[name], rtol=0, atol=1e-6)
    assert len(evaluated["per_feature_pearson"]) == 134
    # the query held RNA only: predictions are a cells × proteins table in .obsm
    out = read_h5mu(pred)
    assert list(out.mod) == ["rna"]
    table = out["rna"].obsm[f"scmm_{method}"]
    test = ~mdata.obs["train"].to_numpy()
    assert list(table.columns) == list(mdata["prot"].var_names)
    np.testing.assert_allclose(
        table.to_numpy(), mdata["prot"].layers[f"scmm_{method}"][test], rtol=0, atol=1e-5
    )
    # the saved model is the one the Python run fits
    loaded = scmm.models.load(model_dir)
    np.testing.assert_allclose(
        loaded.predict(mdata["rna"][test]), model.predict(mdata["rna"][test]), atol=1e-5
    )


def test_data_dir_reaches_windows_and_gene_sets_without_scmm_data_dir(
    data_dir, tmp_path, monkeypatch, capsys
):
    env = {k: v for k, v in os.environ.items() if k != "SCMM_DATA_DIR"}
    env.update(SCMM_OFFLINE="1", SCMM_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    # gene–peak windows (hg38 annotation) of the Multiome demo, in a fresh process
    proc = subprocess.run(
        [sys.executable, "-m", "scmm", "demo", "--dataset", "pbmc_multiome", "--methods",
         "gene_activity", "--data-dir", str(data_dir), "--out", str(tmp_path), "--quiet"],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert "scmm_gene_activity" in read_h5mu(tmp_path / "scmm_demo.h5mu")["rna"].layers
    # the hallmark gene sets of the pathway MLP, through `scmm fit`
    monkeypatch.delenv("SCMM_DATA_DIR", raising=False)
    monkeypatch.setenv("SCMM_CACHE_DIR", str(tmp_path / "cache"))
    files = ["--rna", data_dir / CITE.format("rna"), "--prot", data_dir / CITE.format("adt")]
    argv = [*files, "--source", "rna", "--target", "prot", "--method", "pathway_mlp",
            "--param", "max_epochs=1", "--data-dir", data_dir, "--out", tmp_path / "pathway",
            "--quiet"]  # fmt: skip
    assert cli.main(["fit", *map(str, argv)]) == 0, capsys.readouterr().err
    record = json.loads((tmp_path / "pathway" / "fit.json").read_text())
    assert record["params"] == {"max_epochs": 1, "gene_sets": "hallmark"}
    assert record["scores"] is None  # no held-out cells


@pytest.fixture
def small(tmp_path):
    """Synthetic paired files (normalised .X, counts in a layer for RNA) and a fitted model."""
    mdata = make_paired(n_cells=60, n_genes=20, n_prot=4)
    rna, prot = mdata["rna"].copy(), mdata["prot"].copy()
    rna.obs["train"] = mdata.obs["train"].to_numpy()
    rna.obs["batch"] = np.where(np.arange(60) < 40, "a", "b")
    paths = {"rna": tmp_path / "rna.h5ad", "prot": tmp_path / "prot.h5ad"}
    rna.write_h5ad(paths["rna"])
    prot.write_h5ad(paths["prot"])
    other = rna[:30].copy()
    other.obs_names = [f"x{i}" for i in range(30)]
    paths["other"] = tmp_path / "other.h5ad"
    other.write_h5ad(paths["other"])
    paths["model"] = tmp_path / "model"
    argv = ["fit", "--rna", paths["rna"], "--prot", paths["prot"], "--source", "rna", "--target",
            "prot", "--method", "ridge", "--param", "n_components=5", "--normalize", "none",
            "--train", "train", "--out", paths["model"], "--quiet"]  # fmt: skip
    assert cli.main([str(a) for a in argv]) == 0
    return paths


def test_quiet_fit_prints_nothing_and_writes_the_model(small, capsys):
    capsys.readouterr()
    argv = ["fit", "--rna", small["rna"], "--prot", small["prot"], "--source", "rna",
            "--target", "prot", "--method", "mean", "--normalize", "none", "--test-batches", "b",
            "--out", small["model"].with_name("mean"), "-q"]  # fmt: skip
    assert cli.main([str(a) for a in argv]) == 0
    assert capsys.readouterr() == ("", "")
    record = json.loads((small["model"].with_name("mean") / "fit.json").read_text())
    assert record["scores"]["n_cells"] == 20
    assert record["split"] == {"train": "train", "test_batches": ["b"], "batch_key": "batch"}


def test_predict_into_the_target_modality_and_evaluate_a_subset(small, tmp_path, capsys):
    rna, prot = ad.read_h5ad(small["rna"]), ad.read_h5ad(small["prot"])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "var_names are not unique", UserWarning)
        md.MuData({"rna": rna, "prot": prot}).write(tmp_path / "both.h5mu")
    out = tmp_path / "pred.h5mu"
    argv = ["predict", small["model"], tmp_path / "both.h5mu", "--normalize", "none",
            "--key", "ridge", "--out", out]  # fmt: skip
    assert cli.main([str(a) for a in argv]) == 0
    pred = read_h5mu(out)
    assert pred["prot"].layers["ridge"].shape == (60, 4)
    assert pred.uns["ridge"]["scmm_cli"]["normalize"] == {"rna": "none", "prot": "none"}
    capsys.readouterr()
    json_path = tmp_path / "scores.json"
    argv = ["evaluate", out, "--target", "prot", "--key", "ridge", "--cells", "batch=b",
            "--json", json_path]  # fmt: skip
    assert cli.main([str(a) for a in argv]) == 0
    assert "| ridge | 20 |" in capsys.readouterr().out
    scores = json.loads(json_path.read_text())
    b = rna.obs["batch"].to_numpy() == "b"
    expected = scmm.metrics.pearson_per_cell(prot.X[b], pred["prot"].layers["ridge"][b])
    np.testing.assert_allclose(scores["pearson_per_cell"], expected, rtol=0, atol=1e-12)


def test_predict_says_where_the_predictions_are(small, tmp_path, capsys):
    """Proteins of some cells only: every RNA cell is predicted, into rna.obsm, and it says so."""
    rna, prot = ad.read_h5ad(small["rna"]), ad.read_h5ad(small["prot"])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "var_names are not unique", UserWarning)
        md.MuData({"rna": rna, "prot": prot[:30].copy()}).write(tmp_path / "some.h5mu")
    out = tmp_path / "pred.h5mu"
    argv = ["predict", small["model"], tmp_path / "some.h5mu", "--normalize", "none",
            "--key", "ridge", "--out", out]  # fmt: skip
    capsys.readouterr()
    with warnings.catch_warnings():  # the command prints it as one line
        warnings.filterwarnings("always", "30 of the 60 cells", UserWarning)
        assert cli.main([str(a) for a in argv]) == 0
    err = capsys.readouterr().err
    assert "scmm: warning: 30 of the 60 cells of 'rna' are not in 'prot'" in err
    assert f"wrote {out} (predictions in rna.obsm['ridge'])" in err
    assert read_h5mu(out)["rna"].obsm["ridge"].shape == (60, 4)
    # scored on the 30 measured cells, the others named
    argv = ["evaluate", out, "--target", "prot", "--key", "ridge", "--json", tmp_path / "s.json"]
    with warnings.catch_warnings():
        warnings.filterwarnings("always", "30 of the 60 predicted cells", UserWarning)
        assert cli.main([str(a) for a in argv]) == 0
    assert "30 of the 60 predicted cells have no measured values" in capsys.readouterr().err
    assert json.loads((tmp_path / "s.json").read_text())["n_cells"] == 30


def test_predict_aligns_the_query_on_request(small, tmp_path, capsys):
    out = {a: tmp_path / f"{a}.h5mu" for a in ("none", "symphony")}
    for align, path in out.items():
        argv = ["predict", small["model"], "--rna", small["other"], "--normalize", "none",
                "--align", align, "--out", path]  # fmt: skip
        assert cli.main([str(a) for a in argv]) == 0
    plain, aligned = (read_h5mu(out[a]) for a in ("none", "symphony"))
    key = next(iter(aligned.uns))
    assert aligned.uns[key]["params"]["align"] == "symphony"
    assert "align" not in plain.uns[key]["params"]
    assert not np.allclose(plain["rna"].obsm[key], aligned["rna"].obsm[key])
    capsys.readouterr()
    argv = ["predict", small["model"], "--rna", small["other"], "--align", "harmony",
            "--out", tmp_path / "x.h5mu"]  # fmt: skip
    assert cli.main([str(a) for a in argv]) == 2
    assert "invalid choice: 'harmony'" in capsys.readouterr().err


def test_every_option_has_help_without_markup():
    parser = cli._parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {"fit", "predict", "evaluate", "demo"}
    for name, p in sub.choices.items():
        for action in p._actions:
            assert action.help, f"scmm {name} {action.option_strings} has no help"
            assert "``" not in action.help and ":func:" not in action.help
        assert "``" not in (p.description or "")
    assert "``" not in parser.format_help()


FIT = ["fit", "--rna", "{rna}", "--prot", "{prot}", "--source", "rna", "--target", "prot"]
OUT = ["--out", "{tmp}/m"]
NONE = ["--normalize", "none"]
# fmt: off
BAD = [
    (["fit"], 2, "required: --source, --target, --out"),
    (["fit", "{rna}", "--source", "rna", "--target", "prot", *OUT], 2,
     "pass a .h5mu file or one .h5ad per modality"),
    ([*FIT, "{rna}", *OUT], 2, "not both"),
    (["fit", "--source", "rna", "--target", "prot", *OUT], 2, "no input"),
    ([*FIT, "--method", "lasso", *OUT], 2, "invalid choice: 'lasso'"),
    (["fit", "--rna", "{tmp}/missing.h5ad", *FIT[3:], *OUT], 1, "does not exist"),
    (["fit", "--rna", "{other}", *FIT[3:], *OUT], 1, "hold different cells"),
    ([*FIT[:5], "--source", "atac", "--target", "prot", *OUT], 2,
     "`--source atac` is not a modality"),
    ([*FIT[:5], "--source", "rna", "--target", "rna", *OUT], 2, "same modality"),
    (["fit", "--rna", "{rna}", "--mod", "adt", "--source", "rna", "--target", "adt", *OUT], 2,
     "NAME=FILE"),
    (["fit", "--rna", "{rna}", "--mod", "adt2={prot}", "--source", "rna", "--target", "adt2",
      *OUT], 2, "--normalize none"),
    ([*FIT, *OUT], 1, "pass `--normalize none`"),
    ([*FIT, "--param", "epochs=3", *OUT], 2, "not a parameter of scmm.tl.fit_mlp"),
    ([*FIT, "--param", "max_epochs=many", *OUT], 2, "should be of type int"),
    ([*FIT, "--param", "train=all", *OUT], 2, "set by `scmm fit` itself"),
    ([*FIT, *NONE, "--test-batches", "zz", *OUT], 1, "['zz'] not found in `batch`"),
    ([*FIT, *NONE, "--train", "batch", *OUT], 1, "must be boolean"),
    ([*FIT, *NONE, "--test-fraction", "1.5", *OUT], 1, "must be between 0 and 1"),
    ([*FIT, *NONE, "--method", "deepsets", *OUT], 2, "--assembly"),
    ([*FIT, "--out", "{model}"], 1, "pass --overwrite"),
    (["predict", "{tmp}/nomodel", "{rna}", "--out", "{tmp}/p.h5mu"], 1, "is not a folder"),
    (["predict", "{model}", "{rna}", "--out", "{tmp}/p.h5ad"], 2, "must end in .h5mu"),
    (["predict", "{model}", "{prot}", *NONE, "--out", "{tmp}/p.h5mu"], 1, "features"),
    (["predict", "{model}", "{rna}", *NONE, "--min-feature-overlap", "1.5", "--out",
      "{tmp}/p.h5mu"], 1, "`--min-feature-overlap 1.5` must be a fraction between 0 and 1"),
    (["predict", "{model}", "--prot", "{prot}", "--out", "{tmp}/p.h5mu"], 2,
     "the query has no 'rna' modality"),
    (["evaluate", "{rna}", "--target", "prot", "--key", "k"], 2, "is not a .h5mu file"),
    (["evaluate", "{tmp}/p.h5mu", "--target", "prot"], 2, "required: --key"),
]
# fmt: on


@pytest.mark.parametrize(("argv", "code", "fragment"), BAD)
def test_bad_arguments_give_one_line_and_a_nonzero_exit(small, tmp_path, capsys, argv, code,
                                                        fragment):  # fmt: skip
    paths = {**{k: str(v) for k, v in small.items()}, "tmp": str(tmp_path)}
    capsys.readouterr()
    # --quiet: no step lines ("reading the input") before the error
    assert cli.main([*(a.format(**paths) for a in argv), "--quiet"]) == code
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert fragment in err
    assert err.startswith(f"scmm {argv[0]}: error: ")


def test_evaluate_errors(small, tmp_path, capsys):
    scmm.models.load(small["model"]).save(tmp_path / "saved_in_python")
    pred = tmp_path / "pred.h5mu"
    argv = ["predict", tmp_path / "saved_in_python", small["rna"], "--out", pred, "-q"]
    assert cli.main([str(a) for a in argv]) == 2  # no record of the training normalisation
    assert "pass `--normalize none`" in capsys.readouterr().err
    argv[1] = small["model"]  # `scmm fit` recorded it: `--normalize none` at fit time
    assert cli.main([str(a) for a in argv]) == 0
    cases = [
        (["--key", "nope"], "no predictions `--key nope` in the file (predictions there: "
                            "scmm_ridge)"),
        (["--key", "scmm_ridge"], "has no 'prot' modality to score against"),
        (["--key", "scmm_ridge", "--measured", small["prot"], "--cells", "nope"],
         "'nope' is not an .obs column"),
        (["--key", "scmm_ridge", "--measured", small["prot"], "--cells", "batch"],
         "pass `--cells batch=VALUE`"),
        (["--key", "scmm_ridge", "--measured", small["rna"]],
         "predicted features are not measured"),
        (["--key", "scmm_ridge", "--measured", small["other"]],  # cells x0, x1, ...
         "None of the 60 predicted cells is among the measured cells"),
    ]  # fmt: skip
    for extra, fragment in cases:
        argv = ["evaluate", pred, "--target", "prot", *extra, "-q"]
        assert cli.main([str(a) for a in argv]) != 0
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and fragment in err, err


def test_console_script_exit_code_and_one_line_error(tmp_path):
    proc = scmm_cli("fit", "--source", "rna", "--target", "prot", "--out", tmp_path / "m",
                    "--rna", tmp_path / "missing.h5ad", "--prot", tmp_path / "p.h5ad",
                    "--quiet", check=False)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"scmm fit: error: `{tmp_path / 'missing.h5ad'}` does not exist; check the path"
    ]


def test_atac_to_rna_from_a_h5mu_predicts_into_the_rna_layers(data_dir, tmp_path, capsys):
    mdata = read_h5mu(data_dir / "multiome/pbmc_muon/pbmc_rna_atac_1000cells.h5mu")
    keep = np.asarray(mdata["atac"].X.sum(axis=1)).ravel() > 0  # TF-IDF needs counts per cell
    mdata[keep].copy().write(tmp_path / "paired.h5mu")
    argv = ["fit", tmp_path / "paired.h5mu", "--source", "atac", "--target", "rna", "--method",
            "ridge", "--test-fraction", "0.2", "--out", tmp_path / "model", "-q"]  # fmt: skip
    assert cli.main([str(a) for a in argv]) == 0
    fitted = json.loads((tmp_path / "model" / "fit.json").read_text())
    assert fitted["normalize"] == {"atac": "tfidf", "rna": "log_cp10k"}
    argv = ["predict", tmp_path / "model", tmp_path / "paired.h5mu", "--out", tmp_path / "p.h5mu"]
    assert cli.main([str(a) for a in [*argv, "-q"]]) == 0
    predicted = read_h5mu(tmp_path / "p.h5mu")["rna"].layers["scmm_ridge"]
    assert predicted.shape == (int(keep.sum()), 45)
    # three cells alone: TF-IDF weighs their peaks by the training cells' IDF, not their own
    few = md.MuData({"atac": read_h5mu(tmp_path / "paired.h5mu")["atac"][:3].copy()})
    few.write(tmp_path / "few.h5mu")
    argv = ["predict", tmp_path / "model", tmp_path / "few.h5mu", "--out", tmp_path / "f.h5mu"]
    assert cli.main([str(a) for a in [*argv, "-q"]]) == 0
    assert capsys.readouterr().err == ""
    got = read_h5mu(tmp_path / "f.h5mu")["atac"].obsm["scmm_ridge"]
    np.testing.assert_allclose(got.to_numpy(), predicted[:3], rtol=1e-4, atol=1e-5)
    argv = ["evaluate", tmp_path / "p.h5mu", "--target", "rna", "--key", "scmm_ridge", "-q",
            "--json", tmp_path / "s.json"]  # fmt: skip
    assert cli.main([str(a) for a in argv]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["n_cells"] == int(keep.sum())


def write_10x_h5(path, parts: dict[str, ad.AnnData]) -> None:
    """Write Cell Ranger's filtered_feature_bc_matrix.h5 layout: {feature type: counts}."""
    import h5py
    import scipy.sparse as sp

    first = next(iter(parts.values()))
    X = sp.hstack([sp.csr_matrix(a.X) for a in parts.values()]).T.tocsc().astype(np.int32)
    ids = [i for a in parts.values() for i in a.var.get("gene_ids", a.var_names)]
    types = [t for t, a in parts.items() for _ in range(a.n_vars)]
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g["barcodes"] = np.array(first.obs_names, dtype="S")
        g["data"], g["indices"], g["indptr"] = X.data, X.indices, X.indptr
        g["shape"] = np.array(X.shape, dtype=np.int32)
        feats = g.create_group("features")
        feats["id"] = np.array(ids, dtype="S")
        feats["name"] = np.array([n for a in parts.values() for n in a.var_names], dtype="S")
        feats["feature_type"] = np.array(types, dtype="S")
        feats["genome"] = np.array(["GRCh38"] * len(types), dtype="S")
        feats["_all_tag_keys"] = np.array([b"genome"])


def test_a_10x_h5_is_read_by_feature_type(data_dir, tmp_path, capsys):
    """Cell Ranger's .h5 gives the same model and predictions as the two .h5ad files."""
    rna, prot = (ad.read_h5ad(data_dir / CITE.format(f)) for f in ("rna", "adt"))
    counts = {"Gene Expression": rna.copy(), "Antibody Capture": prot.copy()}
    for a in counts.values():
        a.X = a.layers["counts"]
    write_10x_h5(tmp_path / "run.h5", counts)
    split = ["--source", "rna", "--target", "prot", "--method", "ridge", "--test-fraction",
             "0.2", "-q"]  # fmt: skip
    argv = ["fit", tmp_path / "run.h5", *split, "--out", tmp_path / "from_h5"]
    assert cli.main([str(a) for a in argv]) == 0
    argv = ["fit", "--rna", data_dir / CITE.format("rna"), "--prot", data_dir / CITE.format("adt"),
            *split, "--out", tmp_path / "from_h5ad"]  # fmt: skip
    assert cli.main([str(a) for a in argv]) == 0
    fits = [json.loads((tmp_path / m / "fit.json").read_text()) for m in ("from_h5", "from_h5ad")]
    assert fits[0]["normalize"] == {"rna": "log_cp10k", "prot": "clr"}
    assert fits[0]["scores"]["n_cells"] == 120
    assert fits[0]["scores"]["pearson_per_cell"] == pytest.approx(
        fits[1]["scores"]["pearson_per_cell"]
    )
    # a query .h5 of Gene Expression only (an scRNA-seq run): predictions in rna.obsm
    write_10x_h5(tmp_path / "query.h5", {"Gene Expression": counts["Gene Expression"][:50]})
    argv = [
        "predict",
        tmp_path / "from_h5",
        tmp_path / "query.h5",
        "--out",
        tmp_path / "q.h5mu",
        "-q",
    ]
    assert cli.main([str(a) for a in argv]) == 0
    got = read_h5mu(tmp_path / "q.h5mu")["rna"].obsm["scmm_ridge"]
    model = scmm.models.load(tmp_path / "from_h5ad")
    query = rna[:50].copy()
    scmm.tl.predict(model, query, key_added="expected", normalize=True)  # from its counts
    np.testing.assert_allclose(
        got.to_numpy(), query.obsm["expected"].to_numpy(), rtol=1e-5, atol=1e-5
    )
    # Cell Ranger's unfiltered matrix: every barcode, nearly all empty droplets
    droplets = ad.AnnData(
        sp.random(25_000, 50, density=0.02, format="csr", random_state=0, dtype=np.float32),
        obs=pd.DataFrame(index=[f"B{i}-1" for i in range(25_000)]),
        var=pd.DataFrame(index=rna.var_names[:50]),
    )
    droplets.X.data = np.ceil(droplets.X.data * 3)
    droplets.var["gene_ids"] = rna.var["gene_ids"].to_numpy()[:50]
    write_10x_h5(tmp_path / "raw_feature_bc_matrix.h5", {"Gene Expression": droplets})
    capsys.readouterr()
    argv = ["predict", tmp_path / "from_h5", tmp_path / "raw_feature_bc_matrix.h5", "--out",
            tmp_path / "r.h5mu", "-q"]  # fmt: skip
    assert cli.main([str(a) for a in argv]) == 1
    err = capsys.readouterr().err
    assert re.search(r"holds 25,000 barcodes with a median of [0-3] counts", err), err
    assert "pass filtered_feature_bc_matrix.h5" in err
    (tmp_path / "damaged.h5").write_bytes(b"not an HDF5 file")
    capsys.readouterr()
    argv = [
        "predict",
        tmp_path / "from_h5",
        tmp_path / "damaged.h5",
        "--out",
        tmp_path / "d.h5mu",
        "-q",
    ]
    assert cli.main([str(a) for a in argv]) == 1
    err = capsys.readouterr().err
    assert "cannot read" in err and "as a 10x Genomics .h5 file" in err and err.count("\n") == 1
