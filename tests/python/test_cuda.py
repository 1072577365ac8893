"""The CUDA backend (backends/cuda, docs/cuda.md) against PyTorch on the same GPU.

Every test but the first needs a CUDA device and skips, saying so, where there is none: that is the only reason a
test here skips. The first runs everywhere the plugin was built: it loads libloom_cuda.so in a fresh interpreter and
checks that a machine without a GPU (or driver) gets a clean "no devices" instead of an error.

References: PyTorch's CUDA kernels on the same GPU for values, NumPy for bytes, loom's CPU kernels for the shared
Philox stream (the CPU kernels are themselves checked against independent references in test_random.py).
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import loom

torch = pytest.importorskip("torch")

PLUGIN = os.path.join(os.path.dirname(loom.__file__), "libloom_cuda.so")


def _cuda_ready():
    return loom._C._has_backend("cuda") and loom._C._is_available("cuda")


requires_cuda = pytest.mark.skipif(
    not (_cuda_ready() and torch.cuda.is_available()),
    reason="needs a CUDA device (none here, or loom built without its CUDA backend): run scripts/gpu_check.sh on a "
    "GPU machine")


def test_plugin_loads_without_a_device():
    if not os.path.exists(PLUGIN):
        pytest.skip("loom was built without the CUDA backend (no nvcc or cuBLAS at build time): nothing to load")
    code = ("import loom; print(loom._C._has_backend('cuda'), loom._C._is_available('cuda'), "
            "loom._C._device_count('cuda'))")
    env = dict(os.environ, LOOM_CUDA="1")  # load it even where the driver reports no GPU
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "could not be loaded" not in result.stderr, result.stderr
    has_backend, available, count = result.stdout.split()
    assert has_backend == "True"
    # The independent answer: PyTorch's own view of the machine (a CPU-only PyTorch sees no device either).
    expected = torch.cuda.device_count() if torch.version.cuda else 0
    assert int(count) == expected
    assert available == str(expected > 0)


def test_no_device_is_a_clear_error_not_a_crash():
    if _cuda_ready() or not os.path.exists(PLUGIN):
        pytest.skip("checks the error on machines where the CUDA backend is loaded without a device")
    code = ("import loom\ntry:\n    loom.zeros(2, device='cuda')\nexcept Exception as e:\n"
            "    print(type(e).__name__, e)\n")
    result = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, LOOM_CUDA="1"), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "cuda" in result.stdout.lower() and ("device" in result.stdout.lower()), result.stdout


# ---------------------------------------------------------------------------------------------------------------
# Helpers: the same inputs on both frameworks, results compared on the host.

DTYPES = {"float32": (np.float32, 1e-5, 1e-6), "float64": (np.float64, 1e-12, 1e-12),
          "float16": (np.float16, 1e-3, 1e-3), "bfloat16": (None, 1e-2, 1e-2)}


def _make(shape, dtype, low=-2.0, high=2.0, seed=0):
    rng = np.random.default_rng(seed)
    values = rng.uniform(low, high, size=shape).astype(np.float32)
    t = torch.tensor(values).to(getattr(torch, dtype)).cuda()
    return t, loom.tensor(values).to(getattr(loom, dtype)).to("cuda")


def _host(t):
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().to(torch.float64 if t.is_floating_point() else t.dtype).numpy()
    out = t.cpu()
    if out.dtype in (loom.float16, loom.bfloat16, loom.float32):
        out = out.to(loom.float64)
    return out.numpy()


def _close(expected, actual, dtype="float32"):
    _, rtol, atol = DTYPES.get(dtype, (None, 0, 0))
    np.testing.assert_allclose(_host(actual), _host(expected), rtol=rtol, atol=atol, equal_nan=True)


UNARY = ["neg", "abs", "exp", "expm1", "log", "log1p", "log2", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid",
         "erf", "reciprocal", "relu", "floor", "ceil", "round", "trunc", "sign"]
POSITIVE = {"log", "log1p", "log2", "sqrt", "rsqrt"}


@requires_cuda
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("op", UNARY)
def test_unary(op, dtype):
    low = 0.1 if op in POSITIVE else -3.0
    t, x = _make((37, 65), dtype, low=low, high=3.0)
    _close(getattr(torch, op)(t), getattr(loom, op)(x), dtype)
    # A transposed (non-contiguous) input.
    _close(getattr(torch, op)(t.t()), getattr(loom, op)(x.t()), dtype)


@requires_cuda
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_activations(dtype):
    t, x = _make((4, 129), dtype, low=-4, high=4)
    F, LF = torch.nn.functional, loom.nn.functional
    _close(F.gelu(t), LF.gelu(x), dtype)
    _close(F.gelu(t, approximate="tanh"), LF.gelu(x, approximate="tanh"), dtype)
    _close(F.silu(t), LF.silu(x), dtype)
    _close(F.softplus(t, beta=2.0, threshold=3.0), LF.softplus(x, beta=2.0, threshold=3.0), dtype)
    _close(F.leaky_relu(t, 0.1), LF.leaky_relu(x, 0.1), dtype)
    _close(t.clamp(-0.5, 0.7), x.clamp(-0.5, 0.7), dtype)


BINARY = ["add", "sub", "mul", "div", "maximum", "minimum", "atan2", "remainder", "pow"]


@requires_cuda
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("op", BINARY)
def test_binary_broadcast_and_numbers(op, dtype):
    low = 0.5 if op == "pow" else -3.0
    ta, a = _make((5, 1, 33), dtype, low=low, high=3.0, seed=1)
    tb, b = _make((7, 1), dtype, low=0.5, high=3.0, seed=2)
    _close(getattr(torch, op)(ta, tb), getattr(loom, op)(a, b), dtype)
    # A Python number: a 0-d CPU operand, read on the host.
    _close(getattr(torch, op)(ta, 1.5), getattr(loom, op)(a, 1.5), dtype)


@requires_cuda
@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8", "int8"])
def test_integer_arithmetic_wraps_like_pytorch(dtype):
    rng = np.random.default_rng(3)
    values = rng.integers(-100 if dtype != "uint8" else 0, 100, size=(6, 40))
    divisors = rng.integers(1, 9, size=(6, 40))
    ta, tb = (torch.tensor(v).to(getattr(torch, dtype)).cuda() for v in (values, divisors))
    a, b = (loom.tensor(v).to(getattr(loom, dtype)).to("cuda") for v in (values, divisors))
    for name, tf, lf in [("mul", torch.mul, loom.mul), ("add", torch.add, loom.add), ("sub", torch.sub, loom.sub),
                         ("floor_divide", torch.floor_divide, loom.floor_divide),
                         ("remainder", torch.remainder, loom.remainder),
                         ("bitwise_xor", torch.bitwise_xor, loom.bitwise_xor)]:
        np.testing.assert_array_equal(_host(lf(a, b)), _host(tf(ta, tb)), err_msg=name)
    np.testing.assert_array_equal(_host(a * 1000), _host(ta * 1000))  # wraps for narrow types


@requires_cuda
@pytest.mark.parametrize("op", ["eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor"])
def test_comparisons(op):
    ta, a = _make((3, 50), "float32", seed=4)
    tb, b = _make((50,), "float32", seed=5)
    ta, a = ta.round(), a.round()  # ties, so eq/le/ge see equal values
    tb, b = tb.round(), b.round()
    np.testing.assert_array_equal(_host(getattr(loom, op)(a, b)), _host(getattr(torch, op)(ta, tb)))
    np.testing.assert_array_equal(_host(getattr(loom, op)(a, 0.0)), _host(getattr(torch, op)(ta, 0.0)))


@requires_cuda
def test_where_and_predicates():
    ta, a = _make((4, 30), "float32", seed=6)
    tb, b = _make((4, 30), "float32", seed=7)
    _close(torch.where(ta > 0, ta, tb), loom.where(a > 0, a, b))
    tn = torch.tensor([1.0, float("nan"), float("inf"), -float("inf")]).cuda()
    n = loom.tensor([1.0, float("nan"), float("inf"), -float("inf")]).to("cuda")
    for op in ["isnan", "isinf", "isfinite"]:
        np.testing.assert_array_equal(_host(getattr(loom, op)(n)), _host(getattr(torch, op)(tn)))


@requires_cuda
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("dims", [None, (1,), (0,), (0, 2), (1, 2), (-1,)])
def test_reductions(dtype, dims):
    t, x = _make((6, 130, 9), dtype, seed=8)
    kwargs = {} if dims is None else {"dim": dims}
    for op in ["sum", "amax", "amin", "mean"]:
        if op in ("amax", "amin") and dims is None:
            continue
        tol = dtype if op not in ("sum", "mean") or dtype == "float64" else "bfloat16"
        _close(getattr(torch, op)(t, **kwargs), getattr(loom, op)(x, **kwargs), tol)
    # keepdim, and a non-contiguous input
    if dims is not None:
        _close(t.transpose(0, 2).sum(dim=dims, keepdim=True), x.transpose(0, 2).sum(dim=dims, keepdim=True),
               "bfloat16" if dtype != "float64" else dtype)


@requires_cuda
def test_integer_and_boolean_reductions():
    values = np.arange(-50, 70).reshape(4, 30)
    t, x = torch.tensor(values).cuda(), loom.tensor(values).to("cuda")
    np.testing.assert_array_equal(_host(x.sum(dim=1)), _host(t.sum(dim=1)))
    np.testing.assert_array_equal(_host((x > 0).sum()), _host((t > 0).sum()))
    np.testing.assert_array_equal(_host((x > -60).all(dim=1)), _host((t > -60).all(dim=1)))
    np.testing.assert_array_equal(_host((x > 60).any(dim=0)), _host((t > 60).any(dim=0)))


@requires_cuda
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("shape,dim", [((8, 1000), -1), ((3, 50, 7), 1), ((4, 3000), -1), ((2, 5), 0)])
def test_softmax(dtype, shape, dim):
    t, x = _make(shape, dtype, low=-8, high=8, seed=9)
    _close(torch.softmax(t, dim), loom.softmax(x, dim), dtype)
    _close(torch.log_softmax(t, dim), loom.log_softmax(x, dim), dtype)


@requires_cuda
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_matmul(dtype):
    ta, a = _make((65, 130), dtype, seed=10)
    tb, b = _make((130, 33), dtype, seed=11)
    tol = {"float32": "float16", "float64": "float64"}.get(dtype, "bfloat16")
    torch.backends.cuda.matmul.allow_tf32 = False
    _close(ta @ tb, a @ b, tol)
    _close(ta.t().contiguous().t() @ tb, a.t().contiguous().t() @ b, tol)  # a transposed operand
    tc, c = _make((4, 17, 40), dtype, seed=12)
    td, d = _make((4, 40, 9), dtype, seed=13)
    _close(torch.bmm(tc, td), loom.bmm(c, d), tol)
    _close(torch.bmm(tc, td.transpose(1, 2).contiguous().transpose(1, 2)),
           loom.bmm(c, d.transpose(1, 2).contiguous().transpose(1, 2)), tol)


@requires_cuda
@pytest.mark.parametrize("src,dst", [("float32", "float16"), ("float32", "bfloat16"), ("float16", "float32"),
                                     ("float64", "int32"), ("int64", "float32"), ("float32", "bool"),
                                     ("int32", "int8")])
def test_copies_convert_like_pytorch(src, dst):
    rng = np.random.default_rng(14)
    values = (rng.standard_normal((17, 31)) * 100).astype(np.float64)
    t = torch.tensor(values).to(getattr(torch, src)).cuda()
    x = loom.tensor(values).to(getattr(loom, src)).to("cuda")
    got, want = x.to(getattr(loom, dst)), t.to(getattr(torch, dst))
    np.testing.assert_array_equal(_host(got), _host(want))
    # Strided: a transposed 4-D view copied into a contiguous tensor.
    t4, x4 = t.reshape(17, 1, 31, 1).permute(2, 1, 3, 0), x.reshape(17, 1, 31, 1).permute(2, 1, 3, 0)
    np.testing.assert_array_equal(_host(x4.contiguous()), _host(t4.contiguous()))


@requires_cuda
def test_host_device_copies_are_bit_for_bit():
    rng = np.random.default_rng(15)
    raw = rng.integers(0, 2**32, size=(1 << 16,), dtype=np.uint32)
    for np_dtype in (np.float32, np.int64, np.float64):
        host = raw.view(np.float32).astype(np_dtype) if np_dtype != np.float32 else raw.view(np.float32)
        x = loom.from_numpy(np.ascontiguousarray(host)).to("cuda")
        back = x.cpu().numpy()
        assert back.tobytes() == np.ascontiguousarray(host).tobytes()
    # Device to device, and a pinned host buffer with non_blocking copies.
    x = loom.from_numpy(raw.view(np.float32).copy()).to("cuda")
    y = x.clone()
    pinned = loom.from_numpy(raw.view(np.float32).copy()).pin_memory()
    z = pinned.to("cuda", non_blocking=True)
    loom.cuda.synchronize()
    assert y.cpu().numpy().tobytes() == raw.tobytes() and z.cpu().numpy().tobytes() == raw.tobytes()


@requires_cuda
def test_factories():
    np.testing.assert_array_equal(_host(loom.arange(0, 100, 3, device="cuda")), np.arange(0, 100, 3))
    _close(torch.arange(-1.0, 1.0, 0.01, device="cuda"), loom.arange(-1.0, 1.0, 0.01, device="cuda"))
    _close(torch.linspace(-3, 7, 101, device="cuda"), loom.linspace(-3, 7, 101, device="cuda"), "float64")
    np.testing.assert_array_equal(_host(loom.full((3, 4), 7, device="cuda")), np.full((3, 4), 7))
    x = loom.zeros(5, 6, device="cuda")
    x[:, 2] = 3.0  # a strided fill
    expected = np.zeros((5, 6))
    expected[:, 2] = 3.0
    np.testing.assert_array_equal(_host(x), expected)


@requires_cuda
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
def test_philox_cpu_and_cuda_agree(dtype):
    n = 10_001  # odd: the last element uses half a Philox block
    dt = getattr(loom, dtype)
    draws = {}
    for device in ["cpu", "cuda"]:
        loom.manual_seed(1234)
        draws[device] = [loom.rand(n, dtype=dt, device=device), loom.randn(n, dtype=dt, device=device),
                         loom.randint(-5, 1000, (n,), device=device), loom.randperm(300, device=device),
                         loom.bernoulli(loom.full((n,), 0.3, dtype=dt, device=device))]
    for name, cpu, gpu in zip(["rand", "randn", "randint", "randperm", "bernoulli"], draws["cpu"], draws["cuda"]):
        c, g = _host(cpu), _host(gpu)
        if name == "randn":  # CUDA's double log/cos may differ from glibc's by an ulp before rounding
            np.testing.assert_allclose(g, c, rtol=1e-6 if dtype != "float64" else 1e-14, atol=0, err_msg=name)
        else:
            np.testing.assert_array_equal(g, c, err_msg=name)


@requires_cuda
def test_allocator_statistics():
    loom.cuda.synchronize()
    loom.cuda.empty_cache()
    loom.cuda.reset_peak_memory_stats()
    base = loom.cuda.memory_allocated()
    x = loom.empty(1 << 20, device="cuda")  # 4 MiB
    assert loom.cuda.memory_allocated() - base == 4 << 20
    assert loom.cuda.memory_reserved() >= loom.cuda.memory_allocated()
    small = [loom.empty(100, device="cuda") for _ in range(10)]  # 512-byte blocks from one small segment
    assert loom.cuda.memory_allocated() - base == (4 << 20) + 10 * 512
    peak = loom.cuda.max_memory_allocated()
    del x, small
    assert loom.cuda.memory_allocated() == base
    assert loom.cuda.max_memory_allocated() == peak
    reserved = loom.cuda.memory_reserved()
    y = loom.empty(1 << 20, device="cuda")  # reuses the cached block: nothing new reserved
    assert loom.cuda.memory_reserved() == reserved
    del y
    loom.cuda.empty_cache()
    assert loom.cuda.memory_reserved() < reserved
    free, total = torch.cuda.mem_get_info()
    with pytest.raises(RuntimeError, match="out of memory.*tried to allocate"):
        loom.empty(int(total), dtype=loom.uint8, device="cuda")


@requires_cuda
def test_streams_and_events():
    side = loom.cuda.Stream()
    start, end = loom.cuda.Event(enable_timing=True), loom.cuda.Event(enable_timing=True)
    x = loom.ones(1 << 22, device="cuda")
    done = loom.cuda.Event()
    done.record()
    side.wait_event(done)
    with loom.cuda.stream(side):
        start.record()
        for _ in range(10):
            x = x * 1.0001
        end.record()
    end.synchronize()
    assert start.elapsed_time(end) > 0
    loom.cuda.current_stream().wait_stream(side)
    np.testing.assert_allclose(_host(x)[:5], np.full(5, 1.0001 ** 10), rtol=1e-5)
    assert side.query()
