"""scmm.pp.harmonize_protein_names: one table of panel names → harmonised names."""

from __future__ import annotations

import pandas as pd
import pytest

import scmm

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


def test_harmonising_is_idempotent():
    names = ["CD4_GTCCAGGC", "CD4_CACGATTC", "CD4_TTTTTTTT", "PD-1", "Mouse_IgG1", "CD3_TotalSeqB"]
    once = scmm.pp.harmonize_protein_names(names)
    twice = scmm.pp.harmonize_protein_names(once.index)
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
