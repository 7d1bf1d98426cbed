"""The gene-activity baseline: distance-weighted window sums, then a per-gene linear fit.

For each gene, ``activity = Σ_p a_p · exp(-|d_p| / decay)`` over the ATAC peaks of its window
(:func:`scmm.pp.gene_activity`, ArchR-style weights), then ``ŷ = slope · activity + intercept``
fitted per gene by least squares on the training cells (closed form). Genes whose activity does
not vary over the training cells (no peaks, or never-open peaks) predict their training mean.
The windows (the genes × peaks ``distance`` CSR, explicit zeros included) are stored in the model
so that it predicts for new cells, whose peaks are aligned by name.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ..pp import gene_activity
from ._base import BaseModel, prefixed

WINDOW_FIELDS = ("distance", "width", "in_body")


def windows_arrays(windows: dict[str, Any], fields=WINDOW_FIELDS) -> dict[str, np.ndarray]:
    """Return the CSR parts of gene–peak windows as plain arrays (explicit zeros kept).

    Parameters
    ----------
    windows
        The dict :func:`scmm.pp.gene_peak_windows` stores: genes × peaks CSR matrices sharing
        one sparsity pattern.
    fields
        Which pair features to keep.

    Returns
    -------
    ``indptr``, ``indices``, ``shape`` (2 ints) and one data array per field.
    """
    missing = [f for f in fields if f not in windows]
    if missing:
        msg = f"The windows lack {missing}; recompute them with `scmm.pp.gene_peak_windows`."
        raise ValueError(msg)
    ref = sp.csr_matrix(windows[fields[0]])
    out = {
        "indptr": np.asarray(ref.indptr, np.int64),
        "indices": np.asarray(ref.indices, np.int64),
        "shape": np.asarray(ref.shape, np.int64),
    }
    for f in fields:
        m = sp.csr_matrix(windows[f])
        if not (np.array_equal(m.indptr, ref.indptr) and np.array_equal(m.indices, ref.indices)):
            msg = (
                f"Window fields {fields[0]!r} and {f!r} have different sparsity patterns "
                "(were explicit zeros eliminated?); recompute them with "
                "`scmm.pp.gene_peak_windows`."
            )
            raise ValueError(msg)
        out[f] = np.asarray(m.data, np.float32)
    return out


def windows_matrix(arrays: dict[str, np.ndarray], field: str = "distance") -> sp.csr_matrix:
    """Rebuild a genes × peaks CSR of ``field`` from :func:`windows_arrays` output."""
    shape = tuple(int(s) for s in arrays["shape"])
    return sp.csr_matrix((arrays[field], arrays["indices"], arrays["indptr"]), shape=shape)


class GeneActivityModel(BaseModel):
    """Distance-weighted gene activity with a per-gene linear fit (the classical baseline).

    Parameters
    ----------
    decay
        Length scale (bp) of the ``exp(-|d| / decay)`` pair weights.
    offset
        Constant added to each pair weight (ArchR uses ``exp(-1)``).
    windows_key
        Key of the windows in ``mdata.uns`` the model was fitted with (a record only; the
        windows themselves are stored in the model by :meth:`set_windows`).
    """

    kind = "gene_activity"

    def __init__(self, decay: float = 5000.0, offset: float = 0.0, windows_key: str = "windows"):
        if not decay > 0:
            msg = f"`decay={decay!r}` must be a positive length in bp."
            raise ValueError(msg)
        super().__init__(decay=float(decay), offset=float(offset), windows_key=windows_key)
        self.windows: dict[str, np.ndarray] | None = None
        self._coef: dict[str, np.ndarray] = {}

    def set_windows(self, windows: dict[str, Any]) -> GeneActivityModel:
        """Store the gene–peak windows (the dict of :func:`scmm.pp.gene_peak_windows`)."""
        self.windows = windows_arrays(windows, ("distance",))
        return self

    def _activity(self, X):
        if self.windows is None:
            msg = "Call `set_windows` before fitting (`fit_baseline` does it)."
            raise RuntimeError(msg)
        _n_genes, n_peaks = (int(s) for s in self.windows["shape"])
        if X.shape[1] != n_peaks:
            msg = f"The source has {X.shape[1]} features but the windows pair {n_peaks} peaks."
            raise ValueError(msg)
        return gene_activity(
            X,
            windows_matrix(self.windows),
            decay=self.params["decay"],
            offset=self.params["offset"],
        )

    def _fit(self, X, Y, *, X_svd=None, validation=None, rng=None) -> None:
        n_genes = int(self.windows["shape"][0]) if self.windows is not None else -1
        if Y.shape[1] != n_genes:
            msg = f"The target has {Y.shape[1]} features but the windows have {n_genes} genes."
            raise ValueError(msg)
        A = self._activity(X)
        A = sp.csr_matrix(A) if sp.issparse(A) else A
        n = A.shape[0]
        mean_a = np.asarray(A.mean(axis=0), np.float64).ravel()
        mean_y = Y.mean(axis=0, dtype=np.float64)
        sq = A.multiply(A) if sp.issparse(A) else A * A
        ay = A.multiply(Y) if sp.issparse(A) else A * Y
        var_a = np.asarray(sq.sum(axis=0), np.float64).ravel() / n - mean_a**2
        cov = np.asarray(ay.sum(axis=0), np.float64).ravel() / n - mean_a * mean_y
        ok = var_a > 1e-12 * np.maximum(mean_a**2, 1.0)
        slope = np.where(ok, cov / np.where(ok, var_a, 1.0), 0.0)
        self._coef = {
            "slope": slope.astype(np.float32),
            "intercept": (mean_y - slope * mean_a).astype(np.float32),
        }

    def predict_array(self, X) -> np.ndarray:
        """Predict targets (float32, cells × genes) from a source matrix in training order."""
        self._check_fitted()
        A = self._activity(X)
        if sp.issparse(A):
            out = np.asarray((A @ sp.diags(self._coef["slope"])).toarray())
        else:
            out = A * self._coef["slope"]
        return (out + self._coef["intercept"]).astype(np.float32)

    def _get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        arrays = {f"windows.{k}": v for k, v in self.windows.items()}
        arrays.update({f"coef.{k}": v for k, v in self._coef.items()})
        return {}, arrays

    def _set_state(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        self.windows = prefixed(arrays, "windows.")
        self._coef = prefixed(arrays, "coef.")
