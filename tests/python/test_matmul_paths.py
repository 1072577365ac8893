"""The matrix-product paths the op table does not reach on its own: thread counts (batched products run one
single-threaded BLAS call per thread when the batch is large enough), operands read in place (transposed,
batch-strided) or copied (every other element), the fused bias of addmm/linear, and gradients laid out like
their inputs (the weight's gradient of linear arrives contiguous)."""
import numpy as np
import pytest
import torch

import loom
from tolerances import GRAD, VALUE


@pytest.fixture(params=[1, 2], ids=["threads1", "threads2"])
def threads(request):
    before = loom.get_num_threads()
    loom.set_num_threads(request.param)
    torch_before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    loom.set_num_threads(before)
    torch.set_num_threads(torch_before)


def _pair(array, dtype=np.float32):
    a = np.ascontiguousarray(array, dtype=dtype)
    return loom.from_numpy(a.copy()), torch.from_numpy(a.copy())


def _close(actual, expected, what, grad=False):
    a = actual.detach().numpy()
    e = expected.detach().numpy()
    dtype = loom.float64 if a.dtype == np.float64 else loom.float32
    # Products sum many terms: the op table's value_scale of 10 for matrix products.
    rtol, atol = GRAD[dtype] if grad else tuple(10 * x for x in VALUE[dtype])
    assert a.shape == e.shape, f"{what}: shape {a.shape} != torch's {e.shape}"
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=what)


def _layouts(rng, shape, dtype):
    """(name, loom tensor, torch tensor) of the same values: contiguous, transposed view, every other element."""
    x = rng.standard_normal(shape)
    yield "contiguous", *_pair(x, dtype)
    swapped = list(range(len(shape)))
    swapped[-1], swapped[-2] = swapped[-2], swapped[-1]
    lt, tt = _pair(np.transpose(x, swapped), dtype)
    yield "transposed", lt.transpose(-1, -2), tt.transpose(-1, -2)
    lw, tw = _pair(np.stack([x, np.zeros_like(x)], axis=-1), dtype)
    yield "strided", lw.select(-1, 0), tw.select(-1, 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("batch,n,k,m", [(1, 5, 3, 4), (2, 7, 9, 8), (12, 17, 33, 9), (48, 16, 8, 16)])
def test_bmm_layouts(threads, dtype, batch, n, k, m):
    rng = np.random.default_rng(batch * 100 + n)
    for name_a, la, ta in _layouts(rng, (batch, n, k), dtype):
        for name_b, lb, tb in _layouts(rng, (batch, k, m), dtype):
            _close(loom.bmm(la, lb), torch.bmm(ta, tb), f"bmm {name_a} @ {name_b}")


def test_bmm_batch_strided_and_broadcast(threads):
    rng = np.random.default_rng(0)
    # Items taken from a larger tensor (batch stride != item size) and a batch-broadcast operand (stride 0).
    la, ta = _pair(rng.standard_normal((6, 5, 10)))
    lb, tb = _pair(rng.standard_normal((4, 7)))
    _close(loom.bmm(la[:, :, 2:6], lb.expand(6, 4, 7)), torch.bmm(ta[:, :, 2:6], tb.expand(6, 4, 7)), "bmm slices")
    # matmul broadcasting over batch dims, with the attention-style transposed key.
    lq, tq = _pair(rng.standard_normal((2, 3, 16, 8)))
    lk, tk = _pair(rng.standard_normal((2, 16, 3, 8)))
    _close(loom.matmul(lq, lk.transpose(1, 2).transpose(-1, -2)),
           torch.matmul(tq, tk.transpose(1, 2).transpose(-1, -2)), "matmul q @ k^T")
    lx, tx = _pair(rng.standard_normal((2, 1, 5, 3)))
    ly, ty = _pair(rng.standard_normal((4, 3, 6)))
    _close(loom.matmul(lx, ly), torch.matmul(tx, ty), "matmul broadcast")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("input_shape", [(7,), (5, 7), (1, 7), (5, 1), ()], ids=str)
@pytest.mark.parametrize("beta,alpha", [(1.0, 1.0), (0.5, 2.0), (0.0, 1.5)])
def test_addmm_fused(threads, dtype, input_shape, beta, alpha):
    rng = np.random.default_rng(1)
    li, ti = _pair(rng.standard_normal(input_shape), dtype)
    for name_a, la, ta in _layouts(rng, (5, 6), dtype):
        for name_b, lb, tb in _layouts(rng, (6, 7), dtype):
            for t_ in (li, la, lb, ti, ta, tb):
                t_.requires_grad_(True)
            out_l = loom.addmm(li, la, lb, beta=beta, alpha=alpha)
            out_t = torch.addmm(ti, ta, tb, beta=beta, alpha=alpha)
            _close(out_l, out_t, f"addmm {name_a} @ {name_b}")
            g = rng.standard_normal((5, 7))
            out_l.backward(loom.from_numpy(g.astype(dtype)))
            out_t.backward(torch.from_numpy(g.astype(dtype)))
            for lt, tt, what in ((li, ti, "input"), (la, ta, "mat1"), (lb, tb, "mat2")):
                _close(lt.grad, tt.grad, f"addmm grad {what} ({name_a} @ {name_b})", grad=True)
                lt.grad = None
                tt.grad = None


def test_addmm_beta_zero_ignores_nan(threads):
    rng = np.random.default_rng(2)
    la, ta = _pair(rng.standard_normal((3, 4)))
    lb, tb = _pair(rng.standard_normal((4, 5)))
    nan = loom.full((3, 5), float("nan"))
    out = loom.addmm(nan, la, lb, beta=0.0)
    _close(out, torch.addmm(torch.full((3, 5), float("nan")), ta, tb, beta=0.0), "addmm beta=0")
    assert not np.isnan(out.numpy()).any()
    # NaN in the input with beta != 0 propagates, as in PyTorch.
    assert np.isnan(loom.addmm(nan, la, lb).numpy()).all()


def test_addmm_errors():
    a, b = loom.randn(3, 4), loom.randn(4, 5)
    with pytest.raises(ValueError, match="addmm"):
        loom.addmm(loom.randn(4, 5), a, b)
    with pytest.raises(ValueError, match="addmm"):
        loom.addmm(loom.randn(3, 5), a, loom.randn(3, 5))
    with pytest.raises(TypeError, match="addmm"):
        loom.addmm(loom.randn(3, 5).double(), a, b)


@pytest.mark.parametrize("x_shape", [(6, 5), (2, 3, 5), (1, 5)], ids=str)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_linear_fused_bias_and_grad_layout(threads, x_shape, bias):
    rng = np.random.default_rng(3)
    lx, tx = _pair(rng.standard_normal(x_shape))
    lw, tw = _pair(rng.standard_normal((4, 5)))
    lb, tb = _pair(rng.standard_normal((4,)))
    for t_ in (lx, lw, lb, tx, tw, tb):
        t_.requires_grad_(True)
    out_l = loom.nn.functional.linear(lx, lw, lb if bias else None)
    out_t = torch.nn.functional.linear(tx, tw, tb if bias else None)
    _close(out_l, out_t, "linear")
    g = rng.standard_normal(out_t.shape).astype(np.float32)
    out_l.backward(loom.from_numpy(g))
    out_t.backward(torch.from_numpy(g))
    _close(lx.grad, tx.grad, "linear grad x", grad=True)
    _close(lw.grad, tw.grad, "linear grad weight", grad=True)
    assert lw.grad.is_contiguous(), "the weight's gradient should arrive contiguous"
    if bias:
        _close(lb.grad, tb.grad, "linear grad bias", grad=True)


def test_linear_second_order(threads):
    # create_graph through the fused path: gradients of gradients match PyTorch.
    rng = np.random.default_rng(4)
    lx, tx = _pair(rng.standard_normal((3, 5)))
    lw, tw = _pair(rng.standard_normal((4, 5)))
    lb, tb = _pair(rng.standard_normal((4,)))
    for t_ in (lx, lw, lb, tx, tw, tb):
        t_.requires_grad_(True)
    (gx_l,) = loom.autograd.grad((loom.nn.functional.linear(lx, lw, lb) ** 2).sum(), [lx], create_graph=True)
    (gx_t,) = torch.autograd.grad((torch.nn.functional.linear(tx, tw, tb) ** 2).sum(), [tx], create_graph=True)
    _close(gx_l, gx_t, "grad x")
    gx_l.sum().backward()
    gx_t.sum().backward()
    _close(lw.grad, tw.grad, "second-order grad weight", grad=True)
    _close(lb.grad, tb.grad, "second-order grad bias", grad=True)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_linear_16bit_rounds_once(dtype):
    # The fused bias is added in float32 before the one rounding to 16 bits, as in PyTorch.
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((8, 32)), rng.standard_normal((16, 32)), rng.standard_normal((16,)) * 4
    ld, td = getattr(loom, dtype), getattr(torch, dtype)
    out_l = loom.nn.functional.linear(*(loom.from_numpy(v.astype(np.float32)).to(ld) for v in (x, w, b)))
    out_t = torch.nn.functional.linear(*(torch.from_numpy(v.astype(np.float32)).to(td) for v in (x, w, b)))
    assert out_l.dtype == ld
    rtol, atol = VALUE[ld]
    np.testing.assert_allclose(out_l.float().numpy(), out_t.float().numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_t", [False, True], ids=["a", "aT"])
@pytest.mark.parametrize("b_t", [False, True], ids=["b", "bT"])
@pytest.mark.parametrize("shape", [(1, 37, 19), (23, 41, 1), (1, 5, 1)], ids=["row", "column", "dot"])
def test_single_row_or_column_products(threads, dtype, a_t, b_t, shape):
    # One-row / one-column products go to gemv (KV-cached decoding); operands transposed or not, with the
    # output buffer reused from the allocator's cache (NaN left in it must not leak through beta = 0).
    n, k, m = shape
    rng = np.random.default_rng(n * 100 + m)
    a_np = rng.standard_normal((k, n) if a_t else (n, k)).astype(dtype)
    b_np = rng.standard_normal((m, k) if b_t else (k, m)).astype(dtype)
    a_l, a_t_ = _pair(a_np, dtype)
    b_l, b_t_ = _pair(b_np, dtype)
    if a_t:
        a_l, a_t_ = a_l.t(), a_t_.t()
    if b_t:
        b_l, b_t_ = b_l.t(), b_t_.t()
    loom.full((n, m), float("nan"), dtype=a_l.dtype)  # freed at once: a cached block of the output's size, NaN-filled
    _close(loom.mm(a_l, b_l), torch.mm(a_t_, b_t_), f"mm {shape} a_t={a_t} b_t={b_t}")
    bias_l, bias_t = _pair(rng.standard_normal(m), dtype)
    _close(loom.addmm(bias_l, a_l, b_l), torch.addmm(bias_t, a_t_, b_t_), f"addmm {shape}")
