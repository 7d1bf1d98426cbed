"""Harmonise antibody (protein) names across CITE-seq / REAP-seq panels.

Every lab names its antibody rows its own way: ``CD3_TotalSeqB`` (10x), ``CD3_AGGATCGA``
(REAP-seq: target and barcode), ``PD-1`` vs ``CD279``, ``CD8a`` vs ``CD8``. A model trained
on one panel can only be scored on another through names that mean the same target, so the
rules live in one function, :func:`harmonize_protein_names`, that loaders, ``predict`` and
the scores share.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd

#: Suffixes naming the antibody chemistry, not the target (``_TotalSeqC``, ``-TotalSeq-B``).
_TOTALSEQ = re.compile(r"[\s_.\-]*\(?TotalSeq[\s_.\-]*[ABCD]?\)?$", re.IGNORECASE)
#: REAP-seq / hashtag-style antibody barcodes appended to the name (``CD3_AGGATCGA``).
_BARCODE = re.compile(r"[_\-][ACGTN]{6,}$")
#: Prefixes naming the assay, not the target (``ADT_CD4``), and assay suffixes (``CD4_ADT``).
_PREFIX = re.compile(r"^(ADT|AB|PROT)[_\-]", re.IGNORECASE)
_SUFFIX = re.compile(r"[\s_.\-](ADT|PROT)$", re.IGNORECASE)
#: A second name in parentheses after the first: an alias or a clone (``CD279 (PD-1)``,
#: ``CD3 (UCHT1)``); the first is kept.
_PARENTHESES = re.compile(r"^(?P<name>[^()]*?[^()\s_.\-])[\s_.\-]*\([^()]*\)$")
#: BioLegend's cocktail names: the reactive species, the target, then the clone where given
#: (``Hu.CD4_RPA.T4``, ``HuMs.CD44``, ``Hu.HLA.DR``).
_SPECIES = re.compile(r"^(?:Hu|Ms|Rt|Rat|Dog|Ar)(?:Hu|Ms|Rt|Dog)*\.(?P<name>[^_]+)(?:_.+)?$")
#: Clones numbered after a CD name, as in the Seurat PBMC reference (Hao 2021):
#: ``CD4-1``, ``CD4-2``.
_CLONE_NUMBER = re.compile(r"^(?P<base>CD\d+[A-Z]*)-(?P<n>\d)$", re.IGNORECASE)
#: A duplicate marker this function writes (``CD4_2``): kept, so harmonising is idempotent.
_DUPLICATE = re.compile(r"^(?P<base>.+)_(?P<n>\d+)$")
#: Names taken for isotype (or blank) controls.
CONTROL_PATTERN = re.compile(r"igg|isotype|ctrl|control|blank", re.IGNORECASE)

#: Aliases, keyed by the upper-case name without separators (``-``, ``_``, ``.``, spaces).
#: The canonical name is the CD number where one exists (as most panels write them).
ALIASES: dict[str, str] = {
    "PD1": "CD279",
    "PDL1": "CD274",
    "PDL2": "CD273",
    "CTLA4": "CD152",
    "LAG3": "CD223",
    "TIM3": "CD366",
    "CCR7": "CD197",
    "ICOS": "CD278",
    "GITR": "CD357",
    "OX40": "CD134",
    "41BB": "CD137",
    "CD40L": "CD154",
    "BTLA": "CD272",
    "NKP46": "CD335",
    "KIR3DL1": "CD158E1",
    "IL7RA": "CD127",
    "IL2RA": "CD25",
    "NCAM": "CD56",
    "NCAM1": "CD56",
    "FCGR3A": "CD16",
    "CD8A": "CD8",
    "HLADR": "HLA-DR",
    "HLADRA": "HLA-DR",
    "HLAABC": "HLA-ABC",
}


def _key(name: str) -> str:
    return re.sub(r"[\s_.\-]", "", name.upper())


def _target(name: str) -> tuple[str, str]:
    """Return ``(target, duplicate marker)`` of one name (marker ``""`` or ``"_2"`` ...)."""
    name = name.strip().replace("\r", "")
    name = _TOTALSEQ.sub("", name)
    match = _PARENTHESES.match(name)
    name = match["name"] if match is not None else name
    match = _SPECIES.match(name)  # isotype controls keep their species (Ms.IgG1, Rt.IgG1)
    if match is not None and not CONTROL_PATTERN.search(name):
        name = match["name"]
    name = _BARCODE.sub("", name)
    name = _SUFFIX.sub("", _PREFIX.sub("", name))
    marker = ""
    clone = _CLONE_NUMBER.match(name)
    dup = _DUPLICATE.match(name)
    if clone is not None:
        name, marker = clone["base"], "" if clone["n"] == "1" else f"_{clone['n']}"
    elif dup is not None:
        name, marker = dup["base"], f"_{dup['n']}"
    upper = re.sub(r"\s+", "-", name.upper())
    return ALIASES.get(_key(upper), upper), marker


def harmonize_protein_names(names: Iterable[str]) -> pd.DataFrame:
    """Harmonise antibody names so that the same target has the same name in every panel.

    Rules, in order:

    1. strip chemistry suffixes (``_TotalSeqB``, ``-TotalSeqC``, ``TotalSeq-A``), a second
       name in parentheses (``CD279 (PD-1)``, ``CD3 (UCHT1)``: an alias or a clone),
       BioLegend's species prefix and clone suffix (``Hu.CD4_RPA.T4``, ``HuMs.CD44``),
       REAP-seq barcode suffixes (``_`` or ``-`` then 6 or more of ``ACGTN``:
       ``CD3_AGGATCGA``) and assay prefixes and suffixes (``ADT_CD4``, ``CD4_ADT``);
    2. upper-case (``CD8a`` → ``CD8A``, ``IgM`` → ``IGM``), spaces become ``-``;
    3. map aliases (``ALIASES``, matched without separators, so ``PD-1``, ``PD1`` and
       ``pd.1`` are one key) to the CD number: ``PD-1`` → ``CD279``, ``PD-L1`` → ``CD274``,
       ``CTLA-4`` → ``CD152``, ``LAG-3`` → ``CD223``, ``CCR7`` → ``CD197``, ``CD8a`` →
       ``CD8``, ``HLA-DR``/``HLA-DRA``/``HLA.DR`` → ``HLA-DR``, ... ``CD45RA`` and
       ``CD45RO`` stay apart from ``CD45`` (different isoforms);
    4. keep duplicated targets apart on purpose: the second antibody against the same target
       (another clone, e.g. REAP-seq's two CD4 rows) is named ``CD4_2``, the third ``CD4_3``,
       in input order. Matching across panels therefore pairs the *first* clone of each
       target (``CD4``) with the other panel's ``CD4``; the others are only matched to a
       panel that has them too. A name ending in ``_<digits>`` keeps that marker, so
       harmonising harmonised names changes nothing; the Seurat PBMC reference's numbered
       clones of a CD name are read the same way (``CD4-1`` → ``CD4``, ``CD4-2`` →
       ``CD4_2``);
    5. flag isotype and blank controls: names containing ``IgG`` (``Mouse_IgG1``,
       ``Rat-IgG2b``), ``isotype``, ``ctrl``, ``control`` or ``blank``. A panel with a real
       anti-IgG antibody would have it flagged too; pass explicit names where it matters.

    Parameters
    ----------
    names
        The antibody names as the source writes them.

    Returns
    -------
    DataFrame indexed by the harmonised names (unique, index name ``"name"``), in input
    order, with columns ``original_name`` (str), ``target`` (the harmonised target without
    the duplicate marker) and ``isotype_control`` (bool).

    Examples
    --------
    >>> import scmm
    >>> df = scmm.pp.harmonize_protein_names(
    ...     ["CD4_GTCCAGGC", "CD4_CACGATTC", "PD-1_TotalSeqB", "CD8a", "Mouse_IgG1_TGTGTATA"]
    ... )
    >>> list(df.index)
    ['CD4', 'CD4_2', 'CD279', 'CD8', 'MOUSE_IGG1']
    >>> df["isotype_control"].tolist()
    [False, False, False, False, True]
    """
    originals = [str(n) for n in names]
    seen: set[str] = set()
    rows = []
    # names that carry their own marker (CD4_2) are placed first so new duplicates skip them
    parsed = [_target(n) for n in originals]
    taken = {t + m for t, m in parsed if m}
    for original, (target, marker) in zip(originals, parsed, strict=True):
        name = target + marker
        if name in seen or (not marker and name in taken):
            k = 2
            while f"{target}_{k}" in seen or f"{target}_{k}" in taken:
                k += 1
            name = f"{target}_{k}"
        seen.add(name)
        rows.append((name, original, target, bool(CONTROL_PATTERN.search(original))))
    out = pd.DataFrame(rows, columns=["name", "original_name", "target", "isotype_control"])
    out["isotype_control"] = out["isotype_control"].astype(bool)
    return out.set_index("name")
