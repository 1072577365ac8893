"""Numeric edge cases against PyTorch 2.13: binary_cross_entropy's gradient at p = 0 or 1, adaptive average pooling
with NaN/inf inputs (each output reads only its window), clamp with a NaN bound."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import loom
import loom.nn.functional as F
from harness import leaf_pair

# ------------------------------------------------------------------ binary_cross_entropy


def test_bce_gradient_at_saturated_probabilities():
    """The review's repro: sigmoid saturates to exactly 1.0 in float32; the gradient is torch's, not NaN."""
    z_l, z_t = leaf_pair(np.array([20.0, -20.0, 0.5, 100.0, -100.0], dtype=np.float32))
    target = np.array([1.0, 0.0, 1.0, 0.0, 1.0], dtype=np.float32)
    F.binary_cross_entropy(loom.sigmoid(z_l), loom.from_numpy(target)).backward()
    TF.binary_cross_entropy(torch.sigmoid(z_t), torch.from_numpy(target)).backward()
    assert np.isfinite(z_l.grad.numpy()).all()
    np.testing.assert_allclose(z_l.grad.numpy(), z_t.grad.numpy(), rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_values_and_gradients_match_torch(dtype, reduction):
    """Inputs exactly 0 and 1, within 1e-12 of them, and ordinary values; soft targets; with a weight; gradients
    of input (torch's formula) and target."""
    p = np.array([0.0, 1.0, 0.0, 1.0, 1e-13, 1 - 1e-7, 0.3, 0.5, 0.999], dtype=dtype)
    t = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.25, 1.0, 0.6], dtype=dtype)
    w = np.linspace(0.5, 2.0, p.size).astype(dtype)
    pl, pt = leaf_pair(p)
    tl, tt = leaf_pair(t)
    yl = F.binary_cross_entropy(pl, tl, weight=loom.from_numpy(w), reduction=reduction)
    yt = TF.binary_cross_entropy(pt, tt, weight=torch.from_numpy(w), reduction=reduction)
    np.testing.assert_allclose(yl.detach().numpy(), yt.detach().numpy(), rtol=1e-6)
    g = np.linspace(-1, 1, p.size).astype(dtype) if reduction == "none" else np.array(1.5, dtype=dtype)
    yl.backward(loom.from_numpy(g.copy()))
    yt.backward(torch.from_numpy(g.copy()))
    assert np.isfinite(pl.grad.numpy()).all()
    np.testing.assert_allclose(pl.grad.numpy(), pt.grad.numpy(), rtol=1e-5)
    # d/dtarget: torch differentiates unclamped logs (+-inf where p is 0 or 1); loom gives the derivative of the
    # loss it computed, whose logs are clamped at -100: w * g * (max(log(1 - p), -100) - max(log(p), -100)).
    saturated = (p == 0) | (p == 1)
    np.testing.assert_allclose(tl.grad.numpy()[~saturated], tt.grad.numpy()[~saturated], rtol=1e-5)
    with np.errstate(divide="ignore"):
        log_p, log_1mp = np.maximum(np.log(p.astype(np.float64)), -100), np.maximum(np.log1p(-p.astype(np.float64)), -100)
    scale = g / p.size if reduction == "mean" else g
    np.testing.assert_allclose(tl.grad.numpy(), w * scale * (log_1mp - log_p), rtol=1e-5)


def test_bce_double_backward_matches_torch():
    p = np.array([0.2, 0.7, 0.5], dtype=np.float64)
    t = np.array([1.0, 0.0, 0.3], dtype=np.float64)
    pl, pt = leaf_pair(p)
    (gl,) = loom.autograd.grad(F.binary_cross_entropy(pl, loom.from_numpy(t)), [pl], create_graph=True)
    (gt,) = torch.autograd.grad(TF.binary_cross_entropy(pt, torch.from_numpy(t)), [pt], create_graph=True)
    (gl * gl).sum().backward()
    (gt * gt).sum().backward()
    np.testing.assert_allclose(pl.grad.numpy(), pt.grad.numpy(), rtol=1e-10)


@pytest.mark.parametrize("dtype", [loom.float16, loom.bfloat16])
def test_bce_16_bit(dtype):
    """16-bit inputs compute in float32 and return the input dtype; no NaN at p = 0 or 1 (the gradient -1e12 at
    p = 0, t = 1 is -inf in float16, as in torch)."""
    p = np.array([0.0, 1.0, 0.25, 0.75], dtype=np.float32)
    t = np.array([1.0, 1.0, 0.0, 1.0], dtype=np.float32)
    pl = loom.from_numpy(p).to(dtype).requires_grad_(True)
    y = F.binary_cross_entropy(pl, loom.from_numpy(t).to(dtype), reduction="sum")
    assert y.dtype == dtype
    y.backward()
    assert pl.grad.dtype == dtype and not np.isnan(pl.grad.float().numpy()).any()
    tdtype = torch.float16 if dtype == loom.float16 else torch.bfloat16
    pt = torch.from_numpy(p).to(tdtype).requires_grad_(True)
    yt = TF.binary_cross_entropy(pt, torch.from_numpy(t).to(tdtype), reduction="sum")
    yt.backward()
    np.testing.assert_allclose(y.float().item(), yt.float().item(), rtol=1e-2)
    # torch's float16 backward gives 0/0 = NaN at p = t = 1 (its 1e-12 clamp underflows); loom gives 0 there.
    expected = np.nan_to_num(pt.grad.float().numpy(), nan=0.0, posinf=np.inf, neginf=-np.inf)
    np.testing.assert_allclose(pl.grad.float().numpy(), expected, rtol=1e-2)


# ------------------------------------------------------------------ adaptive average pooling


def _adaptive_case(fn_l, fn_t, x, size, rtol=1e-6, atol=1e-6):
    """Values and gradients of loom vs torch (torch computes in float64 for the reference)."""
    xl, xt = leaf_pair(x)
    yl, yt = fn_l(xl, size), fn_t(xt, size)
    assert yl.shape == tuple(yt.shape)
    np.testing.assert_allclose(yl.detach().numpy(), yt.detach().numpy(), rtol=rtol, atol=atol, equal_nan=True)
    g = np.random.default_rng(1).standard_normal(tuple(yt.shape)).astype(x.dtype)
    yl.backward(loom.from_numpy(g.copy()))
    yt.backward(torch.from_numpy(g.copy()))
    np.testing.assert_allclose(xl.grad.numpy(), xt.grad.numpy(), rtol=rtol, atol=atol)


SIZES_2D = [(4, 4, 4), (3, 3, 4), (3, 3, 2), (7, 7, 1), (8, 6, (4, 3)), (7, 10, (3, 4)), (5, 9, (5, None)),
            (2, 3, (5, 7)), (13, 11, (4, 6)), (1, 5, (1, 3))]


@pytest.mark.parametrize("H,W,size", SIZES_2D)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adaptive_avg_pool2d_matches_torch(H, W, size, dtype):
    x = np.random.default_rng(H * W).standard_normal((2, 3, H, W)).astype(dtype)
    _adaptive_case(F.adaptive_avg_pool2d, TF.adaptive_avg_pool2d, x, size)
    _adaptive_case(F.adaptive_avg_pool2d, TF.adaptive_avg_pool2d, x[0], size)  # (C, H, W)


@pytest.mark.parametrize("L,size", [(9, 3), (10, 4), (3, 7), (11, 1), (5, 5), (16, 6)])
def test_adaptive_avg_pool1d_matches_torch(L, size):
    x = np.random.default_rng(L).standard_normal((2, 3, L)).astype(np.float32)
    _adaptive_case(F.adaptive_avg_pool1d, TF.adaptive_avg_pool1d, x, size)


@pytest.mark.parametrize("H,W,size", SIZES_2D)
def test_adaptive_avg_pool2d_nan_inf_stay_in_their_windows(H, W, size):
    """One NaN, one +inf and one -inf: only the outputs whose windows contain them are affected, as in torch
    (the averaging-matrix product spread them to the whole channel, since 0 * NaN = 0 * inf = NaN)."""
    x = np.arange(2 * H * W, dtype=np.float32).reshape(1, 2, H, W) / 7
    x[0, 0, 0, 0] = np.nan
    x[0, 0, H - 1, W - 1] = np.inf
    x[0, 1, H // 2, W // 2] = -np.inf
    _adaptive_case(F.adaptive_avg_pool2d, TF.adaptive_avg_pool2d, x, size)


def test_adaptive_avg_pool_review_repro():
    a = loom.arange(9.).reshape(1, 1, 3, 3)
    a[0, 0, 0, 0] = float("nan")
    out = F.adaptive_avg_pool2d(a, 4).numpy()
    assert np.isnan(out).sum() == 4
    a = loom.arange(9.).reshape(1, 1, 3, 3)
    a[0, 0, 2, 2] = float("inf")
    assert F.adaptive_avg_pool2d(a, 2).tolist() == [[[[2.0, 3.0], [5.0, float("inf")]]]]
    x = np.array([[[1.0, np.nan, 3.0, 4.0, 5.0, np.inf]]], dtype=np.float32)
    _adaptive_case(F.adaptive_avg_pool1d, TF.adaptive_avg_pool1d, x, 4)


@pytest.mark.parametrize("dtype", [loom.float16, loom.bfloat16])
def test_adaptive_avg_pool_16_bit(dtype):
    x = np.random.default_rng(2).standard_normal((2, 3, 7, 9)).astype(np.float32)
    tdtype = torch.float16 if dtype == loom.float16 else torch.bfloat16
    for size in (3, (7, 9), 1):
        yl = F.adaptive_avg_pool2d(loom.from_numpy(x).to(dtype), size)
        yt = TF.adaptive_avg_pool2d(torch.from_numpy(x).to(tdtype).float(), size).to(tdtype)
        assert yl.dtype == dtype
        np.testing.assert_allclose(yl.float().numpy(), yt.float().numpy(), rtol=1e-2, atol=1e-2)


def test_adaptive_avg_pool_huge_output_size_raises():
    with pytest.raises(ValueError, match="adaptive_avg_pool2d: output size .* too large"):
        F.adaptive_avg_pool1d(loom.ones(1, 1, 4), 2**62)
    with pytest.raises(ValueError, match="adaptive_avg_pool2d: output size .* too large"):
        F.adaptive_avg_pool2d(loom.ones(1, 1, 4, 4), (2**62, 2))


# ------------------------------------------------------------------ clamp with a NaN bound


@pytest.mark.parametrize("bounds", [dict(min=float("nan")), dict(max=float("nan")), dict(min=float("nan"), max=1.0),
                                    dict(min=0.0, max=float("nan"))])
def test_clamp_with_nan_bound_is_nan_like_torch(bounds):
    x = np.array([1.0, 2.0, -3.0, np.nan], dtype=np.float32)
    np.testing.assert_array_equal(loom.from_numpy(x).clamp(**bounds).numpy(),
                                  torch.from_numpy(x).clamp(**bounds).numpy())


def test_adaptive_avg_pool_double_backward_matches_torch():
    """The kernel's backward is differentiable (the forward and backward ops are each other's adjoints)."""
    x = np.random.default_rng(5).standard_normal((2, 2, 7, 5))
    xl, xt = leaf_pair(x)
    (gl,) = loom.autograd.grad((F.adaptive_avg_pool2d(xl, (3, 4)) ** 2).sum(), [xl], create_graph=True)
    (gt,) = torch.autograd.grad((TF.adaptive_avg_pool2d(xt, (3, 4)) ** 2).sum(), [xt], create_graph=True)
    np.testing.assert_allclose(gl.detach().numpy(), gt.detach().numpy(), rtol=1e-12, atol=1e-12)
    (gl * gl.sin()).sum().backward()
    (gt * gt.sin()).sum().backward()
    np.testing.assert_allclose(xl.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
