"""The fused conv2d and batch_norm kernels (float32/float64 on the CPU) beyond the conformance table: both CPU
capabilities, row lengths around the AVX2 width, ResNet-like sizes, 1 and 2 threads (image-level parallel GEMMs
and the per-thread weight-gradient accumulators), non-contiguous inputs, and double backward through the
differentiable fallback."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import loom
import loom.nn.functional as F
from harness import leaf_pair


@pytest.fixture(params=[1, 2])
def threads(request):
    before = loom.get_num_threads()
    loom.set_num_threads(request.param)
    yield request.param
    loom.set_num_threads(before)


def _close(l, t, dtype, scale=1.0):
    t = t.detach().numpy()
    tol = (1e-4 if dtype == np.float32 else 1e-10) * scale
    np.testing.assert_allclose(l.detach().numpy(), t, rtol=tol, atol=tol * max(1.0, float(np.abs(t).max())))


CONV_CASES = [
    # (x, w, kwargs)
    ((8, 16, 12, 12), (16, 16, 3, 3), {"padding": 1}),
    ((5, 8, 9, 11), (12, 8, 3, 3), {"stride": 2, "padding": 1}),
    ((6, 8, 7, 7), (8, 8, 1, 1), {}),
    ((3, 6, 8, 8), (6, 2, 3, 3), {"padding": 2, "dilation": 2, "groups": 3}),
    ((4, 3, 10, 9), (5, 3, 5, 3), {"padding": (2, 0)}),
    ((3, 5, 9, 16), (7, 5, 3, 3), {"stride": (2, 1), "padding": 1}),  # row stride 2, rows of 16 output pixels
    ((2, 4, 6, 8), (3, 4, 3, 3), {"padding": 1}),  # 8-pixel output rows, a half panel at the end (48 pixels)
    ((2, 4, 5, 8), (3, 4, 3, 3), {"padding": 1, "dilation": (2, 1)}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_conv2d_matches_torch(case, dtype, threads, capability):
    xs, ws, kw = CONV_CASES[case]
    rng = np.random.default_rng(case)
    x, w, b = rng.normal(size=xs).astype(dtype), rng.normal(size=ws).astype(dtype), rng.normal(size=ws[0]).astype(dtype)
    (xl, xt), (wl, wt), (bl, bt) = leaf_pair(x), leaf_pair(w), leaf_pair(b)
    yl, yt = F.conv2d(xl, wl, bl, **kw), TF.conv2d(xt, wt, bt, **kw)
    _close(yl, yt, dtype, scale=10)
    g = rng.normal(size=tuple(yt.shape)).astype(dtype)
    (yl * loom.from_numpy(g)).sum().backward()
    (yt * torch.from_numpy(g)).sum().backward()
    for l, t in ((xl, xt), (wl, wt), (bl, bt)):
        _close(l.grad, t.grad, dtype, scale=10)


def test_conv2d_noncontiguous_inputs():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 9, 8, 4))  # permuted to (3, 4, 9, 8)
    w = rng.normal(size=(3, 3, 5, 4))  # permuted to (5, 4, 3, 3)
    (xl, xt), (wl, wt) = leaf_pair(x), leaf_pair(w)
    yl = F.conv2d(xl.permute(0, 3, 1, 2), wl.permute(2, 3, 0, 1), padding=1)
    yt = TF.conv2d(xt.permute(0, 3, 1, 2), wt.permute(2, 3, 0, 1), padding=1)
    _close(yl, yt, np.float64)
    yl.sum().backward()
    yt.sum().backward()
    _close(xl.grad, xt.grad, np.float64)
    _close(wl.grad, wt.grad, np.float64)


@pytest.mark.parametrize("spatial", [(), (1,), (7,), (8,), (9,), (31,), (4, 250)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_training_matches_torch(spatial, dtype, capability, threads):
    rng = np.random.default_rng(len(spatial) + sum(spatial))
    shape = (3, 5) + spatial
    x = (rng.normal(size=shape) * 3 + 2).astype(dtype)
    w, b = rng.normal(size=5).astype(dtype), rng.normal(size=5).astype(dtype)
    rm, rv = rng.normal(size=5).astype(dtype), rng.uniform(0.5, 2, size=5).astype(dtype)
    (xl, xt), (wl, wt), (bl, bt) = leaf_pair(x), leaf_pair(w), leaf_pair(b)
    (rml, rmt), (rvl, rvt) = leaf_pair(rm, False), leaf_pair(rv, False)
    yl = F.batch_norm(xl, rml, rvl, wl, bl, training=True, momentum=0.3, eps=1e-3)
    yt = TF.batch_norm(xt, rmt, rvt, wt, bt, training=True, momentum=0.3, eps=1e-3)
    _close(yl, yt, dtype, scale=10)
    _close(rml, rmt, dtype, scale=10)
    _close(rvl, rvt, dtype, scale=10)
    g = rng.normal(size=shape).astype(dtype)
    (yl * loom.from_numpy(g)).sum().backward()
    (yt * torch.from_numpy(g)).sum().backward()
    for l, t in ((xl, xt), (wl, wt), (bl, bt)):
        _close(l.grad, t.grad, dtype, scale=100)
    # Evaluation mode with the updated statistics.
    _close(F.batch_norm(xl, rml, rvl, wl, bl, training=False), TF.batch_norm(xt, rmt, rvt, wt, bt, training=False),
           dtype, scale=10)


def test_batch_norm_nan_propagates(capability):
    x = np.random.default_rng(0).normal(size=(4, 2, 9)).astype(np.float32)
    x[1, 0, 3] = np.nan
    y = F.batch_norm(loom.from_numpy(x), None, None, training=True).numpy()
    assert np.isnan(y[:, 0]).all() and not np.isnan(y[:, 1]).any()


def test_batch_norm_without_affine_and_16_bit():
    x = np.random.default_rng(1).normal(size=(4, 3, 5, 5)).astype(np.float32)
    xl = loom.from_numpy(x).to(loom.bfloat16)
    xt = torch.from_numpy(x).to(torch.bfloat16)
    yl = F.batch_norm(xl, None, None, training=True)
    yt = TF.batch_norm(xt, None, None, training=True)
    assert yl.dtype == loom.bfloat16
    np.testing.assert_allclose(yl.float().numpy(), yt.float().numpy(), atol=3e-2)


@pytest.mark.parametrize("with_weight", [False, True])
def test_batch_norm_double_backward(with_weight):
    """create_graph=True takes the differentiable formula (not the fused backward)."""
    rng = np.random.default_rng(7)
    x, v, w = rng.normal(size=(3, 2, 4)), rng.normal(size=(3, 2, 4)), rng.normal(size=2)
    res = []
    for lib, fn, grad in ((loom, F.batch_norm, loom.autograd.grad), (torch, TF.batch_norm, torch.autograd.grad)):
        xt, vt = lib.tensor(x), lib.tensor(v)
        xt.requires_grad_(True)
        vt.requires_grad_(True)
        y = fn(xt, None, None, lib.tensor(w) if with_weight else None, None, training=True)
        (gx,) = grad(y, [xt], grad_outputs=[vt], create_graph=True)
        outs = grad((gx * xt * xt).sum(), [vt, xt])
        res.append([o.detach().numpy() for o in outs])
    for l, t in zip(*res):
        np.testing.assert_allclose(l, t, rtol=1e-9, atol=1e-10)


def test_conv2d_double_backward_weight_and_bias():
    rng = np.random.default_rng(8)
    x, w, b = rng.normal(size=(2, 4, 5, 5)), rng.normal(size=(6, 2, 3, 3)), rng.normal(size=6)
    res = []
    for lib, fn, grad in ((loom, F.conv2d, loom.autograd.grad), (torch, TF.conv2d, torch.autograd.grad)):
        xt, wt, bt = lib.tensor(x), lib.tensor(w), lib.tensor(b)
        for t in (xt, wt, bt):
            t.requires_grad_(True)
        y = fn(xt, wt, bt, stride=2, padding=1, groups=2)
        gx, gw = grad((y * y).sum(), [xt, wt], create_graph=True)
        outs = grad((gx * gx).sum() + (gw * gw).sum(), [xt, wt, bt])
        res.append([o.detach().numpy() for o in outs])
    for l, t in zip(*res):
        np.testing.assert_allclose(l, t, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("capability_name, conv_env, expect_onednn", [
    ("avx512", None, True), ("avx512", "loom", False), ("avx2", None, False), ("scalar", None, False)])
def test_conv2d_engine_follows_the_capability(capability_name, conv_env, expect_onednn):
    """float32 conv2d runs on oneDNN's convolutions on the AVX-512 path (unless LOOM_CONV=loom) and on loom's own
    kernels otherwise; oneDNN's verbose log (ONEDNN_VERBOSE) says which ran, forward and both backward passes."""
    import os
    import subprocess
    import sys

    order = ["scalar", "avx2", "avx512"]
    if order.index(capability_name) > order.index(loom._C._detected_cpu_capability()):
        pytest.skip(f"this CPU has no {capability_name} path")
    env = dict(os.environ, ONEDNN_VERBOSE="1", LOOM_CPU_CAPABILITY=capability_name)
    env.pop("LOOM_CONV", None)
    if conv_env:
        env["LOOM_CONV"] = conv_env
    code = ("import loom, loom.nn.functional as F\n"
            "x = loom.randn(2, 3, 9, 9, requires_grad=True); w = loom.randn(4, 3, 3, 3, requires_grad=True)\n"
            "F.conv2d(x, w, padding=1).sum().backward()\n"
            f"assert loom._C._get_cpu_capability() == {capability_name!r}\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    passes = {kind for kind in ("forward_training", "backward_data", "backward_weights")
              if any(",convolution," in line and kind in line for line in out.stdout.splitlines())}
    assert passes == ({"forward_training", "backward_data", "backward_weights"} if expect_onednn else set())
