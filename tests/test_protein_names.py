"""scmm.pp.harmonize_protein_names (one table of panel names) and scoring on shared proteins."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest

import scmm
from scmm import metrics
from scmm.metrics import held_out_scores, shared_target_scores

from .conftest import make_atac_rna, make_paired

# (name as a panel writes it, harmonised name, isotype control)
TABLE = [
    # chemistry suffixes (10x TotalSeq A/B/C)
    ("CD3_TotalSeqB", "CD3", False),
    ("CD19-TotalSeqC", "CD19", False),
    ("CD14 TotalSeq-A", "CD14", False),
    ("CD16_TotalSeqC", "CD16", False),
    # REAP-seq barcode suffixes
    ("CD335_GTTTGTGG", "CD335", False),
    ("HLA-DRA_TAGACGAC", "HLA-DR", False),
    # upper case, kept otherwise
    ("CD11b", "CD11B", False),
    ("IgM", "IGM", False),  # surface IgM is a target, not a control
    ("TCRVa7.2", "TCRVA7.2", False),
    # aliases to the CD number
    ("PD-1", "CD279", False),
    ("PD-1_TotalSeqB", "CD279", False),
    ("PD-L1", "CD274", False),
    ("pdl2", "CD273", False),
    ("CTLA-4", "CD152", False),
    ("LAG-3", "CD223", False),
    ("CCR7", "CD197", False),
    ("4-1BB", "CD137", False),
    ("CD8a", "CD8", False),
    ("HLA.DR", "HLA-DR", False),
    ("HLA_DR", "HLA-DR", False),
    # isoforms stay apart from CD45
    ("CD45RA_TotalSeqB", "CD45RA", False),
    ("CD45RO", "CD45RO", False),
    # a second name in parentheses: an alias or a clone
    ("CD279 (PD-1)", "CD279", False),
    ("PD-1 (CD279)", "CD279", False),
    ("CD197_(CCR7)", "CD197", False),
    ("CD3 (UCHT1)", "CD3", False),
    ("CD4 (TotalSeq-B)", "CD4", False),
    # BioLegend cocktail names: species prefix, clone suffix
    ("Hu.CD4_RPA.T4", "CD4", False),
    ("Hu.CD14_M5E2", "CD14", False),
    ("HuMs.CD44", "CD44", False),
    ("HuMsRt.CD29", "CD29", False),
    ("Hu.HLA.DR", "HLA-DR", False),
    ("Hu.CD45RA", "CD45RA", False),
    ("Ms.IgG1", "MS.IGG1", True),  # a control keeps its species
    # assay prefixes and suffixes
    ("ADT_CD4", "CD4", False),
    ("CD4_ADT", "CD4", False),
    ("CD14-ADT", "CD14", False),
    # the Seurat PBMC reference's numbered clones (Hao 2021); other dashes stay
    ("CD4-1", "CD4", False),
    ("CD11b-2", "CD11B_2", False),
    ("Siglec-8", "SIGLEC-8", False),
    ("LOX-1", "LOX-1", False),
    # clone suffixes without a species prefix stay (kept apart on purpose)
    ("CD3_UCHT1", "CD3_UCHT1", False),
    # controls
    ("Mouse_IgG1_TGTGTATA", "MOUSE_IGG1", True),
    ("Control_Rat_IgG1_TCACGGTA", "CONTROL_RAT_IGG1", True),
    ("Rat-IgG2b", "RAT-IGG2B", True),
    ("mouse IgG2a isotype Ctrl", "MOUSE-IGG2A-ISOTYPE-CTRL", True),
    ("Blank", "BLANK", True),
]


@pytest.mark.parametrize(("original", "name", "control"), TABLE)
def test_harmonised_name(original, name, control):
    out = scmm.pp.harmonize_protein_names([original])
    assert list(out.index) == [name]
    assert out["original_name"].tolist() == [original]
    assert out["isotype_control"].tolist() == [control]


def test_duplicated_clones_kept_apart_in_input_order():
    names = ["CD4_GTCCAGGC", "CD8_GTATCGAG", "CD4_CACGATTC", "CD8a_ACCCGCAC", "CD45", "CD45RA"]
    out = scmm.pp.harmonize_protein_names(names)
    assert list(out.index) == ["CD4", "CD8", "CD4_2", "CD8_2", "CD45", "CD45RA"]
    assert list(out["target"]) == ["CD4", "CD8", "CD4", "CD8", "CD45", "CD45RA"]
    assert out.index.is_unique


def test_seurat_reference_clones_pair_the_first_with_another_panel():
    hao = scmm.pp.harmonize_protein_names(["CD4-2", "CD3-1", "CD4-1", "CD3-2", "CD8a"])
    assert list(hao.index) == ["CD4_2", "CD3", "CD4", "CD3_2", "CD8"]
    matched = metrics.match_targets(["CD3_TotalSeqB", "CD4_TotalSeqB", "CD8"], hao["original_name"])
    assert matched["shared"] == ["CD3", "CD4", "CD8"]


def test_harmonising_is_idempotent():
    names = ["CD4_GTCCAGGC", "CD4_CACGATTC", "CD4_TTTTTTTT", "PD-1", "Mouse_IgG1", "CD3_TotalSeqB"]
    once = scmm.pp.harmonize_protein_names(names)
    twice = scmm.pp.harmonize_protein_names(once.index)
    odd = ["Hu.CD4_RPA.T4", "CD279 (PD-1)", "CD11b-2", "CD4_ADT", "Ms.IgG1", "Siglec-8"]
    odd_once = scmm.pp.harmonize_protein_names(odd)
    assert list(scmm.pp.harmonize_protein_names(odd_once.index).index) == list(odd_once.index)
    assert (
        list(twice.index)
        == list(once.index)
        == ["CD4", "CD4_2", "CD4_3", "CD279", "MOUSE_IGG1", "CD3"]
    )
    assert twice["isotype_control"].tolist() == once["isotype_control"].tolist()


def test_existing_marker_is_not_reused():
    out = scmm.pp.harmonize_protein_names(["CD4_2", "CD4", "CD4_ACGTACGT"])
    assert list(out.index) == ["CD4_2", "CD4", "CD4_3"]


def test_output_frame():
    out = scmm.pp.harmonize_protein_names(pd.Index(["CD3_TotalSeqB"]))
    assert out.index.name == "name"
    assert list(out.columns) == ["original_name", "target", "isotype_control"]
    assert out["isotype_control"].dtype == bool
    assert scmm.pp.harmonize_protein_names([]).empty


# --- scoring on the proteins both panels have -------------------------------------------


def _panel(seed=0, n_cells=50, n=3):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n_cells, n))
    return y, y + 0.5 * rng.normal(size=(n_cells, n))


def test_isotype_controls_do_not_change_the_scores():
    """Fails before issue 30: RMSE and per-cell Pearson counted the control columns."""
    y, p = _panel()
    names = pd.Index(["CD3", "CD4", "CD19"])
    base = held_out_scores(y, p, y.mean(axis=0), names)
    rng = np.random.default_rng(1)
    noise = 5 * rng.normal(size=(len(y), 2))  # controls: far off, unpredictable
    y2, p2 = np.hstack([y, noise]), np.hstack([p, np.zeros_like(noise)])
    with_ctrl = held_out_scores(
        y2, p2, y2.mean(axis=0), names.append(pd.Index(["Mouse_IgG1", "Rat_IgG2b"]))
    )
    for key in ("rmse", "pearson_per_cell", "pearson_per_feature"):
        assert with_ctrl[key] == pytest.approx(base[key]), key
    assert with_ctrl["n_controls"] == 2


def test_shared_target_scores_ignore_extra_columns():
    y, p = _panel(n=3)
    model_targets = ["CD3_TotalSeqB", "PD-1", "CD4_TotalSeqB"]
    # the query: another naming, an extra protein, an isotype control, no CD4
    rng = np.random.default_rng(2)
    extra = rng.normal(size=(len(y), 2))
    measured = np.column_stack([extra[:, 0], y[:, 1], y[:, 0], extra[:, 1]])
    measured_names = ["CD56", "CD279_GAACCCGG", "CD3", "Mouse_IgG1"]
    out = shared_target_scores(measured, measured_names, p, model_targets)
    assert out["shared"] == ["CD3", "CD279"] and out["n_shared"] == 2
    assert out["left_out_model"] == ["CD4_TotalSeqB"]
    assert out["left_out_measured"] == ["CD56", "Mouse_IgG1"]
    assert out["rmse"] == pytest.approx(metrics.rmse(y[:, :2], p[:, :2]))
    assert out["pearson_per_feature"] == pytest.approx(
        metrics.pearson_per_feature(y[:, :2], p[:, :2])
    )
    # an isotype control the model predicts too is not scored either
    both = shared_target_scores(
        np.column_stack([measured, extra[:, 1]]),
        [*measured_names, "Rat_IgG2b"],
        np.column_stack([p, extra[:, 1]]),
        [*model_targets, "Rat_IgG2b"],
    )
    assert both["rmse"] == pytest.approx(out["rmse"])
    with pytest.raises(ValueError, match="none of the model's targets"):
        shared_target_scores(extra, ["CD56", "CD57"], p, model_targets)


def test_shared_target_scores_pair_cells_by_name():
    """An AnnData and a DataFrame in other cell orders are scored cell by cell, not by row."""
    y, p = _panel(n=3)
    cells = [f"c{i}" for i in range(len(y))]
    measured = ad.AnnData(
        y, obs=pd.DataFrame(index=cells), var=pd.DataFrame(index=["CD3", "CD279", "CD4"])
    )
    order = np.random.default_rng(0).permutation(len(y))[: len(y) - 5]  # shuffled, 5 unmeasured
    predicted = pd.DataFrame(p[order], index=np.array(cells)[order], columns=["CD3", "PD-1", "CD4"])
    out = shared_target_scores(measured, predicted=predicted)
    assert out["n_cells"] == len(order)
    assert out["rmse"] == pytest.approx(metrics.rmse(y[order], p[order]))
    by_row = shared_target_scores(
        y[: len(order)], ["CD3", "CD279", "CD4"], p[order], ["CD3", "PD-1", "CD4"]
    )
    assert by_row["rmse"] != pytest.approx(out["rmse"])  # what pairing by position gave
    strangers = predicted.rename(index={predicted.index[0]: "elsewhere"})
    with pytest.warns(UserWarning, match=r"1 of the 45 predicted cells have no measured values"):
        some = shared_target_scores(measured, predicted=strangers)
    assert some["n_cells"] == len(order) - 1
    assert some["rmse"] == pytest.approx(metrics.rmse(y[order[1:]], p[order[1:]]))
    with pytest.raises(ValueError, match="None of the 45 predicted cells is among the measured"):
        shared_target_scores(measured, predicted=predicted.set_axis([f"x{i}" for i in range(45)]))
    with pytest.raises(ValueError, match="`measured_names` differs"):
        shared_target_scores(measured, ["A", "B", "C"], predicted)
    with pytest.raises(TypeError, match="Pass `model_targets`"):
        shared_target_scores(measured, predicted=p)


def test_shared_target_scores_refuse_raw_counts():
    y, p = _panel(n=3)
    counts = np.random.default_rng(0).poisson(5.0, size=y.shape).astype(np.float32)
    names = ["CD3", "CD279", "CD4"]
    with pytest.raises(ValueError, match=r"`measured` holds raw counts .*method='clr'"):
        shared_target_scores(counts, names, p, names)
    clr = np.log1p(counts) - np.log1p(counts).mean(axis=1, keepdims=True)
    assert np.isfinite(shared_target_scores(clr, names, p, names)["rmse"])


def test_predict_into_another_panel_lists_shared_targets():
    mdata = make_paired(n_prot=3)
    mdata["prot"].var_names = ["CD3_TotalSeqB", "PD-1_TotalSeqB", "CD4_TotalSeqB"]
    mdata.update()
    model = scmm.tl.fit_baseline(mdata, "rna", "prot", method="ridge", n_components=5)
    query = make_paired(n_prot=3, seed=1)
    query["prot"].var_names = ["CD3", "CD279", "Mouse_IgG1"]
    query.update()
    with pytest.warns(UserWarning, match=r"2 targets are measured in both.*CD4_TotalSeqB"):
        scmm.tl.predict(model, query, key_added="pred")
    assert "pred" not in query["prot"].layers
    assert list(query["rna"].obsm["pred"].columns) == list(mdata["prot"].var_names)
    assert query.uns["pred"]["targets"] == {
        "shared": ["CD3", "CD279"],
        "left_out_model": ["CD4_TotalSeqB"],
        "left_out_measured": ["Mouse_IgG1"],
    }


def test_evaluate_scores_shared_features_only(capsys):
    from scmm.cli._evaluate import _aligned
    from scmm.cli._io import Reporter

    y, p = _panel(n=3)
    cells = [f"c{i}" for i in range(len(y))]
    pred = pd.DataFrame(p, index=cells, columns=["CD3", "CD4", "CD19"])
    measured = ad.AnnData(
        np.column_stack([y[:, 2], y[:, 0], np.ones(len(y))]).astype(np.float32),
        obs=pd.DataFrame(index=cells),
        var=pd.DataFrame(index=["CD19_TotalSeqC", "CD3_TotalSeqC", "IgG1_ctrl"]),
    )
    pred2, values, left_out = _aligned(pred, measured, Reporter("evaluate", quiet=False))
    assert list(pred2.columns) == ["CD3", "CD19"]
    np.testing.assert_allclose(values, y[:, [0, 2]], rtol=1e-6)
    assert left_out == {"left_out_model": ["CD4"], "left_out_measured": ["IgG1_ctrl"]}
    assert "left out" in capsys.readouterr().err


def test_genes_are_not_antibodies():
    """`CTRL` and `PIGG` are genes, not isotype controls; the gene `CD8A` is not `CD8`.

    Before, an ATAC → RNA fit scored those genes apart as controls and `predict` into another
    gene panel never paired them (and paired genes through antibody aliases).
    """
    mdata = make_atac_rna(n_genes=4)
    mdata["rna"].var_names = ["CTRL", "PIGG", "CD8A", "GAPDH"]
    scmm.pp.normalize(mdata, "atac", method="tfidf")
    scmm.pp.split_cells(mdata, test_fraction=0.25, rng=0)
    model = scmm.tl.fit_baseline(mdata, "atac", "rna", n_components=5, train="train")
    scores = mdata.uns["scmm_ridge"]["scores"]
    assert "n_controls" not in scores
    assert mdata.uns["scmm_ridge"]["params"].get("control_features") is None  # was both
    # a query measuring another gene panel: CTRL and PIGG are shared, CD8A is not CD8
    genes = ad.AnnData(
        np.ones((mdata.n_obs, 4), np.float32),
        obs=mdata["rna"].obs[[]].copy(),
        var=pd.DataFrame(index=["PIGG", "CTRL", "CD8", "ACTB"]),
    )
    query = md.MuData({"atac": mdata["atac"].copy(), "rna": genes})
    with pytest.warns(UserWarning, match="differ from the model's targets"):
        scmm.tl.predict(model, query, key_added="p")
    targets = query.uns["p"]["targets"]
    assert list(targets["shared"]) == ["CTRL", "PIGG"]
    assert list(targets["left_out_model"]) == ["CD8A", "GAPDH"]
    # proteins: as before, the control is flagged and the alias paired
    m = metrics.match_targets(["CTRL", "CD8A"], ["CTRL", "CD8"])
    assert m["shared"] == ["CD8"] and m["left_out_model"] == ["CTRL"]


@pytest.mark.parametrize(
    ("mod", "feature_types", "method", "genes"),
    [
        ("rna", None, None, True),
        ("GEX", None, None, True),
        ("prot", None, None, False),
        ("adt", None, "log_cp10k", False),  # an antibody panel log-normalised: still antibodies
        ("assay2", "Gene Expression", None, True),
        ("assay2", "Antibody Capture", "log_cp10k", False),
        ("assay2", None, "log_cp10k", True),
        ("assay2", None, "clr", False),
        ("assay2", None, None, False),  # unknown: antibody rules, as before
    ],
)
def test_which_modalities_hold_genes(mod, feature_types, method, genes):
    adata = ad.AnnData(np.ones((3, 2), np.float32))
    if feature_types is not None:
        adata.var["feature_types"] = feature_types
    if method is not None:
        adata.uns["scmm_normalize"] = {"method": method}
    assert scmm._validate.holds_genes(adata, mod) is genes
