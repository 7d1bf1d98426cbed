"""Refuse a query prepared in another space than the model's recorded normalisation.

:mod:`scmm._input_space` warns when a query lies far outside the training inputs. This module
turns the cases that can be told apart for certain into errors, when the model knows the
:func:`scmm.pp.normalize` call that made its training values:

- ``"log_cp10k"`` values are ``ln(x / rowsum · 10⁴ + 1)``: undoing the log (``e**v − 1``)
  gives per-cell sums equal to 10,000 in every cell, to float32 rounding. Another
  normalisation leaves its own fingerprint: ``2**v − 1`` (log2) or ``10**v − 1`` (log10) sums
  to one value in every cell, or the values themselves do (no log), or ``e**v − 1`` does, but
  to another total (e.g. scanpy's default ``target_sum``, the median count); or ``e**v − 1``
  gives whole numbers whose per-cell sums differ (``log1p`` of raw or corrected counts,
  such as Seurat SCTransform's ``data``); or ``2**v − 1`` (``10**v − 1``) gives, in each
  cell, whole multiples of its smallest value (log2 of counts over any per-cell factor, such
  as scran's deconvolution size factors).
- Values standardised per feature (``sc.pp.scale``: negative values, each feature's mean 0 and
  standard deviation 1) for a model trained on values that were not.

The error names the :func:`scmm.pp.normalize` call to run (and ``normalize=True`` when the
query holds raw counts). A query whose sums match no transform (e.g. features subset after
normalising) is left to the warnings of :mod:`scmm._input_space`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .pp import TARGET_SUM

#: Cells read for the per-cell sums (the first ones): medians over this many are stable.
SAMPLE_CELLS = 2_048
#: Fewer query cells than this: no conclusion (with one cell every transform's sums are
#: "equal across cells", and per-feature means and deviations mean nothing).
MIN_CELLS = 10
#: A transform's per-cell sums are "equal in every cell" when their median relative deviation
#: from their median is below this. The right inverse gives equal sums to float32 rounding
#: (~1e-6); a wrong one spreads them by 4–40% on every bundled dataset (e.g. ``2**v − 1`` of
#: ln values: 4.3% on bmmc_cite, 6.4% on mop_snare2), so 0.5% is far from both.
EQUAL_SUMS = 0.005
#: ``e**v − 1`` summing to within this factor of the target sum is the training space: a
#: 10% other target moves each value by at most ln 1.1 ≈ 0.1, below the spread of a gene
#: between cells of one type; beyond it, the query is refused.
TARGET_SUM_FACTOR = 1.1
#: A log of whole counts (:func:`_log_of_counts`): undone, at least ``WHOLE_SHARE`` of the
#: values below ``WHOLE_BELOW`` (at least ``MIN_WHOLE`` of them) lie within
#: ``WHOLE_TOLERANCE`` of a whole number. float32 keeps ``e**v − 1`` of counts below 100
#: whole to ~1e-4; ln(CP10k + 1) values of the bundled datasets do in 2–13% of entries.
WHOLE_BELOW, WHOLE_TOLERANCE, WHOLE_SHARE, MIN_WHOLE = 100.0, 0.01, 0.99, 100
#: Standardised: median |feature mean| below this and median |feature sd − 1| below this.
STANDARD_TOLERANCE = 0.1
_LN_MAX = float(np.log1p(TARGET_SUM))  # the largest ln(CP10k + 1) value: one gene per cell
_INVERSES = {  # how the values would have been made → how to undo it
    "ln": ("ln(x + 1)", "e**v − 1", np.expm1),
    "log2": ("log2(x + 1)", "2**v − 1", lambda v: np.exp2(v) - 1),
    "log10": ("log10(x + 1)", "10**v − 1", lambda v: np.power(10.0, v) - 1),
    "none": ("x without a log", "v", lambda v: v),
}


def _first_rows(X, n: int):
    """Return the first ``n`` rows of ``X`` in memory (CSR or float64 ndarray)."""
    part = X[: min(n, X.shape[0])]
    if hasattr(part, "to_memory"):  # a backed sparse dataset's rows
        part = part.to_memory()
    if sp.issparse(part):
        return sp.csr_matrix(part, dtype=np.float64)
    return np.asarray(part, dtype=np.float64)


def _row_sums(part, inverse) -> np.ndarray:
    """Per-row sums of ``inverse`` of the values (each inverse maps 0 to 0)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if sp.issparse(part):
            out = part.copy()
            out.data = inverse(out.data)
            return np.asarray(out.sum(axis=1)).ravel()
        return inverse(part).sum(axis=1)


def _equal_sums(sums: np.ndarray) -> float | None:
    """Return the median of ``sums`` if they are equal in (nearly) every cell, else ``None``."""
    if not np.isfinite(sums).all():
        return None
    median = float(np.median(sums))
    if median <= 0 or np.median(np.abs(sums / median - 1)) > EQUAL_SUMS:
        return None
    return median


def _log_cp10k_space(part) -> str | None:
    """Describe how a query differs from ln(CP10k + 1), or ``None`` (it matches, or unknown).

    Every candidate (a log of ``x + 1``, or no log) is non-negative: a query with negative
    values is none of them (e.g. shifted values, left to the warnings).
    """
    values = part.data if sp.issparse(part) else part
    if values.size and values.min() < 0:
        return None
    found = {}
    for name, (_, _, inverse) in _INVERSES.items():
        total = _equal_sums(_row_sums(part, inverse))
        if total is not None:
            found[name] = total
    ln = found.get("ln")
    if ln is not None and 1 / TARGET_SUM_FACTOR <= ln / TARGET_SUM <= TARGET_SUM_FACTOR:
        return None
    if not found:
        positive = values[values > 0]
        if positive.size and np.mean(_whole(positive)) > 0.5:
            return None  # whole numbers themselves (raw counts): told apart by their own check
        return _log_of_counts(positive) or _other_base_of_scaled_counts(part)
    name, total = min(found.items(), key=lambda kv: abs(np.log(kv[1] / TARGET_SUM)))
    made, undo, _ = _INVERSES[name]
    total = f"{total:,.0f}" if total >= 10 else f"{total:.3g}"
    return f"{made} of counts scaled to {total} per cell ({undo} sums to {total} in every cell)"


def _whole(values: np.ndarray) -> np.ndarray:
    """Which of ``values`` lie within ``WHOLE_TOLERANCE`` of a whole number."""
    return np.abs(values - np.round(values)) < WHOLE_TOLERANCE


def _mostly_whole(values: np.ndarray) -> bool:
    """Whether nearly all ``values`` below ``WHOLE_BELOW`` are whole (see the constants)."""
    small = values[values < WHOLE_BELOW]
    return small.size >= MIN_WHOLE and np.mean(_whole(small)) >= WHOLE_SHARE


def _log_of_counts(values: np.ndarray) -> str | None:
    """Describe a log of whole counts not scaled per cell, or ``None`` (``values``: > 0).

    ``log1p`` of raw counts (``sc.pp.log1p`` without ``normalize_total``) or of corrected
    counts (Seurat SCTransform's ``data``): undoing the log gives whole numbers in (nearly)
    every entry, while their per-cell sums differ (checked before).
    """
    for name in ("ln", "log2", "log10"):
        made, undo, inverse = _INVERSES[name]
        with np.errstate(over="ignore"):
            counts = inverse(values)
        if _mostly_whole(counts):
            return (
                f"{made} of counts not scaled to a common total ({undo} are whole numbers whose "
                "per-cell sums differ: e.g. `log1p` of raw counts without `normalize_total`, "
                "or Seurat SCTransform's `data`)"
            )
    return None


def _other_base_of_scaled_counts(part) -> str | None:
    """Describe log2 or log10 of counts over a per-cell factor, or ``None``.

    Undone, each cell's values are whole multiples of its smallest one (a count of one over
    the cell's factor), whatever the factors (scran's deconvolution size factors too, which
    leave per-cell sums unequal). The natural log is not judged this way: ln(CP10k + 1) of
    cells whose features were subset after normalising looks the same and is the model's space.
    """
    csr = sp.csr_matrix(part)
    if csr.nnz < MIN_WHOLE:
        return None
    rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
    for name in ("log2", "log10"):
        made, undo, inverse = _INVERSES[name]
        with np.errstate(over="ignore"):
            values = inverse(csr.data)
        smallest = np.full(csr.shape[0], np.inf)
        np.minimum.at(smallest, rows, np.where(values > 0, values, np.inf))
        ratios = values / smallest[rows]
        if _mostly_whole(ratios[np.isfinite(ratios)]):
            return (
                f"{made} of counts scaled by a per-cell factor ({undo} are whole multiples of "
                "each cell's smallest value: e.g. scran / scater `logNormCounts`, exported as "
                "`logcounts`)"
            )
    return None


def _standardised(mean: np.ndarray, sd: np.ndarray) -> tuple[float, float] | None:
    """Median |mean| and |sd − 1| over features with variance, when both look standardised."""
    ok = sd > 0
    if not ok.any():
        return None
    centre = float(np.median(np.abs(mean[ok])))
    spread = float(np.median(np.abs(sd[ok] - 1)))
    if centre < STANDARD_TOLERANCE and spread < STANDARD_TOLERANCE:
        return centre, spread
    return None


def normalize_call(mod: str, record: dict[str, Any] | None) -> str:
    """Write the ``scmm.pp.normalize`` call of ``record`` as code (a phrase when unknown)."""
    if record is None:
        return (
            "the way the training data was (the model does not know how: its values were not "
            "made by `scmm.pp.normalize` on `.X`)"
        )
    layer = record.get("layer", "counts")
    args = f"method={record['method']!r}"
    if layer != "counts":
        args += f", layer={None if layer == 'X' else layer!r}"
    if record.get("keep_counts") is False:
        args += ", keep_counts=False"
    return f"`scmm.pp.normalize(mdata, {mod!r}, {args})`"


def check_space(
    space: dict[str, Any],
    query,
    stats: dict[str, Any],
    arrays: dict[str, np.ndarray],
    train_arrays: dict[str, np.ndarray],
    *,
    mod: str,
    arg: str,
    has_counts: bool,
) -> None:
    """Raise a ``ValueError`` when the query's values are clearly in another space.

    Parameters
    ----------
    space
        The model's record of its source (``model.input_space['source']``).
    query
        The query's values as given, on all of its features (before alignment).
    stats
        :func:`scmm._input_space.summarize` statistics of the aligned query.
    arrays, train_arrays
        Per-feature ``mean`` and ``sd`` of the aligned query and of the training cells, on the
        features the query has.
    mod
        Source modality name, for messages.
    arg
        Where the values were read from, for messages.
    has_counts
        The query holds the raw counts the recorded call reads: ``normalize=True`` can repair.
    """
    record = space.get("normalize")
    if record is None or stats["n_cells"] < MIN_CELLS:
        return
    found = None
    consistent = space["min"] >= 0 and space["max"] <= _LN_MAX * (1 + 1e-4)
    if record["method"] == "log_cp10k" and consistent:
        found = _log_cp10k_space(_first_rows(query, SAMPLE_CELLS))
    if found is None and stats["min"] < 0 and "mean" in arrays and "mean" in train_arrays:
        query_z = _standardised(arrays["mean"], arrays["sd"])
        train_z = _standardised(train_arrays["mean"], train_arrays["sd"])
        if query_z is not None and train_z is None:
            found = (
                "values standardised per feature (negative values; feature means a median "
                f"{query_z[0]:.2g} from 0, standard deviations {query_z[1]:.2g} from 1)"
            )
    if found is None:
        return
    call = normalize_call(mod, record)
    made = (
        f"ln(counts scaled to {TARGET_SUM:,.0f} per cell + 1)"
        if record["method"] == "log_cp10k"
        else f"`method={record['method']!r}` values"
    )
    msg = (
        f"`{arg}` holds {found}, but the model was trained on {made}, made by {call}. Run "
        f"{call} on the query's raw counts instead"
        + (
            ", or pass `normalize=True` to have the model normalise its raw counts."
            if has_counts
            else "."
        )
    )
    raise ValueError(msg)
