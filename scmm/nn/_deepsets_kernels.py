"""Fused CPU kernels (numba) of :class:`~scmm.nn.DeepSetsNet`: window pooling and ρ.

**Pooling** (:func:`active_pooled`): for each cell, the pairs of its open peaks are listed
once (a pass over the batch's non-zeros with a gene → row table, no sort of the entries), the
(cell, gene) rows with at least one open window peak numbered in cell then gene order, and the
pooled channels ``pooled[row] = Σ a · g(f_pair)`` summed per cell in one pass; the backward
pass scatters ``a · ∂L/∂pooled`` back to the pairs (per-thread accumulators).

**ρ's local term** (:func:`rho_local`). For the active rows ``i`` (cell ``c_i``, gene ``g_i``):

``base_i = A[c_i] + B[g_i]``, ``pre_i = base_i + W·[p_i, p_i / n_{g_i}]``,
``out_i = v · (silu(pre_i) - silu(base_i))``

with ``A`` ρ's first layer on each cell's context (``(cells, hidden)``, computed once per
cell), ``B`` its first layer on each gene's input (``(genes, hidden)``, once per gene), ``p_i``
the row's sum-pooled channels (``n_g`` the gene's window size: the mean pooling), ``W`` the
pooled part of ρ's first layer and ``v`` ρ's output layer. By linearity, ρ's first layer on
the concatenated input equals ``A[c] + B[g] + W·[p, p/n]`` (its bias is in ``A``); the kernel
never forms the ``rows × hidden`` gathers, sums and activations: each row's hidden vector lives
in a ``hidden``-long scratch buffer, the sigmoid is a vectorised float32 ``expf`` (Cephes
polynomial, ~1 ulp), and the backward pass recomputes the row (nothing of that size is stored).
Gradients of the reductions (``A``, ``B``, ``W``, ``v``) are accumulated per thread (``A``,
``W`` and ``v`` in float32 partial sums flushed into float64 totals) and summed at the end.

Both equal the torch operations of :class:`~scmm.nn.DeepSetsNet`'s reference path up to float32
rounding (the order of the sums differs); the network uses them for float32 tensors on the CPU.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

__all__ = ["active_pooled", "rho_local"]


def _ranges(n: int, parts: int) -> np.ndarray:
    return np.linspace(0, n, parts + 1).astype(np.int64)


#: Rows summed in float32 before a flush into the float64 gradient totals.
_FLUSH = 256

#: ``2**k`` for ``k = -126 … 127`` (float32), the exponent part of :func:`_sigmoid`.
_POW2 = np.ldexp(np.float32(1.0), np.arange(-126, 128)).astype(np.float32)


@numba.njit(inline="always", fastmath=True)
def _sigmoid(x, out, k, pow2):  # pragma: no cover - numba
    """``out = 1 / (1 + exp(-x))`` for a vector (float32 ``expf`` as in Cephes, ~1 ulp).

    In two loops the compiler vectorises (no libm call): the polynomial of the reduced
    argument, then the power of two from a table.
    """
    for j in range(len(x)):
        v = min(max(-x[j], np.float32(-87.0)), np.float32(88.0))
        n = math.floor(v * np.float32(1.44269504) + np.float32(0.5))
        f = v - n * np.float32(0.693359375) + n * np.float32(2.12194440e-4)
        p = np.float32(1.9875691500e-4)
        p = p * f + np.float32(1.3981999507e-3)
        p = p * f + np.float32(8.3334519073e-3)
        p = p * f + np.float32(4.1665795894e-2)
        p = p * f + np.float32(1.6666665459e-1)
        p = p * f + np.float32(5.0000001201e-1)
        out[j] = p * f * f + f + np.float32(1.0)
        k[j] = np.int32(n) + 126
    for j in range(len(x)):
        out[j] = np.float32(1.0) / (np.float32(1.0) + out[j] * pow2[k[j]])


@numba.njit(inline="always", fastmath=True)
def _hidden(P, i, c, g, inv_n, A, B, WT, base, pre):  # pragma: no cover - numba
    """Row ``i``'s ``base = A[c] + B[g]`` and ``pre = base + W·[p, p·inv_n[g]]``."""
    h, k_in = A.shape[1], P.shape[1]
    for j in range(h):
        base[j] = A[c, j] + B[g, j]
        pre[j] = base[j]
    inv = inv_n[g]
    for k in range(k_in):
        p, q = P[i, k], P[i, k] * inv
        for j in range(h):
            pre[j] += WT[k, j] * p + WT[k_in + k, j] * q


@numba.njit(parallel=True, fastmath=True, cache=True)
def _forward(P, cells, genes, inv_n, A, B, WT, v, bounds, pow2, out):  # pragma: no cover
    h = A.shape[1]
    for t in numba.prange(len(bounds) - 1):
        base = np.empty(h, np.float32)
        pre = np.empty(h, np.float32)
        sx = np.empty(h, np.float32)
        sb = np.empty(h, np.float32)
        k = np.empty(h, np.int32)
        for i in range(bounds[t], bounds[t + 1]):
            _hidden(P, i, cells[i], genes[i], inv_n, A, B, WT, base, pre)
            _sigmoid(pre, sx, k, pow2)
            _sigmoid(base, sb, k, pow2)
            acc = np.float32(0.0)
            for j in range(h):
                acc += v[j] * (pre[j] * sx[j] - base[j] * sb[j])
            out[i] = acc


@numba.njit(inline="always")
def _flush(acc, total):  # pragma: no cover - numba
    """Add a float32 partial sum into its float64 total and zero it."""
    for j in range(acc.size):
        total.flat[j] += acc.flat[j]
        acc.flat[j] = 0.0


@numba.njit(parallel=True, fastmath=True, cache=True)
def _backward(
    P, cells, genes, inv_n, A, B, WT, v, go, bounds, pow2, dP, dA, dB, dWT, dv
):  # pragma: no cover - numba
    h, k_in = A.shape[1], P.shape[1]
    for t in numba.prange(len(bounds) - 1):
        base = np.empty(h, np.float32)
        pre = np.empty(h, np.float32)
        sx = np.empty(h, np.float32)
        sb = np.empty(h, np.float32)
        k = np.empty(h, np.int32)
        dpre = np.empty(h, np.float32)
        # float32 partial sums, flushed into the float64 totals per cell / every _FLUSH rows
        acc_a = np.zeros(h, np.float32)
        acc_w = np.zeros((2 * k_in, h), np.float32)
        acc_v = np.zeros(h, np.float32)
        c_now = -1
        for i in range(bounds[t], bounds[t + 1]):
            c, g = cells[i], genes[i]
            if c != c_now:  # rows are sorted by cell
                if c_now >= 0:
                    _flush(acc_a, dA[t, c_now])
                c_now = c
            _hidden(P, i, c, g, inv_n, A, B, WT, base, pre)
            _sigmoid(pre, sx, k, pow2)
            _sigmoid(base, sb, k, pow2)
            gi = go[i]
            for j in range(h):
                x, b = pre[j], base[j]
                d1 = sx[j] * (1.0 + x * (1.0 - sx[j]))
                d0 = sb[j] * (1.0 + b * (1.0 - sb[j]))
                gv = gi * v[j]
                dpre[j] = gv * d1
                db = gv * (d1 - d0)
                acc_a[j] += db
                dB[t, g, j] += db
                acc_v[j] += gi * (x * sx[j] - b * sb[j])
            inv = inv_n[g]
            for kk in range(k_in):
                p, q = P[i, kk], P[i, kk] * inv
                s = np.float32(0.0)
                for j in range(h):
                    s += (WT[kk, j] + WT[k_in + kk, j] * inv) * dpre[j]
                    acc_w[kk, j] += dpre[j] * p
                    acc_w[k_in + kk, j] += dpre[j] * q
                dP[i, kk] = s
            if (i - bounds[t]) % _FLUSH == _FLUSH - 1:
                _flush(acc_w, dWT[t])
                _flush(acc_v, dv[t])
        if c_now >= 0:
            _flush(acc_a, dA[t, c_now])
        _flush(acc_w, dWT[t])
        _flush(acc_v, dv[t])


def _arrays(P, cells, genes, inv_n, A, B, W, v):
    return (
        np.ascontiguousarray(P.detach().numpy(), dtype=np.float32),
        np.ascontiguousarray(cells.numpy(), dtype=np.int64),
        np.ascontiguousarray(genes.numpy(), dtype=np.int64),
        np.ascontiguousarray(inv_n.numpy(), dtype=np.float32),
        np.ascontiguousarray(A.detach().numpy(), dtype=np.float32),
        np.ascontiguousarray(B.detach().numpy(), dtype=np.float32),
        np.ascontiguousarray(W.detach().numpy().T, dtype=np.float32),
        np.ascontiguousarray(v.detach().numpy(), dtype=np.float32),
    )


def _parts(n: int) -> int:
    return max(1, min(numba.get_num_threads(), torch.get_num_threads(), n))


class _RhoLocal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, P, A, B, W, v, cells, genes, inv_n):
        arrays = _arrays(P, cells, genes, inv_n, A, B, W, v)
        out = np.empty(len(arrays[0]), np.float32)
        _forward(*arrays, _ranges(len(out), _parts(len(out))), _POW2, out)
        ctx.save_for_backward(P, A, B, W, v, cells, genes, inv_n)
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx, grad):
        P, A, B, W, v, cells, genes, inv_n = ctx.saved_tensors
        arrays = _arrays(P, cells, genes, inv_n, A, B, W, v)
        n, k_in = arrays[0].shape
        h = arrays[4].shape[1]
        parts = _parts(n)
        dP = np.empty((n, k_in), np.float32)
        dA = np.zeros((parts, *A.shape), np.float64)
        dB = np.zeros((parts, *B.shape), np.float32)
        dWT = np.zeros((parts, 2 * k_in, h), np.float64)
        dv = np.zeros((parts, h), np.float64)
        go = np.ascontiguousarray(grad.numpy(), dtype=np.float32)
        _backward(*arrays, go, _ranges(n, parts), _POW2, dP, dA, dB, dWT, dv)

        def total(x, shape):
            return torch.from_numpy(x.sum(axis=0).astype(np.float32).reshape(shape))

        return (
            torch.from_numpy(dP),
            total(dA, A.shape),
            total(dB, B.shape),
            total(dWT, (2 * k_in, h)).T.contiguous(),
            total(dv, v.shape),
            None,
            None,
            None,
        )


def rho_local(
    P: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    W: torch.Tensor,
    v: torch.Tensor,
    cells: torch.Tensor,
    genes: torch.Tensor,
    inv_n: torch.Tensor,
) -> torch.Tensor:
    """``v · (silu(A[c] + B[g] + W [p, p·inv_n[g]]) - silu(A[c] + B[g]))`` per row (CPU).

    ``P`` is the rows' pooled channels ``(rows, k)``, ``A`` ``(cells, hidden)``, ``B``
    ``(genes, hidden)``, ``W`` ``(hidden, 2k)`` (sum- then mean-pooled part), ``v``
    ``(hidden,)``, ``inv_n`` ``(genes,)`` the reciprocal of each gene's window size (the mean
    pooling); ``c``, ``g`` are the rows' ``cells`` and ``genes``. Differentiable in ``P``,
    ``A``, ``B``, ``W`` and ``v`` (float32 CPU tensors).
    """
    return _RhoLocal.apply(P, A, B, W, v, cells, genes, inv_n)


@numba.njit(cache=True)
def _structure(rows, cols, vals, scale, n_cells, peak_ptr, peak_order, pair_gene, n_genes):
    """Entries (pair, value, row) per cell and the active rows' genes, in cell then gene order."""
    m = len(cols)
    n_entries = 0
    for e in range(m):
        n_entries += peak_ptr[cols[e] + 1] - peak_ptr[cols[e]]
    entry_pair = np.empty(n_entries, np.int64)
    entry_val = np.empty(n_entries, np.float32)
    entry_row = np.empty(n_entries, np.int64)
    genes = np.empty(n_entries, np.int64)
    cell_entries = np.zeros(n_cells + 1, np.int64)
    cell_rows = np.zeros(n_cells + 1, np.int64)
    row_of = np.full(n_genes, -1, np.int64)
    seen = np.empty(n_genes, np.int64)
    n_out, e_out, start = 0, 0, 0
    for b in range(n_cells):
        stop = start
        while stop < m and rows[stop] == b:
            stop += 1
        n_seen = 0
        for e in range(start, stop):
            p = cols[e]
            a = np.float32(vals[e] / scale)
            for r in range(peak_ptr[p], peak_ptr[p + 1]):
                q = peak_order[r]
                g = pair_gene[q]
                if row_of[g] == -1:
                    row_of[g] = -2
                    seen[n_seen] = g
                    n_seen += 1
                entry_pair[e_out] = q
                entry_val[e_out] = a
                e_out += 1
        order = np.sort(seen[:n_seen])
        for r in range(n_seen):
            row_of[order[r]] = n_out + r
            genes[n_out + r] = order[r]
        for e in range(cell_entries[b], e_out):
            entry_row[e] = row_of[pair_gene[entry_pair[e]]]
        for r in range(n_seen):
            row_of[order[r]] = -1
        n_out += n_seen
        cell_entries[b + 1] = e_out
        cell_rows[b + 1] = n_out
        start = stop
    return genes[:n_out].copy(), cell_rows, cell_entries, entry_pair, entry_val, entry_row


@numba.njit(parallel=True, cache=True)
def _pool_forward(G, cell_entries, entry_pair, entry_val, entry_row, out):  # pragma: no cover
    C = G.shape[1]
    for b in numba.prange(len(cell_entries) - 1):  # a cell's rows are its own: no races
        for e in range(cell_entries[b], cell_entries[b + 1]):
            r, q, a = entry_row[e], entry_pair[e], entry_val[e]
            for c in range(C):
                out[r, c] += a * G[q, c]


@numba.njit(parallel=True, cache=True)
def _pool_backward(
    grad, cell_entries, bounds, entry_pair, entry_val, entry_row, dG
):  # pragma: no cover - numba
    C = grad.shape[1]
    for t in numba.prange(len(bounds) - 1):
        for e in range(cell_entries[bounds[t]], cell_entries[bounds[t + 1]]):
            r, q, a = entry_row[e], entry_pair[e], entry_val[e]
            for c in range(C):
                dG[t, q, c] += a * grad[r, c]


class _Pool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, G, n_rows, cell_entries, entry_pair, entry_val, entry_row):
        out = np.zeros((n_rows, G.shape[1]), np.float32)
        Gn = np.ascontiguousarray(G.detach().numpy(), dtype=np.float32)
        _pool_forward(Gn, cell_entries, entry_pair, entry_val, entry_row, out)
        ctx.structure = (cell_entries, entry_pair, entry_val, entry_row)
        ctx.g_shape = tuple(G.shape)
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx, grad):
        cell_entries, entry_pair, entry_val, entry_row = ctx.structure
        n_cells = len(cell_entries) - 1
        parts = _parts(n_cells)
        dG = np.zeros((parts, *ctx.g_shape), np.float32)
        go = np.ascontiguousarray(grad.numpy(), dtype=np.float32)
        _pool_backward(
            go, cell_entries, _ranges(n_cells, parts), entry_pair, entry_val, entry_row, dG
        )
        return torch.from_numpy(dG.sum(axis=0)), None, None, None, None, None


def active_pooled(
    rows: torch.Tensor,
    cols: torch.Tensor,
    vals: torch.Tensor,
    n_cells: int,
    scale: float,
    G: torch.Tensor,
    peak_ptr: torch.Tensor,
    peak_order: torch.Tensor,
    pair_gene: torch.Tensor,
    n_genes: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sum-pooled ``(rows, C)`` signal of the (cell, gene) rows with an open window peak (CPU).

    ``rows``, ``cols``, ``vals``: the batch's non-zeros sorted by cell (COO order); ``G`` the
    pairs' φ weights ``(pairs, C)`` (differentiable); ``peak_ptr``/``peak_order`` list each
    peak's pairs and ``pair_gene`` their genes. Returns the rows' cells and genes (cell then gene
    order) and their pooled channels.
    """
    genes, cell_rows, cell_entries, entry_pair, entry_val, entry_row = _structure(
        rows.numpy(),
        cols.numpy(),
        vals.detach().numpy(),
        np.float32(scale),
        int(n_cells),
        peak_ptr.numpy(),
        peak_order.numpy(),
        pair_gene.numpy(),
        int(n_genes),
    )
    n_rows = len(genes)
    cells = np.repeat(np.arange(n_cells, dtype=np.int64), np.diff(cell_rows))
    pooled = _Pool.apply(G, n_rows, cell_entries, entry_pair, entry_val, entry_row)
    return torch.from_numpy(cells), torch.from_numpy(genes), pooled
