"""Messages of the ``scmm`` command line (and the library messages it shows) that name the fix."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings

import anndata as ad
import mudata as md
import numpy as np
import pytest

import scmm
from scmm import cli

from .conftest import make_paired

HEAVY = ("torch", "lightning", "scanpy", "muon", "mudata", "anndata")


@pytest.fixture
def small(tmp_path):
    """Synthetic paired files (normalised ``.X``) and a ridge model fitted by ``scmm fit``."""
    mdata = make_paired(n_cells=60, n_genes=20, n_prot=4)
    rna, prot = mdata["rna"].copy(), mdata["prot"].copy()
    rna.obs["train"] = mdata.obs["train"].to_numpy()
    paths = {"rna": tmp_path / "rna.h5ad", "prot": tmp_path / "prot.h5ad", "tmp": tmp_path}
    rna.write_h5ad(paths["rna"])
    prot.write_h5ad(paths["prot"])
    paths["model"] = tmp_path / "model"
    argv = ["fit", "--rna", paths["rna"], "--prot", paths["prot"], "--source", "rna", "--target",
            "prot", "--method", "ridge", "--param", "n_components=5", "--normalize", "none",
            "--train", "train", "--out", paths["model"], "--quiet"]  # fmt: skip
    assert cli.main([str(a) for a in argv]) == 0
    return paths


def run(argv, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_evaluate_another_target_says_it_was_not_predicted(small, capsys):
    pred = small["tmp"] / "pred.h5mu"
    assert cli.main([str(a) for a in ["predict", small["model"], small["rna"], "--out", pred,
                                      "-q"]]) == 0  # fmt: skip
    adt = ad.read_h5ad(small["prot"])
    adt.X = np.rint(np.abs(adt.X) * 10)  # raw counts: today's message blamed them
    adt.write_h5ad(small["tmp"] / "adt.h5ad")
    argv = ["evaluate", pred, "--target", "adt", "--key", "scmm_ridge", "--measured",
            small["tmp"] / "adt.h5ad", "-q"]  # fmt: skip
    code, _, err = run(argv, capsys)
    assert code == 2
    assert "`--target adt` is not the modality" in err
    assert "predict 'prot'" in err and "'prot' (--key scmm_ridge)" in err
    assert "raw counts" not in err


def test_reordered_targets_are_matched_by_name(small, capsys):
    rna, prot = ad.read_h5ad(small["rna"]), ad.read_h5ad(small["prot"])
    model = scmm.models.load(small["model"])
    reordered = prot[:, ::-1].copy()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "var_names are not unique", UserWarning)
        both = md.MuData({"rna": rna, "prot": reordered})
    scmm.tl.predict(model, both, key_added="p")
    expected = model.predict(rna)
    np.testing.assert_allclose(both["prot"].layers["p"], expected[:, ::-1], rtol=0, atol=1e-6)
    # through the command line: written in the query's order
    both.write(small["tmp"] / "both.h5mu")
    out = small["tmp"] / "p.h5mu"
    code, _, err = run(["predict", small["model"], small["tmp"] / "both.h5mu", "--normalize",
                        "none", "--out", out, "-q"], capsys)  # fmt: skip
    assert code == 0, err
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "var_names are not unique", UserWarning)
        written = md.read_h5mu(out)["prot"].layers["scmm_ridge"]
    np.testing.assert_allclose(written, expected[:, ::-1], rtol=0, atol=1e-6)


def test_another_panel_goes_to_obsm_with_a_warning(small):
    rna, prot = ad.read_h5ad(small["rna"]), ad.read_h5ad(small["prot"])
    prot.var_names = ["p0", "p1", "p2", "other"]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "var_names are not unique", UserWarning)
        both = md.MuData({"rna": rna, "prot": prot})
    # another panel (not only reordered): predictions go to the source's .obsm, with a warning
    # naming the targets left out (issue 30), never written over the measured layer
    with pytest.warns(UserWarning, match="features differ from the model's targets"):
        scmm.tl.predict(scmm.models.load(small["model"]), both)
    assert "scmm_ridge" not in both["prot"].layers
    assert list(both["rna"].obsm["scmm_ridge"].columns) == ["p0", "p1", "p2", "p3"]


def test_clr_of_normalised_values_names_the_layers_that_exist():
    prot = ad.AnnData(np.random.default_rng(0).normal(size=(20, 5)).astype(np.float32))
    prot.layers["denoised"] = prot.X.copy()
    mdata = md.MuData({"prot": prot})
    with pytest.raises(ValueError, match=r"`mdata\['prot'\].X` has negative values") as err:
        scmm.pp.normalize(mdata, "prot", method="clr")
    assert "there is no `layers['counts']`" in str(err.value)
    assert "(its layers: 'denoised')" in str(err.value)
    assert "`layer='counts'` has negative" not in str(err.value)


@pytest.mark.filterwarnings("default:Filling 2 features:UserWarning")  # printed by the CLI
def test_cli_names_its_flags_not_the_python_arguments(small, capsys):
    rna = ad.read_h5ad(small["rna"])
    fewer = rna[:, 2:].copy()  # 18 of the model's 20 genes
    fewer.write_h5ad(small["tmp"] / "fewer.h5ad")
    base = ["predict", small["model"], small["tmp"] / "fewer.h5ad", "--normalize", "none",
            "--out", small["tmp"] / "p.h5mu", "-q"]  # fmt: skip
    code, _, err = run(base, capsys)
    assert code == 1
    assert "Pass `--allow-missing-features` to fill them" in err
    assert "allow_missing_features" not in err
    code, _, err = run([*base, "--min-feature-overlap", "0.95"], capsys)
    assert code == 1
    assert "below `--min-feature-overlap 0.95`" in err
    assert "lower `--min-feature-overlap` knowingly" in err
    assert "min_feature_overlap" not in err
    code, _, err = run([*base, "--allow-missing-features"], capsys)
    assert code == 0
    assert "scmm: warning: Filling 2 features missing" in err


def test_cli_spelling_keeps_what_the_command_has_no_option_for():
    parser = next(a for a in cli._parser()._actions if a.dest == "command").choices["predict"]
    text = "`layer='counts'`, `min_feature_overlap=many`, `overwrite=False`, `normalize=maybe`"
    assert cli.cli_spelling(text, parser) == text
    assert cli.cli_spelling("pass `normalize=True`", parser) == "pass `--normalize auto`"


def test_fit_and_evaluate_print_the_mean_profile_and_the_gain(small, capsys):
    argv = ["fit", "--rna", small["rna"], "--prot", small["prot"], "--source", "rna", "--target",
            "prot", "--method", "ridge", "--param", "n_components=5", "--normalize", "none",
            "--train", "train", "--out", small["tmp"] / "m2"]  # fmt: skip
    code, out, err = run(argv, capsys)
    assert code == 0, err
    record = json.loads((small["tmp"] / "m2" / "fit.json").read_text())
    scores = record["scores"]
    lines = out.splitlines()
    profile = next(line for line in lines if line.startswith("| mean profile"))
    gain = next(line for line in lines if line.startswith("| gain over the mean profile"))
    assert f"| {scores['mean_profile_pearson_per_cell']:.4f} |" in profile
    assert f"| {scores['gain_pearson_per_cell']:+.4f} |" in gain
    assert f"| {scores['rmse_reduction']:+.4f} |" in gain
    # evaluate: the same held-out cells give the same reference and gain as the fit
    pred = small["tmp"] / "pred.h5mu"
    assert cli.main([str(a) for a in ["predict", small["tmp"] / "m2", small["rna"], "--out",
                                      pred, "-q"]]) == 0  # fmt: skip
    rna = ad.read_h5ad(small["rna"])
    rna.obs["held_out"] = ~rna.obs["train"].to_numpy(dtype=bool)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "var_names are not unique", UserWarning)
        stored = md.read_h5mu(pred)
    stored["rna"].obs["held_out"] = rna.obs["held_out"].to_numpy()
    stored.write(pred)
    argv = ["evaluate", pred, "--target", "prot", "--key", "scmm_ridge", "--measured",
            small["prot"], "--cells", "held_out", "--json", small["tmp"] / "s.json"]  # fmt: skip
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert "| mean profile" in out and "| gain over the mean profile" in out
    evaluated = json.loads((small["tmp"] / "s.json").read_text())
    for name in ("mean_profile_pearson_per_cell", "gain_pearson_per_cell", "rmse_reduction"):
        np.testing.assert_allclose(evaluated[name], scores[name], rtol=0, atol=1e-5)


def test_unnamed_features_are_refused_naming_the_cause():
    unnamed = make_paired(n_cells=40, n_genes=20, n_prot=3)
    unnamed["rna"].var_names = [f"gene_{i}" for i in range(20)]
    unnamed.update()
    model = scmm.tl.fit_baseline(unnamed, "rna", "prot", method="ridge", n_components=3, rng=0)
    named = make_paired(n_cells=10, n_genes=20, n_prot=3)
    named["rna"].var_names = [f"CD{i}" for i in range(20)]
    with pytest.raises(ValueError, match="features have no names, only positions") as err:
        scmm.tl.predict(model, md.MuData({"rna": named["rna"].copy()}))
    assert "pbmc10k_cite" in str(err.value)


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["fit", "--help"], ["demo", "--help"],
     ["fit", "missing.h5mu", "--source", "rna", "--target", "prot", "--out", "m"]],
)  # fmt: skip
def test_help_and_a_missing_file_do_not_import_the_heavy_libraries(argv, tmp_path):
    code = (
        "import sys\nfrom scmm import cli\n"
        f"code = cli.main({argv!r})\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), code)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert proc.returncode == 0, proc.stderr
    loaded, exit_code = proc.stdout.strip().splitlines()[-1].rsplit(" ", 1)
    assert loaded == "[]"
    assert exit_code == ("1" if "missing.h5mu" in argv else "0")


def test_fit_ensemble_says_which_member_fit_it_is_on(capsys, monkeypatch):
    mdata = make_paired(n_cells=40, n_genes=20, n_prot=3)
    options = {"ridge": {"n_components": 3}, "mean": {}}
    monkeypatch.setattr(scmm.settings, "verbose", True)
    capsys.readouterr()
    model = scmm.tl.fit_ensemble(mdata, "rna", "prot", methods=["ridge", "mean"], n_folds=2,
                                 member_options=options, train="train", rng=0)  # fmt: skip
    assert "_fit_member" not in vars(model)  # the reporting ends with the fit
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 6  # 2 members × (2 folds + the final fit)
    assert lines[0].startswith("scmm: fit_ensemble: member fit 1/6: ridge (cross-fitting")
    assert lines[-1].startswith("scmm: fit_ensemble: member fit 6/6: mean (final")
    monkeypatch.setattr(scmm.settings, "verbose", False)
    scmm.tl.fit_ensemble(mdata, "rna", "prot", methods=["ridge", "mean"], n_folds=2,
                         member_options=options, train="train", rng=0)  # fmt: skip
    assert capsys.readouterr() == ("", "")


def test_demo_prints_a_line_per_fitted_method(data_dir, tmp_path, capsys):
    cli.demo("bmmc_cite", out=tmp_path, methods=["mean", "ridge"], data_dir=str(data_dir))
    out = capsys.readouterr().out
    assert re.search(r"^\[1/2\] fitting mean … \d+\.\d s \(elapsed \d+ s\)$", out, re.M), out
    assert re.search(r"^\[2/2\] fitting ridge … \d+\.\d s \(elapsed \d+ s\)$", out, re.M), out
    cli.demo("bmmc_cite", out=tmp_path, methods=["mean"], data_dir=str(data_dir), quiet=True)
    assert capsys.readouterr() == ("", "")


def test_fit_overwrite_never_deletes_a_folder_that_is_not_a_model(small, capsys):
    results = small["tmp"] / "results"
    results.mkdir()
    (results / "table.csv").write_text("keep me")
    argv = ["fit", "--rna", small["rna"], "--prot", small["prot"], "--source", "rna",
            "--target", "prot", "--method", "ridge", "--param", "n_components=5",
            "--normalize", "none", "--out", results, "--overwrite", "-q"]  # fmt: skip
    code, _, err = run(argv, capsys)
    assert code != 0
    assert "is not an scmm model folder" in err and "--overwrite replaces model folders" in err
    assert (results / "table.csv").read_text() == "keep me"
    argv[argv.index(results)] = small["model"]  # a model folder is replaced
    code, _, err = run(argv, capsys)
    assert code == 0, err


def test_counts_in_raw_are_named(tmp_path, capsys):
    """A file converted from Seurat keeps the counts in `.raw`: the error says where they are."""
    mdata = make_paired(n_cells=60, n_genes=20, n_prot=4)
    rng = np.random.default_rng(0)
    for mod in ("rna", "prot"):
        adata = ad.AnnData(rng.poisson(3.0, size=mdata[mod].shape).astype(np.float32))
        adata.obs_names, adata.var_names = mdata[mod].obs_names, mdata[mod].var_names
        adata.write_h5ad(tmp_path / f"{mod}.h5ad")
    argv = ["fit", "--rna", tmp_path / "rna.h5ad", "--prot", tmp_path / "prot.h5ad", "--source",
            "rna", "--target", "prot", "--method", "ridge", "--param", "n_components=5",
            "--out", tmp_path / "model", "-q"]  # fmt: skip
    assert cli.main([str(a) for a in argv]) == 0
    converted = ad.read_h5ad(tmp_path / "rna.h5ad")
    converted.raw = converted.copy()  # the counts
    converted.X = np.log1p(converted.X)  # Seurat's data slot as .X
    converted.write_h5ad(tmp_path / "converted.h5ad")
    argv = ["predict", tmp_path / "model", tmp_path / "converted.h5ad", "--out",
            tmp_path / "p.h5mu", "-q"]  # fmt: skip
    code, _, err = run(argv, capsys)
    assert code == 1
    assert "its `.raw` holds raw counts" in err and "`.layers['counts']`" in err
