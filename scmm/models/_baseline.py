"""Classical baselines on the SVD of the source: mean, ridge, kNN, RBF kernel ridge."""

from __future__ import annotations

import numpy as np

from ..pp._rng import as_generator
from ._base import BaseModel
from ._preprocess import InputEncoder

METHODS = ("mean", "ridge", "knn", "kernel_ridge")
_CV_CELLS = 2000


class BaselineModel(BaseModel):
    """A classical regressor from the source's TruncatedSVD embedding to the targets.

    ``"mean"``
        Every cell gets the mean training profile (what per-cell Pearson gives for free).
    ``"ridge"``
        Ridge regression, the penalty chosen by efficient leave-one-out CV over
        ``alphas`` (:class:`~sklearn.linear_model.RidgeCV`).
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
    def name(self) -> str:
        """The baseline method."""
        return self.params["method"]

    def _fit(self, X, Y, *, X_svd=None, validation=None, rng=None) -> None:
        method = self.params["method"]
        self._arrays = {"mean": Y.mean(axis=0)}
        if method == "mean":
            return
        self.encoder.fit(X, X_svd=X_svd, rng=rng)
        (Z,) = self.encoder.transform(X)
        alphas = self.params["alphas"] or list(np.logspace(-2, 4, 13))
        if method == "ridge":
            from sklearn.linear_model import RidgeCV

            reg = RidgeCV(alphas=alphas).fit(Z, Y)
            self._arrays.update(
                coef=reg.coef_.astype(np.float32), intercept=np.asarray(reg.intercept_, np.float32)
            )
        elif method == "knn":
            if self.params["n_neighbors"] > len(Z):
                msg = (
                    f"`n_neighbors={self.params['n_neighbors']}` exceeds the {len(Z)} "
                    "training cells."
                )
                raise ValueError(msg)
            self._arrays.update(train_emb=Z, train_y=Y)
        else:
            self._fit_kernel_ridge(Z, Y, alphas, rng)

    def _fit_kernel_ridge(self, Z, Y, alphas, rng) -> None:
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
            return (Z @ a["coef"].T + a["intercept"]).astype(np.float32)
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
        self._arrays = {
            k.removeprefix("baseline."): v for k, v in arrays.items() if k.startswith("baseline.")
        }
