"""Python indexing (Tensor.__getitem__/__setitem__) against PyTorch: values, gradients, views and errors;
plus the error paths and in-place variants of the index ops (their values/grads are in op_db/index.py)."""
import numpy as np
import pytest
import torch

import loom


class T:
    """An index given as a tensor (converted to a loom or torch tensor for each side)."""

    def __init__(self, array, dtype=None):
        self.array = np.asarray(array, dtype=dtype)


def convert(index, lib):
    if isinstance(index, T):
        return loom.tensor(index.array) if lib == "loom" else torch.tensor(index.array)
    if isinstance(index, tuple):
        return tuple(convert(i, lib) for i in index)
    return index


def data(shape, seed=0):
    return np.random.default_rng(seed).uniform(-2, 2, size=shape)


def mask(shape, seed=1):
    return T(np.random.default_rng(seed).random(shape) < 0.5)


S = (4, 5, 3)
GETITEM = [
    (S, 0), (S, -1), (S, (1, 2)), (S, (slice(None), 1)), (S, slice(1, None, 2)), (S, (Ellipsis, 0)),
    (S, (None, 0)), (S, (0, None, slice(None), None)), (S, ()), (S, Ellipsis), (S, slice(-100, 100)),
    (S, slice(3, 1)), (S, (slice(None), slice(1, 4, 2), -2)), (S, np.int64(2)),
    (S, T([0, 2, 1])), (S, [0, 2]), (S, np.array([[0, 1], [2, 0]])), (S, (T([0, 1]), T([1, 2]))),
    (S, (T([[0], [1]]), T([1, 2, 0]))), (S, (T([0, 1]), slice(None), T([1, 2]))),
    (S, (slice(None), T([0, 1]), T([1, 2]))), (S, (0, slice(None), T([1, 2]))), (S, (T([0, 1]), 0, T([1, 2]))),
    (S, (Ellipsis, T([1, 0]))), (S, (None, T([1, 0]), slice(None))), (S, T([-1, 0, -4])),
    (S, (T([0, 1]), None, T([1, 2]))), (S, (slice(1, 3), T([[0, 4], [3, 3]]))), (S, mask((4,))), (S, mask((4, 5))),
    (S, (slice(None), mask((5,)))), (S, (Ellipsis, mask((3,)))), (S, True), (S, False), (S, T(True)), (S, T(False)),
    (S, T(np.zeros(0, dtype=np.int64))), (S, T([1, 2], dtype=np.int32)), (S, T(2)), (S, (T([0, 3]), mask((5,)))),
    ((0, 3), slice(None)), ((0, 3), (slice(None), T([0, 2]))), ((3,), mask((3,), seed=5)), ((), None), ((), Ellipsis),
    ((), True), ((2, 3), ([0, 1], [1, 2])), ((2, 3, 4, 5), (T([0, 1]), slice(None), slice(None), T([1, 2]))),
    ((2, 3, 4, 5), (slice(None), T([[0], [2]]), T([1, 3]), slice(1, 3))),
]


def ids(cases):
    return [f"{shape}-{index!r}"[:60] if not isinstance(index, T) else f"{shape}-T{index.array.tolist()}"[:60]
            for shape, index, *_ in cases]


@pytest.mark.parametrize("shape,index", GETITEM, ids=ids(GETITEM))
def test_getitem_values_and_grads(shape, index):
    x = data(shape)
    lx = loom.tensor(x).requires_grad_()
    tx = torch.tensor(x).requires_grad_()
    lo = lx[convert(index, "loom")]
    to = tx[convert(index, "torch")]
    assert tuple(lo.shape) == tuple(to.shape)
    np.testing.assert_array_equal(lo.detach().numpy(), to.detach().numpy())
    cot = data(tuple(to.shape), seed=3)
    (to * torch.tensor(cot)).sum().backward()
    (lo * loom.tensor(cot)).sum().backward()
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [loom.int32, loom.bool, loom.float16, loom.bfloat16])
def test_getitem_other_dtypes(dtype):
    x = data((4, 5)) * 3
    lx = loom.tensor(x).to(dtype)
    tx = torch.tensor(x).to(getattr(torch, str(dtype).split(".")[-1]))
    for index in [(slice(1, 3), T([0, 2])), mask((4, 5)), (T([1, 1]), T([0, 4]))]:
        lo, to = lx[convert(index, "loom")], tx[convert(index, "torch")]
        np.testing.assert_array_equal(lo.float().numpy(), to.float().numpy())


def test_basic_indexing_returns_views():
    x = loom.zeros(4, 5)
    v = x[1:3, ::2]
    v.fill_(1.0) if hasattr(v, "fill_") else v.copy_(loom.ones(2, 3))
    assert x.sum().item() == 6.0
    row = x[2]
    row[0] = 7.0
    assert x[2, 0].item() == 7.0
    a = x[...]
    a[0, 0] = 3.0
    assert x[0, 0].item() == 3.0
    # Advanced indexing copies.
    c = x[[0, 1]]
    c[0, 0] = -1.0
    assert x[0, 0].item() == 3.0


SETITEM = [
    ((4, 5), 0, (5,)), ((4, 5), (slice(None), 1), (4,)), ((4, 5), (slice(1, 3), slice(None, None, 2)), (2, 3)),
    ((4, 5), Ellipsis, (1, 5)), ((4, 5), (1, 2), ()), ((4, 5), T([0, 2]), (2, 5)), ((4, 5), T([0, 2]), (5,)),
    ((4, 5), (T([0, 2]), T([1, 4])), (2,)), ((4, 5), mask((4, 5)), None), ((4, 5), mask((4,)), (5,)),
    ((4, 5, 3), (T([0, 1]), slice(None), T([1, 2])), (2, 5)), ((4, 5, 3), (slice(None), T([0, 3]), T([2, 0])), (4, 2)),
    ((4, 5, 3), (slice(1, 3), T([[0], [4]]), slice(None)), (2, 2, 1, 3)), ((4, 5, 3), (0, T([1, 3])), (2, 3)),
    ((4, 5), T([-1]), (1, 1, 5)), ((4, 5), (None, 1), (5,)), ((4, 5), True, (4, 5)), ((4, 5), [1, 3], "scalar"),
    ((4, 5), mask((4, 5), seed=2), "scalar"), ((4, 5), (slice(None), slice(2, None)), "scalar"),
    ((4, 5, 3), (slice(None), mask((5, 3))), "scalar"), ((4, 5, 3), (Ellipsis, mask((3,))), (1,)),
    ((4, 5, 3), (1, mask((5,))), ()),
]


@pytest.mark.parametrize("shape,index,value", SETITEM, ids=ids(SETITEM))
def test_setitem_values_and_grads(shape, index, value):
    base = data(shape)
    lb = loom.tensor(base).requires_grad_()
    tb = torch.tensor(base).requires_grad_()
    ty = tb * 1.0
    if isinstance(value, str):
        tv = lv = 2.5
    else:
        # None: a value sized by the mask.
        v = data(value if value is not None else (int(convert(index, "torch").sum()),), seed=4)
        tv = torch.tensor(v).requires_grad_()
        lv = loom.tensor(v).requires_grad_()
    ly = lb * 1.0
    ty[convert(index, "torch")] = tv
    ly[convert(index, "loom")] = lv
    np.testing.assert_array_equal(ly.detach().numpy(), ty.detach().numpy())
    cot = data(shape, seed=5)
    (ty * torch.tensor(cot)).sum().backward()
    (ly * loom.tensor(cot)).sum().backward()
    # A write covering all of self leaves it out of the graph: loom gives None where torch gives zeros.
    lg = lb.grad.numpy() if lb.grad is not None else np.zeros(shape)
    np.testing.assert_allclose(lg, tb.grad.numpy(), rtol=1e-12, atol=1e-12)
    if not isinstance(tv, float):
        np.testing.assert_allclose(lv.grad.numpy(), tv.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_setitem_without_grad_writes_storage():
    x = loom.zeros(3, 4, dtype=loom.int64)
    x[[0, 2], 1:3] = 5
    x[x == 0] = -1
    x[1] = loom.tensor([1.9, 2.0, 3.0, 4.0])  # cast to int64
    t = torch.zeros(3, 4, dtype=torch.int64)
    t[[0, 2], 1:3] = 5
    t[t == 0] = -1
    t[1] = torch.tensor([1.9, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(x.numpy(), t.numpy())
    x[0] = [7, 8, 9, 10]
    assert x[0].tolist() == [7, 8, 9, 10]
    x[2] = np.arange(4)
    assert x[2].tolist() == [0, 1, 2, 3]


def test_setitem_through_a_view_with_grad():
    base = data((4, 5))
    lb, tb = loom.tensor(base).requires_grad_(), torch.tensor(base).requires_grad_()
    lv_, tv_ = loom.tensor(data((2,), 7)).requires_grad_(), torch.tensor(data((2,), 7)).requires_grad_()
    results = []
    for lib, b, v in (("loom", lb, lv_), ("torch", tb, tv_)):
        y = b * 2.0
        view = y[1:]
        view[convert((T([0, 2]), T([1, 3])), lib)] = v
        y[0, 0] = 9.0
        y[[1, 2], 1:3] = 4.0
        out = (y * y).sum()
        out.backward()
        results.append((y.detach().numpy(), b.grad.numpy(), v.grad.numpy()))
    for a, e in zip(results[0], results[1]):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


def test_setitem_into_a_fresh_tensor_records_history():
    grads, outs = [], []
    for lib in (loom, torch):
        w = lib.tensor([1.0, 2.0, 3.0]).requires_grad_()
        out = lib.zeros(4, 3)
        out[0] = w * 2
        out[1:3] = w
        out[:, 0] = w.sum()
        out[[3, 2]] = w * w
        (out * out).sum().backward()
        outs.append(out.detach().numpy())
        grads.append(w.grad.numpy())
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)


def test_setitem_on_leaf_requiring_grad_raises():
    x = loom.zeros(3).requires_grad_()
    with pytest.raises(RuntimeError):
        x[0] = 1.0


ERRORS = [
    ((5, 6), 10, IndexError), ((5, 6), -6, IndexError), ((5, 6), (0, 7), IndexError), ((5, 6), (0, 0, 0), IndexError),
    ((5, 6), T([10]), IndexError), ((5, 6), T([-6]), IndexError), ((5, 6), (slice(None), T([0, 6])), IndexError),
    ((5, 6), "a", TypeError), ((5, 6), 1.5, IndexError), ((5, 6), slice(None, None, -1), ValueError),
    ((5, 6), T([1.0]), IndexError), ((5, 6), mask((3,)), IndexError), ((5, 6), (T([0, 1]), T([0, 1, 2])), ValueError),
    ((), 0, IndexError), ((5, 6), (Ellipsis, Ellipsis), IndexError), ((5, 6), object(), TypeError),
]


@pytest.mark.parametrize("shape,index,error", ERRORS, ids=ids(ERRORS))
def test_getitem_errors(shape, index, error):
    x = loom.tensor(data(shape))
    with pytest.raises(error):
        x[convert(index, "loom")]


def test_error_messages_name_the_index_and_size():
    x = loom.zeros(5, 6)
    with pytest.raises(IndexError, match="index 10 is out of bounds for dimension 0 with size 5"):
        x[10]
    with pytest.raises(IndexError, match="index 9 is out of bounds for dimension 1 with size 6"):
        x[:, [1, 9]]
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0]


def test_setitem_errors():
    x = loom.zeros(4, 5)
    with pytest.raises(IndexError):
        x[4] = 1.0
    with pytest.raises(IndexError):
        x[[0, 7]] = 1.0
    with pytest.raises(ValueError):
        x[0] = loom.ones(3)
    with pytest.raises(ValueError):
        x[[0, 1]] = loom.ones(3, 5)
    with pytest.raises(TypeError):
        x[0] = "a"
    with pytest.raises(ValueError):
        x[::-2] = 1.0


# ---- index ops: errors and in-place variants ----

@pytest.mark.parametrize("call,op", [
    (lambda x, i: loom.index_select(x, 0, i), "index_select"),
    (lambda x, i: loom.gather(x, 0, i.reshape(-1, 1).expand(-1, 3)), "gather"),
    (lambda x, i: x.scatter(0, i.reshape(-1, 1).expand(-1, 3), 1.0), "scatter"),
    (lambda x, i: x.scatter_add(0, i.reshape(-1, 1).expand(-1, 3), loom.ones(len(i), 3)), "scatter_add"),
    (lambda x, i: x.index_add(0, i, loom.ones(len(i), 3)), "index_add"),
    (lambda x, i: x.index_copy(0, i, loom.ones(len(i), 3)), "index_copy"),
    (lambda x, i: x.index_fill(0, i, 1.0), "index_copy"),
])
@pytest.mark.parametrize("bad", [4, -1, 100])
def test_index_ops_out_of_range(call, op, bad):
    x = loom.zeros(4, 3)
    with pytest.raises(IndexError, match=f"{op}: index {bad} is out of bounds for dimension 0 with size 4"):
        call(x, loom.tensor([0, bad]))


def test_index_ops_bad_arguments():
    x = loom.zeros(4, 3)
    with pytest.raises(TypeError):
        loom.index_select(x, 0, loom.tensor([0.0]))
    with pytest.raises(TypeError):
        loom.gather(x, 0, loom.tensor([[0]], dtype=loom.int32))
    with pytest.raises(TypeError):
        x.index_add(0, loom.tensor([0]), loom.ones(1, 3, dtype=loom.float64))
    with pytest.raises(ValueError):
        x.index_add(0, loom.tensor([0]), loom.ones(2, 3))
    with pytest.raises(ValueError):
        loom.gather(x, 1, loom.zeros(5, 1, dtype=loom.int64))
    with pytest.raises(IndexError):
        loom.index_select(x, 2, loom.tensor([0]))
    with pytest.raises(ValueError):
        loom.cat([loom.zeros(2, 3), loom.zeros(2, 4)])
    with pytest.raises(ValueError):
        loom.cat([loom.zeros(2, 3), loom.zeros(3)])
    with pytest.raises(ValueError):
        loom.cat([])
    with pytest.raises(TypeError):
        loom.cat(loom.zeros(2))
    with pytest.raises(ValueError):
        loom.stack([loom.zeros(2), loom.zeros(3)])
    with pytest.raises(TypeError):
        x.masked_fill(loom.zeros(4, 3), 1.0)
    with pytest.raises(ValueError):
        x.masked_fill(loom.zeros(5, dtype=loom.bool), 1.0)
    with pytest.raises(ValueError):
        loom.one_hot(loom.tensor([0, 5]), 3)
    with pytest.raises(ValueError):
        loom.pad(x, (1,))
    with pytest.raises(ValueError):
        loom.pad(x, (-2, -2))
    with pytest.raises(NotImplementedError):
        loom.pad(x, (1, 1), mode="reflect")
    with pytest.raises(ValueError):
        x.repeat(2)
    with pytest.raises(IndexError):
        loom.embedding(loom.tensor([7]), x)


def test_inplace_index_ops_write_through_views():
    for lib in (loom, torch):
        base = lib.zeros(3, 4, 2)
        view = base[:, :, 0]
        view.index_add_(1, lib.tensor([0, 0, 3]), lib.ones(3, 3), alpha=2)
        view.scatter_(0, lib.tensor([[2, 1, 0, 2]]), 5.0)
        view.scatter_add_(1, lib.tensor([[1], [1], [2]]), lib.ones(3, 1))
        view.masked_fill_(view > 4, -1.0)
        view.index_copy_(0, lib.tensor([1]), lib.full((1, 4), 7.0))
        view.index_fill_(1, lib.tensor([2]), 3.0)
        view.tril_(1)
        if lib is loom:
            got = base.numpy().copy()
        else:
            np.testing.assert_array_equal(got, base.numpy())


def test_inplace_index_ops_gradients():
    x0, s0 = data((3, 4)), data((3, 2), seed=9)
    grads = []
    for lib in (loom, torch):
        x = lib.tensor(x0).requires_grad_()
        s = lib.tensor(s0).requires_grad_()
        y = x * 1.0
        y.index_add_(1, lib.tensor([3, 0]), s, alpha=-1.5)
        y.masked_fill_(lib.tensor([True, False, False, True]), 0.25)
        (y * y).sum().backward()
        grads.append((x.grad.numpy(), s.grad.numpy()))
    for a, e in zip(*grads):
        np.testing.assert_allclose(a, e, rtol=1e-12)


@pytest.mark.filterwarnings("ignore:The reduce argument")
def test_scatter_reduce_add():
    for src in (None, "tensor"):
        results = []
        for lib in (loom, torch):
            x = lib.zeros(3, 4)
            index = lib.tensor([[0, 1, 2, 0], [0, 0, 0, 0]])
            if src is None:
                results.append(x.scatter(0, index, 2.0, reduce="add").numpy())
            else:
                results.append(x.scatter(0, index, lib.ones(2, 4), reduce="add").numpy())
        np.testing.assert_array_equal(*results)
    with pytest.raises(NotImplementedError):
        loom.zeros(3).scatter(0, loom.tensor([0]), 2.0, reduce="multiply")


def test_nonzero_as_tuple_and_masked_select_grad():
    x = data((3, 4))
    lx, tx = loom.tensor(x).requires_grad_(), torch.tensor(x).requires_grad_()
    lo, to = lx.masked_select(lx > 0), tx.masked_select(tx > 0)
    (lo * lo).sum().backward()
    (to * to).sum().backward()
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy())
    for a, e in zip(loom.nonzero(loom.tensor(x) > 0, as_tuple=True), torch.nonzero(torch.tensor(x) > 0, as_tuple=True)):
        np.testing.assert_array_equal(a.numpy(), e.numpy())


# ---- random index combinations against torch ----

def random_index(rng, shape):
    parts, d, nd, used_ellipsis = [], 0, len(shape), False
    for _ in range(rng.integers(1, nd + 2)):
        k = rng.integers(0, 8)
        if d >= nd and k not in (2, 3):
            k = 2
        if k == 0:
            parts.append(int(rng.integers(-shape[d], shape[d])))
        elif k == 1:
            a, b = sorted(rng.integers(-shape[d] - 1, shape[d] + 2, size=2))
            parts.append(slice(int(a), int(b), int(rng.integers(1, 3))))
        elif k == 2:
            parts.append(None)
        elif k == 3 and not used_ellipsis:
            parts.append(Ellipsis)
            used_ellipsis, d = True, nd
        elif k in (4, 5):
            parts.append(T(rng.integers(-shape[d], shape[d], size=tuple(rng.integers(1, 3, size=rng.integers(0, 3))))))
        elif k == 6:
            parts.append(T(rng.random(shape[d]) < 0.5))
        else:
            parts.append(slice(None))
        if k not in (2, 3):
            d += 1
    return tuple(parts)


@pytest.mark.parametrize("seed", range(4))
def test_random_index_combinations(seed):
    rng = np.random.default_rng(seed)
    for _ in range(100):
        shape = tuple(int(s) for s in rng.integers(1, 5, size=rng.integers(1, 5)))
        index = random_index(rng, shape)
        x = rng.uniform(-1, 1, size=shape)
        tx = torch.tensor(x, requires_grad=True)
        lx = loom.tensor(x).requires_grad_()
        try:
            to = tx[convert(index, "torch")]
        except (IndexError, ValueError, RuntimeError):
            with pytest.raises((IndexError, ValueError)):
                lx[convert(index, "loom")]
            continue
        lo = lx[convert(index, "loom")]
        assert tuple(lo.shape) == tuple(to.shape), (shape, index)
        np.testing.assert_array_equal(lo.detach().numpy(), to.detach().numpy())
        cot = rng.uniform(-1, 1, size=tuple(to.shape))
        (to * torch.tensor(cot)).sum().backward()
        (lo * loom.tensor(cot)).sum().backward()
        np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
        value = rng.uniform(-1, 1, size=tuple(to.shape))
        tb, lb = torch.tensor(x), loom.tensor(x)
        tb[convert(index, "torch")] = torch.tensor(value)
        lb[convert(index, "loom")] = loom.tensor(value)
        np.testing.assert_array_equal(lb.numpy(), tb.numpy())


def test_setitem_on_parameters_under_no_grad():
    w = loom.ones(3, 4).requires_grad_()
    with loom.no_grad():
        w[0] = 0
        w[:, 1] = 5
        w[w > 4] = 2
        w[[1, 2], [0, 3]] = -1
    assert w.is_leaf and w.requires_grad and w.grad_fn is None
    assert w.tolist() == [[0, 2, 0, 0], [-1, 2, 1, 1], [1, 2, 1, -1]]


def test_functional_exports_match_torch():
    import torch
    import loom.nn.functional as F

    w = loom.arange(12.0).reshape(4, 3)
    idx = loom.tensor([[0, 3], [2, 1]])
    assert F.embedding(idx, w).tolist() == torch.nn.functional.embedding(torch.tensor(idx.tolist()), torch.arange(12.0).reshape(4, 3)).tolist()
    assert F.one_hot(loom.tensor([0, 2]), 3).tolist() == [[1, 0, 0], [0, 0, 1]]
    assert F.pad(loom.ones(2, 2), (1, 0)).tolist() == torch.nn.functional.pad(torch.ones(2, 2), (1, 0)).tolist()
