"""Gene sets: MSigDB collections shipped as data files, or any GMT file."""

from __future__ import annotations

import os
from pathlib import Path

from .._docs import DATA_DIR, doc_params
from ._fetch import fetch

PathLike = str | os.PathLike

_GENE_SETS = {
    "hallmark": ("genesets/h.all.v7.5.1.symbols.gmt", None),
    "c2": ("genesets/c2.cp.v7.5.1.symbols.gmt", None),
    "reactome": ("genesets/c2.cp.v7.5.1.symbols.gmt", "REACTOME_"),
}


def read_gmt(path: PathLike) -> dict[str, list[str]]:
    """Parse a GMT file (``name<TAB>description<TAB>gene<TAB>gene...`` a line).

    Parameters
    ----------
    path
        The GMT file.

    Returns
    -------
    ``{set name: [genes]}`` in file order; empty gene fields are dropped.
    """
    sets: dict[str, list[str]] = {}
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 2:
                msg = f"{path}:{lineno}: not a GMT line (needs name<TAB>description<TAB>genes)."
                raise ValueError(msg)
            if fields[0] in sets:
                msg = f"{path}:{lineno}: gene set {fields[0]!r} appears twice."
                raise ValueError(msg)
            sets[fields[0]] = [g for g in fields[2:] if g]
    return sets


@doc_params(data_dir=DATA_DIR)
def gene_sets(name: PathLike, *, data_dir: PathLike | None = None) -> dict[str, list[str]]:
    """Gene sets (human symbols) from MSigDB v7.5.1 or a GMT file.

    Parameters
    ----------
    name
        ``"hallmark"`` (50 hallmark sets), ``"c2"`` (2,982 canonical pathways),
        ``"reactome"`` (the 1,615 ``REACTOME_`` sets of c2), or the path of a GMT file.
        Prefer Reactome (and c2's ``WP_`` sets): openly licensed, unlike KEGG and BioCarta.
    {data_dir}

    Returns
    -------
    ``{set name: [gene symbols]}``.

    Examples
    --------
    >>> import scmm
    >>> sets = scmm.datasets.gene_sets("hallmark")
    >>> len(sets)
    50
    >>> "HALLMARK_APOPTOSIS" in sets
    True
    """
    if isinstance(name, str) and name in _GENE_SETS:
        relpath, prefix = _GENE_SETS[name]
        sets = read_gmt(fetch(relpath, data_dir))
        if prefix is not None:
            sets = {k: v for k, v in sets.items() if k.startswith(prefix)}
        return sets
    path = Path(name)
    if path.is_file():
        return read_gmt(path)
    msg = (
        f"`name={name!r}` is neither a known gene-set collection ({sorted(_GENE_SETS)}) "
        "nor an existing GMT file; pass one of those names or a path."
    )
    raise ValueError(msg)
