"""Per-target convex weights of an ensemble's members, learned from out-of-fold predictions.

Each target's weights minimise the squared error of the combined out-of-fold predictions on the
simplex (non-negative, summing to 1), corrected for the seed averaging of neural members and
pulled towards weights shared by all targets as far as cross-validation over the folds advises.
"""

from __future__ import annotations

import itertools

import numpy as np

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
