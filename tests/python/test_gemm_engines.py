"""Both CPU GEMM engines (OpenBLAS and oneDNN, gemm/engine.h) on every path that reaches them: mm with operands
read in place (transposed, leading dimension wider than the matrix) or copied, batched products, addmm/linear
with beta and alpha, the matrix-vector path, conv2d's products, and bfloat16/float16 products (native bf16
instructions under oneDNN where the CPU has them, widened to float32 otherwise), at 1 and 2 threads.

Reference: the float64 product of the same (already rounded) input values. Tolerance: the forward error bound
of a length-K float32 dot product, 2 K u (|A| |B|) with u = 2^-24, plus one rounding of the output for 16-bit
results. A wrong operand or layout misses it by orders of magnitude."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import loom

ENGINES = ["openblas", "onednn"]
U32 = 2.0 ** -24
OUTPUT_ROUNDING = {loom.float32: 0.0, loom.bfloat16: 2.0 ** -8, loom.float16: 2.0 ** -11}
TORCH_DTYPE = {loom.float32: torch.float32, loom.bfloat16: torch.bfloat16, loom.float16: torch.float16}


@pytest.fixture(params=ENGINES)
def engine(request):
    before = loom._C._get_gemm_engine()
    loom._C._set_gemm_engine(request.param)
    yield request.param
    loom._C._set_gemm_engine(before)


@pytest.fixture(params=[1, 2], ids=["threads1", "threads2"])
def threads(request):
    before = loom.get_num_threads()
    loom.set_num_threads(request.param)
    yield request.param
    loom.set_num_threads(before)


def _values(rng, shape, dtype):
    """float64 numpy values exactly representable in dtype."""
    t = torch.from_numpy(rng.standard_normal(shape)).to(TORCH_DTYPE[dtype]).double()
    return t.numpy()


def _loom(x64, dtype):
    return loom.from_numpy(np.ascontiguousarray(x64, dtype=np.float32)).to(dtype)


def _as_f64(t):
    return t.to(loom.float32).numpy().astype(np.float64)


def _check(actual, expected, magnitude, k, dtype, what):
    """|actual - expected| <= 2 K u |A||B| + output rounding * |expected| (+ a tiny absolute floor)."""
    bound = 2 * max(k, 1) * U32 * magnitude + OUTPUT_ROUNDING[dtype] * np.abs(expected) + 1e-30
    err = np.abs(actual - expected)
    worst = np.unravel_index(np.argmax(err - bound), err.shape) if err.size else None
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert np.all(err <= bound), f"{what}: error {err[worst]:.3g} > bound {bound[worst]:.3g} at {worst}"


def _layouts(x64, dtype):
    """(name, loom tensor) of the same matrix: contiguous, transposed view, wider leading dimension, strided copy."""
    rows, cols = x64.shape
    yield "contiguous", _loom(x64, dtype)
    yield "transposed", _loom(x64.T.copy(), dtype).t()
    wide = np.zeros((rows, cols + 5))
    wide[:, :cols] = x64
    yield "wide_ld", _loom(wide, dtype)[:, :cols]
    spread = np.zeros((rows, 2 * cols))
    spread[:, ::2] = x64
    yield "every_other", _loom(spread, dtype)[:, ::2]


@pytest.mark.parametrize("dtype", [loom.float32, loom.bfloat16, loom.float16], ids=["f32", "bf16", "f16"])
@pytest.mark.parametrize("n,k,m", [(64, 96, 80), (130, 257, 67), (3, 700, 5), (257, 33, 300)])
def test_mm_layouts(engine, threads, dtype, n, k, m):
    rng = np.random.default_rng(n * 1000 + k + m)
    a, b = _values(rng, (n, k), dtype), _values(rng, (k, m), dtype)
    expected, magnitude = a @ b, np.abs(a) @ np.abs(b)
    for name_a, la in _layouts(a, dtype):
        for name_b, lb in _layouts(b, dtype):
            out = loom.matmul(la, lb)
            assert out.dtype == dtype
            _check(_as_f64(out), expected, magnitude, k, dtype, f"{engine} {name_a} @ {name_b}")


@pytest.mark.parametrize("dtype", [loom.float32, loom.bfloat16], ids=["f32", "bf16"])
def test_large_square(engine, threads, dtype):
    rng = np.random.default_rng(7)
    a, b = _values(rng, (512, 512), dtype), _values(rng, (512, 512), dtype)
    out = loom.matmul(_loom(a, dtype), _loom(b, dtype))
    _check(_as_f64(out), a @ b, np.abs(a) @ np.abs(b), 512, dtype, f"{engine} 512^2")


@pytest.mark.parametrize("dtype", [loom.float32, loom.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("batch,n,k,m", [(8, 16, 24, 12), (3, 200, 150, 100)])
def test_bmm(engine, threads, dtype, batch, n, k, m):
    rng = np.random.default_rng(batch + n)
    a, b = _values(rng, (batch, n, k), dtype), _values(rng, (batch, m, k), dtype)
    lb = _loom(b, dtype).transpose(1, 2)  # B read transposed, in place
    bt = np.swapaxes(b, 1, 2)
    out = loom.bmm(_loom(a, dtype), lb)
    _check(_as_f64(out), a @ bt, np.abs(a) @ np.abs(bt), k, dtype, f"{engine} bmm")


@pytest.mark.parametrize("dtype", [loom.float32, loom.bfloat16, loom.float16], ids=["f32", "bf16", "f16"])
@pytest.mark.parametrize("beta,alpha", [(1.0, 1.0), (0.5, 2.0), (0.0, -1.5)])
def test_addmm_beta_alpha(engine, threads, dtype, beta, alpha):
    rng = np.random.default_rng(11)
    n, k, m = 70, 130, 90
    inp, a, b = _values(rng, (n, m), dtype), _values(rng, (n, k), dtype), _values(rng, (k, m), dtype)
    out = loom.addmm(_loom(inp, dtype), _loom(a, dtype), _loom(b, dtype), beta=beta, alpha=alpha)
    expected = beta * inp + alpha * (a @ b)
    magnitude = abs(beta) * np.abs(inp) + abs(alpha) * (np.abs(a) @ np.abs(b))
    _check(_as_f64(out), expected, magnitude, k + 1, dtype, f"{engine} addmm beta={beta} alpha={alpha}")


@pytest.mark.parametrize("dtype", [loom.float32, loom.bfloat16], ids=["f32", "bf16"])
def test_linear_bias(engine, threads, dtype):
    rng = np.random.default_rng(5)
    x, w, bias = _values(rng, (33, 64), dtype), _values(rng, (48, 64), dtype), _values(rng, (48,), dtype)
    out = loom.nn.functional.linear(_loom(x, dtype), _loom(w, dtype), _loom(bias, dtype))
    expected = x @ w.T + bias
    _check(_as_f64(out), expected, np.abs(x) @ np.abs(w.T) + np.abs(bias), 65, dtype, f"{engine} linear")


@pytest.mark.parametrize("dtype", [loom.float32, loom.bfloat16], ids=["f32", "bf16"])
def test_gemv(engine, threads, dtype):
    rng = np.random.default_rng(3)
    row, mat, col = _values(rng, (1, 384), dtype), _values(rng, (384, 200), dtype), _values(rng, (200, 1), dtype)
    out = loom.matmul(_loom(row, dtype), _loom(mat, dtype))
    _check(_as_f64(out), row @ mat, np.abs(row) @ np.abs(mat), 384, dtype, f"{engine} row @ M")
    out = loom.matmul(_loom(mat, dtype), _loom(col, dtype))
    _check(_as_f64(out), mat @ col, np.abs(mat) @ np.abs(col), 200, dtype, f"{engine} M @ column")


@pytest.mark.parametrize("stride", [1, 2])
def test_conv2d(engine, threads, stride):
    rng = np.random.default_rng(stride)
    x, w = _values(rng, (3, 4, 11, 9), loom.float32), _values(rng, (6, 4, 3, 3), loom.float32)
    out = loom.nn.functional.conv2d(_loom(x, loom.float32), _loom(w, loom.float32), stride=stride, padding=1)
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), stride=stride, padding=1)
    mag = torch.nn.functional.conv2d(torch.from_numpy(np.abs(x)), torch.from_numpy(np.abs(w)), stride=stride,
                                     padding=1)
    _check(_as_f64(out), ref.numpy(), mag.numpy(), 36, loom.float32, f"{engine} conv2d stride {stride}")


def test_engine_api():
    info = loom._C._gemm_info()
    assert info["engine"] in ENGINES and info["bf16_isa"] in ("amx-bf16", "avx512-bf16", "none")
    before = loom._C._get_gemm_engine()
    try:
        loom._C._set_gemm_engine("openblas")
        assert loom._C._gemm_info() == dict(info, engine="openblas", native_bf16=False)
        loom._C._set_gemm_engine("onednn")
        assert loom._C._gemm_info()["native_bf16"] == (info["bf16_isa"] != "none")
        with pytest.raises(ValueError, match="set_gemm_engine: unknown engine 'mkl'"):
            loom._C._set_gemm_engine("mkl")
    finally:
        loom._C._set_gemm_engine(before)


def test_engine_from_environment():
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    auto = "onednn" if " avx512f " in flags.replace("\n", " ") + " " else "openblas"
    for value, expected in [("openblas", "openblas"), ("onednn", "onednn"), ("auto", auto), ("bogus", auto)]:
        env = dict(os.environ, LOOM_GEMM=value)
        out = subprocess.run([sys.executable, "-c", "import loom; print(loom._C._get_gemm_engine())"], env=env,
                             capture_output=True, text=True, check=True)
        assert out.stdout.strip() == expected, f"LOOM_GEMM={value}"
