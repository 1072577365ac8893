"""Creation functions against PyTorch: zeros/ones/full/empty(_like), arange, linspace, eye, tensor()."""

import numpy as np
import pytest
import torch

import loom

NAMES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]
T2L = {getattr(torch, n): getattr(loom, n) for n in NAMES}


def same(lt, tt, exact=True):
    assert lt.dtype == T2L[tt.dtype], (lt.dtype, tt.dtype)
    assert tuple(lt.shape) == tuple(tt.shape), (lt.shape, tt.shape)
    g = lt.double().numpy()
    w = tt.double().numpy()
    if exact:
        np.testing.assert_array_equal(g, w)
    else:
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("fn", ["zeros", "ones"])
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3), (2, 0, 4), (1, 1, 1, 1)])
@pytest.mark.parametrize("dtype", [None, "float64", "int32", "bool", "float16", "bfloat16", "uint8"])
def test_zeros_ones(fn, shape, dtype):
    kw = {} if dtype is None else {"dtype": getattr(loom, dtype)}
    tkw = {} if dtype is None else {"dtype": getattr(torch, dtype)}
    if shape:
        same(getattr(loom, fn)(*shape, **kw), getattr(torch, fn)(*shape, **tkw))
    same(getattr(loom, fn)(shape, **kw), getattr(torch, fn)(shape, **tkw))
    same(getattr(loom, fn)(list(shape), **kw), getattr(torch, fn)(list(shape), **tkw))


@pytest.mark.parametrize("value", [True, 3, -2, 2.5, float("inf"), 0])
@pytest.mark.parametrize("dtype", [None, "float64", "int64", "bool", "float32", "int8"])
def test_full(value, dtype):
    kw = {} if dtype is None else {"dtype": getattr(loom, dtype)}
    tkw = {} if dtype is None else {"dtype": getattr(torch, dtype)}
    try:
        want = torch.full((2, 3), value, **tkw)
    except (RuntimeError, TypeError, OverflowError):
        with pytest.raises((RuntimeError, TypeError, ValueError, OverflowError)):
            loom.full((2, 3), value, **kw)
        return
    same(loom.full((2, 3), value, **kw), want)


def test_like_functions():
    base_l = loom.ones(2, 3, dtype=loom.int16)
    base_t = torch.ones(2, 3, dtype=torch.int16)
    same(loom.zeros_like(base_l), torch.zeros_like(base_t))
    same(loom.ones_like(base_l, dtype=loom.float64), torch.ones_like(base_t, dtype=torch.float64))
    same(loom.full_like(base_l, 7), torch.full_like(base_t, 7))
    e = loom.empty_like(base_l)
    assert e.dtype == loom.int16 and tuple(e.shape) == (2, 3)
    e = loom.empty(4, 0, dtype=loom.float64)
    assert e.dtype == loom.float64 and tuple(e.shape) == (4, 0)
    # non-contiguous input: _like gives a fresh (contiguous) tensor of the same shape
    z = loom.zeros_like(loom.ones(3, 4).t())
    assert tuple(z.shape) == (4, 3) and z.is_contiguous()


def test_requires_grad_kwarg():
    for f in (lambda **k: loom.zeros(2, **k), lambda **k: loom.ones(2, **k), lambda **k: loom.full((2,), 1.0, **k),
              lambda **k: loom.arange(0.0, 3.0, **k), lambda **k: loom.linspace(0, 1, 3, **k),
              lambda **k: loom.eye(2, **k), lambda **k: loom.tensor([1.0], **k)):
        t = f(requires_grad=True)
        assert t.requires_grad and t.is_leaf
    with pytest.raises(TypeError):
        loom.zeros(2, dtype=loom.int64, requires_grad=True)
    with pytest.raises(TypeError):
        loom.arange(3, requires_grad=True)


@pytest.mark.parametrize("args", [(5,), (0,), (1,), (2, 9), (2, 9, 3), (5, 0, -2), (-5, 5, 3), (0, 1, 0.25),
                                  (1.0, 0, -0.3), (0.5, 3), (10, 10), (0, -3, -1), (0, 1, 0.1),
                                  (1, 2.5, 0.5), (-1.5, 1.5, 0.5)])
def test_arange(args):
    same(loom.arange(*args), torch.arange(*args), exact=False)


@pytest.mark.parametrize("dtype", ["float64", "int32", "float16", "int8", "uint8"])
def test_arange_dtype(dtype):
    same(loom.arange(0, 10, 3, dtype=getattr(loom, dtype)), torch.arange(0, 10, 3, dtype=getattr(torch, dtype)))


def test_arange_errors():
    for args in [(-3,), (0, 5, -1), (5, 0, 1), (0, 5, 0), (0, float("inf")), (float("nan"),), (0, 1, 0.0)]:
        with pytest.raises(Exception):
            torch.arange(*args)
        with pytest.raises((ValueError, RuntimeError)):
            loom.arange(*args)
    with pytest.raises((ValueError, RuntimeError, OverflowError)):
        loom.arange(0, 2 ** 62)


@pytest.mark.parametrize("args", [(0, 1, 5), (0, 1, 1), (0, 1, 0), (3, 3, 4), (-2.5, 7, 11), (10, 0, 6), (0, 1, 2)])
def test_linspace(args):
    same(loom.linspace(*args), torch.linspace(*args), exact=False)
    same(loom.linspace(*args, dtype=loom.float64), torch.linspace(*args, dtype=torch.float64), exact=False)


def test_linspace_int_dtype_and_errors():
    same(loom.linspace(0, 10, 5, dtype=loom.int64), torch.linspace(0, 10, 5, dtype=torch.int64))
    with pytest.raises((ValueError, RuntimeError)):
        loom.linspace(0, 1, -1)


@pytest.mark.parametrize("args", [(0,), (1,), (3,), (2, 3), (3, 2), (0, 4), (4, 0)])
def test_eye(args):
    same(loom.eye(*args), torch.eye(*args))
    same(loom.eye(*args, dtype=loom.int32), torch.eye(*args, dtype=torch.int32))
    with pytest.raises((ValueError, RuntimeError)):
        loom.eye(-1)


@pytest.mark.parametrize("data", [
    [1, 2, 3], [1.0, 2, 3], [True, False], [True, 2], [[1, 2], [3, 4]], [[[1.5]]], [], [[]], [[], []],
    3, 2.5, True, [1, 2.0, True], [[1, 2], [3.5, 4]], [2 ** 62, -2 ** 62], [float("inf"), float("nan")],
    ((1, 2), (3, 4)), [(1, 2), [3, 4]], [-0.0],
])
def test_tensor_from_nested_lists(data):
    lt, tt = loom.tensor(data), torch.tensor(data)
    assert lt.dtype == T2L[tt.dtype]
    assert tuple(lt.shape) == tuple(tt.shape)
    np.testing.assert_array_equal(lt.double().numpy(), tt.double().numpy())
    assert lt.tolist() == tt.tolist() or (np.isnan(tt.double().numpy()).any())


@pytest.mark.parametrize("dtype", NAMES)
def test_tensor_with_dtype(dtype):
    data = [[0, 1, 2], [3, 4, 5]]
    same(loom.tensor(data, dtype=getattr(loom, dtype)), torch.tensor(data, dtype=getattr(torch, dtype)))


def test_tensor_from_tensor_and_numpy_and_scalars():
    a = np.arange(6, dtype=np.int16).reshape(2, 3)
    lt = loom.tensor(a)
    assert lt.dtype == loom.int16
    a[0, 0] = 100
    assert lt.tolist()[0][0] == 0  # a copy
    l2 = loom.tensor(lt)
    assert l2.data_ptr() != lt.data_ptr()
    assert loom.tensor(np.float32(2.5)).dtype == loom.float32 or loom.tensor(np.float32(2.5)).item() == 2.5
    assert loom.tensor([loom.tensor(1), loom.tensor(2)]).tolist() == [1, 2]
    assert loom.tensor([np.int64(3), np.int64(4)]).tolist() == [3, 4]


@pytest.mark.parametrize("bad", [[[1, 2], [3]], [[1, 2], 3], [1, [2]], [[[1]], [2]], [[1], [2, 3]]])
def test_ragged_lists_raise_value_error(bad):
    with pytest.raises((ValueError, TypeError)):
        torch.tensor(bad)
    with pytest.raises(ValueError):
        loom.tensor(bad)


@pytest.mark.parametrize("bad", [["a"], "abc", [1, "a"], [None], None, [object()], {"a": 1}, [[1], ["x"]], b"ab"])
def test_non_numbers_raise_type_error(bad):
    with pytest.raises((TypeError, ValueError, RuntimeError)):
        torch.tensor(bad)
    with pytest.raises(TypeError):
        loom.tensor(bad)


def test_out_of_range_ints():
    with pytest.raises((OverflowError, ValueError, TypeError, RuntimeError)):
        loom.tensor([2 ** 64])
    with pytest.raises((OverflowError, ValueError, TypeError, RuntimeError)):
        loom.tensor([float("nan")], dtype=loom.int64)


def test_size_errors():
    for f in (lambda: loom.zeros(-1), lambda: loom.ones(2, -3), lambda: loom.empty(2 ** 62, 2 ** 62),
              lambda: loom.zeros(2 ** 40, 2 ** 40), lambda: loom.full((-1,), 1.0), lambda: loom.zeros(2 ** 63)):
        with pytest.raises((ValueError, RuntimeError, OverflowError, MemoryError)):
            f()
    for f in (lambda: loom.zeros("a"), lambda: loom.zeros(2.5), lambda: loom.zeros(None), lambda: loom.zeros([1, "a"])):
        with pytest.raises(TypeError):
            f()
