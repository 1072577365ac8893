"""NumPy and DLPack interop: zero-copy both ways, keep-alive, every dtype, strided arrays; tolist/item."""
import gc

import numpy as np
import pytest
import torch

import loom

NP = {"bool": np.bool_, "uint8": np.uint8, "int8": np.int8, "int16": np.int16, "int32": np.int32,
      "int64": np.int64, "float16": np.float16, "float32": np.float32, "float64": np.float64}


@pytest.mark.parametrize("name", list(NP))
def test_from_numpy_every_dtype_shares_memory(name):
    a = (np.arange(12) % 3 == 1).reshape(3, 4) if name == "bool" else np.arange(12).reshape(3, 4).astype(NP[name])
    t = loom.from_numpy(a)
    assert t.dtype == getattr(loom, name)
    assert tuple(t.shape) == (3, 4)
    np.testing.assert_array_equal(t.numpy(), a)
    assert t.data_ptr() == a.ctypes.data
    # write in numpy, see in loom
    a[1, 2] = 1 if name == "bool" else 7
    assert t.tolist()[1][2] == a[1, 2].item()
    # write in loom, see in numpy
    with loom.no_grad():
        t.narrow(0, 2, 1).zero_()
    assert not a[2].any()


@pytest.mark.parametrize("name", list(NP))
def test_numpy_export_every_dtype_shares_memory(name):
    t = loom.ones(2, 3, dtype=getattr(loom, name))
    a = t.numpy()
    assert a.dtype == np.dtype(NP[name])
    assert a.ctypes.data == t.data_ptr()
    a[0, 1] = 0
    assert t.tolist()[0][1] == 0
    t.fill_(0)
    assert not a.any()


def test_numpy_of_views_keeps_strides():
    t = loom.tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    for v in (t.t() if t.ndim == 2 else t.permute(2, 0, 1), t.narrow(2, 1, 2), t.select(1, 1), t.expand(2, 2, 3, 4)):
        a = v.numpy()
        np.testing.assert_array_equal(a, np.asarray(v.tolist(), dtype=np.float32))
        assert a.strides == tuple(s * 4 for s in v.stride())


def test_keep_alive_numpy_deleted():
    a = np.arange(1000, dtype=np.float64)
    t = loom.from_numpy(a)
    del a
    gc.collect()
    assert t.sum().item() == sum(range(1000))
    junk = [np.ones(1000) for _ in range(50)]  # reuse freed memory if it had been freed
    assert t.tolist()[999] == 999.0
    del junk


def test_keep_alive_tensor_deleted():
    t = loom.arange(100, dtype=loom.float64)
    a = t.numpy()
    del t
    gc.collect()
    assert a.sum() == sum(range(100))


def test_non_contiguous_numpy_arrays():
    base = np.arange(60, dtype=np.float32).reshape(6, 10)
    for a in (base[::2, 1::3], base.T, base[:, 3], base[1:4, 2:9:2].T,
              np.lib.stride_tricks.as_strided(base[0], (4, 10), (0, 4))):
        t = loom.from_numpy(a)
        np.testing.assert_array_equal(t.numpy(), a)
        assert t.stride() == tuple(s // 4 for s in a.strides)
        np.testing.assert_array_equal((t * 2).numpy(), a * 2)
    v = loom.from_numpy(base[::2, ::3])
    v.mul_(-1)
    assert base[2, 3] == -23.0 and base[1, 1] == 11.0


def test_negative_strides_raise_value_error():
    a = np.arange(10, dtype=np.float32)
    with pytest.raises(ValueError):
        loom.from_numpy(a[::-1])
    with pytest.raises(ValueError):
        loom.from_numpy(np.arange(12).reshape(3, 4)[:, ::-1])
    # tensor() copies, so it accepts them
    np.testing.assert_array_equal(loom.tensor(a[::-1]).numpy(), a[::-1])


def test_from_numpy_read_only_raises_value_error():
    with pytest.raises(ValueError, match="read-only"):
        loom.from_numpy(np.broadcast_to(np.arange(3.0), (2, 3)))


def test_from_numpy_unsupported_dtypes_raise():
    for a in (np.zeros(3, dtype=np.complex64), np.zeros(3, dtype=np.uint16), np.array(["a", "b"])):
        with pytest.raises((TypeError, ValueError)):
            loom.from_numpy(a)
    with pytest.raises(TypeError):
        loom.from_numpy([1, 2, 3])


def test_zero_size_and_0d_arrays():
    for a in (np.zeros((0, 3), np.float32), np.zeros((2, 0), np.int64), np.array(3.5)):
        t = loom.from_numpy(a)
        assert tuple(t.shape) == a.shape
        np.testing.assert_array_equal(t.numpy(), a)


def test_bfloat16_numpy_raises_type_error():
    with pytest.raises(TypeError):
        loom.ones(2, dtype=loom.bfloat16).numpy()


def test_numpy_requires_grad_raises_and_force():
    t = loom.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        t.numpy()
    assert t.detach().numpy().tolist() == [1.0, 1.0]
    assert t.numpy(force=True).tolist() == [1.0, 1.0]


# ---- DLPack ----

@pytest.mark.parametrize("name", list(NP))
def test_dlpack_to_numpy_zero_copy(name):
    t = loom.ones(3, 2, dtype=getattr(loom, name))
    a = np.from_dlpack(t)
    assert a.dtype == np.dtype(NP[name]) and a.shape == (3, 2)
    assert a.ctypes.data == t.data_ptr()
    t.fill_(0)
    assert not a.any()


@pytest.mark.parametrize("name", list(NP))
def test_dlpack_from_numpy_zero_copy(name):
    a = np.ones((3, 2), dtype=NP[name])
    t = loom.from_dlpack(a)
    assert t.dtype == getattr(loom, name)
    assert t.data_ptr() == a.ctypes.data
    a[...] = 0
    assert not any(t.flatten().tolist())


@pytest.mark.parametrize("name", list(NP) + ["bfloat16"])
def test_dlpack_torch_both_ways(name):
    src = torch.arange(6).reshape(2, 3).to(getattr(torch, name))
    t = loom.from_dlpack(src)
    assert t.dtype == getattr(loom, name)
    assert t.data_ptr() == src.data_ptr()
    assert t.tolist() == src.tolist()
    src.zero_()
    assert not any(t.flatten().tolist())
    back = torch.from_dlpack(t)
    assert back.dtype == getattr(torch, name) and back.data_ptr() == t.data_ptr()
    back.fill_(1)
    assert all(t.flatten().tolist())


def test_dlpack_non_contiguous_torch():
    src = torch.arange(24.0).reshape(4, 6)[::2, 1::2].t()
    t = loom.from_dlpack(src)
    assert t.stride() == src.stride()
    assert t.tolist() == src.tolist()
    back = torch.from_dlpack(loom.tensor(np.arange(12.0)).view(3, 4).t())
    assert back.tolist() == torch.arange(12.0).view(3, 4).t().tolist()


def test_dlpack_keep_alive():
    src = torch.arange(1000.0)
    t = loom.from_dlpack(src)
    del src
    gc.collect()
    assert t.sum().item() == sum(range(1000))
    x = loom.arange(50.0)
    back = torch.from_dlpack(x)
    del x
    gc.collect()
    assert back.sum().item() == sum(range(50))


def test_from_dlpack_bad_object():
    with pytest.raises(TypeError):
        loom.from_dlpack([1, 2])
    with pytest.raises(TypeError):
        loom.from_dlpack(None)


# ---- tolist / item ----

@pytest.mark.parametrize("name", list(NP) + ["bfloat16"])
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3), (2, 0, 2)])
def test_tolist_and_item_match_torch(name, shape):
    n = int(np.prod(shape))
    values = np.arange(n).reshape(shape) % 5
    tt = torch.tensor(values).to(getattr(torch, name))
    lt = loom.tensor(values).to(getattr(loom, name))
    got, want = lt.tolist(), tt.tolist()
    assert got == want
    assert type(got) is type(want)
    if n == 1:
        assert lt.item() == tt.item() and type(lt.item()) is type(tt.item())
    elif n > 1:
        with pytest.raises((ValueError, RuntimeError)):
            lt.item()


def test_tolist_of_view_and_python_conversions():
    lt = loom.tensor(np.arange(12.0)).view(3, 4).t().narrow(0, 1, 2)
    tt = torch.arange(12.0).view(3, 4).t().narrow(0, 1, 2)
    assert lt.tolist() == tt.tolist()
    x = loom.tensor([2.5])
    assert float(x) == 2.5 and int(x) == 2 and bool(x)
    assert int(loom.tensor(7)) == 7 and [10, 20, 30][loom.tensor(1)] == 20
    with pytest.raises((TypeError, RuntimeError)):
        [1, 2][loom.tensor(1.0)]
    with pytest.raises((RuntimeError, ValueError)):
        bool(loom.ones(2))
    with pytest.raises(TypeError):
        len(loom.tensor(1.0))
    assert len(loom.ones(4, 2)) == 4
