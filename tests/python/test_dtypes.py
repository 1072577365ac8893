"""Dtype promotion against PyTorch: promote_types over all pairs, and the result dtype of binary ops over
tensors, 0-d tensors and Python numbers (torch.result_type's categories and priorities)."""
import itertools

import numpy as np
import pytest
import torch

import loom

NAMES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]
L = {n: getattr(loom, n) for n in NAMES}
T = {n: getattr(torch, n) for n in NAMES}
T2L = {T[n]: L[n] for n in NAMES}


def make(backend, dtype_name, kind):
    """A tensor (kind 'dim': shape (3,), 'zero': 0-d) or a Python number ('bool', 'int', 'float')."""
    if kind == "bool":
        return True
    if kind == "int":
        return 3
    if kind == "float":
        return 2.5
    values = [1, 0, 1] if kind == "dim" else 1
    if backend == "torch":
        return torch.tensor(values, dtype=T[dtype_name])
    return loom.tensor(values, dtype=L[dtype_name])


@pytest.mark.parametrize("a,b", list(itertools.product(NAMES, NAMES)))
def test_promote_types_matches_torch(a, b):
    assert loom.promote_types(L[a], L[b]) == T2L[torch.promote_types(T[a], T[b])]


KINDS = ["dim", "zero", "bool", "int", "float"]
OPS = ["add", "mul", "div", "eq", "maximum", "sub"]


def cases():
    out = []
    for da, db in itertools.product(NAMES, NAMES):
        for ka, kb in [("dim", "dim"), ("dim", "zero"), ("zero", "dim"), ("zero", "zero")]:
            out.append((da, ka, db, kb))
    for d in NAMES:
        for k in ["dim", "zero"]:
            for num in ["bool", "int", "float"]:
                out.append((d, k, None, num))
                out.append((None, num, d, k))
    return out


def run(backend, op, a, b):
    mod = torch if backend == "torch" else loom
    if not isinstance(a, (torch.Tensor, loom.Tensor)):
        # number op tensor: use the reflected Python operator
        sym = {"add": lambda x, y: x + y, "mul": lambda x, y: x * y, "div": lambda x, y: x / y,
               "sub": lambda x, y: x - y, "eq": lambda x, y: y == x}[op]
        return sym(a, b)
    return getattr(mod, op)(a, b)


@pytest.mark.parametrize("op", OPS)
def test_binary_result_dtype_matches_torch(op):
    """Every (dtype, kind) x (dtype, kind) combination; one test per op, listing all mismatches."""
    bad = []
    for da, ka, db, kb in cases():
        if op == "maximum" and (ka not in ("dim", "zero") or kb not in ("dim", "zero")):
            continue
        ta, tb = make("torch", da, ka), make("torch", db, kb)
        la, lb = make("loom", da, ka), make("loom", db, kb)
        case = f"{op}({da}/{ka}, {db}/{kb})"
        try:
            want = run("torch", op, ta, tb)
        except (RuntimeError, TypeError):
            # torch refuses (e.g. sub with bool): loom must refuse too, with a Python exception
            try:
                run("loom", op, la, lb)
                bad.append(f"{case}: torch raises, loom does not")
            except (RuntimeError, TypeError, ValueError, NotImplementedError):
                pass
            continue
        got = run("loom", op, la, lb)
        if got.dtype != T2L[want.dtype] or tuple(got.shape) != tuple(want.shape):
            bad.append(f"{case}: loom {got.dtype}{tuple(got.shape)}, torch {want.dtype}{tuple(want.shape)}")
            continue
        g = got.double().numpy()
        w = want.double().numpy()
        if not np.allclose(g, w, rtol=1e-2, equal_nan=True):
            bad.append(f"{case}: values {g} vs {w}")
    assert not bad, "\n".join(bad[:40])


@pytest.mark.parametrize("a,b,expected", [
    ((loom.uint8, "dim"), (loom.int8, "dim"), loom.int16),
    ((loom.int32, "dim"), 2.5, loom.float32),
    ((loom.float16, "dim"), (loom.float64, "zero"), loom.float16),
    ((loom.bool, "dim"), 3, loom.int64),
    ((loom.bool, "dim"), (loom.int8, "zero"), loom.int8),
    ((loom.int64, "dim"), (loom.float64, "zero"), loom.float64),
    ((loom.float32, "dim"), (loom.float64, "zero"), loom.float32),
    ((loom.int8, "dim"), 1000, loom.int8),
    ((loom.uint8, "zero"), (loom.int8, "zero"), loom.int16),
])
def test_named_promotion_cases(a, b, expected):
    def mk(spec):
        if isinstance(spec, tuple):
            d, k = spec
            return loom.tensor([1, 1] if k == "dim" else 1, dtype=d)
        return spec
    assert (mk(a) + mk(b)).dtype == expected


def test_int_division_gives_default_float():
    a, b = loom.tensor([1, 2, 3]), loom.tensor([2, 2, 2])
    assert (a / b).dtype == loom.float32
    np.testing.assert_allclose((a / b).numpy(), [0.5, 1.0, 1.5])
    assert (a // b).dtype == loom.int64


def test_default_dtype_set_get():
    assert loom.get_default_dtype() == loom.float32
    try:
        loom.set_default_dtype(loom.float64)
        assert loom.get_default_dtype() == loom.float64
        assert loom.tensor([1.5]).dtype == loom.float64
        assert loom.zeros(2).dtype == loom.float64
        assert loom.arange(0.0, 1.0, 0.5).dtype == loom.float64
        assert (loom.tensor([1, 2]) * 1.5).dtype == loom.float64
        assert (loom.tensor([1, 2]) / loom.tensor([1, 2])).dtype == loom.float64
        # a float tensor keeps its dtype against a Python float
        assert (loom.ones(2, dtype=loom.float32) * 1.5).dtype == loom.float32
    finally:
        loom.set_default_dtype(loom.float32)
    assert loom.tensor([1.5]).dtype == loom.float32
    with pytest.raises(TypeError):
        loom.set_default_dtype(loom.int32)
    assert loom.get_default_dtype() == loom.float32


def test_dtype_objects():
    assert loom.float is loom.float32 or loom.float == loom.float32
    assert loom.double == loom.float64 and loom.long == loom.int64 and loom.half == loom.float16
    assert repr(loom.float32) == "loom.float32" and str(loom.int8) == "loom.int8"
    assert loom.float16.is_floating_point and not loom.int64.is_floating_point
    assert loom.bfloat16.is_floating_point
    assert [getattr(loom, n).itemsize for n in NAMES] == [1, 1, 1, 2, 4, 8, 2, 2, 4, 8]
    assert loom.dtype_from_name("double") == loom.float64
    with pytest.raises(TypeError):
        loom.dtype_from_name("complex64")


@pytest.mark.parametrize("src", NAMES)
@pytest.mark.parametrize("dst", NAMES)
def test_casts_match_torch(src, dst):
    values = [0, 1, 2, 100, 127] if src not in ("bool",) else [0, 1, 1, 0, 1]
    if src in ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64"):
        values = values + [-3]
    if src in ("float16", "bfloat16", "float32", "float64"):
        values = values + [2.75, -0.5]
    t = torch.tensor(values).to(T[src])
    lt = loom.tensor(values).to(L[src])
    if (dst == "uint8" and src not in ("bool", "uint8")) or (dst in ("int8", "uint8") and src in ("float16", "bfloat16", "float32", "float64")):
        # out-of-range / negative float->unsigned conversions are implementation-defined in C++ and torch
        t, lt = t.abs().clamp(max=100), lt.abs().clamp(max=100)
    want = t.to(T[dst])
    got = lt.to(L[dst])
    assert got.dtype == L[dst]
    np.testing.assert_array_equal(got.float().numpy(), want.float().numpy())


def test_result_type_matches_torch():
    bad = []
    for da, ka, db, kb in cases():
        ta, tb = make("torch", da, ka), make("torch", db, kb)
        la, lb = make("loom", da, ka), make("loom", db, kb)
        if ka not in ("dim", "zero"):  # torch.result_type wants a tensor first
            ta, tb, la, lb = tb, ta, lb, la
        want = T2L[torch.result_type(ta, tb)]
        if loom.result_type(la, lb) != want:
            bad.append(f"{da}/{ka}, {db}/{kb}: {loom.result_type(la, lb)} vs {want}")
    assert not bad, "\n".join(bad)
