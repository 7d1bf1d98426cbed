"""A stacked ensemble: member models, per-target convex weights, conformal intervals.

The members are any scmm models (their kind and hyper-parameters are given as JSON specs, so
the ensemble is saved and loaded like every model). Fitting runs K-fold cross-fitting on the
training cells only: each member is fitted on K − 1 folds and predicts the remaining one,
giving an out-of-fold (OOF) prediction for every training cell. The combination weights and
the interval half-widths are learned from those OOF predictions; the members are then refitted
on all training cells.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

import numpy as np

from .. import _keys, metrics
from .._utils import as_generator
from ._base import _MODEL_CLASSES, BaseModel
from ._conformal import EDGE_QUANTILE, conformal_half_width, interval_scale, sigma_slope
from ._neural import NeuralModel
from ._persist import load
from ._reference_distance import ReferenceDistance, embed, input_encoder

logger = logging.getLogger("scmm")

_MEMBERS_DIR = "members"


class EnsembleModel(BaseModel):
    """Members combined per target with non-negative weights summing to one, plus intervals.

    Weights: for each target ``j`` the weights ``w_j`` minimise the squared OOF error
    ``‖y_j − P_j w_j‖²`` over the training cells subject to ``w_j ≥ 0`` and ``Σ w_j = 1``
    (``P_j`` holds the members' OOF predictions of target ``j``), corrected for the members
    whose final predictor averages several seeds (``n_seeds``). A convex combination was
    preferred to a ridge stacker because the members' predictions are strongly correlated:
    unconstrained stacking weights then swing to large opposite values that fit the OOF noise,
    and need a penalty to be tuned; convex weights cannot extrapolate beyond the members, and
    read as "how much each member is trusted for this target". Where the targets are many and
    noisy (genes) or the cells few, per-target weights still follow the noise: they are pulled
    towards weights shared by all targets, by a strength ``shrinkage`` chosen by
    cross-validation over the same folds (``stacking_weights`` in this module).

    Interval: normalised split-conformal on the OOF residuals, per target. Each cell has a
    scale ``σ(d) = 1 + β·max(d / e − 1, 0)``, an increasing function of its distance ``d``
    to the reference (:mod:`scmm.models._reference_distance`: k-NN distance in the input
    embedding over the training cells' median; for an OOF cell, to the reference cells
    outside its own fold, as a new cell sees the whole reference). ``e``
    (:attr:`distance_edge`) is the 99th percentile of the OOF cells' ``d``: within it the
    width is constant, so that cells exchangeable with the training cells keep split-conformal
    coverage (their ``d`` is if anything smaller: the input SVD was fitted on the training
    cells). Beyond it there are almost no cells to calibrate on, and the width grows with the
    distance: ``β`` is the least-squares slope of the cells' mean absolute OOF residual (each
    target over its mean) on ``max(d / e − 1, 0)``, over the intercept, and at least 1 (a
    model's error grows at least in proportion to how far it extrapolates; on bmmc_cite's
    donors the fitted slope is below 1). The half-width ``q_j`` is the ``⌈(n + 1)·interval⌉
    / n`` empirical quantile of ``|y_ij − ŷ_ij| / σ(d_i)`` over the ``n`` training cells
    (``ŷ`` the OOF ensemble prediction), and the interval is ``ŷ ± q_j·σ(d)``. Cells far
    from the reference (another lab, an unseen cell type) get wider intervals. Models whose
    members read no SVD embedding (or saved before this existed) keep ``ŷ ± q_j``
    (:attr:`sigma_slope` ``None``).

    Parameters
    ----------
    members
        Member specs: dicts with ``"kind"`` (a model kind, e.g. ``"baseline"`` or ``"mlp"``)
        and ``"params"`` (its keyword arguments).
    n_folds
        Folds of the cross-fitting.
    n_seeds
        Final fits of each neural member with different seeds, their predictions averaged
        (3, as :func:`scmm.tl.fit_ensemble`'s). The cross-fitting fits each member once per
        fold whatever ``n_seeds``; with
        ``n_seeds > 1`` a neural member is fitted once more on the first fold with another
        seed, which measures its seed-to-seed variance ``σ²`` per target on cells neither fit
        saw, and the weights are fitted for the average of ``n_seeds`` fits: ``n·(1 −
        1/n_seeds)·σ²`` is taken off the member's own squared OOF error (see
        ``convex_weights`` in this module). The intervals stay those of a single fit (slightly
        conservative for the average).
    interval
        Nominal coverage of the intervals, in (0, 1).
    """

    kind = "ensemble"

    def __init__(
        self,
        members: list[dict[str, Any]] | None = None,
        n_folds: int = 5,
        n_seeds: int = 3,
        interval: float = 0.9,
    ):
        members = [dict(m) for m in members or []]
        if not members:
            msg = "`members` is empty; give at least one member spec."
            raise ValueError(msg)
        for m in members:
            if m.get("kind") not in _MODEL_CLASSES or m["kind"] in ("ensemble", "base", "neural"):
                msg = f"Member kind {m.get('kind')!r} is not a model kind scmm can ensemble."
                raise ValueError(msg)
        if int(n_folds) < 2:
            msg = f"`n_folds={n_folds}` must be at least 2."
            raise ValueError(msg)
        if int(n_seeds) < 1:
            msg = f"`n_seeds={n_seeds}` must be at least 1."
            raise ValueError(msg)
        if not 0.0 < float(interval) < 1.0:
            msg = f"`interval={interval}` must lie strictly between 0 and 1 (e.g. 0.9)."
            raise ValueError(msg)
        super().__init__(
            members=members, n_folds=int(n_folds), n_seeds=int(n_seeds), interval=float(interval)
        )
        self.fitted: list[list[BaseModel]] = []
        self.weights: np.ndarray | None = None
        self.half_width: np.ndarray | None = None
        #: ``β`` of the interval's scale ``σ(d) = 1 + β·max(d / e − 1, 0)``; None: constant
        self.sigma_slope: float | None = None
        #: ``e`` of that scale: the 99th percentile of the OOF cells' reference distance
        self.distance_edge: float | None = None
        #: Pull of each target's weights towards shared ones, chosen by cross-validation
        self.shrinkage: float | None = None
        self.oof_scores: dict[str, float] = {}
        self._groups: np.ndarray | None = None
        self._n_fitted: list[int] = []
        #: Gene–peak windows for DeepSets members (used while fitting; each member keeps its own)
        self.windows: dict[str, Any] | None = None

    @property
    def member_names(self) -> list[str]:
        """Names of the members (e.g. ``["ridge", "mlp"]``), in the order of the weights."""
        return [self._build(spec).name for spec in self.params["members"]]

    @staticmethod
    def _build(spec: dict[str, Any]) -> BaseModel:
        return _MODEL_CLASSES[spec["kind"]](**spec["params"])

    def _n_copies(self, spec: dict[str, Any]) -> int:
        cls = _MODEL_CLASSES[spec["kind"]]
        return self.params["n_seeds"] if issubclass(cls, NeuralModel) else 1

    def fit(self, X, Y, *, groups: np.ndarray | None = None, **kwargs) -> EnsembleModel:
        """Fit as :meth:`BaseModel.fit`, keeping each of ``groups`` within one fold.

        ``groups`` holds one label per training cell (e.g. the donor); None: random folds.
        """
        self._groups = groups
        try:
            return super().fit(X, Y, **kwargs)
        finally:
            self._groups = None

    def _fit(self, X, Y, *, X_svd=None, validation=None, rng=None) -> None:
        n = X.shape[0]
        gen = as_generator(rng)
        folds = make_folds(n, self.params["n_folds"], self._groups, gen)
        specs = self.params["members"]
        K = len(folds)
        # one seed per fold and one for the final fit, then those of further final fits:
        # the cross-fitting and the first final fit do not depend on n_seeds
        seeds = gen.integers(0, 2**31 - 1, size=(len(specs), K + 1))
        extra = gen.integers(0, 2**31 - 1, size=(len(specs), self.params["n_seeds"] - 1))
        seeds = np.hstack([seeds, extra])
        twin_seeds = gen.integers(0, 2**31 - 1, size=len(specs))
        oof = np.zeros((len(specs), n, Y.shape[1]), np.float32)
        noise = np.zeros((len(specs), Y.shape[1]))
        for k, val in enumerate(folds):
            tr = np.setdiff1d(np.arange(n), val)
            for m, spec in enumerate(specs):  # one fit per fold, whatever n_seeds
                members = self._fit_member(spec, X[tr], Y[tr], X_svd, seeds[m, k : k + 1])
                oof[m, val] = _mean_prediction(members, X[val])
                if k == 0 and self._n_copies(spec) > 1:
                    twin = self._fit_member(spec, X[tr], Y[tr], X_svd, twin_seeds[m : m + 1])
                    noise[m] = seed_noise_reduction(
                        oof[m, val], _mean_prediction(twin, X[val]), self._n_copies(spec)
                    )
            logger.info("ensemble: fold %d/%d done", k + 1, K)
        self.weights, self.shrinkage, _ = stacking_weights(oof, Y, folds, noise)
        combined = np.einsum("mij,mj->ij", oof, self.weights)
        self.oof_scores = _oof_scores(Y, oof, combined, self.member_names)
        del oof
        self.fitted = [
            self._fit_member(spec, X, Y, X_svd, seeds[m, K : K + self._n_copies(spec)])
            for m, spec in enumerate(specs)
        ]
        self._fit_interval(X, Y - combined, folds)

    def _fit_interval(self, X, residuals: np.ndarray, folds: list[np.ndarray]) -> None:
        """Fit the reference distance, the interval scale's slope and the half-widths."""
        level = self.params["interval"]
        encoder = input_encoder(self)
        if encoder is None:
            self.sigma_slope = None
            self.half_width = conformal_half_width(residuals, level)
            return
        Z = embed(encoder, X)
        state, kept, _ = ReferenceDistance.fit(Z)
        fold_of = np.empty(X.shape[0], dtype=np.int64)
        for k, val in enumerate(folds):
            fold_of[val] = k
        distance = state.ratio(Z, groups=(fold_of, fold_of[kept]))
        self.distance_edge = float(np.quantile(distance, EDGE_QUANTILE))
        self.sigma_slope = sigma_slope(distance / self.distance_edge, residuals)
        scale = interval_scale(distance, self.sigma_slope, self.distance_edge)
        self.half_width = conformal_half_width(residuals / scale[:, None], level)
        self.reference_distance = state

    def _fit_member(self, spec, X, Y, X_svd, seeds) -> list[BaseModel]:
        out = []
        for seed in seeds:
            model = self._build(spec)
            if hasattr(model, "set_windows"):  # a DeepSets member
                if self.windows is None:
                    msg = "A DeepSets member needs `windows` (`scmm.tl.fit_ensemble` sets them)."
                    raise RuntimeError(msg)
                model.set_windows(self.windows)
            model.fit(
                X,
                Y,
                source_features=self.source_features,
                target_features=self.target_features,
                X_svd=X_svd,
                rng=int(seed),
            )
            out.append(model)
        return out

    def predict_array(self, X) -> np.ndarray:
        """Predict the combination (float32, cells × targets) from a source in training order."""
        self._check_fitted()
        out = np.zeros((X.shape[0], len(self.target_features)), np.float32)
        for members, w in zip(self.fitted, self.weights, strict=True):
            out += _mean_prediction(members, X) * w.astype(np.float32)
        return out

    predictions_in_memory = True  # its interval bounds are computed from them

    def derived_outputs(
        self, pred: np.ndarray, distance: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Return the conformal interval's bounds (suffixes ``"_lower"`` and ``"_upper"``)."""
        return dict(zip(_keys.INTERVAL_SUFFIXES, self.interval_bounds(pred, distance), strict=True))

    def interval_bounds(
        self, pred: np.ndarray, distance: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the conformal interval around predictions ``pred``.

        ``distance`` holds each cell's reference-distance ratio (as ``scmm.tl.predict`` writes
        it); needed when the interval widens with it (:attr:`sigma_slope` set).
        """
        self._check_fitted()
        q = self.half_width.astype(np.float32)
        if self.sigma_slope is None:
            return pred - q, pred + q
        if distance is None or len(distance) != len(pred):
            msg = (
                "This ensemble's intervals widen with the reference distance; pass "
                "`distance`, one value per row of `pred` (`scmm.tl.predict` does)."
            )
            raise ValueError(msg)
        scale = interval_scale(distance, self.sigma_slope, self.distance_edge)
        half = q[None] * scale.astype(np.float32)[:, None]
        return pred - half, pred + half

    def _get_state(self):
        meta = {
            "oof_scores": self.oof_scores,
            "n_fitted": [len(m) for m in self.fitted],
            "shrinkage": self.shrinkage,
            "sigma_slope": self.sigma_slope,
            "distance_edge": self.distance_edge,
        }
        arrays = {
            "ensemble.weights": self.weights.astype(np.float64),
            "ensemble.half_width": self.half_width.astype(np.float64),
        }
        return meta, arrays

    def _set_state(self, meta, arrays):
        self.oof_scores = dict(meta["oof_scores"])
        self._n_fitted = list(meta["n_fitted"])
        self.shrinkage = meta.get("shrinkage")  # None: saved before the shrinkage existed
        self.sigma_slope = meta.get("sigma_slope")  # None: constant-width intervals
        self.distance_edge = meta.get("distance_edge")
        self.weights = np.asarray(arrays["ensemble.weights"])
        self.half_width = np.asarray(arrays["ensemble.half_width"])

    def _save_parts(self, folder: Path) -> None:
        for m, members in enumerate(self.fitted):
            for s, model in enumerate(members):
                model.save(folder / _MEMBERS_DIR / f"{m}_{s}")

    def _load_parts(self, folder: Path) -> None:
        self.fitted = [
            [load(folder / _MEMBERS_DIR / f"{m}_{s}") for s in range(count)]
            for m, count in enumerate(self._n_fitted)
        ]


def make_folds(n: int, n_folds: int, groups, gen: np.random.Generator) -> list[np.ndarray]:
    """Split ``n`` cells into ``n_folds`` folds (sorted index arrays), whole groups together.

    Without groups the cells are permuted and cut into near-equal folds. With groups, the
    groups are shuffled and each is given to the fold holding the fewest cells so far.
    """
    if groups is None:
        if n < 2 * n_folds:
            msg = f"{n} training cells are too few for `n_folds={n_folds}`; lower `n_folds`."
            raise ValueError(msg)
        return [np.sort(f) for f in np.array_split(gen.permutation(n), n_folds)]
    labels, codes = np.unique(np.asarray(groups), return_inverse=True)
    if len(labels) < n_folds:
        msg = (
            f"The training cells hold {len(labels)} groups, fewer than `n_folds={n_folds}`; "
            f"pass `n_folds={len(labels)}` or fewer (at least 2), or `groupby=None`."
        )
        raise ValueError(msg)
    sizes = np.bincount(codes)
    fold_of = np.empty(len(labels), dtype=int)
    load_ = np.zeros(n_folds)
    for g in gen.permutation(len(labels)):
        fold_of[g] = int(np.argmin(load_))
        load_[fold_of[g]] += sizes[g]
    return [np.flatnonzero(fold_of[codes] == k) for k in range(n_folds)]


#: Strengths, among which ``stacking_weights`` chooses by cross-validation, of the pull of each
#: target's weights towards weights shared by all targets (0: per target alone; 1: shared).
SHRINKAGE_GRID = (0.0, 0.25, 0.5, 0.75, 0.9, 1.0)


def stacking_weights(
    oof: np.ndarray,
    Y: np.ndarray,
    folds: list[np.ndarray],
    noise_reduction: np.ndarray | None = None,
    grid: tuple[float, ...] = SHRINKAGE_GRID,
) -> tuple[np.ndarray, float, dict[float, float]]:
    """Convex weights per target, pulled towards shared weights as far as the folds advise.

    Per-target weights fitted on noisy OOF errors (few cells, or targets with little signal,
    such as most genes) follow the noise; weights shared by all targets cannot follow a
    target's own best member. Each target's weights minimise ``wᵀ((1 − λ)H_j + λH̄)w``, with
    ``H_j`` its error Gram matrix divided by its sum of squares (so that every target counts
    alike) and ``H̄`` the mean of the ``H_j``. ``λ`` is chosen among ``grid`` by cross-validation
    over the ``folds`` of the cross-fitting: weights fitted on the OOF predictions of all folds
    but one, scored by the mean relative squared error on the one left out (of the
    seed-averaged members, when ``noise_reduction`` is given). No other cell is read.

    Parameters
    ----------
    oof, Y, noise_reduction
        As in :func:`convex_weights`.
    folds
        The cross-fitting's folds (index arrays into the cells).
    grid
        Shrinkage strengths ``λ`` tried, in [0, 1].

    Returns
    -------
    Weights (members × targets), the chosen ``λ``, and the cross-validated loss of each ``λ``.
    """
    n = Y.shape[0]
    reduction = _reduction(noise_reduction, oof.shape[0], Y.shape[1])
    grams = np.stack([error_grams(oof, Y, fold) for fold in folds])
    total = grams.sum(axis=0)
    sums = np.stack([Y[fold].astype(np.float64).sum(axis=0) for fold in folds])
    squares = np.stack([(Y[fold].astype(np.float64) ** 2).sum(axis=0) for fold in folds])
    sizes = np.array([len(fold) for fold in folds], dtype=float)

    def relative(G, s, q, m):  # Gram over the per-target sum of squares about the mean
        return _relative(G, q - s**2 / max(m, 1.0), m, reduction)

    # per fold, the training side and the left-out side, whatever λ
    splits = [
        (
            relative(
                total - grams[k], sums.sum(0) - sums[k], squares.sum(0) - squares[k], n - sizes[k]
            ),
            relative(grams[k], sums[k], squares[k], sizes[k]),
        )
        for k in range(len(folds))
    ]
    losses = {}
    for lam in grid:
        loss = 0.0
        for (H, ok), (H_val, ok_val) in splits:
            W = _shrunk_minimiser(H, ok, lam)
            use = ok & ok_val
            if use.any():
                loss += np.einsum("ti,tij,tj->t", W[use], H_val[use], W[use]).mean()
        losses[float(lam)] = float(loss) / len(folds)
    best = min(losses, key=losses.get)
    H, ok = relative(total, sums.sum(0), squares.sum(0), n)
    return _shrunk_minimiser(H, ok, best).T, best, losses


def convex_weights(
    oof: np.ndarray, Y: np.ndarray, noise_reduction: np.ndarray | None = None
) -> np.ndarray:
    """Per-target weights ``w ≥ 0``, ``Σ w = 1`` minimising the squared OOF error.

    With errors ``e_m = y − ỹ_m``, the error of a convex combination is ``Σ_m w_m e_m``, so
    the weights minimise ``wᵀ G w`` with ``G = Eᵀ E`` (members × members, per target), solved
    exactly by :func:`simplex_minimiser`.

    Parameters
    ----------
    oof
        Members' OOF predictions, members × cells × targets.
    Y
        Measured targets, cells × targets.
    noise_reduction
        Members × targets: how much lower the mean squared error of each member's final
        predictor is than that of its OOF fits because the final predictor averages several
        seeds (``(1 − 1/n_seeds)·σ²``, ``σ²`` the seed-to-seed variance of one fit's
        prediction; 0 for members fitted once). Subtracted from the diagonal of ``G``:
        seed noise is independent of the measured values and of the other members, so it only
        enters a member's own squared error. None: no member averages seeds.

    Returns
    -------
    Weights, members × targets.
    """
    reduction = _reduction(noise_reduction, oof.shape[0], Y.shape[1])
    G = error_grams(oof, Y) - Y.shape[0] * _diagonal(reduction)
    return simplex_minimiser(G).T


def error_grams(
    oof: np.ndarray, Y: np.ndarray, cells: np.ndarray | None = None, chunk: int = 2048
) -> np.ndarray:
    """Per target, the Gram matrix ``EᵀE`` of the members' errors on ``cells`` (all: None).

    Returns targets × members × members (float64), computed a block of targets at a time.
    """
    cells = np.arange(Y.shape[0]) if cells is None else np.asarray(cells)
    n_members, _, n_targets = oof.shape
    out = np.empty((n_targets, n_members, n_members))
    for a in range(0, n_targets, chunk):
        block = slice(a, a + chunk)
        E = Y[cells, block].astype(np.float64)[None] - oof[:, cells, block].astype(np.float64)
        out[block] = np.einsum("mit,kit->tmk", E, E)
    return out


def simplex_minimiser(G: np.ndarray) -> np.ndarray:
    """Per target, the ``w ≥ 0``, ``Σ w = 1`` minimising ``wᵀ G_j w`` (targets × members).

    ``G`` (targets × members × members) is first made positive definite (eigenvalues clipped
    to a tiny fraction of the largest: a seed-noise correction larger than a member's error
    cannot make that error negative). The minimiser restricted to a support ``S`` is
    ``G_S⁻¹1 / 1ᵀG_S⁻¹1`` with value ``1 / 1ᵀG_S⁻¹1``; the exact solution is the best
    non-negative one over all supports (few members: at most 63 supports), for all targets
    at once.
    """
    n_targets, n_members, _ = G.shape
    values, vectors = np.linalg.eigh((G + G.transpose(0, 2, 1)) / 2)
    top = values.max(axis=1, keepdims=True)
    values = np.where(top > 0, np.clip(values, 1e-10 * top, None), 1.0)  # no error: uniform
    G = np.einsum("tik,tk,tjk->tij", vectors, values, vectors)
    best = np.full(n_targets, np.inf)
    W = np.full((n_targets, n_members), 1.0 / n_members)
    for size in range(1, n_members + 1):
        for support in itertools.combinations(range(n_members), size):
            S = list(support)
            x = np.linalg.solve(G[:, S][:, :, S], np.ones((n_targets, size, 1)))[..., 0]
            total = x.sum(axis=1)
            safe = np.where(total > 0, total, 1.0)
            w = x / safe[:, None]
            better = (total > 0) & (w >= -1e-9).all(axis=1) & (1.0 / safe < best)
            best[better] = 1.0 / safe[better]
            W[better] = 0.0
            W[np.ix_(np.flatnonzero(better), S)] = np.clip(w[better], 0.0, None)
    return W / W.sum(axis=1, keepdims=True)


def _reduction(noise_reduction, n_members: int, n_targets: int) -> np.ndarray:
    reduction = np.zeros((n_members, n_targets))
    if noise_reduction is not None:
        reduction[:] = noise_reduction
    return reduction


def _diagonal(reduction: np.ndarray) -> np.ndarray:
    """Members × targets → targets × members × members diagonal matrices."""
    return np.einsum("mt,mk->tmk", reduction, np.eye(reduction.shape[0]))


def _relative(G, ss, n_cells, reduction) -> tuple[np.ndarray, np.ndarray]:
    """Seed-corrected Gram matrices over each target's sum of squares, and which targets vary.

    Targets with (almost) no variance among the cells are flagged False.
    """
    ok = ss > 1e-12 * max(float(ss.max(initial=0.0)), 1e-300)
    G = G - n_cells * _diagonal(reduction)
    return G / np.where(ok, ss, 1.0)[:, None, None], ok


def _shrunk_minimiser(H, ok, shrinkage: float) -> np.ndarray:
    """Weights (targets × members) minimising ``(1 − λ)H_j + λH̄``.

    A target without variance (not ``ok``) keeps its own weights: its errors cannot be put on
    the others' scale.
    """
    if not ok.any():
        return simplex_minimiser(H)
    shared = H[ok].mean(axis=0)
    return simplex_minimiser(
        np.where(ok[:, None, None], (1.0 - shrinkage) * H + shrinkage * shared, H)
    )


def seed_noise_reduction(first: np.ndarray, second: np.ndarray, n_seeds: int) -> np.ndarray:
    """Per target, how much averaging ``n_seeds`` fits lowers a member's mean squared error.

    ``first`` and ``second`` are the predictions of two fits on the same cells that differ
    only in their seed, for cells neither saw. Half their mean squared difference estimates
    ``σ²``, the seed-to-seed variance of one fit's prediction; an average of ``n_seeds``
    independent fits has ``σ²/n_seeds``, so its mean squared error is lower by
    ``(1 − 1/n_seeds)·σ²``.
    """
    diff = np.asarray(first, np.float64) - np.asarray(second, np.float64)
    return (1.0 - 1.0 / n_seeds) * (diff**2).mean(axis=0) / 2.0


def _mean_prediction(members: list[BaseModel], X) -> np.ndarray:
    pred = members[0].predict_array(X).astype(np.float32)
    for model in members[1:]:
        pred += model.predict_array(X)
    return pred / len(members)


def _oof_scores(Y, oof, combined, names) -> dict[str, float]:
    scores = {name: metrics.pearson_per_cell(Y, p) for name, p in zip(names, oof, strict=True)}
    scores["ensemble"] = metrics.pearson_per_cell(Y, combined)
    return scores
