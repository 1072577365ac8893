"""Fused ops on a device without their kernels. A vendor backend implements a minimal kernel set; with the CPU kernels
of the fused ops masked (loom._C._set_kernel_masked), the CPU stands in for such a backend: has_kernel() turns false,
the op layer takes its compositions and the fused backward ops give way to their formulas. The user-facing functions
must still match PyTorch, values and gradients. (The fused ops' own composites, reached when a fused op is dispatched
directly, are checked against the kernels in tests/cpp/test_composites.cpp.)"""
import contextlib

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import loom
import loom.nn.functional as F
from harness import check_grads, check_values, leaf_pair
from op_db import OPS
from tolerances import GRAD, VALUE

# Each fused op family: its registry ops (forward, then backward).
FAMILIES = {
    "layer_norm": ("native_layer_norm", "layer_norm_backward"),
    "cross_entropy": ("cross_entropy_loss", "cross_entropy_backward"),
    "attention": ("_flash_attention", "_flash_attention_backward"),
    "conv2d": ("conv2d", "conv2d_backward"),
    "batch_norm": ("native_batch_norm", "native_batch_norm_backward"),
    "softmax": ("softmax", "softmax_backward"),
    "log_softmax": ("log_softmax", "log_softmax_backward"),
    "relu": ("relu_backward",),
    "gelu": ("gelu_backward",),
}
FUSED_OPS = sorted({op for ops in FAMILIES.values() for op in ops} | {"_fused_sgd_", "_fused_adam_", "_fused_adamw_"})


@contextlib.contextmanager
def kernels_masked(*ops, device_type="cpu"):
    """Masks the device's kernels of `ops` inside the block (dispatch then takes their composites); always unmasks."""
    masked = []
    try:
        for op in ops:
            loom._C._set_kernel_masked(op, device_type, True)
            masked.append(op)
        yield
    finally:
        for op in masked:
            loom._C._set_kernel_masked(op, device_type, False)


@pytest.mark.parametrize("op", FUSED_OPS)
def test_has_kernel_follows_the_mask(op):
    assert loom._C._has_kernel(op, "cpu")
    with kernels_masked(op):
        assert not loom._C._has_kernel(op, "cpu")
    assert loom._C._has_kernel(op, "cpu")


def test_mask_is_lifted_when_the_block_raises():
    with pytest.raises(RuntimeError, match="inside"):
        with kernels_masked("native_layer_norm"):
            raise RuntimeError("inside")
    assert loom._C._has_kernel("native_layer_norm", "cpu")


def test_op_without_kernel_or_composite_raises_not_implemented():
    a, b = loom.ones(2, 3), loom.ones(3, 4)
    with kernels_masked("mm"):
        message = r"mm: no kernel for device 'cpu' and dtype float32 \(available: "
        with pytest.raises(NotImplementedError, match=message):
            loom.mm(a, b)
    assert loom.mm(a, b).shape == (2, 4)


# ---- the op table's samples (values and gradients against PyTorch) with a family's kernels masked ----

OPS_BY_NAME = {op.name: op for op in OPS}
TABLE_CASES = [
    ("layer_norm", "layer_norm"), ("layer_norm", "layer_norm_wide"), ("layer_norm", "rms_norm"),
    ("layer_norm", "rms_norm_wide"),
    ("cross_entropy", "F.cross_entropy"), ("cross_entropy", "cross_entropy_wide"),
    ("cross_entropy", "cross_entropy_all_ignored"),
    ("attention", "scaled_dot_product_attention"), ("attention", "scaled_dot_product_attention_tiles"),
    ("conv2d", "conv2d"), ("conv2d", "conv1d"),
    ("batch_norm", "batch_norm_train"), ("batch_norm", "batch_norm_running_stats"), ("batch_norm", "batch_norm_eval"),
    ("softmax", "softmax"), ("softmax", "F.softmax"), ("softmax", "softmax_masked"), ("softmax", "softmax_inf"),
    ("softmax", "softmax_special"), ("softmax", "softmax_wide"),
    ("log_softmax", "log_softmax"), ("log_softmax", "F.log_softmax"), ("log_softmax", "log_softmax_masked"),
    ("log_softmax", "log_softmax_wide"),
    ("relu", "relu"), ("gelu", "gelu"),
]


@pytest.mark.parametrize("family,name", TABLE_CASES, ids=[f"{f}-{n}" for f, n in TABLE_CASES])
def test_op_table_without_fused_kernels(family, name):
    op = OPS_BY_NAME[name]
    with kernels_masked(*FAMILIES[family]):
        for dtype in op.dtypes:
            for sample in op.samples(dtype, np.random.default_rng(0)):
                check_values(op, sample, dtype)
            if op.grad and dtype in GRAD:
                rng = np.random.default_rng(1)
                for sample in op.samples(dtype, np.random.default_rng(0)):
                    check_grads(op, sample, dtype, rng)


# ---- the user-facing functions, forward and backward, float64 against PyTorch ----

def _run_both(loom_fn, torch_fn, arrays, masked, seed=0):
    """Runs loom_fn (with `masked` kernels masked) and torch_fn on leaf copies of `arrays`; compares the output and
    the gradients of sum(out * cotangent) w.r.t. every array."""
    pairs = [leaf_pair(a) for a in arrays]
    with kernels_masked(*masked):
        out = loom_fn(*[p[0] for p in pairs])
        expected = torch_fn(*[p[1] for p in pairs])
        cotangent = np.random.default_rng(seed).uniform(-1, 1, size=tuple(expected.shape))
        (out * loom.tensor(cotangent)).sum().backward()
    (expected * torch.from_numpy(cotangent)).sum().backward()
    rtol, atol = VALUE[loom.float64]
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=rtol, atol=atol)
    rtol, atol = GRAD[loom.float64]
    for i, (lt, tt) in enumerate(pairs):
        np.testing.assert_allclose(lt.grad.numpy(), tt.grad.numpy(), rtol=rtol, atol=atol, err_msg=f"grad of input {i}")


def _rand(rng, *shape):
    return rng.standard_normal(shape)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.15])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_cross_entropy(reduction, label_smoothing, weighted, ignore_index):
    rng = np.random.default_rng(0)
    target_values = np.array([0, 3, 2, ignore_index, 4, 2, 1])  # row 3 (and, for ignore_index=2, rows 2 and 5) ignored
    lt, tt = loom.tensor(target_values), torch.from_numpy(target_values)
    weight = np.abs(_rand(rng, 5)) + 0.1 if weighted else None
    lw = loom.tensor(weight) if weighted else None
    tw = torch.from_numpy(weight) if weighted else None

    def loom_fn(x):
        return F.cross_entropy(x, lt, weight=lw, ignore_index=ignore_index, reduction=reduction,
                               label_smoothing=label_smoothing)

    def torch_fn(x):
        return TF.cross_entropy(x, tt, weight=tw, ignore_index=ignore_index, reduction=reduction,
                                label_smoothing=label_smoothing)

    arrays = [_rand(rng, 7, 5)]
    _run_both(loom_fn, torch_fn, arrays, FAMILIES["cross_entropy"])
    # Only the fused backward missing: the forward kernel runs, its backward takes the formula from the saved lse.
    _run_both(loom_fn, torch_fn, arrays, ("cross_entropy_backward",))


def test_cross_entropy_out_of_range_target_raises():
    x = loom.tensor(np.zeros((2, 3)))
    with kernels_masked(*FAMILIES["cross_entropy"]):
        with pytest.raises(IndexError, match="Target 5 is out of bounds for 3 classes"):
            F.cross_entropy(x, loom.tensor(np.array([1, 5])))


ATTENTION_CASES = ["plain", "causal", "bool_mask", "float_mask", "cross_lengths"]


@pytest.mark.parametrize("case", ATTENTION_CASES)
@pytest.mark.parametrize("dtype", [loom.float32, loom.float64])
def test_scaled_dot_product_attention(case, dtype):
    rng = np.random.default_rng(1)
    L, S = (4, 6) if case == "cross_lengths" else (5, 5)
    arrays = [_rand(rng, 2, 3, L, 8), _rand(rng, 2, 3, S, 8), _rand(rng, 2, 3, S, 4)]
    mask = None
    if case == "bool_mask":
        mask = rng.uniform(size=(L, S)) > 0.3
        mask[1] = False  # a fully masked row gives zeros
    elif case == "float_mask":
        mask = _rand(rng, 1, 3, L, S)
    kwargs = {"is_causal": case == "causal"}
    torch_dtype = torch.float32 if dtype == loom.float32 else torch.float64
    lm = None if mask is None else loom.tensor(mask).to(dtype) if mask.dtype != np.bool_ else loom.tensor(mask)
    tm = None if mask is None else torch.from_numpy(mask).to(torch_dtype) if mask.dtype != np.bool_ else \
        torch.from_numpy(mask)
    pairs = [leaf_pair(a.astype(np.float32 if dtype == loom.float32 else np.float64)) for a in arrays]
    for masked in (FAMILIES["attention"], ("_flash_attention_backward",)):
        for lt_, tt_ in pairs:
            lt_.grad = None
            tt_.grad = None
        with kernels_masked(*masked):
            out = F.scaled_dot_product_attention(*[p[0] for p in pairs], attn_mask=lm, **kwargs)
            out.sum().backward()
        expected = TF.scaled_dot_product_attention(*[p[1] for p in pairs], attn_mask=tm, **kwargs)
        expected.sum().backward()
        rtol, atol = VALUE[dtype] if dtype == loom.float64 else (1e-5, 1e-5)
        np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=rtol, atol=atol)
        rtol, atol = GRAD[dtype]
        for i, (lt_, tt_) in enumerate(pairs):
            np.testing.assert_allclose(lt_.grad.numpy(), tt_.grad.numpy(), rtol=rtol, atol=atol,
                                       err_msg=f"{masked}: grad of input {i}")


CONV_CASES = [
    dict(stride=1, padding=0, dilation=1, groups=1),
    dict(stride=2, padding=1, dilation=1, groups=1),
    dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2),
    dict(stride=1, padding="same", dilation=2, groups=4),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=[str(c) for c in CONV_CASES])
@pytest.mark.parametrize("bias", [False, True])
def test_conv2d(case, bias):
    rng = np.random.default_rng(2)
    arrays = [_rand(rng, 2, 4, 9, 8), _rand(rng, 6 if case["groups"] != 4 else 8, 4 // case["groups"], 3, 3)]
    if bias:
        arrays.append(_rand(rng, arrays[1].shape[0]))
    for masked in (FAMILIES["conv2d"], ("conv2d_backward",)):
        _run_both(lambda *t: F.conv2d(*t, **case), lambda *t: TF.conv2d(*t, **case), arrays, masked)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 5)])
def test_batch_norm(training, shape):
    rng = np.random.default_rng(3)
    x, weight, bias = _rand(rng, *shape), _rand(rng, 3), _rand(rng, 3)
    mean, var = _rand(rng, 3), np.abs(_rand(rng, 3)) + 0.5
    for masked in (FAMILIES["batch_norm"], ("native_batch_norm_backward",)):
        l_stats = [loom.tensor(mean.copy()), loom.tensor(var.copy())]
        t_stats = [torch.from_numpy(mean.copy()), torch.from_numpy(var.copy())]
        _run_both(lambda x_, w_, b_: F.batch_norm(x_, *l_stats, w_, b_, training=training, momentum=0.3),
                  lambda x_, w_, b_: TF.batch_norm(x_, *t_stats, w_, b_, training=training, momentum=0.3),
                  [x, weight, bias], masked)
        for ls, ts in zip(l_stats, t_stats):
            np.testing.assert_allclose(ls.numpy(), ts.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rms", [False, True])
@pytest.mark.parametrize("normalized", [(6,), (4, 6)])
def test_layer_norm(rms, normalized):
    rng = np.random.default_rng(4)
    arrays = [_rand(rng, 3, 4, 6), _rand(rng, *normalized)]
    if not rms:
        arrays.append(_rand(rng, *normalized))
    if rms:
        fns = (lambda x, w: F.rms_norm(x, normalized, w, eps=1e-6),
               lambda x, w: TF.rms_norm(x, normalized, w, eps=1e-6))
    else:
        fns = (lambda x, w, b: F.layer_norm(x, normalized, w, b), lambda x, w, b: TF.layer_norm(x, normalized, w, b))
    for masked in (FAMILIES["layer_norm"], ("layer_norm_backward",)):
        _run_both(*fns, arrays, masked)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_family(name, dim):
    rng = np.random.default_rng(5)
    arrays = [_rand(rng, 3, 5, 4) * 3]
    fns = (lambda x: getattr(F, name)(x, dim=dim), lambda x: getattr(TF, name)(x, dim=dim))
    for masked in (FAMILIES[name], (FAMILIES[name][1],)):
        _run_both(*fns, arrays, masked)


@pytest.mark.parametrize("name", ["relu", "gelu"])
def test_activation_backward(name):
    rng = np.random.default_rng(6)
    x = _rand(rng, 5, 7)
    x[0, :3] = 0.0  # relu's gradient at 0 is 0, as in PyTorch
    _run_both(getattr(F, name), getattr(TF, name), [x], FAMILIES[name])


def test_double_backward_unaffected_by_masks():
    """create_graph backward never used the fused backward ops; with every kernel masked it still matches."""
    rng = np.random.default_rng(7)
    x_np = _rand(rng, 4, 6)
    lx, tx = leaf_pair(x_np)
    with kernels_masked(*FUSED_OPS):
        y = F.layer_norm(F.gelu(lx), (6,)).softmax(-1)
        (g,) = loom.autograd.grad(y.pow(2).sum(), [lx], create_graph=True)
        g.sum().backward()
    ty = TF.layer_norm(TF.gelu(tx), (6,)).softmax(-1)
    (tg,) = torch.autograd.grad(ty.pow(2).sum(), [tx], create_graph=True)
    tg.sum().backward()
    np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-6)


# ---- the fused optimizer updates: loom.optim against torch.optim (foreach) with the update kernels masked ----

OPTIMIZER_CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.01, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, weight_decay=0.1, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    ("AdamW", dict(lr=0.02, weight_decay=0.1, amsgrad=True)),
]


@pytest.mark.parametrize("dtype", [loom.float32, loom.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name,config", OPTIMIZER_CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTIMIZER_CASES)])
def test_optimizer_step(name, config, dtype):
    from tolerances import OPTIMIZER
    np_dtype = np.float32 if dtype == loom.float32 else np.float64
    rng = np.random.default_rng(8)
    arrays = [rng.standard_normal(s).astype(np_dtype) for s in [(4, 5), (7,), (3, 2, 2)]]
    lp = [loom.from_numpy(a.copy()).requires_grad_(True) for a in arrays]
    tp = [torch.from_numpy(a.copy()).requires_grad_(True) for a in arrays]
    lopt = getattr(loom.optim, name)(lp, **config)
    topt = getattr(torch.optim, name)(tp, foreach=True, **config)
    op = {"SGD": "_fused_sgd_", "Adam": "_fused_adam_", "AdamW": "_fused_adamw_"}[name]
    with kernels_masked(op):
        for _ in range(20):
            for a, b in zip(lp, tp):
                g = rng.standard_normal(a.shape).astype(np_dtype)
                a.grad, b.grad = loom.from_numpy(g.copy()), torch.from_numpy(g.copy())
            lopt.step()
            topt.step()
    rtol, atol = OPTIMIZER[dtype]
    for i, (a, b) in enumerate(zip(lp, tp)):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=rtol, atol=atol, err_msg=f"param {i}")
        for key, value in topt.state[b].items():
            got = lopt.state[a][key]
            if key == "step":
                assert got.item() == value.item()
            else:
                np.testing.assert_allclose(got.numpy(), value.numpy(), rtol=rtol, atol=atol, err_msg=f"{key} {i}")
