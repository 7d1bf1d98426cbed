"""DeepSets over gene–peak windows: one φ and one ρ shared by every gene.

For a cell ``b`` and a gene ``g`` with window peaks ``P(g)``:

``pooled[b, g, c] = Σ_{p ∈ P(g)} a[b, p] · φ(f_gp)_c``  (sum pooling, ``C`` channels)

``mean[b, g, c] = pooled[b, g, c] / |P(g)|``  (mean pooling over the window)

``ŷ[b, g] = ρ(pooled[b, g], mean[b, g], context[b], e_g)``

where ``a[b, p]`` is the peak's accessibility in the cell (divided by a fixed
``accessibility_scale``), ``f_gp`` the pair's features (signed distance, width, in-gene-body
flag; see :func:`pair_features`) and ``e_g`` a small learned gene embedding. Accessibility enters
φ linearly, ``φ(a, f) = a · g(f)`` with ``g`` a small MLP, so an inaccessible peak contributes
nothing and the pooling is exactly a sparse product ``(batch × peaks) · (peaks × genes)`` per
channel. It is computed as a gather/scatter over the (cell, pair) entries with non-zero
accessibility (the same products, differentiable through ``g``): memory grows with the non-zeros
of the batch times the windows per peak, never with cells × genes × peaks.

ρ (one hidden layer of width ``hidden``, shared by all genes) reads the pooled channels, the
cell context (an MLP of the cell's ATAC SVD embedding) and the gene embedding; its output is
added to a factorised context term ``⟨P·context_b, e_g⟩`` and a per-gene bias (both part of ρ's
gene-embedding input: ``e_g`` is read both additively and multiplicatively). Genes are processed
in chunks so that ``batch × chunk × hidden`` activations fit in ``max_memory_mb``; with several
chunks during training each chunk is recomputed in the backward pass
(:func:`torch.utils.checkpoint.checkpoint`), so the budget bounds the training memory too.
The output is invariant to the order of a gene's peaks and defined for genes with zero peaks
(pooled signal 0).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from . import _deepsets_kernels as kernels

__all__ = ["N_PAIR_FEATURES", "DeepSetsNet", "pair_features"]

#: Number of features :func:`pair_features` gives per (gene, peak) pair.
N_PAIR_FEATURES = 5
_BYTES_PER_ACTIVATION = 4 * 6  # float32; pre-activation, activation and their grads, with slack


def pair_features(distance: np.ndarray, width: np.ndarray, in_body: np.ndarray) -> np.ndarray:
    """Compute fixed numeric features of each gene–peak pair (float32, ``(n_pairs, 5)``).

    Columns: ``sign(d)·log1p(|d|/1 kb)/5`` (signed, strand-oriented: negative upstream),
    ``log1p(|d|/1 kb)/5``, ``exp(-|d|/5 kb)`` (the ArchR weight), the in-gene-body flag and
    ``log(width / 500 bp)``.
    """
    d = np.asarray(distance, dtype=np.float64)
    ad = np.abs(d)
    logd = np.log1p(ad / 1000.0) / 5.0
    w = np.maximum(np.asarray(width, dtype=np.float64), 1.0)
    feats = np.stack(
        [
            np.sign(d) * logd,
            logd,
            np.exp(-ad / 5000.0),
            np.asarray(in_body, np.float64),
            np.log(w / 500.0),
        ],
        axis=1,
    )
    return feats.astype(np.float32)


def _nonzeros(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows, columns and values of the non-zero entries of a sparse or dense 2-D tensor."""
    if x.layout == torch.sparse_coo:
        x = x.coalesce()
        idx = x.indices()
        return idx[0], idx[1], x.values()
    if x.layout == torch.sparse_csr:
        crow, col = x.crow_indices(), x.col_indices()
        rows = torch.repeat_interleave(torch.arange(x.shape[0], device=x.device), crow.diff())
        return rows, col, x.values()
    nz = x.nonzero(as_tuple=True)
    return nz[0], nz[1], x[nz]


class DeepSetsNet(nn.Module):
    """DeepSets network from (ATAC SVD context, sparse ATAC) to one value per gene.

    Parameters
    ----------
    n_context
        Width of the context input (SVD components).
    pair_gene, pair_peak
        Gene and peak index of each pair, sorted by gene then peak (CSR order of the genes ×
        peaks windows).
    features
        ``(n_pairs, n_features)`` pair features (:func:`pair_features`).
    n_genes, n_peaks
        Shape of the windows.
    channels
        Output channels ``C`` of φ's MLP ``g``.
    phi_hidden
        Hidden width of ``g``.
    hidden
        Hidden width of ρ.
    context_hidden
        Width of the two-layer context encoder.
    gene_embedding
        Dimension of the learned gene embedding.
    dropout
        Dropout in the context encoder.
    accessibility_scale
        Accessibility values are divided by this (e.g. the mean non-zero training value).
    max_memory_mb
        Budget for the ``batch × chunk × hidden`` activations of ρ.

    Notes
    -----
    ``forward(context, atac)`` takes a dense ``(batch, n_context)`` tensor and a
    ``(batch, n_peaks)`` tensor (torch sparse COO/CSR or dense) and returns ``(batch, n_genes)``.
    On CPU (float32) the pooling and ρ's local term of the active (cell, gene) rows run as fused
    kernels (``scmm.nn._deepsets_kernels``: no ``rows × hidden`` tensor is formed, so
    ``max_memory_mb`` does not apply); elsewhere, or with ``fused_rho = False``, as torch
    operations, ρ in chunks within ``max_memory_mb``. The two paths give the same values and
    gradients (to float32 rounding).
    """

    #: Run the pooling and ρ's local term as fused CPU kernels (float32 tensors on the CPU).
    fused_rho: bool = True

    def __init__(
        self,
        n_context: int,
        pair_gene: np.ndarray,
        pair_peak: np.ndarray,
        features: np.ndarray,
        n_genes: int,
        n_peaks: int,
        *,
        channels: int = 8,
        phi_hidden: int = 32,
        hidden: int = 64,
        context_hidden: int = 256,
        gene_embedding: int = 64,
        dropout: float = 0.3,
        accessibility_scale: float = 1.0,
        max_memory_mb: float = 1024.0,
    ) -> None:
        super().__init__()
        pair_gene = np.asarray(pair_gene, dtype=np.int64)
        pair_peak = np.asarray(pair_peak, dtype=np.int64)
        features = np.asarray(features, dtype=np.float32)
        if not (len(pair_gene) == len(pair_peak) == len(features)):
            msg = "`pair_gene`, `pair_peak` and `features` must have one entry per pair."
            raise ValueError(msg)
        if len(pair_gene) and (np.diff(pair_gene) < 0).any():
            msg = "`pair_gene` must be sorted (CSR order of the genes × peaks windows)."
            raise ValueError(msg)
        self.n_genes, self.n_peaks = int(n_genes), int(n_peaks)
        self.channels, self.hidden = int(channels), int(hidden)
        self.accessibility_scale = float(accessibility_scale)
        self.max_memory_mb = float(max_memory_mb)
        gene_ptr = np.zeros(self.n_genes + 1, dtype=np.int64)
        np.cumsum(np.bincount(pair_gene, minlength=self.n_genes), out=gene_ptr[1:])
        peak_order = np.argsort(pair_peak, kind="stable")
        peak_ptr = np.zeros(self.n_peaks + 1, dtype=np.int64)
        np.cumsum(np.bincount(pair_peak, minlength=self.n_peaks), out=peak_ptr[1:])
        n_per_gene = np.diff(gene_ptr).astype(np.float32)
        # structure: rebuilt from the windows by the model, not stored in the state dict
        for name, value in (
            ("pair_gene", pair_gene),
            ("pair_peak", pair_peak),
            ("gene_ptr", gene_ptr),
            ("peak_ptr", peak_ptr),
            ("peak_order", peak_order),
            ("features", features),
            ("n_per_gene", n_per_gene),
        ):
            self.register_buffer(
                name, torch.from_numpy(np.ascontiguousarray(value)), persistent=False
            )
        c, h = self.channels, self.hidden
        self.phi = nn.Sequential(
            nn.Linear(features.shape[1], phi_hidden), nn.SiLU(), nn.Linear(phi_hidden, c)
        )
        self.context = nn.Sequential(
            nn.Linear(n_context, context_hidden),
            nn.LayerNorm(context_hidden),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Linear(context_hidden, context_hidden),
            nn.LayerNorm(context_hidden),
            nn.SiLU(),
            nn.Dropout(dropout),
        )
        self.embedding = nn.Parameter(torch.randn(self.n_genes, gene_embedding) * 0.1)
        self.gene_bias = nn.Parameter(torch.zeros(self.n_genes))
        # ρ: first layer split by input (pooled channels, context, gene), one hidden layer
        self.rho_pooled = nn.Linear(2 * c, h, bias=False)
        self.rho_context = nn.Linear(context_hidden, h)
        self.rho_gene = nn.Linear(gene_embedding + 1, h, bias=False)
        self.rho_out = nn.Linear(h, 1, bias=False)
        # factorised context readout ⟨P·context, e_g⟩
        self.readout = nn.Linear(context_hidden, gene_embedding, bias=False)

    # -- pieces --------------------------------------------------------------------------------
    def phi_weights(self) -> torch.Tensor:
        """``g(f)`` for every pair: ``(n_pairs, C)``."""
        return self.phi(self.features)

    def entries(self, atac: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(cell, pair, scaled accessibility) for every pair whose peak is open in the cell.

        Sorted by pair (hence by gene). No gradient flows to ``atac``.
        """
        with torch.no_grad():
            rows, cols, vals = _nonzeros(atac)
            vals = vals.float() / self.accessibility_scale
            start = self.peak_ptr[cols]
            count = self.peak_ptr[cols + 1] - start
            keep = count > 0
            rows, start, count, vals = rows[keep], start[keep], count[keep], vals[keep]
            rep = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), count)
            first = torch.cumsum(count, 0) - count
            offset = torch.arange(len(rep), device=rows.device) - first[rep]
            pair = self.peak_order[start[rep] + offset]
            order = torch.argsort(pair)
            return rows[rep][order], pair[order], vals[rep][order]

    def pooled(self, entries, G: torch.Tensor, n_cells: int, g0: int, g1: int) -> torch.Tensor:
        """Dense sum-pooled signal ``(n_cells, g1 - g0, C)`` of the genes ``g0 … g1 - 1``."""
        rows, pair, vals = entries
        lo, hi = self.gene_ptr[g0], self.gene_ptr[g1]
        s0 = int(torch.searchsorted(pair, lo.reshape(1)))
        s1 = int(torch.searchsorted(pair, hi.reshape(1)))
        rows, pair, vals = rows[s0:s1], pair[s0:s1], vals[s0:s1]
        n = g1 - g0
        contrib = vals[:, None] * G[pair]
        flat = rows * n + (self.pair_gene[pair] - g0)
        out = torch.zeros(n_cells * n, self.channels, dtype=G.dtype, device=G.device)
        return out.index_add(0, flat, contrib).view(n_cells, n, self.channels)

    def active_pooled(
        self, entries, G: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sum-pooled signal of the (cell, gene) pairs with at least one open window peak.

        Returns the cells, the genes (sorted by cell then gene) and their pooled ``(n, C)``.
        """
        rows, pair, vals = entries
        key = rows * self.n_genes + self.pair_gene[pair]
        active, inverse = torch.unique(key, return_inverse=True)
        contrib = vals[:, None] * G[pair]
        pooled = torch.zeros(len(active), self.channels, dtype=G.dtype, device=G.device)
        pooled = pooled.index_add(0, inverse, contrib)
        return active // self.n_genes, active % self.n_genes, pooled

    def encode_context(self, context: torch.Tensor) -> torch.Tensor:
        """Hidden representation of each cell's context ``(batch, context_hidden)``."""
        return self.context(context.float())

    def _gene_input(self, genes: torch.Tensor | slice) -> torch.Tensor:
        n = self.n_per_gene[genes]
        return self.rho_gene(torch.cat([self.embedding[genes], torch.log1p(n)[:, None]], dim=1))

    def _local(self, pooled, n_per, base) -> torch.Tensor:
        """ρ's local term ``r(pooled, ·) - r(0, ·)``; ``base`` is its pooled-free input."""
        mean = pooled / n_per.clamp_min(1.0)[..., None]
        pre = self.rho_pooled(torch.cat([pooled, mean], dim=-1)) + base
        silu = nn.functional.silu
        return self.rho_out(silu(pre) - silu(base)).squeeze(-1)

    def base(self, ctx: torch.Tensor, g0: int = 0, g1: int | None = None) -> torch.Tensor:
        """Compute ρ's pooled-free part ``⟨P·context, e_g⟩ + bias_g``: ``(batch, g1 - g0)``."""
        g1 = self.n_genes if g1 is None else g1
        return self.readout(ctx) @ self.embedding[g0:g1].T + self.gene_bias[g0:g1]

    def rho(self, pooled: torch.Tensor, ctx: torch.Tensor, g0: int, g1: int) -> torch.Tensor:
        """ρ for the genes ``g0 … g1 - 1`` from their dense pooled ``(batch, g1 - g0, C)``."""
        base = self.rho_context(ctx)[:, None, :] + self._gene_input(slice(g0, g1))[None]
        local = self._local(pooled, self.n_per_gene[g0:g1][None, :], base)
        return self.base(ctx, g0, g1) + local

    def chunk_rows(self) -> int:
        """(cell, gene) rows per chunk so that ``rows × hidden`` activations fit the budget."""
        per_row = self.hidden * _BYTES_PER_ACTIVATION
        return max(1, int(self.max_memory_mb * 2**20 // per_row))

    def _chunk(self, pooled, ctx_h, gene_h, cells, genes) -> torch.Tensor:
        base = ctx_h[cells] + gene_h[genes]
        return self._local(pooled, self.n_per_gene[genes], base)

    def _fused_pooled(self, atac, G) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`active_pooled` of the batch in fused CPU kernels (same rows, same order)."""
        rows, cols, vals = _nonzeros(atac)
        return kernels.active_pooled(
            rows,
            cols,
            vals.float(),
            atac.shape[0],
            self.accessibility_scale,
            G,
            self.peak_ptr,
            self.peak_order,
            self.pair_gene,
            self.n_genes,
        )

    def _fused_local(self, pooled, ctx_h, gene_h, cells, genes) -> torch.Tensor:
        """ρ's local term of the active rows in one fused CPU kernel (:func:`rho_local`)."""
        inv_n = 1.0 / self.n_per_gene.clamp_min(1.0)
        w, v = self.rho_pooled.weight, self.rho_out.weight[0]
        return kernels.rho_local(pooled, ctx_h, gene_h, w, v, cells, genes, inv_n)

    def _chunked_local(self, pooled, ctx_h, gene_h, cells, genes, chunk_rows) -> torch.Tensor:
        """ρ's local term in torch operations, in chunks of rows within the memory budget."""
        size = self.chunk_rows() if chunk_rows is None else int(chunk_rows)
        n_chunks = math.ceil(len(cells) / size)
        recompute = n_chunks > 1 and torch.is_grad_enabled()
        parts = []
        for k in range(n_chunks):
            sl = slice(k * size, (k + 1) * size)
            args = (pooled[sl], ctx_h, gene_h, cells[sl], genes[sl])
            if recompute:
                parts.append(checkpoint(self._chunk, *args, use_reentrant=False))
            else:
                parts.append(self._chunk(*args))
        return torch.cat(parts)

    def forward(
        self, context: torch.Tensor, atac: torch.Tensor, *, chunk_rows: int | None = None
    ) -> torch.Tensor:
        """Predictions ``(batch, n_genes)``; ``chunk_rows`` overrides the memory budget."""
        n_cells = context.shape[0]
        if atac.shape != (n_cells, self.n_peaks):
            msg = (
                f"`atac` must be ({n_cells}, {self.n_peaks}) cells × peaks, "
                f"got {tuple(atac.shape)}."
            )
            raise ValueError(msg)
        with torch.autocast(device_type=context.device.type, enabled=False):
            ctx = self.encode_context(context)
            out = self.base(ctx)
            fused = self.fused_rho and ctx.device.type == "cpu" and ctx.dtype == torch.float32
            if fused:
                cells, genes, pooled = self._fused_pooled(atac, self.phi_weights())
            else:
                cells, genes, pooled = self.active_pooled(self.entries(atac), self.phi_weights())
            ctx_h = self.rho_context(ctx)
            gene_h = self._gene_input(slice(None))
            if not len(cells):
                return out
            if fused:
                local = self._fused_local(pooled, ctx_h, gene_h, cells, genes)
            else:
                local = self._chunked_local(pooled, ctx_h, gene_h, cells, genes, chunk_rows)
            flat = out.reshape(-1).index_add(0, cells * self.n_genes + genes, local)
            out = flat.view(n_cells, self.n_genes)
            return out
