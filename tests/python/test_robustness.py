"""Random bad calls across the public API: every call must either succeed or raise one of the documented
Python exceptions; nothing may crash the interpreter. The calls run in a child interpreter that prints each
call before making it, so a crash shows the offending call.

Run by hand: python tests/python/test_robustness.py SEED COUNT
"""
import os
import subprocess
import sys

import pytest

ALLOWED = (TypeError, ValueError, IndexError, RuntimeError, NotImplementedError, OverflowError)

# Functions that change process-wide state in ways that would make later calls slow or meaningless, and file
# I/O (loom.save would write files named by random strings; test_serialization.py fuzzes loading).
SKIP_FUNCTIONS = {"set_num_threads", "set_default_dtype", "manual_seed", "save", "load", "save_file",
                  "load_file"}
# Tensor dunders worth calling (the rest are Python object plumbing).
DUNDERS = ["__getitem__", "__setitem__", "__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
           "__truediv__", "__rtruediv__", "__floordiv__", "__mod__", "__pow__", "__rpow__", "__matmul__",
           "__rmatmul__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__and__", "__or__",
           "__xor__", "__invert__", "__neg__", "__abs__", "__iadd__", "__isub__", "__imul__", "__itruediv__",
           "__len__", "__bool__", "__float__", "__int__", "__index__", "__repr__", "__dlpack__", "__hash__"]


def child(seed, count):
    import random

    import numpy as np

    import loom

    rng = random.Random(seed)
    dtypes = [getattr(loom, n) for n in ("bool", "uint8", "int8", "int16", "int32", "int64", "float16",
                                         "bfloat16", "float32", "float64")]

    def rand_tensor():
        kind = rng.randrange(9)
        dtype = rng.choice(dtypes)
        shape = rng.choice([(), (0,), (1,), (3,), (2, 3), (3, 1), (2, 0, 3), (1, 2, 3), (4, 4), (2, 3, 4)])
        t = loom.ones(*shape, dtype=dtype) if shape else loom.ones((), dtype=dtype)
        if kind == 0 and t.ndim >= 2:
            t = t.transpose(0, 1)
        elif kind == 1 and t.ndim >= 1:
            t = t.expand(2, *t.shape)
        elif kind == 2 and t.ndim >= 1 and t.shape[-1] > 1:
            t = t.narrow(-1, 1, t.shape[-1] - 1)
        elif kind == 3 and dtype.is_floating_point:
            t = t.clone().requires_grad_()
        elif kind == 4 and dtype.is_floating_point:
            t = (t.clone().requires_grad_() * 2)
        elif kind == 5:
            t = loom.tensor(np.arange(max(1, t.numel())).reshape(-1)[: t.numel()].reshape(t.shape) % 7).to(dtype)
        return t

    def garbage(depth=0):
        r = rng.randrange(24)
        if r < 6:
            return rand_tensor()
        if r == 6:
            return rng.choice([0, 1, -1, 2, 3, 5, 100, -100, 2 ** 31, 2 ** 62, -2 ** 62, 2 ** 63 - 1, 2 ** 64, -2 ** 63])
        if r == 7:
            return rng.choice([0.0, 0.5, -1.5, float("nan"), float("inf"), -float("inf"), 1e300, -0.0])
        if r == 8:
            return rng.choice([True, False])
        if r == 9:
            return None
        if r == 10:
            return rng.choice(["", "abc", "cpu", "cuda", "float32", "sum", "mean", "none", "tanh", "\x00", "cuda:99"])
        if r == 11:
            return rng.choice(dtypes)
        if r == 12 and depth < 3:
            return [garbage(depth + 1) for _ in range(rng.randrange(4))]
        if r == 13 and depth < 3:
            return tuple(garbage(depth + 1) for _ in range(rng.randrange(4)))
        if r == 14:
            return tuple(rng.choice([-1, 0, 1, 2, 3, 2 ** 62, -5]) for _ in range(rng.randrange(5)))
        if r == 15:
            return rng.choice([np.zeros(3), np.arange(6).reshape(2, 3), np.float32(1.5), np.int64(2),
                               np.array(["a"]), np.zeros((2, 2), dtype=np.complex64), np.arange(5)[::-1]])
        if r == 16:
            return rng.choice([object(), {}, {"a": 1}, lambda *a: None, print, slice(None, None, -1),
                               slice(0, 2), Ellipsis, b"bytes", 1j, loom.device("cpu"), range(3)])
        if r == 17:
            return rng.choice([-3, -2, -1, 0, 1, 2, 3, 4])  # plausible dims
        if r == 18:
            return rng.choice([(0,), (-1,), (0, 1), (1, 0), (0, 0), (5,)])
        return rand_tensor()

    def plausible():
        """Arguments likely to pass the bindings' type checks, so the calls reach validation and kernels."""
        r = rng.randrange(10)
        if r < 5:
            return rand_tensor()
        if r < 7:
            return rng.choice([-3, -2, -1, 0, 1, 2, 3, 4, 2 ** 62, -2 ** 62])
        if r == 7:
            return rng.choice([(0,), (-1,), (0, 1), (2, 3), (3, -1), (1, 1, 1), (), (2 ** 62, 2), (-2, 3)])
        if r == 8:
            return rng.choice([0.5, -1.0, 2.0, float("nan")])
        return rng.choice(dtypes + [True, False])

    def rand_kwargs():
        kw = {}
        for name in ("dim", "keepdim", "dtype", "out", "alpha", "requires_grad", "device", "bogus"):
            if rng.random() < 0.06:
                kw[name] = garbage()
        return kw

    functions = sorted(n for n in dir(loom) if not n.startswith("_") and callable(getattr(loom, n))
                       and n not in SKIP_FUNCTIONS and not isinstance(getattr(loom, n), type))
    methods = sorted(n for n in dir(loom.Tensor) if not n.startswith("_")) + [d for d in DUNDERS if hasattr(loom.Tensor, d)]
    failures = 0
    succeeded = 0
    for i in range(count):
        use_method = rng.random() < 0.55
        nargs = rng.choice([0, 1, 1, 2, 2, 2, 3, 3, 4])
        make = plausible if rng.random() < 0.6 else garbage
        args = [make() for _ in range(nargs)]
        kwargs = rand_kwargs() if rng.random() < 0.3 else {}
        if use_method:
            name = rng.choice(methods)
            self = rand_tensor()
            label = f"Tensor.{name}"
            call_args = args
        else:
            name = rng.choice(functions)
            label = f"loom.{name}"
            call_args = args
        try:
            shown = f"{label}(" + ", ".join([repr(a)[:120] for a in ([self] if use_method else []) + call_args]
                                             + [f"{k}={v!r}"[:80] for k, v in kwargs.items()]) + ")"
        except Exception as e:  # repr itself must not crash either; report it
            shown = f"{label}(<unrepresentable args: {type(e).__name__}: {e}>)"
        print(f"CALL {i}: {shown}", flush=True)
        try:
            target = getattr(self, name) if use_method else getattr(loom, name)  # properties may raise
            if not callable(target):
                continue
            result = target(*call_args, **kwargs)
            succeeded += 1
            if isinstance(result, loom.Tensor):
                repr(result)
                if result.numel() < 10000 and all(d < 10000 for d in result.shape):
                    result.tolist()
        except ALLOWED:
            pass
        except BaseException as e:  # noqa: BLE001
            failures += 1
            print(f"BADEXC {type(e).__name__}: {e}", flush=True)
        finally:
            loom.set_grad_enabled(True)
    print(f"DONE {count} calls, {succeeded} succeeded, {failures} unexpected exception types", flush=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_bad_calls_do_not_crash(seed):
    env = dict(os.environ, OMP_NUM_THREADS="2")
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), str(seed), "1000"], capture_output=True,
                          text=True, timeout=300, env=env)
    lines = proc.stdout.splitlines()
    calls = [line for line in lines if line.startswith("CALL ")]
    if proc.returncode != 0:
        last = calls[-1] if calls else "<no call printed>"
        pytest.fail(f"child interpreter died (rc={proc.returncode}) during:\n{last}\nstderr tail:\n{proc.stderr[-3000:]}")
    bad = [(lines[k - 1], line) for k, line in enumerate(lines) if line.startswith("BADEXC")]
    assert not bad, "unexpected exception types:\n" + "\n".join(f"{c}\n  -> {b}" for c, b in bad[:30])
    assert lines and lines[-1].startswith("DONE"), proc.stdout[-2000:]


def test_set_num_threads_validation():
    import loom

    before = loom.get_num_threads()
    for bad in (0, -1):
        with pytest.raises((ValueError, RuntimeError)):
            loom.set_num_threads(bad)
    with pytest.raises((TypeError, OverflowError, ValueError)):
        loom.set_num_threads(2 ** 62)
    with pytest.raises(TypeError):
        loom.set_num_threads("2")
    assert loom.get_num_threads() == before


if __name__ == "__main__":
    child(int(sys.argv[1]), int(sys.argv[2]))
