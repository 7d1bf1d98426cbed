"""Protein (antibody) names to the genes that encode them, via a shipped mapping table."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import pandas as pd

__all__ = ["protein_to_gene"]

_TABLE_NAME = "protein_genes.tsv"
# vendor / assay suffixes and prefixes around antibody names: CD4_TotalSeqB, ADT_CD4, CD4-prot
_SUFFIX = re.compile(
    r"[-_. ]?(totalseq[-_ ]?[abc]|tsa|tsb|tsc|adt|antibody|protein|prot|ab)$", re.IGNORECASE
)
_PREFIX = re.compile(r"^(adt|prot|protein|ab)[-_. ]", re.IGNORECASE)
_COPY_NUMBER = re.compile(r"[-_.]\d+$")  # CD4-1, CD4.1 (made-unique duplicates)
_ISOTYPE = re.compile(
    r"isotype|ctrl|control|^(mouse|rat|hamster|armenian)[-_. ]?.*ig", re.IGNORECASE
)
_SYMBOL_LIKE = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*$")


def _key(name: str) -> str:
    """Return the matching key: case-folded, without ``-``, ``_``, ``.`` and spaces.

    Between two digits a separator is kept (as ``.``): ``CD4-1`` must not become ``CD41``.
    """
    name = re.sub(r"(?<=\d)[-_. ]+(?=\d)", ".", name.strip())
    return re.sub(r"[-_ ]|\.(?!\d)|(?<!\d)\.", "", name).casefold()


def _candidates(name: str) -> list[str]:
    """List the name, then the name without assay suffixes/prefixes and copy number."""
    out = [name.strip()]
    stripped = _PREFIX.sub("", _SUFFIX.sub("", out[0]))
    out.append(stripped)
    out.append(_COPY_NUMBER.sub("", stripped))
    seen: list[str] = []
    for c in out:
        if c and c not in seen:
            seen.append(c)
    return seen


@lru_cache(maxsize=8)
def _read_table(path: str) -> tuple[tuple[str, str], ...]:
    df = pd.read_csv(path, sep="\t", comment="#", dtype=str, keep_default_na=False)
    if not {"protein", "gene"} <= set(df.columns):
        msg = (
            f"`table={path!r}` must be a tab-separated file with columns 'protein' and 'gene' "
            f"(has: {list(df.columns)})."
        )
        raise ValueError(msg)
    return tuple(zip(df["protein"].str.strip(), df["gene"].str.strip(), strict=True))


def _default_table_path() -> str:
    return str(files("scmm.pp") / _TABLE_NAME)


def _load_table(table: str | Path | Mapping[str, str | None] | None) -> dict[str, str]:
    """Shipped table overlaid with the user's entries, keyed by :func:`_key`."""
    entries = list(_read_table(_default_table_path()))
    if table is None:
        pass
    elif isinstance(table, Mapping):
        entries += [(str(k), "" if v is None else str(v)) for k, v in table.items()]
    elif isinstance(table, str | Path):
        if not Path(table).is_file():
            msg = f"`table={str(table)!r}` is not a file; pass a TSV path or a dict."
            raise ValueError(msg)
        entries += list(_read_table(str(table)))
    else:
        msg = f"`table` must be a path, a dict or None; got {type(table).__name__}."
        raise TypeError(msg)
    return {_key(p): g for p, g in entries}


def protein_to_gene(
    names: Iterable[str],
    *,
    table: str | Path | Mapping[str, str | None] | None = None,
    genes: Iterable[str] | None = None,
) -> tuple[dict[str, str], list[str]]:
    """Map CITE-seq antibody (protein) names to the symbol of the gene that encodes them.

    Uses the mapping table shipped with scmm (``scmm/pp/protein_genes.tsv``, columns
    ``protein`` and ``gene``; edit it or override entries with ``table``). Complexes map to
    their defining chain (``HLA-DR`` → ``HLA-DRA``, ``CD3`` → ``CD3E``), isoforms to their gene
    (``CD45RA`` → ``PTPRC``), and isotype controls to nothing.

    Matching ignores case and the characters ``-``, ``_``, ``.`` and space (``PD-1`` =
    ``PD1`` = ``pd_1``), except between two digits (``CD4-1`` is not ``CD41``). Each name is
    tried as given, then without assay suffixes and prefixes (``CD4_TotalSeqB``, ``ADT_CD4``,
    ``CD4-prot``), then also without a trailing copy number (``CD4-1``). A name not in the
    table falls back to being its own gene symbol: when ``genes`` is given, if it matches one
    of them (ignoring case); otherwise, if it is written like a human gene symbol (upper-case
    letters and digits, e.g. ``KLRG1``).

    Parameters
    ----------
    names
        Protein (antibody) names, e.g. ``adata.var_names`` of the protein modality.
    table
        Extra or overriding entries: a dict ``{protein: gene}`` (``None`` or ``""`` means
        "maps to nothing") or the path of a TSV with columns ``protein`` and ``gene``.
    genes
        Known gene symbols (e.g. the RNA modality's ``var_names``) for the fallback.

    Returns
    -------
    mapping
        ``{name: gene symbol}`` for every name that could be mapped, keys as given.
    unmapped
        Names that could not be mapped (isotype controls included), in input order.

    Examples
    --------
    >>> from scmm.pp import protein_to_gene
    >>> mapping, unmapped = protein_to_gene(["CD8a_TotalSeqB", "HLA-DR", "Mouse-IgG1"])
    >>> mapping
    {'CD8a_TotalSeqB': 'CD8A', 'HLA-DR': 'HLA-DRA'}
    >>> unmapped
    ['Mouse-IgG1']
    """
    if isinstance(names, str):
        msg = f"`names` must be a list of names, not the single string {names!r}."
        raise TypeError(msg)
    lookup = _load_table(table)
    known = None if genes is None else {g.upper(): g for g in map(str, genes)}
    mapping: dict[str, str] = {}
    unmapped: list[str] = []
    for name in map(str, names):
        gene = _map_one(name, lookup, known)
        if gene:
            mapping[name] = gene
        elif name not in unmapped:
            unmapped.append(name)
    return mapping, unmapped


def _map_one(name: str, lookup: dict[str, str], known: dict[str, str] | None) -> str:
    cands = _candidates(name)
    for cand in cands:
        key = _key(cand)
        if key in lookup:
            return lookup[key]  # "" for isotype controls
    if any(_ISOTYPE.search(c) for c in cands):
        return ""
    for cand in cands:
        if known is not None:
            if cand.upper() in known:
                return known[cand.upper()]
        elif _SYMBOL_LIKE.match(cand):
            return cand
    return ""
