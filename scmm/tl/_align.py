"""Aligning a query from another dataset to a model's reference before predicting.

Every method reads only the query's source values (never its targets) and what the model
keeps of its training cells: the per-feature training mean and standard deviation (the
input-space record) and the reference cells' embeddings kept for the reference distance
(:mod:`scmm.models._reference_distance`). Each returns the query's source values corrected in
feature space, so that any model reads them as it reads its training values:

- ``"standardize"``: each feature standardised within the query, then given the
  reference's mean and standard deviation (per-dataset gene standardisation);
- ``"moments"``: the query's embedding (its projection on the model's input SVD components)
  shifted and scaled per component to the reference's mean and standard deviation;
- ``"symphony"``: Symphony's query mapping (Kang et al. 2021) into the fixed reference
  embedding: the reference cells are clustered (k-means, cosine), every query cell is
  softly assigned to the clusters, and per cluster a ridge regression on
  ``[intercept, query indicator]`` over the reference's and the query's cells gives the
  query's offset, which is removed weighted by the cell's assignment (Symphony's
  mixture-of-experts correction with its defaults ``σ = 0.1``, ``λ = 1``). The reference is
  taken as one batch (no Harmony over its own batches at fit time).

The two embedding methods correct the component of the values within the model's input SVD
subspace only (``X + (Z′ − Z)·V``): the rest of the values is left as it is.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._registry import ALIGN_METHODS
from ..models import ReferenceDistance, embed, input_encoder

#: Symphony's defaults: soft-assignment bandwidth and ridge penalty on the batch term.
SYMPHONY_SIGMA = 0.1
SYMPHONY_LAMBDA = 1.0
#: Most clusters of the reference embedding (fewer for small references: 50 cells each).
SYMPHONY_CLUSTERS = 20


def align_query(model, X, method: str) -> np.ndarray:
    """Return the query's source values ``X`` (model feature order) aligned by ``method``.

    Parameters
    ----------
    model
        The fitted model.
    X
        Source values of the query cells, columns in the model's source feature order.
    method
        One of :data:`ALIGN_METHODS`.

    Returns
    -------
    Dense float32 array, cells × the model's source features.
    """
    if method not in ALIGN_METHODS:
        msg = f"`align={method!r}` is not one of {ALIGN_METHODS} (or None: no alignment)."
        raise ValueError(msg)
    if method == "standardize":
        return _standardize(model, X)
    encoder, state = input_encoder(model), ReferenceDistance.of(model)
    if encoder is None or state is None:
        msg = (
            f"`align={method!r}` needs a model with an input SVD and its stored reference cells "
            "(fitted with this scmm version); use `align='standardize'` or refit the model."
        )
        raise ValueError(msg)
    Z = embed(encoder, X).astype(np.float64)
    ref = np.asarray(state.reference, np.float64)
    if method == "moments":
        sd_q = Z.std(axis=0)
        ratio = np.where(sd_q > 0, ref.std(axis=0) / np.where(sd_q > 0, sd_q, 1.0), 1.0)
        target = (Z - Z.mean(axis=0)) * ratio + ref.mean(axis=0)
    else:
        target = symphony_map(Z, ref)
    delta = (target - Z) @ np.asarray(encoder.components, np.float64)
    dense = X.toarray() if sp.issparse(X) else np.asarray(X)
    return (dense + delta).astype(np.float32)


def _standardize(model, X) -> np.ndarray:
    arrays = model.input_arrays
    if "mean" not in arrays or "sd" not in arrays:
        msg = (
            "`align='standardize'` needs the training values' per-feature mean and standard "
            "deviation, which this model does not store (saved before scmm recorded them)."
        )
        raise ValueError(msg)
    dense = np.asarray(X.toarray() if sp.issparse(X) else X, np.float64)
    mean_q, sd_q = dense.mean(axis=0), dense.std(axis=0)
    mean_r = np.asarray(arrays["mean"], np.float64)
    sd_r = np.asarray(arrays["sd"], np.float64)
    scale = np.where(sd_q > 0, sd_r / np.where(sd_q > 0, sd_q, 1.0), 0.0)
    return ((dense - mean_q) * scale + mean_r).astype(np.float32)


def _unit_rows(Z: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(Z, axis=1, keepdims=True)
    return Z / np.where(norm > 0, norm, 1.0)


def _assign(Z: np.ndarray, centroids: np.ndarray, sigma: float) -> np.ndarray:
    """Soft cluster assignments (cells × clusters): ``exp(−2(1 − cos)/σ)``, rows sum to 1."""
    dist = 2.0 * (1.0 - _unit_rows(Z) @ _unit_rows(centroids).T)
    logits = -dist / sigma
    logits -= logits.max(axis=1, keepdims=True)
    R = np.exp(logits)
    return R / R.sum(axis=1, keepdims=True)


def _kmeans(Z: np.ndarray, k: int, n_iter: int = 25) -> np.ndarray:
    """Spherical k-means centroids of ``Z`` (seed fixed, k-means++ start)."""
    gen = np.random.default_rng(0)
    U = _unit_rows(Z)
    centroids = [U[gen.integers(len(U))]]
    for _ in range(1, k):
        d = np.min([1.0 - U @ c for c in centroids], axis=0).clip(0.0, None)
        p = d / d.sum() if d.sum() > 0 else None
        centroids.append(U[gen.choice(len(U), p=p)])
    C = np.array(centroids)
    for _ in range(n_iter):
        labels = np.argmax(U @ C.T, axis=1)
        for j in range(k):
            members = U[labels == j]
            if len(members):
                C[j] = members.mean(axis=0)
        C = _unit_rows(C)
    return C


def symphony_map(
    Z: np.ndarray,
    reference: np.ndarray,
    *,
    sigma: float = SYMPHONY_SIGMA,
    lam: float = SYMPHONY_LAMBDA,
    n_clusters: int = SYMPHONY_CLUSTERS,
) -> np.ndarray:
    """Symphony's mixture-of-experts correction of query embeddings ``Z`` (cells × dims).

    The reference embeddings stay fixed; they enter each cluster's regression through their
    soft-assigned counts ``N_k`` and sums ``C_k`` (Symphony's compressed reference).
    """
    k = int(max(1, min(n_clusters, len(reference) // 50)))
    centroids = _kmeans(reference, k)
    R_ref, R_q = _assign(reference, centroids, sigma), _assign(Z, centroids, sigma)
    out = Z.copy()
    for j in range(k):
        n_ref, w = R_ref[:, j].sum(), R_q[:, j]
        n_q = w.sum()
        A = np.array([[n_ref + n_q, n_q], [n_q, n_q + lam]])
        b = np.stack([R_ref[:, j] @ reference + w @ Z, w @ Z])
        beta = np.linalg.solve(A, b)  # rows: intercept, query term (per dimension)
        out -= w[:, None] * beta[1][None]
    return out
