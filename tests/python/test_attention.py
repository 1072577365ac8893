"""The fused flash-attention path of scaled_dot_product_attention (ops/attention.cpp, backends/cpu/attention.cpp)
against PyTorch: values and gradients with both CPU capabilities, tile edges, non-contiguous views (the GPT's
transposed heads), masks, 16-bit inputs, create_graph, and the fallbacks to the composite."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import loom
import loom.nn.functional as F
from harness import leaf_pair
from tolerances import GRAD, value_tolerance



def _check(qs, ks, vs, mask=None, transpose=False, fused=True, seed=0, **kwargs):
    """Forward and backward against torch in float32; returns the loom output."""
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-2, 2, size=s).astype(np.float32) for s in (qs, ks, vs)]
    if transpose:  # (B, L, H, E) storage viewed as (B, H, L, E), as the GPT passes q, k, v
        arrays = [np.ascontiguousarray(a.swapaxes(1, 2)) for a in arrays]
    pairs = [leaf_pair(a) for a in arrays]
    lq, lk, lv = [p[0].transpose(1, 2) if transpose else p[0] for p in pairs]
    tq, tk, tv = [p[1].transpose(1, 2) if transpose else p[1] for p in pairs]
    if transpose:
        assert not lq.is_contiguous()
    lm = tm = None
    if mask is not None:
        lm, tm = loom.from_numpy(mask.copy()), torch.from_numpy(mask.copy())
    yl = F.scaled_dot_product_attention(lq, lk, lv, attn_mask=lm, **kwargs)
    yt = TF.scaled_dot_product_attention(tq, tk, tv, attn_mask=tm, **kwargs)
    assert (yl.grad_fn.name() if callable(yl.grad_fn.name) else yl.grad_fn.name).startswith(
        "_flash_attention") == fused
    rtol, atol = value_tolerance(loom.float32, 10)
    np.testing.assert_allclose(yl.detach().numpy(), yt.detach().numpy(), rtol=rtol, atol=atol)
    g = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    yl.backward(loom.from_numpy(g.copy()))
    yt.backward(torch.from_numpy(g.copy()))
    rtol, atol = GRAD[loom.float32]
    for (l, t), what in zip(pairs, "qkv"):
        np.testing.assert_allclose(l.grad.numpy(), t.grad.numpy(), rtol=rtol, atol=atol, err_msg=f"d{what}")
    return yl


# Sizes around the vector width (8) and the tiles (64 queries, 64-512 keys).
SHAPES = [
    ((1, 1, 1, 1), (1, 1, 1, 1), (1, 1, 1, 1)),
    ((2, 3, 7, 8), (2, 3, 9, 8), (2, 3, 9, 31)),
    ((1, 2, 65, 9), (1, 2, 65, 9), (1, 2, 65, 7)),
    ((2, 2, 130, 64), (2, 2, 200, 64), (2, 2, 200, 24)),
    ((1, 1, 1, 64), (1, 1, 1031, 64), (1, 1, 1031, 64)),
]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: "x".join(map(str, s[0])) + "-S" + str(s[1][2]))
def test_fused_matches_torch(capability, shapes, causal):
    _check(*shapes, is_causal=causal)


@pytest.mark.parametrize("causal", [False, True])
def test_transposed_views_like_the_gpt(capability, causal):
    _check((2, 70, 3, 16), (2, 70, 3, 16), (2, 70, 3, 16), transpose=True, is_causal=causal)


def test_masks(capability):
    rng = np.random.default_rng(3)
    keep = rng.uniform(size=(33, 45)) > 0.3
    keep[:, 0] = True
    _check((2, 3, 33, 8), (2, 3, 45, 8), (2, 3, 45, 9), mask=keep)
    _check((2, 3, 33, 8), (2, 3, 45, 8), (2, 3, 45, 9), mask=rng.standard_normal((3, 1, 45)).astype(np.float32))
    # the GPT's KV-cache mask: queries at positions past..past+T see keys 0..past+i
    _check((1, 2, 5, 8), (1, 2, 12, 8), (1, 2, 12, 8), mask=np.tril(np.ones((5, 12), dtype=bool), 7))


def test_scale_and_gqa(capability):
    _check((2, 4, 9, 8), (2, 4, 20, 8), (2, 4, 20, 8), scale=0.3, is_causal=True)
    _check((1, 4, 9, 8), (1, 2, 20, 8), (1, 2, 20, 5), enable_gqa=True)


def _padding_mask(kind, L=6, S=7, seed=4):
    """Random keep-mask with rows 1 and 4 fully masked (padding queries), as bool or additive -inf."""
    keep = np.random.default_rng(seed).uniform(size=(L, S)) > 0.3
    keep[:, 0] = True
    keep[[1, 4]] = False
    return keep if kind == "bool" else np.where(keep, 0.0, -np.inf).astype(np.float32)


@pytest.mark.parametrize("kind", ["bool", "additive"])
def test_fully_masked_rows_give_zero_like_torch(capability, kind):
    """A query row that sees no key (a padding row) gives 0 and finite gradients, as in torch 2.13 (it used to give
    NaN, which reached every gradient through the padding rows' keys)."""
    mask = _padding_mask(kind)
    out = _check((2, 2, 6, 8), (2, 2, 7, 8), (2, 2, 7, 3), mask=mask)
    assert (out.detach().numpy()[:, :, [1, 4]] == 0).all()
    # The review's repro: the loss uses only the real rows.
    q = loom.randn(1, 1, 3, 4, requires_grad=True)
    keep = loom.tensor([[True, True, False], [True, True, False], [False, False, False]])
    y = F.scaled_dot_product_attention(q, q, q, attn_mask=keep)
    y[..., :2, :].sum().backward()
    assert y[0, 0, 2].tolist() == [0.0] * 4 and loom.isfinite(q.grad).all().item()


@pytest.mark.parametrize("kind", ["bool", "additive"])
def test_fully_masked_rows_in_the_composite(kind):
    """float64 (the composite): zeros and gradients equal to torch's. create_graph (the differentiable backward of
    the fused op): finite first and second derivatives, zero for the padding rows' queries."""
    rng = np.random.default_rng(8)
    arrays = [rng.uniform(-1, 1, size=s) for s in ((2, 6, 4), (2, 7, 4), (2, 7, 3))]
    mask = _padding_mask(kind).astype(np.float64) if kind == "additive" else _padding_mask(kind)
    lt = [leaf_pair(a)[0] for a in arrays]
    tt = [leaf_pair(a)[1] for a in arrays]
    yl = F.scaled_dot_product_attention(*lt, attn_mask=loom.from_numpy(mask))
    yt = TF.scaled_dot_product_attention(*tt, attn_mask=torch.from_numpy(mask))
    np.testing.assert_allclose(yl.detach().numpy(), yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    assert (yl.detach().numpy()[:, [1, 4]] == 0).all()
    g = rng.standard_normal(tuple(yt.shape))
    yl.backward(loom.from_numpy(g.copy()))
    yt.backward(torch.from_numpy(g.copy()))
    for l, t in zip(lt, tt):
        np.testing.assert_allclose(l.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)
    # create_graph through the fused float32 op: its backward is the differentiable composite.
    lq, lk, lv = [loom.from_numpy(a.astype(np.float32)).requires_grad_(True) for a in arrays]
    lm = loom.from_numpy(mask.astype(np.float32) if kind == "additive" else mask)
    y = F.scaled_dot_product_attention(lq, lk, lv, attn_mask=lm)
    grads = loom.autograd.grad((y * y).sum(), [lq, lk, lv], create_graph=True)
    assert all(loom.isfinite(d).all().item() for d in grads)
    sum((d * d).sum() for d in grads).backward()
    assert all(loom.isfinite(t.grad).all().item() for t in (lq, lk, lv))
    assert (grads[0].detach().numpy()[:, [1, 4]] == 0).all()


@pytest.mark.parametrize("dtype", [loom.float16, loom.bfloat16])
def test_16_bit_inputs_compute_in_float(dtype):
    """16-bit q, k, v are computed in float and rounded once, so the result is within a 16-bit rounding of the
    float64 attention of the same (already rounded) inputs. The reference is float64, not PyTorch's own bf16
    kernel: that one depends on PyTorch's CPU path (under ATEN_CPU_CAPABILITY=avx2 on an AMX machine it raises)."""
    rng = np.random.default_rng(5)
    arrays = [rng.uniform(-2, 2, size=(2, 2, 70, 16)).astype(np.float32) for _ in range(3)]
    tdtype = torch.float16 if dtype == loom.float16 else torch.bfloat16
    lt = [loom.from_numpy(a).to(dtype).requires_grad_(True) for a in arrays]
    tt = [torch.from_numpy(a).to(tdtype).double().requires_grad_(True) for a in arrays]
    yl = F.scaled_dot_product_attention(*lt, is_causal=True)
    yt = _reference(*tt, causal=True)
    assert yl.dtype == dtype
    rtol, atol = value_tolerance(dtype, 2)
    np.testing.assert_allclose(yl.float().detach().numpy(), yt.detach().numpy(), rtol=rtol, atol=atol)
    yl.float().sum().backward()
    yt.sum().backward()
    for l, t in zip(lt, tt):
        assert l.grad.dtype == dtype
        np.testing.assert_allclose(l.grad.float().numpy(), t.grad.numpy(), rtol=rtol * 4, atol=atol * 4)


def _reference(q, k, v, mask=None, causal=False):
    """torch's math formula, twice differentiable."""
    s = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    if causal:
        s = s.masked_fill(~torch.ones(s.shape[-2:], dtype=torch.bool).tril(), float("-inf"))
    if mask is not None:
        s = s + mask
    return torch.softmax(s, -1) @ v


@pytest.mark.parametrize("causal", [False, True])
def test_create_graph_double_backward(capability, causal):
    rng = np.random.default_rng(6)
    arrays = [rng.uniform(-1, 1, size=(2, 2, 9, 4)).astype(np.float32) for _ in range(3)]
    lt = [leaf_pair(a)[0] for a in arrays]
    tt = [leaf_pair(a)[1] for a in arrays]
    yl = F.scaled_dot_product_attention(*lt, is_causal=causal)
    yt = _reference(*tt, causal=causal)
    gl = loom.autograd.grad((yl * yl).sum(), lt, create_graph=True)
    gt = torch.autograd.grad((yt * yt).sum(), tt, create_graph=True)
    rtol, atol = GRAD[loom.float32]
    for a, b in zip(gl, gt):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=rtol, atol=atol)
    sl = sum((g * g).sum() for g in gl)
    st = sum((g * g).sum() for g in gt)
    sl.backward()
    st.backward()
    for l, t in zip(lt, tt):
        np.testing.assert_allclose(l.grad.numpy(), t.grad.numpy(), rtol=1e-3, atol=1e-4)


def test_fallbacks_keep_the_composite():
    """float64, dropout and a float mask that needs a gradient run the composite (same results as before)."""
    rng = np.random.default_rng(7)
    q, k, v = (loom.from_numpy(rng.standard_normal((2, 5, 4))).requires_grad_(True) for _ in range(3))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert not y.grad_fn.name().startswith("_flash") if callable(y.grad_fn.name) else True
    mask_arr = rng.standard_normal((5, 5)).astype(np.float32)
    _check((2, 5, 4), (2, 5, 4), (2, 5, 4), mask=mask_arr, fused=True)
    lq, lk, lv = (loom.from_numpy(rng.standard_normal((2, 5, 4)).astype(np.float32)) for _ in range(3))
    lm, tm = leaf_pair(mask_arr)
    yl = F.scaled_dot_product_attention(lq, lk, lv, attn_mask=lm)
    yl.sum().backward()
    tq, tk, tv = (torch.from_numpy(t.numpy()) for t in (lq, lk, lv))
    TF.scaled_dot_product_attention(tq, tk, tv, attn_mask=tm).sum().backward()
    np.testing.assert_allclose(lm.grad.numpy(), tm.grad.numpy(), rtol=1e-4, atol=1e-5)
    torch.manual_seed(0)
    out = F.scaled_dot_product_attention(lq, lk, lv, dropout_p=0.5)
    assert out.shape == (2, 5, 4)


def test_empty_sizes_fall_back():
    q = loom.zeros(2, 0, 4)
    k = loom.zeros(2, 3, 4)
    v = loom.ones(2, 3, 5)
    assert F.scaled_dot_product_attention(q, k, v).shape == (2, 0, 5)
    out = F.scaled_dot_product_attention(loom.zeros(2, 3, 4), loom.zeros(2, 0, 4), loom.zeros(2, 0, 5))
    np.testing.assert_array_equal(out.numpy(), np.zeros((2, 3, 5), dtype=np.float32))
