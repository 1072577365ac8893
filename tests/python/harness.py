"""Runs one OpInfo sample in loom and in PyTorch and compares values and gradients.

Device parametrisation: every check takes `device` (default "cpu"). The inputs are made on the CPU from the same
NumPy arrays as before and moved to the device; the outputs and gradients must come back on that device and are moved
to the host for the comparison with the same PyTorch references (test_device_conformance.py)."""
import os

import numpy as np
import torch

import loom
from op_db.common import TORCH_DTYPE
from tolerances import FD_EPS, FD_TOL, GRAD, value_tolerance

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The example out-of-tree backend (examples/backend_plugin), built by `make backend-plugin` (part of `make test`).
VDEV_LIBRARY = os.path.join(REPO, "build", "vdev", "libloom_vdev.so")
VDEV_WRONG_ABI_LIBRARY = os.path.join(REPO, "build", "vdev-wrong-abi", "libloom_vdev.so")


def load_vdev():
    """Loads the vdev plugin into this process and returns its device type name. A missing library is a failure,
    never a skip: the device tests are part of the suite."""
    assert os.path.exists(VDEV_LIBRARY), f"{VDEV_LIBRARY} is missing: run `make backend-plugin` first"
    names = loom._C._load_backend(VDEV_LIBRARY)
    assert names == ["vdev"], names
    return "vdev"


def to_loom(array, dtype, noncontiguous=False, device="cpu"):
    """A loom tensor on `device` with `array`'s values and dtype `dtype`, optionally with non-contiguous strides
    (made on the device: a strided window of a device buffer)."""
    base = loom.tensor(np.asarray(array, dtype=np.float64) if dtype.is_floating_point else np.asarray(array))
    t = on_device(base.to(dtype), device)
    if noncontiguous and t.ndim > 0 and t.numel() > 0:
        # Same values, every element two apart in memory (and transposed for matrices).
        holder = on_device(loom.zeros(*t.shape, 2, dtype=dtype), device)
        window = holder.select(-1, 0)
        window.copy_(t)
        t = window
    return t


def on_device(t, device):
    """`t` (made on the CPU) moved to `device`; the CPU tensor itself when device is the CPU."""
    return t if device == "cpu" else t.to(device)


def host(t):
    """A loom tensor's values on the host (a copy when it lives on another device)."""
    return t if t.device.type == "cpu" else t.cpu()


def check_device(x, device, what):
    """A loom result must live where its inputs did (a kernel that quietly computed on the host fails here)."""
    if device != "cpu" and isinstance(x, loom.Tensor):
        assert x.device.type == loom.device(device).type, f"{what}: result on {x.device}, inputs on {device}"


def leaf_pair(array, requires_grad=True):
    """The same numpy values as a loom and a torch tensor (each its own copy), optionally requiring grad."""
    lt, tt = loom.from_numpy(array.copy()), torch.from_numpy(array.copy())
    if requires_grad:
        lt.requires_grad_(True)
        tt.requires_grad_(True)
    return lt, tt


def to_torch(array, dtype):
    return torch.tensor(np.asarray(array)).to(TORCH_DTYPE[dtype])


def convert_args(sample, dtype, backend, noncontiguous=False, requires_grad=(), device="cpu"):
    out = []
    for i, a in enumerate(sample.args):
        if isinstance(a, np.ndarray):
            if i in sample.keep_dtype:
                t = on_device(loom.tensor(a), device) if backend == "loom" else torch.tensor(a)
            elif backend == "loom":
                t = to_loom(a, dtype, noncontiguous, device)
            else:
                t = to_torch(a, dtype)
            if i in requires_grad:
                t.requires_grad_(True)
            out.append(t)
        else:
            out.append(a)
    return out


def as_numpy(x):
    if isinstance(x, torch.Tensor):
        if x.dtype == torch.bfloat16:
            x = x.float()
        return x.detach().numpy()
    x = host(x.detach())
    if x.dtype == loom.bfloat16:
        x = x.float()
    return x.numpy()


def flatten_outputs(out):
    if isinstance(out, (tuple, list)):
        result = []
        for o in out:
            result.extend(flatten_outputs(o))
        return result
    return [out]


def assert_close(actual, expected, rtol, atol, what):
    a, e = as_numpy(actual), as_numpy(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != torch's {e.shape}"
    if a.dtype == np.bool_ or np.issubdtype(a.dtype, np.integer):
        np.testing.assert_array_equal(a, e, err_msg=what)
    else:
        np.testing.assert_allclose(a.astype(np.float64), e.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True,
                                   err_msg=what)


def check_values(op, sample, dtype, noncontiguous=False, device="cpu"):
    l_args = convert_args(sample, dtype, "loom", noncontiguous, device=device)
    t_args = convert_args(sample, dtype, "torch")
    expected = flatten_outputs(op.torch_fn(*t_args, **sample.kwargs))
    actual = flatten_outputs(op.loom_fn(*l_args, **sample.kwargs))
    assert len(actual) == len(expected), f"{op.name}: {len(actual)} outputs, torch has {len(expected)}"
    rtol, atol = value_tolerance(dtype, op.value_scale)
    for i, (a, e) in enumerate(zip(actual, expected)):
        check_device(a, device, f"{op.name}[{sample.name}] output {i}")
        assert str(a.dtype).split(".")[-1] == str(e.dtype).split(".")[-1], \
            f"{op.name} output {i}: dtype {a.dtype} != torch's {e.dtype}"
        assert_close(a, e, rtol, atol, f"{op.name}[{sample.name}] output {i} ({dtype})")


def grad_indices(op, sample):
    if op.grad_args is not None:
        return tuple(i for i in op.grad_args if i < len(sample.args) and isinstance(sample.args[i], np.ndarray))
    return tuple(i for i, a in enumerate(sample.args) if isinstance(a, np.ndarray) and i not in sample.keep_dtype)


def float_outputs(outs):
    return [o for o in outs if o.dtype.is_floating_point]


def check_grads(op, sample, dtype, rng, device="cpu"):
    idx = grad_indices(op, sample)
    if not idx:
        return
    l_args = convert_args(sample, dtype, "loom", requires_grad=idx, device=device)
    t_args = convert_args(sample, dtype, "torch", requires_grad=idx)
    l_out = float_outputs(flatten_outputs(op.loom_fn(*l_args, **sample.kwargs)))
    t_out = float_outputs(flatten_outputs(op.torch_fn(*t_args, **sample.kwargs)))
    if not l_out:
        return
    cotangents = [rng.uniform(-1, 1, size=tuple(o.shape)) for o in t_out]
    t_loss = sum((o * torch.tensor(c, dtype=o.dtype)).sum() for o, c in zip(t_out, cotangents))
    l_loss = sum((o * to_loom(c, dtype, device=device)).sum() for o, c in zip(l_out, cotangents))
    t_inputs = [t_args[i] for i in idx]
    l_inputs = [l_args[i] for i in idx]
    t_grads = torch.autograd.grad(t_loss, t_inputs, allow_unused=True)
    l_grads = loom.autograd.grad(l_loss, l_inputs, allow_unused=True)
    rtol, atol = GRAD[dtype]
    for k, (lg, tg) in enumerate(zip(l_grads, t_grads)):
        if tg is None:
            assert lg is None or np.all(as_numpy(lg) == 0), f"{op.name}: torch has no grad for input {idx[k]}"
            continue
        assert lg is not None, f"{op.name}[{sample.name}]: loom gave no gradient for input {idx[k]}"
        check_device(lg, device, f"{op.name}[{sample.name}] grad of input {idx[k]}")
        assert_close(lg, tg, rtol, atol, f"{op.name}[{sample.name}] grad of input {idx[k]} ({dtype})")


def check_finite_differences(op, sample, rng, max_elements=40):
    """Central differences of sum(out * cotangent) in float64 against loom's own gradient."""
    idx = grad_indices(op, sample)
    if not idx:
        return
    dtype = loom.float64
    base = [np.asarray(a, dtype=np.float64) if i in idx else a for i, a in enumerate(sample.args)]

    def run(args, requires_grad=()):
        s = type(sample)(tuple(args), sample.kwargs, sample.keep_dtype, sample.name)
        l_args = convert_args(s, dtype, "loom", requires_grad=requires_grad)
        outs = float_outputs(flatten_outputs(op.loom_fn(*l_args, **sample.kwargs)))
        return l_args, outs

    _, outs = run(base)
    if not outs:
        return
    cotangents = [rng.uniform(-1, 1, size=tuple(o.shape)) for o in outs]

    def loss_value(args):
        _, outs = run(args)
        return sum(float((as_numpy(o) * c).sum()) for o, c in zip(outs, cotangents))

    l_args, outs = run(base, requires_grad=idx)
    loss = sum((o * loom.tensor(c)).sum() for o, c in zip(outs, cotangents))
    analytic = loom.autograd.grad(loss, [l_args[i] for i in idx], allow_unused=True)
    for k, i in enumerate(idx):
        x = base[i]
        flat_positions = rng.permutation(x.size)[:max_elements]
        grad = np.zeros(x.size) if analytic[k] is None else as_numpy(analytic[k]).reshape(-1)
        for pos in flat_positions:
            plus, minus = [a.copy() if isinstance(a, np.ndarray) else a for a in base], \
                          [a.copy() if isinstance(a, np.ndarray) else a for a in base]
            plus[i].reshape(-1)[pos] += FD_EPS
            minus[i].reshape(-1)[pos] -= FD_EPS
            numeric = (loss_value(plus) - loss_value(minus)) / (2 * FD_EPS)
            rtol, atol = FD_TOL
            assert abs(grad[pos] - numeric) <= atol + rtol * abs(numeric), \
                f"{op.name}[{sample.name}] input {i} element {pos}: autograd {grad[pos]} vs finite difference {numeric}"
