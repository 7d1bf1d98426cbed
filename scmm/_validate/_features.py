"""Which features: a model's features found in new data by name, Ensembl id or peak position."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._values import _listing


def _strip_version(ids) -> pd.Index:
    """Ensembl-style ids without their version suffix (``ENSG00000127054.5`` → ``…054``)."""
    return pd.Index([str(i) for i in ids]).str.replace(r"^(ENS[A-Z]*\d+)\.\d+$", r"\1", regex=True)


PEAK_NAME_RE = re.compile(r"^(.+?)[:_-](\d+)[_-](\d+)$")
"""A peak name ``chr1:100-200``, ``chr1-100-200`` or ``chr1_100_200``: chrom, start, end."""


#: Feature names that are positions only (``gene_0``, ``protein_13``, ``0``), not names.
_PLACEHOLDER = re.compile(r"(gene|protein|feature|peak)_\d+|\d+")


def _placeholders(names) -> bool:
    """Whether every one of ``names`` is a position-only placeholder (see ``_PLACEHOLDER``)."""
    return len(names) > 0 and all(_PLACEHOLDER.fullmatch(str(n)) for n in names)


def _peak_keys(names: pd.Index) -> pd.Index:
    """``chrom:start-end`` of each peak name, ``chr`` prefix dropped (NaN where not a peak)."""
    parts = pd.Series(names, dtype=object).str.extract(PEAK_NAME_RE)
    chrom = parts[0].str.replace(r"^chr", "", regex=True, case=False)
    return pd.Index(chrom + ":" + parts[1] + "-" + parts[2])


def _start_shift(missing: pd.Index, names: pd.Index) -> int:
    """Return the start shift (+1 or -1) that finds most ``missing`` peaks in ``names``, or 0.

    BED files and 10x name peaks 0-based, R's GRanges (Signac, ArchR) 1-based: the same peak
    is ``chr1:100-200`` in one and ``chr1:101-200`` in the other.
    """
    peaks = [m for m in missing if PEAK_NAME_RE.match(m)]
    if not peaks:
        return 0
    theirs = _peak_keys(names)
    for shift in (1, -1):
        moved = _peak_keys(pd.Index([_shifted(p, shift) for p in peaks]))
        if moved.isin(theirs).mean() >= 0.5:
            return shift
    return 0


def _shifted(name: str, shift: int) -> str:
    """``name`` (``chr1:100-200``) with its start moved by ``shift``, separators kept."""
    match = PEAK_NAME_RE.match(name)
    start = str(int(match[2]) + shift)
    return name[: match.start(2)] + start + name[match.end(2) :]


def _unique_lookup(keys: pd.Index, side: str = "data") -> pd.Index:
    """``keys`` with duplicated entries made unmatchable, so ``get_indexer`` skips them.

    ``side`` tells the placeholders of the two sides of a lookup apart (``"data"`` for the
    index searched, ``"model"`` for the keys looked up), so that they never match each other.
    """
    dup = keys.duplicated(keep=False)
    if not dup.any():
        return keys
    out = np.asarray(keys, dtype=object).copy()
    out[dup] = [f"\0ambiguous {side} {i}" for i in np.flatnonzero(dup)]
    return pd.Index(out)


def _naming_hints(
    var: pd.DataFrame, missing: pd.Index, raw_names: pd.Index | None = None
) -> tuple[str, str]:
    """Why the ``missing`` features are not in ``var``, where ``var`` itself tells.

    Returns two hints (each ``""`` when it does not apply): duplicated ``var_names`` (they
    never match), and the names being elsewhere: another column of ``var`` holding them
    (CELLxGENE's ``feature_name``, 10x's ``gene_symbols`` with Ensembl ids as names), in
    ``.raw`` (``raw_names``: scanpy keeps every gene there before subsetting to highly
    variable ones), or names that differ only in letter case (another species) or punctuation
    (R's ``make.names``).
    """
    names = pd.Index([str(v) for v in var.index])
    dup = missing[missing.isin(names[names.duplicated(keep=False)])]
    duplicated = (
        f" Duplicated in the data's `var_names`, so never matched: {_listing(dup)}; make the "
        "names unique (`adata.var_names_make_unique()`) or drop the duplicates."
        if len(dup)
        else ""
    )
    enough = max(1, len(missing) // 2)
    n_raw = int(missing.isin(raw_names).sum()) if raw_names is not None else 0
    if n_raw >= enough:
        return duplicated, (
            f" `.raw` holds {n_raw} of them (scanpy keeps every gene there before the data is "
            "subset to highly variable genes): predict from `adata.raw.to_adata()` (in a "
            "MuData: `mdata.mod['rna'] = mdata['rna'].raw.to_adata()`)."
        )
    for col in var.columns:
        if col == "gene_ids" or not (
            pd.api.types.is_object_dtype(var[col])
            or isinstance(var[col].dtype, pd.CategoricalDtype)
            or pd.api.types.is_string_dtype(var[col])
        ):
            continue
        n = int(missing.isin(pd.Index(var[col].astype(str))).sum())
        if n >= enough:
            return duplicated, (
                f" `var[{col!r}]` holds {n} of the missing features by name: use it as the "
                f"names (`adata.var_names = adata.var[{col!r}].astype(str)`, then "
                "`adata.var_names_make_unique()`)."
            )
    absent = missing[~missing.isin(names)]
    loose = pd.Series(names, index=names.str.upper().str.replace(r"[.\-_]", "", regex=True))
    loose = loose[~loose.index.duplicated()]
    keys = absent.str.upper().str.replace(r"[.\-_]", "", regex=True)
    near = np.flatnonzero(keys.isin(loose.index))
    if len(near) >= enough:
        example, theirs = absent[near[0]], loose[keys[near[0]]]
        if example.upper() == theirs.upper():
            why = (
                "human gene symbols are upper case, mouse ones capitalised, and a model of one "
                "species does not predict the other's cells"
            )
        else:
            why = "R's `make.names` turns `-` into `.` (`HLA-DRA` → `HLA.DRA`)"
        return duplicated, (
            f" {len(near)} of them differ only in letter case or punctuation (the model's "
            f"{example!r}, the data's {theirs!r}): {why}; if these are the same genes, "
            "rename the data's `var_names` to the model's (`model.source_features`)."
        )
    return duplicated, ""


def match_features(
    var: pd.DataFrame, features: Sequence[str], feature_ids: Sequence[str] | None = None
) -> tuple[np.ndarray, int, int]:
    """Position in ``var`` of each of the model's ``features`` (``-1``: missing).

    Names are matched first. When every feature of the model is a peak name, a peak still
    missing is then matched by its coordinates, whatever the separators and ``chr`` prefix
    (``chr1:100-200``, ``chr1-100-200``, ``chr1_100_200`` and ``1:100-200`` are one peak),
    read from the names or, for names that are not coordinates, from ``var`` columns
    ``chrom``, ``start`` and ``end``.
    A feature still missing is then matched through the Ensembl-style ids of
    ``var['gene_ids']`` (against the model's stored ids, or its names when those are ids), or
    the model's stored ids against ``var_names``. Version suffixes of ids are ignored and
    ambiguous (duplicated) names, coordinates or ids never match, on either side: two model
    features of one name (Cell Ranger's gene symbols) are found by their ids only.

    Returns
    -------
    The positions, how many features were matched by peak coordinates and how many by id.
    """
    features = pd.Index([str(f) for f in features])
    names = pd.Index([str(v) for v in var.index])
    # a name the model has twice (10x gene symbols) says not which column is which: ids do
    idx = _unique_lookup(names).get_indexer(_unique_lookup(features, "model"))
    if (idx >= 0).all():
        return idx, 0, 0
    by_peak = 0
    wanted_peaks = _peak_keys(features)
    if len(features) and wanted_peaks.notna().all():
        keys = _peak_keys(names)
        if keys.isna().any() and {"chrom", "start", "end"} <= set(var.columns):
            # peaks named otherwise (`peak_1`) but with coordinate columns
            coords = var["chrom"].astype(str) + "_" + var["start"].astype(str)
            coords = coords + "_" + var["end"].astype(str)
            keys = pd.Index(np.where(keys.isna(), _peak_keys(pd.Index(coords)), keys))
        keys = pd.Index(
            np.where(keys.isna(), [f"\0not a peak {i}" for i in range(len(keys))], keys)
        )
        found = _unique_lookup(keys).get_indexer(_unique_lookup(wanted_peaks, "model"))
        taken = np.zeros(len(names), dtype=bool)
        taken[idx[idx >= 0]] = True
        take = (idx < 0) & (found >= 0)
        take[take] &= ~taken[found[take]]
        idx[take] = found[take]
        by_peak = int(take.sum())
    if (idx >= 0).all():
        return idx, by_peak, 0
    n_before_ids = int((idx >= 0).sum())
    wanted = [_unique_lookup(_strip_version(features), "model")]
    if feature_ids is not None:
        wanted.insert(0, _unique_lookup(_strip_version(feature_ids), "model"))
    columns = [_unique_lookup(_strip_version(names))]
    if "gene_ids" in var.columns:
        columns.insert(0, _unique_lookup(_strip_version(var["gene_ids"].astype(str))))
    used = np.zeros(len(names), dtype=bool)
    used[idx[idx >= 0]] = True
    for keys in wanted:
        for lookup in columns:
            found = lookup.get_indexer(keys)
            take = (idx < 0) & (found >= 0)
            take[take] &= ~used[found[take]]
            # one var column for one feature: keep the first feature asking for it
            cols = found[take]
            first = np.zeros(len(take), dtype=bool)
            _, keep = np.unique(cols, return_index=True)
            first[np.flatnonzero(take)[keep]] = True
            idx[first] = found[first]
            used[found[first]] = True
    return idx, by_peak, int((idx >= 0).sum()) - n_before_ids


def check_orientation(obs_names, var_names, features: Sequence[str], arg: str) -> None:
    """Refuse data whose cells are the model's features: a features × cells matrix.

    R (Seurat, ``dgCMatrix``) and Matrix Market files store features × cells; read as they are,
    the cells become features and nothing matches.
    """
    features = pd.Index([str(f) for f in features])
    if not len(features):
        return
    if features.isin(pd.Index(var_names).astype(str)).mean() >= 0.5:
        return  # the usual case: the cells' names are not read
    in_obs = features.isin(pd.Index(obs_names).astype(str)).mean()
    if in_obs >= 0.5:
        msg = (
            f"`{arg}` looks transposed: {100 * in_obs:.0f}% of the model's {len(features)} "
            "features are names of its cells (`obs_names`), not of its features. Matrices from "
            "R (Seurat, dgCMatrix) and Matrix Market files hold features × cells: transpose "
            "it (`adata = adata.T.copy()`)."
        )
        raise ValueError(msg)


def align_features(
    X,
    var: pd.DataFrame,
    features: Sequence[str],
    *,
    feature_ids: Sequence[str] | None = None,
    allow_missing: bool,
    min_overlap: float,
    arg: str,
    raw_names: pd.Index | None = None,
):
    """Reorder the columns of ``X`` to the model's ``features`` (see :func:`match_features`).

    Below ``min_overlap`` (fraction of the features found) this raises a ``ValueError``; other
    missing features raise a ``KeyError`` listing them unless ``allow_missing``, when they are
    left at 0 here with a warning (the caller fills them); extra features (the rest of a
    transcriptome) are dropped and counted.

    Returns
    -------
    The aligned matrix and a report: ``n_features``, ``n_found``, ``fraction_found``,
    ``n_matched_by_coordinates`` (peaks), ``n_matched_by_id``, ``n_ignored`` (features of the
    data the model does not read) and the bool array ``found`` (not JSON).
    """
    import warnings

    if not 0 <= min_overlap <= 1:
        msg = f"`min_feature_overlap={min_overlap}` must be a fraction between 0 and 1."
        raise ValueError(msg)

    features = pd.Index([str(f) for f in features])
    n = len(features)
    idx, by_peak, by_id = match_features(var, features, feature_ids)
    present = idx >= 0
    n_found = int(present.sum())
    report = {
        "n_features": n,
        "n_found": n_found,
        "fraction_found": n_found / n if n else 1.0,
        "n_matched_by_coordinates": by_peak,
        "n_matched_by_id": by_id,
        "found": present,
    }
    missing = features[~present]
    refused = len(missing) > 0 and (report["fraction_found"] < min_overlap or not allow_missing)
    duplicated, elsewhere = _naming_hints(var, missing, raw_names) if refused else ("", "")
    share = f"{n_found} of the model's {n} features ({100 * report['fraction_found']:.0f}%)"
    if report["fraction_found"] < min_overlap:
        unnamed = next(
            ((who, names) for who, names in (("model's", features), (f"`{arg}`'s", var.index))
             if _placeholders(names)),
            None,
        )  # fmt: skip
        if unnamed is not None:
            hint = (
                f" The {unnamed[0]} features have no names, only positions ({unnamed[1][0]!r}, "
                f"{unnamed[1][1 % len(unnamed[1])]!r}, …): such data (e.g. "
                "`scmm.datasets.pbmc10k_cite`) cannot be matched to named features. Train and "
                "predict on data with real feature names."
            )
        elif _peak_keys(features).notna().all() and (
            shift := _start_shift(missing, var.index.astype(str))
        ):
            hint = (
                f" Most of them are there with a start {abs(shift)} bp "
                f"{'higher' if shift > 0 else 'lower'} ({missing[0]!r} here is "
                f"{_shifted(missing[0], shift)!r}): the same peaks written "
                f"{'1-based (R GRanges, Signac, ArchR)' if shift > 0 else '0-based (BED, 10x)'}. "
                f"Write the query's starts {'minus' if shift > 0 else 'plus'} 1."
            )
        elif _peak_keys(features).notna().all():
            hint = (
                " Peaks were matched by their coordinates too (`chr1:100-200`, `chr1-100-200` "
                "and `chr1_100_200` alike): these cells were counted on other peaks (or another "
                "genome build). Count their fragments on the model's peaks "
                "(`model.source_features`)."
            )
        elif elsewhere:
            hint = elsewhere
        elif "gene_ids" in var.columns:
            hint = " Ids in `var['gene_ids']` were used where names differ."
        else:
            hint = (
                " If the training data named genes differently (symbols vs Ensembl ids), add "
                "the ids as `var['gene_ids']`."
            )
        msg = (
            f"Only {share} are in `{arg}`, below `min_feature_overlap={min_overlap}`: "
            f"predictions would rest on filled-in values. Missing: {_listing(missing)}."
            f"{duplicated}{hint} "
            "Use data measuring the model's features, or lower `min_feature_overlap` knowingly."
        )
        raise ValueError(msg)
    if len(missing) and not allow_missing:
        msg = (
            f"{len(missing)} of the model's {n} features are missing from `{arg}` "
            f"({share} found): {_listing(missing)}.{duplicated}{elsewhere} "
            f"{'Otherwise pass' if duplicated or elsewhere else 'Pass'} "
            "`allow_missing_features=True` to fill them at their training means, or refit the "
            "model on the features both have (genes renamed between annotation versions: "
            "`reference[:, reference.var_names.isin(query.var_names)]`)."
        )
        raise KeyError(msg)
    if len(missing):
        warnings.warn(
            f"Filling {len(missing)} features missing from `{arg}` at their training means "
            f"({share} found): {_listing(missing)}.",
            UserWarning,
            stacklevel=4,
        )
    # features the model does not read (the rest of a transcriptome): normal, only counted
    report["n_ignored"] = len(var) - int(present.sum())
    if present.all() and np.array_equal(idx, np.arange(len(var))):
        return X, report
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        cols = X[:, idx[present]]
        if present.all():
            return cols, report
        out = sp.lil_matrix((X.shape[0], n), dtype=X.dtype)
        out[:, np.flatnonzero(present)] = cols
        return out.tocsr(), report
    X = np.asarray(X)
    out = np.zeros((X.shape[0], n), dtype=X.dtype)
    out[:, present] = X[:, idx[present]]
    return out, report


def fill_missing(X, found: np.ndarray, values: np.ndarray | None):
    """Set the columns of ``X`` not ``found`` to ``values`` (training means; ``None``: 0)."""
    if found.all() or values is None:
        return X
    cols = np.flatnonzero(~found)
    fill = np.asarray(values, dtype=np.float32)[cols]
    if sp.issparse(X):
        block = sp.csr_matrix(np.broadcast_to(fill, (X.shape[0], len(cols))))
        keep = np.flatnonzero(found)
        out = sp.hstack([X[:, keep], block], format="csr")
        order = np.argsort(np.concatenate([keep, cols]), kind="stable")
        return out[:, order]
    X = np.array(X, dtype=np.result_type(X.dtype, np.float32))
    X[:, cols] = fill
    return X
