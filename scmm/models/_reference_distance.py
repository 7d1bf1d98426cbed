"""How far cells lie from a model's training cells, in the model's input embedding.

A model trained on one dataset extrapolates on cells unlike any it saw (another lab, chemistry
or tissue, a cell type absent from the reference), and nothing in its predictions says so.
:class:`ReferenceDistance` measures it: the statistic of a cell is its mean Euclidean distance
to its ``k`` nearest training cells in the SVD embedding the model reads (the projection on
the model's input SVD components, before any per-component scaling), divided by the median of
the same statistic over training cells (each leaving itself out). About 1 is a typical
reference cell; the reference's own 95th and 99th percentiles are kept to say how many query
cells lie beyond them.

The state is compact and saved with the model (its ``reference_distance`` attribute, whose
arrays :mod:`scmm.models._persist` saves under :data:`PREFIX`): the embeddings of at most
:data:`MAX_REFERENCE` training cells (a random subsample, seed fixed, so the model's own random
stream is untouched) and the quantiles of the leave-one-out statistic over at most
:data:`MAX_CALIBRATION` training cells.
"""

from __future__ import annotations

import warnings

import numpy as np

from .._utils import project

#: Prefix of the saved arrays in the model's safetensors file.
PREFIX = "reference_distance."
#: Neighbours averaged in the statistic.
N_NEIGHBORS = 10
#: Most training cells whose embeddings are kept (the neighbours are searched among them).
MAX_REFERENCE = 2000
#: Most training cells whose leave-one-out statistic gives the reference's distribution.
MAX_CALIBRATION = 5000
#: Warn when more than this share of the query lies beyond the reference's 99th percentile
#: (about 0.01 for cells exchangeable with the reference) and that many are unlikely by chance
#: (:data:`WARN_P_VALUE`). Chosen on the visible pairs (docs, *Across datasets*): held-out cells
#: of every bundled dataset stay at or below 1%, REAP-seq run 2 → run 3 at 1.2–3.9%, REAP-seq →
#: 10x 5′ PBMC (another lab and chemistry, prepared the same way) at 7–19%.
WARN_SHARE = 0.05
#: Largest binomial tail probability of the query's count beyond the 99th percentile (under
#: the 1% expected for cells like the reference) that warns: small queries need more cells.
WARN_P_VALUE = 1e-3
_LEVELS = np.linspace(0.0, 1.0, 101)


def input_encoder(model):
    """Return the fitted input encoder whose SVD components define ``model``'s embedding.

    An ensemble uses the first of its members that has one; ``None`` when the model reads no
    SVD embedding (e.g. raw features only, or gene activity).
    """
    fitted = getattr(model, "fitted", None)
    candidates = [m[0] for m in fitted if m] if fitted else [model]
    for candidate in candidates:
        enc = getattr(candidate, "encoder", None)
        if enc is not None and getattr(enc, "components", None) is not None:
            return enc
    return None


def embed(encoder, X) -> np.ndarray:
    """Rows of ``X`` (dense, sparse, backed or a row subset) on the encoder's SVD components.

    Float32 and unscaled: Euclidean distances there are those of the cells' projections.
    """
    return project(X, encoder.components)


def knn_statistic(
    Z: np.ndarray,
    reference: np.ndarray,
    *,
    exclude: np.ndarray | None = None,
    groups: tuple[np.ndarray, np.ndarray] | None = None,
    chunk: int = 2048,
) -> np.ndarray:
    """Mean Euclidean distance of each row of ``Z`` to its nearest rows of ``reference``.

    ``exclude`` holds, per row of ``Z``, a reference row it may not use (itself; -1: none).
    ``groups`` is a pair of labels, of the rows of ``Z`` and of the reference rows: a row may
    not use reference rows of its own label (e.g. its cross-fitting fold).
    """
    ref = np.asarray(reference, np.float64)
    ref_sq = (ref**2).sum(axis=1)
    out = np.empty(Z.shape[0])
    for a in range(0, Z.shape[0], chunk):
        z = np.asarray(Z[a : a + chunk], np.float64)
        d2 = (z**2).sum(axis=1)[:, None] + ref_sq[None] - 2.0 * z @ ref.T
        if exclude is not None:
            ex = exclude[a : a + chunk]
            rows = np.flatnonzero(ex >= 0)
            d2[rows, ex[rows]] = np.inf
        if groups is not None:
            d2[groups[0][a : a + chunk, None] == groups[1][None]] = np.inf
        k = min(N_NEIGHBORS, int(np.isfinite(d2).sum(axis=1).min()))
        near = np.partition(d2, k - 1, axis=1)[:, :k]
        out[a : a + chunk] = np.sqrt(np.clip(near, 0.0, None)).mean(axis=1)
    return out


class ReferenceDistance:
    """The reference's embeddings and the distribution of its own k-NN statistic.

    Parameters
    ----------
    reference
        Embeddings of the kept training cells (cells × components).
    quantiles
        Quantiles 0, 0.01, …, 1 of the leave-one-out statistic over training cells.
    """

    def __init__(self, reference: np.ndarray, quantiles: np.ndarray):
        self.reference = np.asarray(reference, np.float32)
        self.quantiles = np.asarray(quantiles, np.float64)

    @classmethod
    def fit(cls, Z: np.ndarray) -> tuple[ReferenceDistance, np.ndarray, np.ndarray]:
        """Fit on the embeddings ``Z`` of training cells.

        Returns
        -------
        The fitted object, the positions (in ``Z``) of the kept reference cells, and the
        leave-one-out ratio of every row of ``Z`` (each cell's own row excluded).
        """
        gen = np.random.default_rng(0)  # fixed: the model's random stream is not touched
        n = Z.shape[0]
        order = gen.permutation(n)
        kept = np.sort(order[:MAX_REFERENCE])
        reference = np.asarray(Z[kept], np.float32)
        raw = knn_statistic(Z, reference, exclude=_self_index(n, kept))
        calibration = order[:MAX_CALIBRATION]
        quantiles = np.quantile(raw[calibration], _LEVELS)
        out = cls(reference, quantiles)
        return out, kept, raw / out.scale

    @property
    def scale(self) -> float:
        """Median leave-one-out statistic of the training cells (the ratio's unit)."""
        return float(max(self.quantiles[50], 1e-12))

    def ratio(self, Z: np.ndarray, *, groups=None) -> np.ndarray:
        """Statistic of the cells ``Z`` over the reference's median (1: a typical training cell).

        ``groups`` as in :func:`knn_statistic`.
        """
        return knn_statistic(Z, self.reference, groups=groups) / self.scale

    def summary(self, ratio: np.ndarray) -> dict[str, float]:
        """Share of cells beyond the reference's 95th and 99th percentiles, median ratio."""
        q95, q99 = self.quantiles[95] / self.scale, self.quantiles[99] / self.scale
        return {
            "share_beyond_reference_95": float((ratio > q95).mean()),
            "share_beyond_reference_99": float((ratio > q99).mean()),
            "median_ratio": float(np.median(ratio)),
            "reference_95": float(q95),
            "reference_99": float(q99),
            "n_neighbors": N_NEIGHBORS,
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays to save with the model, named with :data:`PREFIX`."""
        return {f"{PREFIX}reference": self.reference, f"{PREFIX}quantiles": self.quantiles}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ReferenceDistance | None:
        """Rebuild from saved arrays (those of :meth:`arrays`); ``None`` if there are none."""
        if f"{PREFIX}reference" not in arrays:
            return None
        return cls(arrays[f"{PREFIX}reference"], arrays[f"{PREFIX}quantiles"])

    @staticmethod
    def of(model) -> ReferenceDistance | None:
        """Return the state stored on ``model``, or ``None`` (models fitted before it existed)."""
        return getattr(model, "reference_distance", None)


def _self_index(n: int, kept: np.ndarray) -> np.ndarray:
    """Per row of ``Z``, its own position among the kept reference rows (-1: not kept)."""
    out = np.full(n, -1, dtype=np.int64)
    out[kept] = np.arange(len(kept))
    return out


def attach(model, X) -> np.ndarray | None:
    """Fit the reference distance on the training rows ``X`` and store it on ``model``.

    Returns the leave-one-out ratio of every training row (``None`` when the model reads no
    SVD embedding; then nothing is stored).
    """
    encoder = input_encoder(model)
    if encoder is None:
        return None
    model.reference_distance, _, ratio = ReferenceDistance.fit(embed(encoder, X))
    return ratio


def query_ratio(model, X) -> tuple[np.ndarray, ReferenceDistance] | None:
    """Ratio of every row of ``X`` (aligned source of new cells) and the stored state."""
    state = ReferenceDistance.of(model)
    encoder = input_encoder(model)
    if state is None or encoder is None:
        return None
    return state.ratio(embed(encoder, X)), state


#: Coverage of an ensemble's nominal 90% intervals measured on query values
#: (``benchmarks/transfer.py --methods ensemble``, 3 seeds; docs, *Across datasets*), quoted
#: by the shift warning: (what was measured, coverage).
MEASURED_COVERAGE = (
    ("another run of the same lab (REAP-seq run to run)", "86–91%"),
    ("another lab and chemistry (REAP-seq → 10x 5′ PBMC)", "3%"),
    ("10x 3′ → 10x 5′ PBMC", "38%"),
)


def shift_message(summary: dict[str, float], key: str, interval: float | None = None) -> str:
    """Return the warning for a query far from the reference: the numbers, what to do.

    ``interval``: the nominal coverage of the model's prediction intervals (an ensemble's),
    or None when the model has none; then the warning says how far to trust them.
    """
    out = (
        f"{summary['share_beyond_reference_99']:.0%} of the query cells lie farther from the "
        f"reference than 99% of the reference's own cells do (median distance ratio "
        f"{summary['median_ratio']:.2f}; expected about 1% and 1.0 for cells like the "
        f"reference), so `{key}` extrapolates for them: predictions are less accurate there "
        f"and protein levels may be offset. Check `.obs['{key}_reference_distance']` per cell "
        "and type; consider a reference from the same technology and tissue, or the query's "
        "own measured proteins for a few cells to check against. For a whole dataset from "
        "another lab with the reference's cell types, `align='symphony'` may help a little "
        "(not for a subset of cell types)."
    )
    if interval is None:
        return out
    measured = "; ".join(f"{what}: {cov}" for what, cov in MEASURED_COVERAGE)
    return out + (
        f" The {interval:.0%} intervals `{key}_lower` / `{key}_upper` are calibrated on the "
        "reference's cells and under-cover on shifted cells: they widen with the distance, but "
        "the error across labs is mostly each antibody's level offset, which no RNA distance "
        f"sees. Coverage of nominal 90% intervals measured on query values: {measured}. Do not "
        "read them as error bars for this query; with the targets of a few of its cells "
        "measured (50 were enough), `scmm.tl.calibrate` sets levels and intervals on them."
    )


def shifted(share_beyond_99: float, n_cells: int) -> bool:
    """Whether a query with ``share_beyond_99`` of ``n_cells`` past the 99th percentile shifted.

    More than ``WARN_SHARE`` of the cells, and a count unlikely for cells like the reference
    (binomial tail below ``WARN_P_VALUE``).
    """
    from scipy.stats import binom

    k = round(share_beyond_99 * n_cells)
    return share_beyond_99 > WARN_SHARE and binom.sf(k - 1, n_cells, 0.01) < WARN_P_VALUE


def check_query(model, X, key: str) -> tuple[np.ndarray, dict[str, float]] | None:
    """Ratio and summary for the new cells ``X``; warns once when many lie outside.

    ``None`` when the model stores no reference distance (no SVD input, or saved before it
    existed).
    """
    found = query_ratio(model, X)
    if found is None:
        return None
    ratio, state = found
    summary = state.summary(ratio)
    if shifted(summary["share_beyond_reference_99"], len(ratio)):
        interval = None  # the nominal coverage of the model's intervals, if it has any
        if getattr(model, "half_width", None) is not None:
            interval = model.params.get("interval")
        warnings.warn(shift_message(summary, key, interval), UserWarning, stacklevel=3)
    return ratio.astype(np.float32), summary
