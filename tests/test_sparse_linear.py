from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from scmm.nn import SPARSE_BACKENDS, SparseLinear

N_IN, N_OUT = 30, 20
TORCH_BACKENDS = [b for b in SPARSE_BACKENDS if b not in ("dense_masked", "sparselinear")]
HAS_SPARSELINEAR = importlib.util.find_spec("sparselinear") is not None
RTOL, ATOL = 1e-5, 1e-6


@pytest.fixture
def mask() -> np.ndarray:
    rng = np.random.default_rng(0)
    m = rng.random((N_IN, N_OUT)) < 0.2
    m[:, 3] = False  # an output with no inputs
    m[5, :] = False  # an unused input
    m[:, 7] = True  # a fully connected output
    return m


def _layer(mask, backend, seed=0, **kw):
    g = torch.Generator().manual_seed(seed)
    return SparseLinear(N_IN, N_OUT, mask, backend=backend, generator=g, **kw)


def _forward_backward(layer, x):
    x = x.clone().requires_grad_(True)
    y = layer(x)
    # a non-trivial loss so that every output gets a different gradient
    w = torch.linspace(-1, 1, y.numel()).reshape(y.shape)
    (y * w).sum().backward()
    return y.detach(), x.grad


def _value_grads(layer):
    if layer.backend == "dense_masked":
        return layer.weight.grad[layer.indices[0], layer.indices[1]]
    return layer.values.grad


@pytest.mark.parametrize("backend", TORCH_BACKENDS)
def test_backend_matches_dense_masked_reference(mask, backend):
    ref = _layer(mask, "dense_masked")
    layer = _layer(mask, backend)
    # same generator state → same starting weights in every backend
    torch.testing.assert_close(layer.dense_weight(), ref.dense_weight(), rtol=0, atol=0)
    x = torch.randn(16, N_IN, generator=torch.Generator().manual_seed(1))
    y_ref, gx_ref = _forward_backward(ref, x)
    y, gx = _forward_backward(layer, x)
    np.testing.assert_allclose(y.numpy(), y_ref.numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(gx.numpy(), gx_ref.numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(
        _value_grads(layer).numpy(), _value_grads(ref).numpy(), rtol=RTOL, atol=ATOL
    )
    np.testing.assert_allclose(layer.bias.grad.numpy(), ref.bias.grad.numpy(), rtol=RTOL, atol=ATOL)
    # and the reference is x @ (W ⊙ mask)ᵀ + b, computed independently in numpy
    w = ref.weight.detach().numpy() * mask.T
    expected = x.numpy() @ w.T + ref.bias.detach().numpy()
    np.testing.assert_allclose(y_ref.numpy(), expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("backend", ["csr", "coo", "index_add"])
def test_gradcheck_double(backend):
    small = np.random.default_rng(3).random((8, 6)) < 0.4
    layer = SparseLinear(8, 6, small, backend=backend, dtype=torch.float64)
    x = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    values = layer.values.detach().clone().requires_grad_(True)
    bias = layer.bias.detach().clone().requires_grad_(True)

    def f(v, b, inp):
        return torch.func.functional_call(layer, {"values": v, "bias": b}, (inp,))

    assert torch.autograd.gradcheck(f, (values, bias, x), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("backend", [*TORCH_BACKENDS, "dense_masked"])
def test_masked_weights_stay_zero_after_training(mask, backend):
    layer = _layer(mask, backend)
    opt = torch.optim.AdamW(layer.parameters(), lr=1e-2, weight_decay=0.1)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(64, N_IN, generator=gen)
    y = torch.randn(64, N_OUT, generator=gen)
    before = layer.dense_weight().detach().clone()
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(layer(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    after = layer.dense_weight().detach()
    outside = ~torch.as_tensor(mask).T
    assert torch.count_nonzero(after[outside]) == 0
    if backend == "dense_masked":  # the parameter itself, not just the product
        assert torch.count_nonzero(layer.weight.detach()[outside]) == 0
    assert not torch.equal(before, after)
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("backend", TORCH_BACKENDS)
def test_parameter_count_is_nnz(mask, backend):
    layer = _layer(mask, backend)
    nnz = int(mask.sum())
    assert layer.nnz == nnz
    assert sum(p.numel() for p in layer.parameters()) == nnz + N_OUT
    no_bias = _layer(mask, backend, bias=False)
    assert sum(p.numel() for p in no_bias.parameters()) == nnz
    assert no_bias.bias is None
    dense = _layer(mask, "dense_masked")
    assert sum(p.numel() for p in dense.parameters()) == N_IN * N_OUT + N_OUT


def test_init_scaled_by_true_fan_in(mask):
    layer = _layer(mask, "csr")
    fan_in = mask.sum(axis=0)
    w = layer.dense_weight().detach().numpy()
    for j in range(N_OUT):
        if fan_in[j] == 0:
            assert layer.bias[j].item() == 0
            continue
        bound = 1 / np.sqrt(fan_in[j])
        assert np.abs(w[j]).max() <= bound
        assert abs(layer.bias[j].item()) <= bound
    # the fully connected output (fan-in 30) has a smaller bound than sparse ones
    assert np.abs(w[7]).max() <= 1 / np.sqrt(N_IN)
    same = _layer(mask, "coo", seed=0)
    other = _layer(mask, "coo", seed=1)
    torch.testing.assert_close(same.values, layer.values, rtol=0, atol=0)
    assert not torch.equal(other.values, layer.values)


def test_mask_forms_agree(mask):
    pairs = np.stack(np.nonzero(mask))
    forms = [
        mask,
        torch.as_tensor(mask),
        sp.csr_matrix(mask),
        sp.csr_array(mask.astype(np.float32)),
        pairs,
        torch.as_tensor(pairs),
        np.concatenate([pairs, pairs], axis=1),  # duplicates count once
    ]
    ref = _layer(mask, "csr").indices
    for form in forms:
        torch.testing.assert_close(_layer(form, "csr").indices, ref, rtol=0, atol=0)
    # explicit zeros in a sparse mask are not connections
    m = sp.csr_matrix(mask.astype(np.float32))
    m.data[:3] = 0
    assert _layer(m, "csr").nnz == int(mask.sum()) - 3


def test_bad_mask_shape_errors(mask):
    with pytest.raises(ValueError, match=r"transposed"):
        SparseLinear(N_IN, N_OUT, mask.T)
    with pytest.raises(ValueError, match=r"shape \(in_features, out_features\)"):
        SparseLinear(N_IN, N_OUT, mask[:-1])
    with pytest.raises(ValueError, match=r"shape"):
        SparseLinear(N_IN, N_OUT, sp.csr_matrix(mask[:, :-1]))
    with pytest.raises(ValueError, match=r"fall outside"):
        SparseLinear(N_IN, N_OUT, np.array([[0, N_IN], [0, 1]]))
    with pytest.raises(ValueError, match=r"backend='dense'"):
        SparseLinear(N_IN, N_OUT, mask, backend="dense")


def test_input_shapes(mask):
    layer = _layer(mask, "csr")
    x = torch.randn(3, 4, N_IN)
    y = layer(x)
    assert y.shape == (3, 4, N_OUT)
    np.testing.assert_allclose(
        y.detach().numpy(), layer(x.reshape(12, N_IN)).detach().reshape(3, 4, N_OUT).numpy()
    )
    with pytest.raises(ValueError, match=r"expected 30"):
        layer(torch.randn(2, N_IN + 1))


@pytest.mark.parametrize("backend", TORCH_BACKENDS)
def test_state_dict_round_trip(mask, backend):
    a, b = _layer(mask, backend, seed=0), _layer(mask, backend, seed=5)
    x = torch.randn(8, N_IN)
    assert not torch.allclose(a(x), b(x))
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_sparselinear_missing_raises_install_hint(mask):
    if HAS_SPARSELINEAR:
        pytest.skip("sparselinear is installed")
    with pytest.raises(ImportError, match=r"make sparselinear.*--no-build-isolation"):
        SparseLinear(N_IN, N_OUT, mask, backend="sparselinear")


@pytest.mark.skipif(not HAS_SPARSELINEAR, reason="optional sparselinear package not installed")
def test_sparselinear_backend_matches_reference(mask):
    ref = _layer(mask, "dense_masked")
    layer = _layer(mask, "sparselinear")
    x = torch.randn(16, N_IN)
    y_ref, gx_ref = _forward_backward(ref, x)
    y, gx = _forward_backward(layer, x)
    np.testing.assert_allclose(y.numpy(), y_ref.numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(gx.numpy(), gx_ref.numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(
        _value_grads(layer).numpy(), _value_grads(ref).numpy(), rtol=RTOL, atol=ATOL
    )


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("backend", TORCH_BACKENDS)
def test_cuda_matches_cpu(mask, backend):
    cpu = _layer(mask, backend)
    gpu = _layer(mask, backend).to("cuda")
    x = torch.randn(16, N_IN)
    y, gx = _forward_backward(cpu, x)
    y_gpu, gx_gpu = _forward_backward(gpu, x.to("cuda"))
    np.testing.assert_allclose(y_gpu.cpu().numpy(), y.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gx_gpu.cpu().numpy(), gx.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        _value_grads(gpu).cpu().numpy(), _value_grads(cpu).numpy(), rtol=1e-4, atol=1e-5
    )
