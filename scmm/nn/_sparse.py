"""A linear layer that holds only the weights a connectivity mask allows.

Conventions
-----------
The mask has shape ``(in_features, out_features)``: rows are inputs, columns are outputs. This
is the layout of the pathway connectivity that :func:`scmm.pp.pathway_connectivity` stores in
``adata.varm`` (rows are the source genes), so that mask can be passed as it is. Internally the
allowed weights are kept in the ``(out_features, in_features)`` layout of :class:`torch.nn.Linear`,
as index pairs sorted by output then input (the order of a CSR matrix); ``indices`` holds them as
``[output index, input index]`` rows, the convention of the ``sparselinear`` package.
"""

from __future__ import annotations

import warnings
from types import ModuleType
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["SPARSE_BACKENDS", "SparseLinear"]

Backend = Literal["csr", "coo", "index_add", "dense_masked", "sparselinear"]
SPARSE_BACKENDS: tuple[str, ...] = ("csr", "coo", "index_add", "dense_masked", "sparselinear")

_CSR_BETA = "Sparse CSR tensor support is in beta state"


def _mask_to_pairs(
    mask: sp.spmatrix | sp.sparray | torch.Tensor | ArrayLike,
    in_features: int,
    out_features: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Turn a mask in any accepted form into (output index, input index) pairs, CSR order."""
    expected = (in_features, out_features)
    if sp.issparse(mask):
        if mask.shape != expected:
            _raise_shape(mask.shape, expected)
        coo = sp.coo_matrix(mask)
        keep = coo.data != 0
        inp, out = coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64)
    else:
        arr = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
        is_pairs = (
            np.issubdtype(arr.dtype, np.integer)
            and arr.ndim == 2
            and arr.shape[0] == 2
            and arr.shape != expected
        )
        if is_pairs:
            inp, out = arr[0].astype(np.int64), arr[1].astype(np.int64)
            bad = (inp < 0) | (inp >= in_features) | (out < 0) | (out >= out_features)
            if bad.any():
                msg = (
                    f"`mask` index pairs must be [input index, output index] rows with inputs in "
                    f"[0, {in_features}) and outputs in [0, {out_features}); "
                    f"{int(bad.sum())} pairs fall outside."
                )
                raise ValueError(msg)
        else:
            if arr.ndim != 2 or arr.shape != expected:
                _raise_shape(arr.shape, expected)
            inp, out = np.nonzero(arr)
            inp, out = inp.astype(np.int64), out.astype(np.int64)
    # unique pairs, sorted by output then input (CSR order of the (out, in) weight)
    key = np.unique(out * in_features + inp)
    return key // in_features, key % in_features


def _raise_shape(shape: tuple[int, ...], expected: tuple[int, int]) -> None:
    hint = ""
    if tuple(shape) == expected[::-1]:
        hint = " It looks transposed: pass `mask.T`."
    msg = (
        f"`mask` must have shape (in_features, out_features) = {expected} (rows are inputs), "
        f"or be integer [input, output] index pairs of shape (2, nnz); got shape "
        f"{tuple(shape)}.{hint}"
    )
    raise ValueError(msg)


class SparseLinear(nn.Module):
    r"""Linear layer :math:`y = x W^\top + b` whose weight is zero outside a fixed mask.

    Only the allowed weights are parameters (``values``, one per non-zero of the mask), so the
    layer's size grows with the number of connections, not with ``in_features × out_features``.
    Masked weights cannot become non-zero: they do not exist.

    Parameters
    ----------
    in_features
        Number of inputs.
    out_features
        Number of outputs.
    mask
        Allowed connections, shape ``(in_features, out_features)`` (rows are inputs): a scipy
        sparse matrix, a boolean (or 0/1 float) array or tensor, or integer index pairs of shape
        ``(2, nnz)`` whose rows are ``[input index, output index]``. Explicit zeros are not
        connections; duplicate pairs count once.
    bias
        Learn an additive bias per output.
    backend
        How the product is computed; all give the same result up to float rounding.

        ``"csr"``
            builds a :func:`torch.sparse_csr_tensor` from ``values`` on every call and multiplies
            with :func:`torch.sparse.mm`; a hand-written backward multiplies by the transposed
            CSR for the input gradient and uses :func:`torch.sparse.sampled_addmm` for the
            gradient of ``values`` (about 3× faster on CPU than torch's generic sparse backward,
            and the same numbers).
        ``"coo"``
            the same with a coalesced :func:`torch.sparse_coo_tensor`.
        ``"index_add"``
            gathers the connected inputs, scales them and sums them per output with
            :meth:`torch.Tensor.index_add_`; memory ``batch × nnz``.
        ``"dense_masked"``
            holds a dense ``weight`` (``out_features × in_features``) and multiplies
            ``weight × mask``: the reference the others are compared with. Masked entries get
            zero gradient, so they stay zero under any gradient-based optimiser.
        ``"sparselinear"``
            ``torch_sparse.spmm``, as the optional ``sparselinear`` package uses it
            (its ``torch_scatter`` and ``torch_sparse`` compile against the installed torch:
            ``make sparselinear`` in a clone of scmm, or ``pip install --no-build-isolation
            torch-scatter torch-sparse sparselinear``; a plain ``pip install`` cannot build
            them).

        The default ``"csr"`` was the fastest sparse backend for forward + backward on CPU in
        ``benchmarks/sparse_layer.py`` (random 2,000 × 2,000 at 5 % and the bmmc pathway
        masks); ``"dense_masked"`` can be as fast at these sizes on an idle CPU, but holds all
        ``in × out`` weights.
    generator
        Random generator for the initialisation; ``None`` uses torch's default generator, as
        :class:`torch.nn.Linear` does.
    device
        Device of the parameters. The input must be on the same device.
    dtype
        Floating point type of the parameters.

    Attributes
    ----------
    values
        The allowed weights, shape ``(nnz,)``, in the order of ``indices`` (not for
        ``"dense_masked"``, which has ``weight`` instead).
    indices
        Buffer of shape ``(2, nnz)``: ``[output index, input index]`` of each weight, sorted by
        output then input.
    bias
        Shape ``(out_features,)``, or ``None``.

    Notes
    -----
    Initialisation follows :class:`torch.nn.Linear` (kaiming-uniform with ``a = √5``) but on the
    true fan-in: the weights into output ``j`` and its bias are drawn from
    :math:`U(-1/\sqrt{k_j}, 1/\sqrt{k_j})` where :math:`k_j` is the number of inputs connected to
    ``j``. An output with no inputs gets bias 0 and always outputs it. With the same
    ``generator`` state every backend starts from the same weights.

    Examples
    --------
    >>> import numpy as np, torch
    >>> mask = np.array([[1, 0], [1, 1], [0, 1]], dtype=bool)  # 3 inputs, 2 outputs
    >>> layer = SparseLinear(3, 2, mask)
    >>> layer.values.shape
    torch.Size([4])
    >>> layer(torch.ones(5, 3)).shape
    torch.Size([5, 2])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        mask: sp.spmatrix | sp.sparray | torch.Tensor | ArrayLike,
        *,
        bias: bool = True,
        backend: Backend = "csr",
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if backend not in SPARSE_BACKENDS:
            msg = f"`backend={backend!r}` is not known; choose one of {SPARSE_BACKENDS}."
            raise ValueError(msg)
        if in_features < 1 or out_features < 1:
            msg = (
                f"`in_features` and `out_features` must be positive; got {in_features} "
                f"and {out_features}."
            )
            raise ValueError(msg)
        if backend == "sparselinear":
            _import_torch_sparse()
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.backend = backend
        out_idx, in_idx = _mask_to_pairs(mask, self.in_features, self.out_features)
        factory = {"device": device, "dtype": dtype}
        idx_device = {"device": device, "dtype": torch.long}
        self.register_buffer("indices", torch.as_tensor(np.stack([out_idx, in_idx]), **idx_device))
        counts = np.bincount(out_idx, minlength=self.out_features)
        crow = np.concatenate([[0], np.cumsum(counts)])
        self.register_buffer("_crow", torch.as_tensor(crow, **idx_device), persistent=False)
        self.register_buffer("fan_in", torch.as_tensor(counts, **idx_device), persistent=False)
        # the transposed (in × out) CSR, for the input gradient of the "csr" backend
        perm_t = np.lexsort((out_idx, in_idx))
        crow_t = np.concatenate([[0], np.cumsum(np.bincount(in_idx, minlength=self.in_features))])
        self.register_buffer("_perm_t", torch.as_tensor(perm_t, **idx_device), persistent=False)
        self.register_buffer("_crow_t", torch.as_tensor(crow_t, **idx_device), persistent=False)
        self.register_buffer(
            "_rows_t", torch.as_tensor(out_idx[perm_t], **idx_device), persistent=False
        )
        nnz = int(out_idx.size)
        if backend == "dense_masked":
            self.weight = nn.Parameter(torch.zeros(self.out_features, self.in_features, **factory))
            dense_mask = torch.zeros(self.out_features, self.in_features, **factory)
            dense_mask[self.indices[0], self.indices[1]] = 1
            self.register_buffer("mask", dense_mask, persistent=False)
            self.register_parameter("values", None)
        else:
            self.values = nn.Parameter(torch.empty(nnz, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator=generator)

    @property
    def nnz(self) -> int:
        """Number of allowed weights."""
        return int(self.indices.shape[1])

    @property
    def density(self) -> float:
        """Fraction of the ``in_features × out_features`` weights that are allowed."""
        return self.nnz / (self.in_features * self.out_features)

    def reset_parameters(self, *, generator: torch.Generator | None = None) -> None:
        r"""Draw weights and bias from :math:`U(-1/\sqrt{k_j}, 1/\sqrt{k_j})` per output ``j``.

        Parameters
        ----------
        generator
            Random generator; ``None`` uses torch's default generator.
        """
        param = self.weight if self.backend == "dense_masked" else self.values
        fan_in = self.fan_in.to(param.dtype)
        bound_out = torch.where(fan_in > 0, fan_in.clamp(min=1).rsqrt(), torch.zeros_like(fan_in))
        with torch.no_grad():
            draw = torch.empty(self.nnz, dtype=param.dtype, device=param.device)
            draw.uniform_(-1.0, 1.0, generator=generator)
            vals = draw * bound_out[self.indices[0]]
            if self.backend == "dense_masked":
                self.weight.zero_()
                self.weight[self.indices[0], self.indices[1]] = vals
            else:
                self.values.copy_(vals)
            if self.bias is not None:
                self.bias.uniform_(-1.0, 1.0, generator=generator)
                self.bias.mul_(bound_out)

    def dense_weight(self) -> torch.Tensor:
        """Return the weight as a dense ``(out_features, in_features)`` tensor (differentiable).

        Returns
        -------
        The weight matrix with zeros outside the mask.
        """
        if self.backend == "dense_masked":
            return self.weight * self.mask
        dense = self.values.new_zeros(self.out_features, self.in_features)
        return dense.index_put((self.indices[0], self.indices[1]), self.values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer.

        Parameters
        ----------
        x
            Dense input of shape ``(..., in_features)``.

        Returns
        -------
        Output of shape ``(..., out_features)``.
        """
        if x.shape[-1] != self.in_features:
            msg = (
                f"Input has {x.shape[-1]} features in its last dimension; "
                f"expected {self.in_features}."
            )
            raise ValueError(msg)
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        size = (self.out_features, self.in_features)
        backend = self.backend
        if backend == "dense_masked":
            y = nn.functional.linear(x2, self.weight * self.mask)
        elif backend == "csr":
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=_CSR_BETA, category=UserWarning)
                y = _CSRLinear.apply(
                    self.values,
                    x2,
                    (self._crow, self.indices[1], self._crow_t, self._rows_t, self._perm_t),
                    size,
                )
        elif backend == "coo":
            w = torch.sparse_coo_tensor(
                self.indices, self.values, size, is_coalesced=True, check_invariants=False
            )
            y = torch.sparse.mm(w, x2.T).T
        elif backend == "index_add":
            y = x2.new_zeros(x2.shape[0], self.out_features)
            y = y.index_add(1, self.indices[0], x2[:, self.indices[1]] * self.values)
        else:  # sparselinear
            torch_sparse = _import_torch_sparse()
            y = torch_sparse.spmm(
                self.indices, self.values, self.out_features, self.in_features, x2.T
            ).T
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        """Describe the layer in its repr."""
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"nnz={self.nnz}, density={self.density:.4g}, bias={self.bias is not None}, "
            f"backend={self.backend!r}"
        )


class _CSRLinear(torch.autograd.Function):
    """``y = x Wᵀ`` with ``W`` a CSR matrix built from ``values``; explicit sparse backward."""

    @staticmethod
    def forward(ctx, values, x, structure, size):
        crow, cols = structure[0], structure[1]
        w = torch.sparse_csr_tensor(crow, cols, values, size, check_invariants=False)
        ctx.save_for_backward(values, x, *structure)
        ctx.size = size
        return torch.sparse.mm(w, x.T).T

    @staticmethod
    def backward(ctx, grad):
        values, x, crow, cols, crow_t, rows_t, perm_t = ctx.saved_tensors
        n_out, n_in = ctx.size
        grad_values = grad_x = None
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_CSR_BETA, category=UserWarning)
            if ctx.needs_input_grad[1]:
                w_t = torch.sparse_csr_tensor(
                    crow_t, rows_t, values[perm_t], (n_in, n_out), check_invariants=False
                )
                grad_x = torch.sparse.mm(w_t, grad.T).T
            if ctx.needs_input_grad[0]:
                pattern = torch.sparse_csr_tensor(
                    crow, cols, torch.zeros_like(values), (n_out, n_in), check_invariants=False
                )
                sampled = torch.sparse.sampled_addmm(
                    pattern, grad.T.contiguous(), x.contiguous(), beta=0.0
                )
                grad_values = sampled.values()
        return grad_values, grad_x, None, None


def _import_torch_sparse() -> ModuleType:
    """Import the optional ``sparselinear`` stack (it brings ``torch_sparse``)."""
    try:
        import sparselinear  # noqa: F401
        import torch_sparse
    except ImportError as err:
        msg = (
            "`backend='sparselinear'` needs the optional sparselinear package and its "
            "torch_scatter and torch_sparse, which compile against the installed torch (about "
            "20 min, a C++ compiler): `make sparselinear` in a clone of scmm, or `pip install "
            "--no-build-isolation torch-scatter torch-sparse sparselinear`."
        )
        raise ImportError(msg) from err
    return torch_sparse
