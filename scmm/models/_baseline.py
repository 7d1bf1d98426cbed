"""Classical baselines on the SVD of the source: mean, ridge, kNN, RBF kernel ridge."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._utils import as_generator
from ._base import BaseModel, prefixed
from ._preprocess import InputEncoder

METHODS = ("mean", "ridge", "knn", "kernel_ridge")
_CV_CELLS = 2000


class BaselineModel(BaseModel):
    """A classical regressor from the source's TruncatedSVD embedding to the targets.

    ``"mean"``
        Every cell gets the mean training profile (what per-cell Pearson gives for free).
    ``"ridge"``
        Ridge regression with an intercept, one penalty for all targets chosen by exact
        leave-one-out CV over ``alphas`` (what :class:`~sklearn.linear_model.RidgeCV` does),
        computed from the thin SVD of the embedding: the targets enter only through
        ``Y @ (Uᵀ Y)ᵀ`` and row norms, so a sparse target is never densified and the memory
        does not grow with cells × targets (sklearn's holds several of those arrays: 14 GiB at
        13,000 cells × 23,418 genes).
    ``"knn"``
        Mean target of the ``n_neighbors`` nearest training cells (Euclidean, SVD space).
    ``"kernel_ridge"``
        RBF kernel ridge, the family of the NeurIPS 2021 winner; ``alpha`` and ``gamma``
        (in units of ``1 / (n_components · mean variance)``) chosen by 3-fold CV on the training
        cells (at most 2,000 of them; one eigendecomposition per fold and ``gamma`` serves every
        ``alpha``), then one solve on all training cells. Memory
        grows with the square of the training cells: refused above ``max_train_cells``.

    Parameters
    ----------
    method
        One of ``"mean"``, ``"ridge"``, ``"knn"``, ``"kernel_ridge"``.
    n_components
        Number of SVD components of the source.
    n_neighbors
        Neighbours of ``"knn"``.
    alphas
        Candidate penalties of ``"ridge"`` and ``"kernel_ridge"``.
    max_train_cells
        Largest training set ``"kernel_ridge"`` accepts.
    """

    kind = "baseline"

    def __init__(
        self,
        method: str = "ridge",
        n_components: int = 32,
        n_neighbors: int = 20,
        alphas: list[float] | None = None,
        max_train_cells: int = 20_000,
    ):
        if method not in METHODS:
            msg = f"`method={method!r}` is not one of {METHODS}."
            raise ValueError(msg)
        super().__init__(
            method=method,
            n_components=n_components,
            n_neighbors=n_neighbors,
            alphas=list(alphas) if alphas is not None else None,
            max_train_cells=max_train_cells,
        )
        self.encoder = InputEncoder("svd", n_components, scale=False)
        self._train_emb: np.ndarray | None = None
        self._arrays: dict[str, np.ndarray] = {}

    @property
    def reads_backed(self) -> bool:
        """The SVD encoder reads backed matrices in row blocks."""
        return True

    @property
    def predicts_mean_profile(self) -> bool:
        """``method="mean"`` is the mean profile itself."""
        return self.params["method"] == "mean"

    @property
    def sparse_targets(self) -> bool:
        """The mean and ridge read a sparse target as it is."""
        return self.params["method"] in ("mean", "ridge")

    @property
    def name(self) -> str:
        """The baseline method."""
        return self.params["method"]

    def _fit(self, X, Y, *, X_svd=None, validation=None, rng=None) -> None:
        method = self.params["method"]
        self._arrays = {"mean": np.asarray(Y.mean(axis=0), np.float32).ravel()}
        if method == "mean":
            return
        self.encoder.fit(X, X_svd=X_svd, rng=rng)
        (Z,) = self.encoder.transform(X)
        alphas = self.params["alphas"] or list(np.logspace(-2, 4, 13))
        if method == "ridge":
            coef, intercept, alpha = ridge_loo(Z, Y, alphas)
            self._arrays.update(
                coef=coef.astype(np.float32),
                intercept=intercept.astype(np.float32),
                alpha=np.asarray([alpha], np.float64),
            )
        elif method == "knn":
            if self.params["n_neighbors"] > len(Z):
                msg = (
                    f"`n_neighbors={self.params['n_neighbors']}` exceeds the {len(Z)} "
                    "training cells."
                )
                raise ValueError(msg)
            self._arrays.update(train_emb=Z, train_y=Y.toarray() if sp.issparse(Y) else Y)
        else:
            self._fit_kernel_ridge(Z, Y, alphas, rng)

    def _fit_kernel_ridge(self, Z, Y, alphas, rng) -> None:
        Y = Y.toarray() if sp.issparse(Y) else Y
        from sklearn.metrics.pairwise import rbf_kernel

        n = len(Z)
        if n > self.params["max_train_cells"]:
            msg = (
                f"kernel_ridge on {n} training cells needs a {n}² kernel; raise "
                "`max_train_cells` if memory allows, or use method='ridge' or 'knn'."
            )
            raise ValueError(msg)
        alphas = np.asarray([a for a in alphas if 1e-3 <= a <= 10] or [0.1])
        gammas = np.asarray([0.25, 0.5, 1.0, 2.0]) / (Z.shape[1] * Z.var())
        gen = as_generator(rng)
        # hyper-parameters from CV on at most `_CV_CELLS` cells (eigendecompositions are cubic)
        cv = np.sort(gen.permutation(n)[:_CV_CELLS]) if n > _CV_CELLS else np.arange(n)
        Zc, Yc = Z[cv], Y[cv]
        folds = np.array_split(gen.permutation(len(cv)), 3)
        errors = np.zeros((len(gammas), len(alphas)))
        for g, gamma in enumerate(gammas):
            K = rbf_kernel(Zc, gamma=gamma)
            for val in folds:
                tr = np.setdiff1d(np.arange(len(cv)), val)
                w, V = np.linalg.eigh(K[np.ix_(tr, tr)])
                VtY = V.T @ Yc[tr]
                for a, alpha in enumerate(alphas):
                    dual = V @ (VtY / (w + alpha)[:, None])
                    errors[g, a] += ((K[np.ix_(val, tr)] @ dual - Yc[val]) ** 2).sum()
        g, a = np.unravel_index(errors.argmin(), errors.shape)
        K = rbf_kernel(Z, gamma=gammas[g])
        dual = np.linalg.solve(K + alphas[a] * np.eye(n), Y)
        self._arrays.update(
            train_emb=Z,
            dual_coef=dual.astype(np.float32),
            gamma=np.asarray([gammas[g]], np.float64),
            alpha=np.asarray([alphas[a]], np.float64),
        )

    def predict_array(self, X) -> np.ndarray:
        """Predict targets (float32, cells × targets) from a source matrix in training order."""
        self._check_fitted()
        a = self._arrays
        method = self.params["method"]
        if method == "mean":
            return np.broadcast_to(a["mean"], (X.shape[0], len(a["mean"]))).astype(np.float32)
        (Z,) = self.encoder.transform(X)
        if method == "ridge":
            out = np.asarray(Z, np.float32) @ a["coef"].T  # float32, one cells × targets array
            out += a["intercept"]
            return out
        if method == "knn":
            from sklearn.neighbors import NearestNeighbors

            nn = NearestNeighbors(n_neighbors=self.params["n_neighbors"]).fit(a["train_emb"])
            idx = nn.kneighbors(Z, return_distance=False)
            return a["train_y"][idx].mean(axis=1).astype(np.float32)
        from sklearn.metrics.pairwise import rbf_kernel

        K = rbf_kernel(Z, a["train_emb"], gamma=float(a["gamma"][0]))
        return (K @ a["dual_coef"]).astype(np.float32)

    def _get_state(self):
        meta, arrays = self.encoder.get_state()
        return {"input": meta}, {**arrays, **{f"baseline.{k}": v for k, v in self._arrays.items()}}

    def _set_state(self, meta, arrays):
        self.encoder = InputEncoder.from_state(meta["input"], arrays)
        self._arrays = prefixed(arrays, "baseline.")


def ridge_loo(Z: np.ndarray, Y, alphas) -> tuple[np.ndarray, np.ndarray, float]:
    """Ridge regression of ``Y`` on ``Z`` with an intercept, penalty by leave-one-out CV.

    With the centred ``Z − z̄ = U S Vᵀ`` (thin SVD) and ``f = s² / (s² + α)``, the hat matrix
    is ``H = 11ᵀ/n + U diag(f) Uᵀ`` and cell ``i``'s leave-one-out residual is
    ``(y_i − ŷ_i) / (1 − H_ii)``. Its squared norm expands into the row norms of ``Y``,
    ``Y ȳ``, ``M = Y (UᵀY)ᵀ`` and the ``k × k`` matrix ``(UᵀY)(UᵀY)ᵀ``, so each ``α`` costs
    ``O(n k²)`` and ``Y`` (dense or sparse) is read twice, never densified.

    Parameters
    ----------
    Z
        Inputs, cells × k (dense).
    Y
        Targets, cells × q (dense or scipy sparse).
    alphas
        Candidate penalties; the one with the smallest summed squared leave-one-out error over
        all cells and targets is used (as :class:`~sklearn.linear_model.RidgeCV`).

    Returns
    -------
    ``coef`` (q × k), ``intercept`` (q,) and the chosen ``alpha``.
    """
    Z = np.asarray(Z, np.float64)
    n = Z.shape[0]
    z_mean = Z.mean(axis=0)
    y_mean = np.asarray(Y.mean(axis=0), np.float64).ravel()
    U, s, Vt = np.linalg.svd(Z - z_mean, full_matrices=False)
    keep = s > s.max(initial=0.0) * 1e-10  # U ⟂ 1 only for the non-null directions
    U, s, Vt = U[:, keep], s[keep], Vt[keep]
    UtY = np.asarray(Y.T @ U, np.float64).T  # k × q; Uᵀ(Y − 1ȳᵀ) = UᵀY as Uᵀ1 = 0
    M = np.asarray(Y @ UtY.T, np.float64)  # n × k: y_i · (UᵀY)_k
    Ysq = Y.multiply(Y).sum(axis=1) if sp.issparse(Y) else np.einsum("ij,ij->i", Y, Y)
    y_sq = np.asarray(Ysq, np.float64).ravel()
    y_dot_mean = np.asarray(Y @ y_mean, np.float64).ravel()
    G = UtY @ UtY.T
    Utc = UtY @ y_mean
    U2 = U**2
    errors = []
    for alpha in alphas:
        f = s**2 / (s**2 + alpha)
        UF = U * f
        h = 1.0 / n + U2 @ f
        # ‖y_i − ȳ − U_i F UᵀY‖² expanded (ŷ_i = ȳ + U_i F UᵀY)
        sq = (
            y_sq
            - 2 * y_dot_mean
            - 2 * np.einsum("ik,ik->i", UF, M)
            + y_mean @ y_mean
            + 2 * UF @ Utc
            + np.einsum("ik,ik->i", UF @ G, UF)
        )
        errors.append(float((np.maximum(sq, 0.0) / (1.0 - h) ** 2).sum()))
    alpha = float(alphas[int(np.argmin(errors))])
    W = Vt.T @ ((s / (s**2 + alpha))[:, None] * UtY)  # k × q
    return W.T, y_mean - z_mean @ W, alpha
