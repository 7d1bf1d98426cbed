"""A stacked ensemble: member models, per-target convex weights, conformal intervals.

The members are any scmm models (their kind and hyper-parameters are given as JSON specs, so
the ensemble is saved and loaded like every model). Fitting runs K-fold cross-fitting on the
training cells only: each member is fitted on K − 1 folds and predicts the remaining one,
giving an out-of-fold (OOF) prediction for every training cell. The combination weights and
the interval half-widths are learned from those OOF predictions; the members are then refitted
on all training cells.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import nnls

from .. import metrics
from ..pp._rng import as_generator
from ._base import _MODEL_CLASSES, BaseModel
from ._neural import NeuralModel
from ._persist import load

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
    and need a penalty to be tuned; convex weights need no tuning, cannot extrapolate beyond
    the members, and read as "how much each member is trusted for this target".

    Interval: split-conformal on the OOF residuals, per target: the half-width ``q_j`` is the
    ``⌈(n + 1)·interval⌉ / n`` empirical quantile of ``|y_ij − ŷ_ij|`` over the ``n`` training
    cells (``ŷ`` the OOF ensemble prediction), and the interval is ``ŷ ± q_j``. For cells
    exchangeable with the training cells about ``interval`` of the values fall inside; a
    held-out donor or batch can shift that (see the ensemble page of the docs).

    Parameters
    ----------
    members
        Member specs: dicts with ``"kind"`` (a model kind, e.g. ``"baseline"`` or ``"mlp"``)
        and ``"params"`` (its keyword arguments).
    n_folds
        Folds of the cross-fitting.
    n_seeds
        Final fits of each neural member with different seeds, their predictions averaged.
        The cross-fitting fits each member once per fold whatever ``n_seeds``; with
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
        n_seeds: int = 1,
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
        self.weights = convex_weights(oof, Y, noise)
        combined = np.einsum("mij,mj->ij", oof, self.weights)
        self.half_width = conformal_half_width(Y - combined, self.params["interval"])
        self.oof_scores = _oof_scores(Y, oof, combined, self.member_names)
        self.fitted = [
            self._fit_member(spec, X, Y, X_svd, seeds[m, K : K + self._n_copies(spec)])
            for m, spec in enumerate(specs)
        ]

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

    def interval_bounds(self, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the conformal interval around predictions ``pred``."""
        self._check_fitted()
        q = self.half_width.astype(np.float32)
        return pred - q, pred + q

    def _get_state(self):
        meta = {"oof_scores": self.oof_scores, "n_fitted": [len(m) for m in self.fitted]}
        arrays = {
            "ensemble.weights": self.weights.astype(np.float64),
            "ensemble.half_width": self.half_width.astype(np.float64),
        }
        return meta, arrays

    def _set_state(self, meta, arrays):
        self.oof_scores = dict(meta["oof_scores"])
        self._n_fitted = list(meta["n_fitted"])
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


def convex_weights(
    oof: np.ndarray, Y: np.ndarray, noise_reduction: np.ndarray | None = None
) -> np.ndarray:
    """Per-target weights ``w ≥ 0``, ``Σ w = 1`` minimising the squared OOF error.

    With errors ``e_m = y − ỹ_m``, the error of a convex combination is ``Σ_m w_m e_m``, so
    the weights minimise ``wᵀ G w`` with ``G = Eᵀ E`` (members × members, per target). That is
    solved as non-negative least squares on a square root of ``G`` with the sum-to-one
    constraint appended as a heavily weighted row, then renormalised.

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
    n_members, n, n_targets = oof.shape
    W = np.empty((n_members, n_targets))
    reduction = np.zeros((n_members, n_targets))
    if noise_reduction is not None:
        reduction[:] = noise_reduction
    for j in range(n_targets):  # one target at a time: no copy of all OOF predictions
        E = Y[:, j].astype(np.float64) - oof[:, :, j]  # members × cells
        G = E @ E.T - np.diag(n * reduction[:, j])
        values, vectors = np.linalg.eigh(G)
        top = max(float(values.max()), 1e-30)
        # a square root R with RᵀR = G; G is kept positive semi-definite (a correction larger
        # than a member's error cannot make that error negative)
        R = (vectors * np.sqrt(np.clip(values, 1e-12 * top, None))).T
        big = 1e3 * np.sqrt(top) + 1.0
        A = np.vstack([R, np.full((1, n_members), big)])
        b = np.append(np.zeros(n_members), big)
        w, _ = nnls(A, b)
        W[:, j] = w / w.sum() if w.sum() > 0 else 1.0 / n_members
    return W


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


def conformal_half_width(residuals: np.ndarray, level: float) -> np.ndarray:
    """Per-target split-conformal half-width: the ⌈(n + 1)·level⌉-th smallest ``|residual|``."""
    r = np.sort(np.abs(residuals), axis=0)
    n = r.shape[0]
    rank = int(np.ceil((n + 1) * level))
    return r[min(rank, n) - 1]


def _mean_prediction(members: list[BaseModel], X) -> np.ndarray:
    pred = members[0].predict_array(X).astype(np.float32)
    for model in members[1:]:
        pred += model.predict_array(X)
    return pred / len(members)


def _oof_scores(Y, oof, combined, names) -> dict[str, float]:
    scores = {name: metrics.pearson_per_cell(Y, p) for name, p in zip(names, oof, strict=True)}
    scores["ensemble"] = metrics.pearson_per_cell(Y, combined)
    return scores
