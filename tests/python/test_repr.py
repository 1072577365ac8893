"""repr(tensor) follows torch's layout: precision 4, int/fixed/scientific modes, padding, wrapping at 80
columns, summarisation over 1000 elements, size=/dtype= suffixes."""
import numpy as np
import pytest
import torch

import loom

CASES = [
    [1.0, 2.0, 3.0], [1.5, -2.25, 3.0], [0.0], [-0.0, 1.0], [1e-5, 1.0], [1e9, 1.0], [123456.0, 0.5],
    [float("nan"), 1.0, float("inf"), -float("inf")], [float("nan")], [1e10, 2e10], [0.1, 0.2, 0.3],
    [[1.0, 2.0], [3.0, 4.0]], [[[1.0, -2.5], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.125]]],
    list(np.linspace(-3, 3, 40)), [[0.001, 1000.0]], [1e-4, 5e-4], 3.25, -7.0, 1e20, [100.0, 200.5],
]


@pytest.mark.parametrize("data", CASES, ids=range(len(CASES)))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float_repr_matches_torch(data, dtype):
    t = torch.tensor(data, dtype=getattr(torch, dtype))
    lt = loom.tensor(data, dtype=getattr(loom, dtype))
    assert repr(lt) == repr(t).replace("torch.", "loom.")


@pytest.mark.parametrize("data,dtype", [
    ([1, 2, 3], "int64"), ([1, -20, 300], "int32"), ([[1, 2], [30, 4]], "int16"), ([True, False], "bool"),
    ([True, True], "bool"), (5, "int64"), (True, "bool"), ([200, 1], "uint8"), ([1.5, 2.0], "float16"),
    ([1.5, 2.0], "bfloat16"), (list(range(50)), "int64"), ([[True], [False]], "bool"),
])
def test_other_dtypes_repr_matches_torch(data, dtype):
    t = torch.tensor(data, dtype=getattr(torch, dtype))
    lt = loom.tensor(data, dtype=getattr(loom, dtype))
    assert repr(lt) == repr(t).replace("torch.", "loom.")


@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0), (2, 0, 1)])
def test_empty_repr(shape):
    assert repr(loom.zeros(*shape)) == repr(torch.zeros(*shape))
    assert repr(loom.zeros(*shape, dtype=loom.int32)) == repr(torch.zeros(*shape, dtype=torch.int32)).replace("torch.", "loom.")


@pytest.mark.parametrize("shape", [(1001,), (40, 30), (3, 400), (11, 11, 11), (2000, 1)])
def test_summarised_repr(shape):
    n = int(np.prod(shape))
    t = torch.arange(n, dtype=torch.float32).reshape(shape)
    lt = loom.arange(n, dtype=loom.float32).reshape(shape)
    assert repr(lt) == repr(t)
    assert repr(lt.long()) == repr(t.long())


def test_repr_of_views():
    t = torch.arange(24.0).reshape(2, 3, 4).permute(2, 0, 1).narrow(0, 1, 2)
    lt = loom.arange(24.0).reshape(2, 3, 4).permute(2, 0, 1).narrow(0, 1, 2)
    assert repr(lt) == repr(t)


def test_repr_grad_suffixes():
    x = loom.ones(2, requires_grad=True)
    assert repr(x) == "tensor([1., 1.], requires_grad=True)"
    y = x * 2
    assert repr(y).startswith("tensor([2., 2.], grad_fn=<") and repr(y).endswith("Backward>)")
    assert repr(y.detach()) == "tensor([2., 2.])"


def test_default_dtype_repr():
    try:
        loom.set_default_dtype(loom.float64)
        torch.set_default_dtype(torch.float64)
        assert repr(loom.tensor([1.5])) == repr(torch.tensor([1.5]))
        assert repr(loom.tensor([1.5], dtype=loom.float32)) == repr(torch.tensor([1.5], dtype=torch.float32)).replace("torch.", "loom.")
    finally:
        loom.set_default_dtype(loom.float32)
        torch.set_default_dtype(torch.float32)
