"""Views against PyTorch: storage sharing, offsets and strides, view vs reshape, expand, squeeze, split/chunk/
unbind edge cases, negative dims and zero-size tensors."""
import numpy as np
import pytest
import torch

import loom


def pair(shape, dtype="float32"):
    n = int(np.prod(shape))
    a = np.arange(n, dtype=np.float64).reshape(shape)
    return loom.tensor(a, dtype=getattr(loom, dtype)), torch.tensor(a, dtype=getattr(torch, dtype))


def same(lt, tt):
    assert tuple(lt.shape) == tuple(tt.shape)
    np.testing.assert_array_equal(lt.numpy(), tt.numpy())


def same_geometry(lt, tt):
    same(lt, tt)
    if lt.numel() > 1:
        assert lt.stride() == tt.stride(), (lt.stride(), tt.stride())
    assert lt.storage_offset() == tt.storage_offset()


# ---- sharing ----

@pytest.mark.parametrize("make", [
    lambda t: t.view(6, 2), lambda t: t.reshape(2, 6), lambda t: t.t(), lambda t: t.transpose(0, 1),
    lambda t: t.permute(1, 0), lambda t: t.narrow(0, 1, 2), lambda t: t.select(1, 2), lambda t: t.unsqueeze(0),
    lambda t: t.flatten(), lambda t: t.split(2, 1)[1], lambda t: t.chunk(2, 0)[1], lambda t: t.unbind(1)[3],
    lambda t: t.as_strided((2, 2), (1, 4), 1), lambda t: t.movedim(0, 1), lambda t: t.unflatten(1, (2, 2)),
    lambda t: t.expand(2, 3, 4), lambda t: t.T, lambda t: t.squeeze(), lambda t: t.detach(),
])
def test_view_shares_storage_with_base(make):
    lt, tt = pair((3, 4))
    lv, tv = make(lt), make(tt)
    same_geometry(lv, tv)
    assert lv.data_ptr() == lt.data_ptr() + lv.storage_offset() * lt.element_size()
    # a write through the base shows in the view and vice versa
    with loom.no_grad():
        lt.add_(100)
    tt.add_(100)
    same(lv, tv)
    if tv.stride().count(0) == 0:  # expanded views cannot be written element-wise in torch
        lv.mul_(-1)
        tv.mul_(-1)
        same(lt, tt)


def test_data_ptr_offsets():
    lt, _ = pair((4, 5))
    base = lt.data_ptr()
    assert lt.narrow(0, 2, 1).data_ptr() == base + 2 * 5 * 4
    assert lt.select(1, 3).data_ptr() == base + 3 * 4
    assert lt.narrow(0, 1, 3).narrow(1, 2, 2).storage_offset() == 7


def test_chained_views_keep_offsets():
    lt, tt = pair((4, 6, 5))
    lv = lt.narrow(0, 1, 3).permute(2, 0, 1).select(2, 4).narrow(0, 2, 2).t()
    tv = tt.narrow(0, 1, 3).permute(2, 0, 1).select(2, 4).narrow(0, 2, 2).t()
    same_geometry(lv, tv)


# ---- view vs reshape ----

def test_view_on_non_viewable_strides_raises_and_reshape_copies():
    lt, tt = pair((3, 4))
    lT, tT = lt.t(), tt.t()
    with pytest.raises(RuntimeError, match="reshape"):
        lT.view(12)
    with pytest.raises(RuntimeError):
        tT.view(12)
    lr, tr = lT.reshape(12), tT.reshape(12)
    same(lr, tr)
    assert lr.data_ptr() != lt.data_ptr()  # a copy
    assert lt.reshape(4, 3).data_ptr() == lt.data_ptr()  # a view when possible


@pytest.mark.parametrize("shape,new", [((2, 3, 4), (6, -1)), ((2, 3, 4), (-1,)), ((2, 3, 4), (4, 1, 6)),
                                       ((1, 5), (5, 1, 1)), ((0, 3), (3, 0)), ((0, 3), (-1, 3)), ((), (1, 1)),
                                       ((1,), ())])
def test_view_shapes_match_torch(shape, new):
    lt, tt = pair(shape)
    same_geometry(lt.view(new), tt.view(new))
    if new:
        same_geometry(lt.view(*new), tt.view(*new))
    same_geometry(lt.reshape(new), tt.reshape(new))


def test_view_of_noncontiguous_that_is_still_viewable():
    lt, tt = pair((4, 6))
    lv, tv = lt.narrow(1, 0, 4), tt.narrow(1, 0, 4)  # rows still contiguous
    same_geometry(lv.view(4, 2, 2), tv.view(4, 2, 2))
    lp, tp = pair((2, 3, 4))
    same_geometry(lp.permute(1, 0, 2).view(3, 2, 2, 2), tp.permute(1, 0, 2).view(3, 2, 2, 2))


@pytest.mark.parametrize("new", [(5, -1), (-1, -1), (7,), (2, -2)])
def test_view_invalid_shapes_raise(new):
    lt, _ = pair((3, 4))
    with pytest.raises((ValueError, RuntimeError)):
        lt.view(*new)
    with pytest.raises((ValueError, RuntimeError)):
        lt.reshape(new)


# ---- expand / broadcast ----

def test_expand_has_stride_zero():
    lt, tt = pair((3, 1))
    le, te = lt.expand(2, 3, 4), tt.expand(2, 3, 4)
    same_geometry(le, te)
    assert le.stride() == (0, 1, 0)
    same_geometry(lt.expand(-1, 5), tt.expand(-1, 5))
    with pytest.raises(ValueError):
        lt.expand(3, 2, 5) if False else lt.expand(4, 4)
    with pytest.raises(ValueError):
        lt.expand(4)


def test_broadcast_helpers():
    la, ta = pair((3, 1))
    lb, tb = pair((1, 4))
    for l, t in zip(loom.broadcast_tensors(la, lb), torch.broadcast_tensors(ta, tb)):
        same_geometry(l, t)
    assert tuple(loom.broadcast_shapes((3, 1), (2, 1, 4))) == tuple(torch.broadcast_shapes((3, 1), (2, 1, 4)))
    with pytest.raises(ValueError):
        loom.broadcast_shapes((3,), (4,))


# ---- contiguous ----

def test_contiguous_returns_self_when_contiguous():
    lt, _ = pair((3, 4))
    c = lt.contiguous()
    assert c.data_ptr() == lt.data_ptr()
    lT = lt.t()
    assert not lT.is_contiguous()
    c2 = lT.contiguous()
    assert c2.is_contiguous() and c2.data_ptr() != lt.data_ptr()
    np.testing.assert_array_equal(c2.numpy(), lT.numpy())


def test_is_contiguous_matches_torch():
    lt, tt = pair((3, 1, 4))
    for f in [lambda t: t, lambda t: t.t() if t.ndim == 2 else t.transpose(0, 2), lambda t: t.narrow(2, 0, 2),
              lambda t: t.narrow(0, 1, 1), lambda t: t.transpose(0, 1), lambda t: t.expand(2, 3, 1, 4),
              lambda t: t.narrow(0, 0, 0)]:
        assert f(lt).is_contiguous() == f(tt).is_contiguous()


# ---- dims ----

@pytest.mark.parametrize("dim", [-3, -2, -1, 0, 1, 2])
def test_negative_dims(dim):
    lt, tt = pair((2, 3, 4))
    same_geometry(lt.select(dim, 1), tt.select(dim, 1))
    same_geometry(lt.narrow(dim, 1, 1), tt.narrow(dim, 1, 1))
    same_geometry(lt.unsqueeze(dim), tt.unsqueeze(dim))
    same_geometry(lt.transpose(dim, -1), tt.transpose(dim, -1))
    same_geometry(lt.movedim(dim, 0), tt.movedim(dim, 0))
    same_geometry(lt.flatten(dim), tt.flatten(dim))


@pytest.mark.parametrize("f", [lambda t: t.select(3, 0), lambda t: t.select(-4, 0), lambda t: t.narrow(3, 0, 1),
                               lambda t: t.unsqueeze(4), lambda t: t.unsqueeze(-5), lambda t: t.transpose(0, 3),
                               lambda t: t.permute(0, 1), lambda t: t.permute(0, 0, 1), lambda t: t.select(0, 2),
                               lambda t: t.select(0, -3), lambda t: t.narrow(1, 2, 2), lambda t: t.narrow(1, -4, 1),
                               lambda t: t.squeeze(3), lambda t: t.flatten(2, 0), lambda t: t.split(0, 1),
                               lambda t: t.chunk(0), lambda t: t.unbind(3), lambda t: t.movedim(0, 3)])
def test_out_of_range_dims_raise_like_torch(f):
    lt, tt = pair((2, 3, 4))
    with pytest.raises(Exception):
        f(tt)
    with pytest.raises((IndexError, ValueError, RuntimeError, TypeError)):
        f(lt)


def test_zero_dim_tensor_views():
    lt, tt = pair(())
    same_geometry(lt.unsqueeze(0), tt.unsqueeze(0))
    same_geometry(lt.t(), tt.t())
    same_geometry(lt.flatten(), tt.flatten())
    same_geometry(lt.view(1, 1), tt.view(1, 1))
    same_geometry(lt.squeeze(), tt.squeeze())
    same_geometry(lt.expand(2, 3), tt.expand(2, 3))
    for f in (lambda t: t.select(0, 0), lambda t: t.narrow(0, 0, 1), lambda t: t.unbind(0), lambda t: t.chunk(2)):
        with pytest.raises(Exception):
            f(tt)
        with pytest.raises((IndexError, ValueError, RuntimeError)):
            f(lt)


# ---- zero-size ----

def test_zero_size_views():
    lt, tt = pair((0, 3))
    same_geometry(lt.t(), tt.t())
    same_geometry(lt.view(3, 0), tt.view(3, 0))
    same_geometry(lt.unsqueeze(1), tt.unsqueeze(1))
    same(lt.narrow(1, 1, 2), tt.narrow(1, 1, 2))
    assert lt.numel() == 0 and lt.is_contiguous()
    l2, t2 = pair((3, 4))
    same(l2.narrow(0, 3, 0), t2.narrow(0, 3, 0))
    same(l2.narrow(1, 0, 0).t(), t2.narrow(1, 0, 0).t())
    assert [tuple(x.shape) for x in lt.unbind(1)] == [tuple(x.shape) for x in tt.unbind(1)]
    assert lt.unbind(0) == [] or len(lt.unbind(0)) == 0


# ---- split / chunk / unbind ----

@pytest.mark.parametrize("n", [0, 1, 5, 6, 7, 10, 13])
@pytest.mark.parametrize("chunks", [1, 2, 3, 4, 5, 6, 7, 8])
def test_chunk_sizes_like_torch(n, chunks):
    lt, tt = pair((n, 2))
    lc, tc = lt.chunk(chunks), tt.chunk(chunks)
    assert [tuple(c.shape) for c in lc] == [tuple(c.shape) for c in tc]
    for a, b in zip(lc, tc):
        same_geometry(a, b)


@pytest.mark.parametrize("n", [0, 1, 5, 6, 7])
@pytest.mark.parametrize("size", [1, 2, 3, 5, 8])
def test_split_sizes_like_torch(n, size):
    lt, tt = pair((2, n))
    ls, ts = lt.split(size, 1), tt.split(size, 1)
    assert [tuple(c.shape) for c in ls] == [tuple(c.shape) for c in ts]
    for a, b in zip(ls, ts):
        same_geometry(a, b)


def test_split_with_sizes():
    lt, tt = pair((7, 2))
    for sizes in ([1, 2, 4], [0, 7], [7], [3, 0, 4]):
        for a, b in zip(lt.split(sizes), tt.split(sizes)):
            same_geometry(a, b)
    for bad in ([1, 2], [8], [-1, 8]):
        with pytest.raises((ValueError, RuntimeError)):
            lt.split(bad)
    with pytest.raises((ValueError, RuntimeError)):
        lt.split(0)
    with pytest.raises((ValueError, RuntimeError)):
        lt.split(-1)


def test_unbind():
    lt, tt = pair((2, 3, 4))
    for d in range(-3, 3):
        lu, tu = lt.unbind(d), tt.unbind(d)
        assert len(lu) == len(tu)
        for a, b in zip(lu, tu):
            same_geometry(a, b)


# ---- squeeze, t ----

@pytest.mark.parametrize("dim", [None, 0, 1, 2, 3, -1, -4, (0, 2), (1, 3), (0, 1, 2, 3), ()])
def test_squeeze_semantics(dim):
    lt, tt = pair((1, 3, 1, 1))
    if dim is None:
        same_geometry(lt.squeeze(), tt.squeeze())
        same_geometry(loom.squeeze(lt), torch.squeeze(tt))
    else:
        same_geometry(lt.squeeze(dim), tt.squeeze(dim))


def test_t_on_1d_and_0d_and_3d():
    lt, tt = pair((5,))
    same_geometry(lt.t(), tt.t())
    l3, _ = pair((2, 3, 4))
    with pytest.raises((ValueError, RuntimeError)):
        l3.t()
    l2, t2 = pair((2, 3))
    same_geometry(l2.T, t2.T)
    same_geometry(l3.mT, torch.arange(24.0).reshape(2, 3, 4).mT)


def test_as_strided_bounds():
    lt, tt = pair((3, 4))
    same_geometry(lt.as_strided((3, 3), (4, 1), 1), tt.as_strided((3, 3), (4, 1), 1))
    with pytest.raises((ValueError, RuntimeError)):
        lt.as_strided((4, 4), (4, 1), 0)
    with pytest.raises((ValueError, RuntimeError)):
        lt.as_strided((2,), (-1,), 1)
    with pytest.raises((ValueError, RuntimeError)):
        lt.as_strided((2,), (1,), -1)


def test_unflatten_and_flatten():
    lt, tt = pair((2, 12))
    same_geometry(lt.unflatten(1, (3, -1)), tt.unflatten(1, (3, -1)))
    same_geometry(lt.unflatten(-1, (2, 2, 3)), tt.unflatten(-1, (2, 2, 3)))
    with pytest.raises((ValueError, RuntimeError)):
        lt.unflatten(1, (5, -1))
    same_geometry(lt.flatten(), tt.flatten())
    same_geometry(pair(())[0].flatten(), torch.tensor(0.0).flatten())


def test_copy_from_overlapping_memory_reads_before_writing():
    import torch

    x = loom.arange(9).reshape(3, 3)
    x.copy_(x.t())
    assert x.tolist() == torch.arange(9).reshape(3, 3).t().tolist()
    y = loom.arange(6)
    y[1:] = y[:-1]
    assert y.tolist() == [0, 0, 1, 2, 3, 4]
