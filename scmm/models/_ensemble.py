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
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import _keys, metrics
from .._utils import as_generator
from ._base import _MODEL_CLASSES, BaseModel
from ._conformal import EDGE_QUANTILE, conformal_half_width, interval_scale, sigma_slope
from ._folds import fold_rows, fold_validation, make_folds
from ._neural import NeuralModel
from ._persist import load
from ._reference_distance import ReferenceDistance, embed, input_encoder
from ._stacking import seed_noise_reduction, stacking_weights

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
        ``convex_weights`` in ``scmm/models/_stacking.py``). The intervals stay those of a
        single fit (slightly conservative for the average).
    interval
        Nominal coverage of the intervals, in (0, 1).
    """

    kind = "ensemble"
    output_suffixes = _keys.INTERVAL_SUFFIXES  # the interval's bounds

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
        self._progress: dict[str, float] | None = None  # per-fit progress (`fit(progress=)`)
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

    @property
    def reads_backed(self) -> bool:
        """Whether every member reads an on-disk (backed) source a block of rows at a time.

        Then the cross-fitting hands each member its folds' rows as views of the source
        (row subsets read a block at a time), never copies of an on-disk matrix.
        """
        return all(self._build(spec).reads_backed for spec in self.params["members"])

    def _n_copies(self, spec: dict[str, Any]) -> int:
        cls = _MODEL_CLASSES[spec["kind"]]
        return self.params["n_seeds"] if issubclass(cls, NeuralModel) else 1

    def fit(
        self, X, Y, *, groups: np.ndarray | None = None, progress: bool = False, **kwargs
    ) -> EnsembleModel:
        """Fit as :meth:`BaseModel.fit`, keeping each of ``groups`` within one fold.

        ``groups`` holds one label per training cell (e.g. the donor); None: random folds.
        ``progress``: print one line on stderr per member fit (which, of how many): the
        cross-fitting fits every member ``n_folds + 1`` times or more, minutes without a word
        otherwise. ``validation`` (a mask over the training cells, or a fraction) goes to every
        member fit, restricted to the cells that fit trains on: the neural members hold those
        cells out for early stopping, the others ignore it. The validation cells still count
        for the weights and the intervals (they are training cells).
        """
        self._groups = groups
        self._progress = {"done": 0, "start": time.perf_counter()} if progress else None
        try:
            return super().fit(X, Y, **kwargs)
        finally:
            self._groups, self._progress = None, None

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
            fold = (fold_rows(X, tr), Y[tr], X_svd, fold_validation(validation, tr))
            X_val = fold_rows(X, val)
            for m, spec in enumerate(specs):  # one fit per fold, whatever n_seeds
                members = self._fit_member(spec, *fold, seeds[m, k : k + 1], n)
                oof[m, val] = _mean_prediction(members, X_val)
                if k == 0 and self._n_copies(spec) > 1:
                    twin = self._fit_member(spec, *fold, twin_seeds[m : m + 1], n)
                    noise[m] = seed_noise_reduction(
                        oof[m, val], _mean_prediction(twin, X_val), self._n_copies(spec)
                    )
            logger.info("ensemble: fold %d/%d done", k + 1, K)
        self.weights, self.shrinkage, _ = stacking_weights(oof, Y, folds, noise)
        combined = np.einsum("mij,mj->ij", oof, self.weights)
        self.oof_scores = _oof_scores(Y, oof, combined, self.member_names)
        del oof
        self.fitted = [
            self._fit_member(
                spec, X, Y, X_svd, validation, seeds[m, K : K + self._n_copies(spec)], n
            )
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

    def _report_member_fit(self, spec, n_cells: int, n_train: int, began: float) -> None:
        """Print the progress line of one member fit (see :meth:`fit`'s ``progress``)."""
        specs = self.params["members"]
        # per member: one fit per fold, a second seed on the first fold (neural members
        # averaged over seeds), then the final fit(s) on every training cell
        total = sum(self.params["n_folds"] + (self._n_copies(s) > 1) + 1 for s in specs)
        self._progress["done"] += 1
        phase = "final, all training cells" if n_cells == n_train else "cross-fitting"
        now = time.perf_counter()
        print(
            f"scmm: fit_ensemble: member fit {self._progress['done']}/{total}: "
            f"{self.member_names[specs.index(spec)]} ({phase}, {n_cells} cells) "
            f"{now - began:.1f} s (elapsed {now - self._progress['start']:.0f} s)",
            file=sys.stderr,
            flush=True,
        )

    def _fit_member(self, spec, X, Y, X_svd, validation, seeds, n_train: int) -> list[BaseModel]:
        began = time.perf_counter()
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
                validation=validation,
                rng=int(seed),
            )
            out.append(model)
        if self._progress is not None:
            self._report_member_fit(spec, X.shape[0], n_train, began)
        return out

    def predict_array(self, X) -> np.ndarray:
        """Predict the combination (float32, cells × targets) from a source in training order."""
        self._check_fitted()
        out = np.zeros((X.shape[0], len(self.target_features)), np.float32)
        for members, w in zip(self.fitted, self.weights, strict=True):
            out += _mean_prediction(members, X) * w.astype(np.float32)
        return out

    def derived_outputs(
        self, pred: np.ndarray, distance: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Return the conformal interval's bounds (suffixes ``"_lower"`` and ``"_upper"``)."""
        return dict(zip(_keys.INTERVAL_SUFFIXES, self.interval_bounds(pred, distance), strict=True))

    def extra_scores(
        self, Y: np.ndarray, pred: np.ndarray, distance: np.ndarray | None = None
    ) -> dict[str, float]:
        """``interval_coverage`` (share of ``Y`` inside the interval) and ``interval_width``."""
        lower, upper = self.interval_bounds(pred, distance)
        return {
            "interval_coverage": float(((Y >= lower) & (Y <= upper)).mean()),
            "interval_width": float((upper - lower).mean()),
        }

    def fit_summary(self) -> dict[str, Any]:
        """Weights per member, shrinkage, half-widths, ``sigma_slope`` and the OOF scores."""
        self._check_fitted()
        return {
            "weights": dict(zip(self.member_names, self.weights.astype(np.float32), strict=True)),
            "shrinkage": float(self.shrinkage),
            "half_width": self.half_width.astype(np.float32),
            **({} if self.sigma_slope is None else {"sigma_slope": float(self.sigma_slope)}),
            "oof_scores": dict(self.oof_scores),
        }

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


def _mean_prediction(members: list[BaseModel], X) -> np.ndarray:
    pred = members[0].predict_array(X).astype(np.float32)
    for model in members[1:]:
        pred += model.predict_array(X)
    return pred / len(members)


def _oof_scores(Y, oof, combined, names) -> dict[str, float]:
    scores = {name: metrics.pearson_per_cell(Y, p) for name, p in zip(names, oof, strict=True)}
    scores["ensemble"] = metrics.pearson_per_cell(Y, combined)
    return scores
