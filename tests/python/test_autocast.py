"""loom.autocast against torch.autocast("cpu", dtype=torch.bfloat16): output dtypes of listed and unlisted
ops, values, gradients of float32 parameters through autocast regions, a small GPT, and the region semantics
(nesting, enabled=False, decorator, threads, cast cache, errors)."""
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import loom
import loom.nn.functional as LF
from tolerances import AUTOCAST_GRAD_REL_L2, AUTOCAST_LOSS_RTOL, AUTOCAST_VALUE
from torch_reference_models import TorchGPT, copy_loom_to_torch

RNG = np.random.default_rng(0)


def arr(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def pair(a, dtype="float32", requires_grad=False):
    """The same values as a loom and a torch tensor."""
    l, t = loom.from_numpy(a.copy()), torch.from_numpy(a.copy())
    if dtype == "bfloat16":
        l, t = l.bfloat16(), t.bfloat16()
    elif dtype == "float64":
        l, t = l.double(), t.double()
    if requires_grad:
        l.requires_grad_(True)
        t.requires_grad_(True)
    return l, t


def to_np(t):
    if isinstance(t, torch.Tensor):
        return t.detach().float().numpy()
    return t.detach().float().numpy()


TARGET = np.array([0, 1, 2, 3])

# name -> (input arrays with their dtypes, fn(F, lib, *inputs)); run under both autocasts.
CASES = {
    "linear": ([((4, 8), "float32"), ((6, 8), "float32"), ((6,), "float32")], lambda F, m, x, w, b: F.linear(x, w, b)),
    "linear_bf16_in": ([((4, 8), "bfloat16"), ((6, 8), "float32")], lambda F, m, x, w: F.linear(x, w)),
    "matmul_3d_2d": ([((2, 4, 8), "float32"), ((8, 5), "float32")], lambda F, m, a, b: m.matmul(a, b)),
    "matmul_operator": ([((4, 8), "float32"), ((8, 5), "float32")], lambda F, m, a, b: a @ b),
    "matmul_1d": ([((8,), "float32"), ((8,), "float32")], lambda F, m, a, b: m.matmul(a, b)),
    "mm": ([((4, 8), "float32"), ((8, 5), "float32")], lambda F, m, a, b: m.mm(a, b)),
    "bmm": ([((3, 4, 8), "float32"), ((3, 8, 5), "float32")], lambda F, m, a, b: m.bmm(a, b)),
    "addmm": ([((5,), "float32"), ((4, 8), "float32"), ((8, 5), "float32")], lambda F, m, c, a, b: m.addmm(c, a, b)),
    "einsum": ([((4, 8), "float32"), ((5, 8), "float32")], lambda F, m, a, b: m.einsum("ij,kj->ik", a, b)),
    "conv2d": ([((2, 3, 7, 7), "float32"), ((4, 3, 3, 3), "float32"), ((4,), "float32")],
               lambda F, m, x, w, b: F.conv2d(x, w, b, padding=1)),
    "conv1d": ([((2, 3, 9), "float32"), ((4, 3, 3), "float32")], lambda F, m, x, w: F.conv1d(x, w)),
    "conv_transpose2d": ([((1, 3, 5, 5), "float32"), ((3, 2, 3, 3), "float32")],
                         lambda F, m, x, w: F.conv_transpose2d(x, w, stride=2)),
    "sdpa": ([((2, 2, 6, 8), "float32"), ((2, 2, 6, 8), "float32"), ((2, 2, 6, 8), "float32")],
             lambda F, m, q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)),
    "float64_mm": ([((4, 8), "float64"), ((8, 5), "float64")], lambda F, m, a, b: m.mm(a, b)),
    # not listed on CPU: dtypes as given
    "softmax_f32": ([((4, 8), "float32")], lambda F, m, x: F.softmax(x, -1)),
    "softmax_bf16": ([((4, 8), "bfloat16")], lambda F, m, x: F.softmax(x, -1)),
    "log_softmax_bf16": ([((4, 8), "bfloat16")], lambda F, m, x: F.log_softmax(x, -1)),
    "layer_norm_f32": ([((4, 8), "float32"), ((8,), "float32"), ((8,), "float32")],
                       lambda F, m, x, w, b: F.layer_norm(x, (8,), w, b)),
    "layer_norm_bf16": ([((4, 8), "bfloat16")], lambda F, m, x: F.layer_norm(x, (8,))),
    "sum_bf16": ([((4, 8), "bfloat16")], lambda F, m, x: x.sum()),
    "mean_bf16": ([((4, 8), "bfloat16")], lambda F, m, x: x.mean(-1)),
    "gelu_bf16": ([((4, 8), "bfloat16")], lambda F, m, x: F.gelu(x)),
    "exp_bf16": ([((4, 8), "bfloat16")], lambda F, m, x: x.exp()),
    "add_mixed": ([((4, 8), "bfloat16"), ((4, 8), "float32")], lambda F, m, a, b: a + b),
    "dot": ([((8,), "float32"), ((8,), "float32")], lambda F, m, a, b: m.dot(a, b)),
    "outer": ([((4,), "float32"), ((5,), "float32")], lambda F, m, a, b: m.outer(a, b)),
    "embedding": ([((10, 4), "float32")], lambda F, m, w: F.embedding(m.tensor([1, 2, 3]), w)),
    # fp32 list
    "prod_bf16": ([((4, 3), "bfloat16")], lambda F, m, x: x.prod()),
    "cross_entropy_bf16": ([((4, 8), "bfloat16")], lambda F, m, x: F.cross_entropy(x, m.tensor(TARGET))),
    "nll_loss_bf16": ([((4, 8), "bfloat16")], lambda F, m, x: F.nll_loss(F.log_softmax(x, -1), m.tensor(TARGET))),
    "mse_loss_bf16": ([((4, 8), "bfloat16"), ((4, 8), "float32")], lambda F, m, a, b: F.mse_loss(a, b)),
    "l1_loss_bf16": ([((4, 8), "bfloat16"), ((4, 8), "bfloat16")], lambda F, m, a, b: F.l1_loss(a, b)),
    "smooth_l1_bf16": ([((4, 8), "bfloat16"), ((4, 8), "float32")], lambda F, m, a, b: F.smooth_l1_loss(a, b)),
    "huber_bf16": ([((4, 8), "bfloat16"), ((4, 8), "float32")], lambda F, m, a, b: F.huber_loss(a, b)),
    "kl_div_bf16": ([((4, 8), "bfloat16"), ((4, 8), "float32")],
                    lambda F, m, a, b: F.kl_div(a, b.softmax(-1), reduction="batchmean")),
    "bce_logits_bf16": ([((4, 8), "bfloat16"), ((4, 8), "float32")],
                        lambda F, m, a, b: F.binary_cross_entropy_with_logits(a, b.sigmoid())),
    "bce_bf16": ([((4, 8), "bfloat16"), ((4, 8), "float32")],
                 lambda F, m, a, b: F.binary_cross_entropy(a.sigmoid(), b.sigmoid())),
    # promote
    "cat": ([((2, 3), "bfloat16"), ((2, 3), "float32")], lambda F, m, a, b: m.cat([a, b])),
    "cat_bf16": ([((2, 3), "bfloat16"), ((2, 3), "bfloat16")], lambda F, m, a, b: m.cat([a, b])),
    "stack": ([((2, 3), "bfloat16"), ((2, 3), "float32")], lambda F, m, a, b: m.stack([a, b])),
}


def run_case(name):
    specs, fn = CASES[name]
    pairs = [pair(arr(*shape), dtype) for shape, dtype in specs]
    with loom.autocast("cpu", dtype=loom.bfloat16):
        out_l = fn(LF, loom, *[p[0] for p in pairs])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_t = fn(TF, torch, *[p[1] for p in pairs])
    return out_l, out_t


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_dtype_and_value_match_torch_autocast(name):
    out_l, out_t = run_case(name)
    assert str(out_l.dtype).split(".")[-1] == str(out_t.dtype).split(".")[-1], name
    assert tuple(out_l.shape) == tuple(out_t.shape)
    rtol, atol = AUTOCAST_VALUE
    np.testing.assert_allclose(to_np(out_l), to_np(out_t), rtol=rtol, atol=atol)


@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 9, 31), (33, 64, 17), (128, 256, 96)])
def test_bf16_matmul_values(capability, shape):
    n, k, m = shape
    a, b = arr(n, k), arr(k, m)
    la, lb = loom.from_numpy(a).bfloat16(), loom.from_numpy(b).bfloat16()
    out = la @ lb
    out_t = loom.from_numpy(a).bfloat16().T.contiguous().T @ lb  # non-contiguous left operand
    ref = (torch.from_numpy(a).bfloat16().float() @ torch.from_numpy(b).bfloat16().float()).bfloat16()
    assert out.dtype == loom.bfloat16
    rtol, atol = AUTOCAST_VALUE
    np.testing.assert_allclose(to_np(out), ref.float().numpy(), rtol=rtol, atol=atol * np.sqrt(k))
    np.testing.assert_allclose(to_np(out_t), to_np(out), rtol=0, atol=0)


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


def test_gradients_of_float32_params_through_autocast_match_torch():
    w1, b1, w2, b2 = arr(16, 8), arr(16), arr(5, 16), arr(5)
    x, target = arr(6, 8), np.array([0, 1, 2, 3, 4, 0])
    lp = [pair(v, requires_grad=True) for v in (w1, b1, w2, b2)]
    xl, xt = pair(x)
    with loom.autocast("cpu"):
        h = LF.gelu(LF.linear(xl, lp[0][0], lp[1][0]))
        out_l = LF.linear(h, lp[2][0], lp[3][0])
        loss_l = LF.cross_entropy(out_l, loom.tensor(target))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = TF.gelu(TF.linear(xt, lp[0][1], lp[1][1]))
        out_t = TF.linear(h, lp[2][1], lp[3][1])
        loss_t = TF.cross_entropy(out_t, torch.tensor(target))
    assert out_l.dtype == loom.bfloat16 and loss_l.dtype == loom.float32
    np.testing.assert_allclose(loss_l.item(), loss_t.item(), rtol=AUTOCAST_LOSS_RTOL)
    loss_l.backward()
    loss_t.backward()
    for (pl, pt) in lp:
        assert pl.grad.dtype == loom.float32
        assert rel_l2(pl.grad.numpy(), pt.grad.numpy()) < AUTOCAST_GRAD_REL_L2


def test_conv_gradients_through_autocast_match_torch():
    (xl, xt), (wl, wt) = pair(arr(2, 3, 6, 6), requires_grad=True), pair(arr(4, 3, 3, 3), requires_grad=True)
    with loom.autocast("cpu"):
        yl = LF.conv2d(xl, wl, padding=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        yt = TF.conv2d(xt, wt, padding=1)
    yl.float().square().sum().backward()
    yt.float().square().sum().backward()
    assert wl.grad.dtype == loom.float32 and xl.grad.dtype == loom.float32
    assert rel_l2(wl.grad.numpy(), wt.grad.numpy()) < AUTOCAST_GRAD_REL_L2
    assert rel_l2(xl.grad.numpy(), xt.grad.numpy()) < AUTOCAST_GRAD_REL_L2


def test_small_gpt_forward_backward_matches_torch_autocast():
    from loom.models import GPT, GPTConfig

    config = GPTConfig(vocab_size=23, block_size=16, n_layer=2, n_head=4, n_embd=32)
    loom.manual_seed(0)
    model = GPT(config)
    twin = TorchGPT(config)
    copy_loom_to_torch(model, twin)
    rng = np.random.default_rng(1)
    idx, targets = rng.integers(0, 23, size=(3, 12)), rng.integers(0, 23, size=(3, 12))
    with loom.autocast("cpu", dtype=loom.bfloat16):
        logits, loss = model(loom.tensor(idx.tolist()), loom.tensor(targets.tolist()))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        t_logits, t_loss = twin(torch.tensor(idx), torch.tensor(targets))
    assert str(logits.dtype).split(".")[-1] == str(t_logits.dtype).split(".")[-1]
    assert loss.dtype == loom.float32 and t_loss.dtype == torch.float32
    np.testing.assert_allclose(loss.item(), t_loss.item(), rtol=AUTOCAST_LOSS_RTOL)
    loss.backward()
    t_loss.backward()
    t_params = dict(twin.named_parameters())
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.dtype == loom.float32, name
        assert rel_l2(p.grad.numpy(), t_params[name].grad.numpy()) < AUTOCAST_GRAD_REL_L2, name


def test_state_nesting_and_disable():
    assert not loom.is_autocast_enabled("cpu")
    assert loom.get_autocast_dtype("cpu") == loom.bfloat16
    a, b = loom.randn(3, 4), loom.randn(4, 2)
    with loom.autocast("cpu"):
        assert loom.is_autocast_enabled() and (a @ b).dtype == loom.bfloat16
        with loom.autocast("cpu", enabled=False):
            assert not loom.is_autocast_enabled("cpu")
            assert (a @ b).dtype == loom.float32
            with loom.autocast("cpu", dtype=loom.float16):
                assert loom.get_autocast_dtype("cpu") == loom.float16
                assert (a @ b).dtype == loom.float16
            assert (a @ b).dtype == loom.float32
        assert loom.get_autocast_dtype("cpu") == loom.bfloat16 and (a @ b).dtype == loom.bfloat16
    assert not loom.is_autocast_enabled() and (a @ b).dtype == loom.float32
    # CUDA autocast does not touch CPU tensors.
    with loom.autocast("cuda", dtype=loom.float16):
        assert loom.is_autocast_enabled("cuda") and not loom.is_autocast_enabled("cpu")
        assert (a @ b).dtype == loom.float32
    assert not loom.is_autocast_enabled("cuda")


def test_exit_restores_state_after_an_exception():
    with pytest.raises(ValueError):
        with loom.autocast("cpu"):
            loom.matmul(loom.randn(2, 3), loom.randn(4, 2))
    assert not loom.is_autocast_enabled()
    assert loom._C._autocast_cache_size() == 0


def test_decorator_and_aliases():
    @loom.autocast("cpu")
    def f(a, b):
        assert loom.is_autocast_enabled()
        return a @ b

    a, b = loom.randn(3, 4), loom.randn(4, 2)
    assert f(a, b).dtype == loom.bfloat16 and not loom.is_autocast_enabled()
    assert f.__name__ == "f"
    with loom.amp.autocast("cpu"):
        assert (a @ b).dtype == loom.bfloat16
    with loom.cpu.amp.autocast():
        assert (a @ b).dtype == loom.bfloat16

    @loom.cpu.amp.autocast(dtype=loom.float16)
    def g():
        return a @ b

    assert g().dtype == loom.float16


def test_state_is_thread_local():
    seen = {}

    def worker():
        seen["enabled"] = loom.is_autocast_enabled("cpu")
        seen["dtype"] = (loom.randn(2, 2) @ loom.randn(2, 2)).dtype

    with loom.autocast("cpu"):
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        assert (loom.randn(2, 2) @ loom.randn(2, 2)).dtype == loom.bfloat16
    assert seen == {"enabled": False, "dtype": loom.float32}


def test_cast_cache_holds_leaf_weights_until_the_outer_region_exits():
    w = loom.randn(4, 8, requires_grad=True)
    x = loom.randn(3, 8)
    with loom.autocast("cpu"):
        y1 = LF.linear(x, w)
        y2 = LF.linear(x, w)
        assert loom._C._autocast_cache_size() == 1
        with loom.autocast("cpu"):
            LF.linear(x, w)
        assert loom._C._autocast_cache_size() == 1  # inner exit keeps the outer region's cache
        LF.linear(x, w.detach())  # not a grad-requiring leaf: not cached
        LF.linear(loom.randn(3, 8, requires_grad=True) * 2, w)  # non-leaf activation: not cached
        assert loom._C._autocast_cache_size() == 1
    assert loom._C._autocast_cache_size() == 0
    (y1.float().sum() + y2.float().sum()).backward()
    np.testing.assert_allclose(w.grad.numpy(), np.broadcast_to(2 * x.sum(0).numpy(), (4, 8)), rtol=2e-2, atol=2e-2)
    with loom.autocast("cpu", cache_enabled=False):
        LF.linear(x, w)
        assert loom._C._autocast_cache_size() == 0
    with loom.no_grad(), loom.autocast("cpu"):
        LF.linear(x, w)
        assert loom._C._autocast_cache_size() == 0  # a cast made without a graph is never reused with one


def test_cache_sees_in_place_updates():
    w = loom.ones(2, 2, requires_grad=True)
    x = loom.ones(1, 2)
    with loom.autocast("cpu"):
        assert LF.linear(x, w).float().sum().item() == 4.0
        with loom.no_grad():
            w.mul_(3)
        assert LF.linear(x, w).float().sum().item() == 12.0


def test_composites_are_cast_once():
    # dot is not listed (stays float32) although loom computes it with mm, which is: the ops a composite or
    # kernel issues itself never see autocast.
    a, b = loom.randn(8), loom.randn(8)
    with loom.autocast("cpu"):
        assert loom.dot(a, b).dtype == loom.float32
        w = loom.randn(4, 8, requires_grad=True)
        y = LF.linear(a[None], w)
    assert y.grad_fn is not None and y.dtype == loom.bfloat16


def test_errors():
    with pytest.raises(TypeError, match="bfloat16 and float16.*float32"):
        loom.autocast("cpu", dtype=loom.float32)
    with pytest.raises(TypeError, match="float64"):
        loom.autocast("cpu", dtype=loom.float64)
    with pytest.raises(ValueError, match="unsupported device_type 'xpu'"):
        loom.autocast("xpu")
    with pytest.raises(TypeError, match="device_type of type str"):
        loom.autocast(loom.bfloat16)
    with pytest.raises(TypeError, match="enabled to be a bool"):
        loom.autocast("cpu", enabled=1)
    with pytest.raises(ValueError, match="unsupported device_type"):
        loom.is_autocast_enabled("tpu")
    loom.autocast("cpu", dtype=loom.float32, enabled=False)  # a disabled region accepts any dtype, as torch


def test_op_lists_mirror_torch():
    ops = dict(loom._C._autocast_op_list("cpu"))
    for name in ["linear", "matmul", "mm", "bmm", "addmm", "conv2d", "scaled_dot_product_attention"]:
        assert ops[name] == "lower_precision_fp"
    for name in ["cross_entropy", "nll_loss", "mse_loss", "prod", "binary_cross_entropy_with_logits"]:
        assert ops[name] == "fp32"
    assert ops["cat"] == "promote"
    for name in ["softmax", "layer_norm", "sum", "gelu", "add"]:
        assert name not in ops
    assert loom._C._autocast_policy("softmax", "cuda") == "fp32"
