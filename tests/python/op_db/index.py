"""Indexing and data movement: cat/stack, index_select/add/copy/fill, gather/scatter, masked ops, nonzero,
flip/roll/repeat/tril/triu, pad, one_hot, embedding. Index and mask arrays keep their own dtype (keep_dtype)."""
import numpy as np
import torch
import torch.nn.functional as F

import loom
from op_db.common import ALL, OpInfo, Sample, rand

# Python indexing (__getitem__/__setitem__) and the bounds check behind it: test_indexing.py.
COVERED_ELSEWHERE = {"wrap_index"}


def values(dtype, rng, shape):
    """Random values suited to the dtype under test (ints stay small and non-negative, bools are random)."""
    if dtype == loom.bool:
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype.is_floating_point:
        return rand(rng, shape)
    return rng.integers(0, 10, size=shape)


def with_zeros(dtype, rng, shape):
    x = values(dtype, rng, shape)
    if x.size:
        x.reshape(-1)[rng.random(x.size) < 0.4] = 0
    return x


def index(rng, high, shape):
    return rng.integers(0, high, size=shape).astype(np.int64)


def unique_index(rng, src_shape, dim, size):
    """An index of src_shape whose entries along `dim` are distinct in [0, size) (scatter without races)."""
    idx = np.zeros(src_shape, dtype=np.int64)
    moved = np.moveaxis(idx, dim, -1)
    for pos in np.ndindex(moved.shape[:-1]):
        moved[pos] = rng.permutation(size)[:moved.shape[-1]]
    return idx


# ---- cat / stack ----

CAT_CASES = [([(2, 3), (4, 3)], 0), ([(2, 3), (2, 1), (2, 0)], -1), ([(2, 3), (0,), (1, 3)], 0),
             ([(0, 3), (0, 3)], 0), ([(2, 1, 3), (2, 4, 3), (2, 2, 3)], 1), ([(0,), (0,)], 0), ([(5,)], 0)]


def cat_samples(dtype, rng):
    for shapes, dim in CAT_CASES:
        yield Sample(tuple(values(dtype, rng, s) for s in shapes), {"dim": dim}, name=f"{shapes} dim={dim}")


def cat_promote_samples(dtype, rng):
    # The second input keeps int32 (or float64): the result dtype follows torch.cat's promotion.
    yield Sample((values(dtype, rng, (2, 3)), np.arange(6, dtype=np.int32).reshape(2, 3)), keep_dtype=(1,))
    yield Sample((values(dtype, rng, (2, 3)), rand(rng, (1, 3))), keep_dtype=(1,))
    yield Sample((values(dtype, rng, (2, 3)), np.zeros(0, dtype=np.float64)), keep_dtype=(1,), name="legacy empty")


def hstack_samples(dtype, rng):
    for shapes in [[(2, 3), (2, 1)], [(3,), (2,)], [(), (2,)], [(2, 0, 1), (2, 3, 1)]]:
        yield Sample(tuple(values(dtype, rng, s) for s in shapes), name=str(shapes))


def vstack_samples(dtype, rng):
    for shapes in [[(2, 3), (1, 3)], [(3,), (3,)], [(), ()], [(2, 3, 1), (1, 3, 1)]]:
        yield Sample(tuple(values(dtype, rng, s) for s in shapes), name=str(shapes))


def meshgrid_samples(dtype, rng):
    for shapes, indexing in [([(3,), (4,)], "ij"), ([(3,), (4,), (2,)], "xy"), ([(3,), (4,)], "xy"), ([(), (2,)], "ij"),
                             ([(0,), (2,)], "ij")]:
        yield Sample(tuple(values(dtype, rng, s) for s in shapes), {"indexing": indexing}, name=f"{shapes} {indexing}")


def stack_samples(dtype, rng):
    for shape, dim in [((2, 3), 0), ((2, 3), -1), ((2, 3), 1), ((0, 3), 0), ((), 0)]:
        yield Sample(tuple(values(dtype, rng, shape) for _ in range(3)), {"dim": dim}, name=f"{shape} dim={dim}")


# ---- index_select / index_add / index_copy / index_fill ----

def index_select_samples(dtype, rng):
    yield Sample((values(dtype, rng, (4, 3)), index(rng, 4, (5,))), {"dim": 0}, keep_dtype=(1,))
    yield Sample((values(dtype, rng, (2, 5, 3)), index(rng, 5, (4,))), {"dim": -2}, keep_dtype=(1,))
    yield Sample((values(dtype, rng, (4, 3)), np.array(2, dtype=np.int64)), {"dim": 1}, keep_dtype=(1,), name="0-d index")
    yield Sample((values(dtype, rng, (4, 3)), np.zeros(0, dtype=np.int64)), {"dim": 1}, keep_dtype=(1,), name="empty")
    yield Sample((values(dtype, rng, (0, 3)), index(rng, 3, (2,))), {"dim": 1}, keep_dtype=(1,), name="zero-size")
    yield Sample((values(dtype, rng, ()), np.array([0])), {"dim": 0}, keep_dtype=(1,), name="0-d input")
    yield Sample((values(dtype, rng, (4, 3)), index(rng, 3, (2,)).astype(np.int32)), {"dim": 1}, keep_dtype=(1,),
                 name="int32 index")


def index_update_samples(unique):
    def gen(dtype, rng):
        for shape, dim, count in [((5, 3), 0, 4), ((2, 4, 3), 1, 3), ((2, 4, 3), -1, 2), ((0, 3), 1, 2), ((4, 3), 0, 0)]:
            size = shape[dim]
            idx = rng.permutation(size)[:count] if unique else index(rng, size, (count,))
            src_shape = list(shape)
            src_shape[dim] = count
            yield Sample((values(dtype, rng, shape), idx.astype(np.int64), values(dtype, rng, tuple(src_shape))),
                         {"dim": dim}, keep_dtype=(1,), name=f"{shape} dim={dim} count={count}")
    return gen


def index_fill_samples(dtype, rng):
    yield Sample((values(dtype, rng, (5, 3)), index(rng, 5, (3,))), {"dim": 0}, keep_dtype=(1,))
    yield Sample((values(dtype, rng, (2, 4, 3)), index(rng, 3, (2,))), {"dim": -1}, keep_dtype=(1,))


# ---- gather / scatter ----

def gather_samples(dtype, rng):
    yield Sample((values(dtype, rng, (4, 3)), index(rng, 4, (6, 3))), {"dim": 0}, keep_dtype=(1,))
    yield Sample((values(dtype, rng, (4, 5)), index(rng, 5, (3, 2))), {"dim": 1}, keep_dtype=(1,), name="smaller index")
    yield Sample((values(dtype, rng, (2, 3, 4)), index(rng, 3, (2, 5, 4))), {"dim": -2}, keep_dtype=(1,))
    yield Sample((values(dtype, rng, (4, 3)), np.zeros((0, 3), dtype=np.int64)), {"dim": 0}, keep_dtype=(1,), name="empty")
    yield Sample((values(dtype, rng, ()), np.array(0)), {"dim": 0}, keep_dtype=(1,), name="0-d")


def scatter_samples(with_src, unique):
    def gen(dtype, rng):
        for self_shape, src_shape, idx_shape, dim in [((5, 3), (4, 3), (4, 3), 0), ((3, 6), (3, 4), (2, 3), 1),
                                                      ((2, 4, 3), (2, 4, 3), (2, 2, 3), -2), ((4, 3), (2, 3), (0, 3), 0)]:
            d = dim % len(self_shape)
            if unique:
                idx = unique_index(rng, idx_shape, d, self_shape[d])
            else:
                idx = index(rng, self_shape[d], idx_shape)
            args = (values(dtype, rng, self_shape), idx) + ((values(dtype, rng, src_shape),) if with_src else ())
            yield Sample(args, {"dim": dim}, keep_dtype=(1,), name=f"{self_shape} {idx_shape} dim={dim}")
    return gen


def corner(src, index):
    """src cut to index's shape: the part scatter reads (torch's own backward fails when src is larger)."""
    return src[tuple(slice(0, n) for n in index.shape)]


# ---- masked ops / nonzero ----

def mask(rng, shape):
    return rng.random(shape) < 0.5


def masked_samples(dtype, rng):
    yield Sample((values(dtype, rng, (3, 4)), mask(rng, (3, 4))), keep_dtype=(1,))
    yield Sample((values(dtype, rng, (3, 4)), mask(rng, (4,))), keep_dtype=(1,), name="broadcast mask")
    yield Sample((values(dtype, rng, (0, 4)), mask(rng, (0, 4))), keep_dtype=(1,), name="zero-size")
    yield Sample((values(dtype, rng, ()), np.array(True)), keep_dtype=(1,), name="0-d")


def masked_select_samples(dtype, rng):
    yield from masked_samples(dtype, rng)
    yield Sample((values(dtype, rng, (4,)), mask(rng, (3, 4))), keep_dtype=(1,), name="input broadcasts")


def masked_fill_tensor_samples(dtype, rng):
    yield Sample((values(dtype, rng, (3, 4)), mask(rng, (3, 4)), values(dtype, rng, ())), keep_dtype=(1,))
    yield Sample((values(dtype, rng, (2, 3, 4)), mask(rng, (3, 1)), values(dtype, rng, ())), keep_dtype=(1,))


def nonzero_samples(dtype, rng):
    for shape in [(3, 4), (2, 3, 4), (5,), (0, 3), ()]:
        yield Sample((with_zeros(dtype, rng, shape),), name=str(shape))


# ---- layout ops ----

def one(*cases):
    def gen(dtype, rng):
        for shape, kwargs in cases:
            yield Sample((values(dtype, rng, shape),), kwargs, name=f"{shape} {kwargs}")
    return gen


def one_hot_samples(dtype, rng):
    yield Sample((index(rng, 5, (3, 4)),), {"num_classes": 6}, keep_dtype=(0,))
    yield Sample((index(rng, 5, (7,)),), {}, keep_dtype=(0,), name="inferred classes")
    yield Sample((np.zeros((0,), dtype=np.int64),), {"num_classes": 3}, keep_dtype=(0,), name="empty")


def embedding_samples(dtype, rng):
    yield Sample((index(rng, 6, (3, 4)), rand(rng, (6, 5))), keep_dtype=(0,))
    yield Sample((np.zeros((0, 2), dtype=np.int64), rand(rng, (4, 2))), keep_dtype=(0,), name="empty")


def embedding_padding_samples(dtype, rng):
    yield Sample((index(rng, 6, (7,)), rand(rng, (6, 3))), {"padding_idx": 2}, keep_dtype=(0,), name="padding_idx")
    yield Sample((np.array([1, 2, 1, 2, 0]), rand(rng, (4, 2))), {"padding_idx": -2}, keep_dtype=(0,),
                 name="negative padding_idx")


def pad_samples(dtype, rng):
    for shape, pads in [((3, 4), (1, 2)), ((2, 3, 4), (1, 0, 2, 1)), ((3, 4), (-1, 2)), ((2, 5), (0, 0, -1, -1)),
                        ((0, 3), (1, 1)), ((3, 4), (2, -3, 1, 0))]:
        yield Sample((values(dtype, rng, shape),), {"pad": pads}, name=f"{shape} {pads}")
    if dtype.is_floating_point:
        yield Sample((values(dtype, rng, (2, 3)),), {"pad": (1, 1), "value": 1.5}, name="value")


def index_put_samples(unique):
    def gen(dtype, rng):
        rows = rng.permutation(5)[:3] if unique else index(rng, 5, (4,))
        yield Sample((values(dtype, rng, (5, 3)), rows.astype(np.int64), values(dtype, rng, (len(rows), 3))),
                     keep_dtype=(1,), name="rows")
        cols = rng.permutation(3)[:2] if unique else index(rng, 3, (2,))
        yield Sample((values(dtype, rng, (5, 3)), np.array([4, 0]), values(dtype, rng, (2,)), cols.astype(np.int64)),
                     keep_dtype=(1, 3), name="pairs")
        yield Sample((values(dtype, rng, (5, 3)), np.array([1, -1]), values(dtype, rng, (3,))), keep_dtype=(1,),
                     name="broadcast value")
    return gen


def put_fn(lib, accumulate):
    def fn(x, i, v, j=None):
        indices = (i,) if j is None else (i, j)
        return lib.index_put(x, indices, v, accumulate=accumulate)
    return fn


def take_samples(dtype, rng):
    yield Sample((values(dtype, rng, (3, 4)), index(rng, 12, (2, 5)) - 6), keep_dtype=(1,))
    yield Sample((values(dtype, rng, (5,)), np.array(3)), keep_dtype=(1,), name="0-d index")
    yield Sample((values(dtype, rng, (3, 4)), np.zeros((0,), dtype=np.int64)), keep_dtype=(1,), name="empty")


def take_along_dim_samples(dtype, rng):
    yield Sample((values(dtype, rng, (3, 4)), index(rng, 4, (3, 2))), {"dim": 1}, keep_dtype=(1,))
    yield Sample((values(dtype, rng, (3, 4)), index(rng, 3, (5, 1))), {"dim": 0}, keep_dtype=(1,), name="broadcast")
    yield Sample((values(dtype, rng, (3, 4)), index(rng, 12, (6,))), {}, keep_dtype=(1,), name="flat")


OPS = [
    OpInfo("cat", lambda *xs, dim: loom.cat(xs, dim), lambda *xs, dim: torch.cat(xs, dim), cat_samples, dtypes=ALL),
    OpInfo("cat_promote", lambda *xs: loom.cat(xs), lambda *xs: torch.cat(xs), cat_promote_samples, dtypes=ALL),
    OpInfo("stack", lambda *xs, dim: loom.stack(xs, dim), lambda *xs, dim: torch.stack(xs, dim), stack_samples,
           dtypes=ALL),
    OpInfo("hstack", lambda *xs: loom.hstack(xs), lambda *xs: torch.hstack(xs), hstack_samples, dtypes=ALL),
    OpInfo("vstack", lambda *xs: loom.vstack(xs), lambda *xs: torch.vstack(xs), vstack_samples, dtypes=ALL),
    OpInfo("meshgrid", lambda *xs, indexing: loom.meshgrid(*xs, indexing=indexing),
           lambda *xs, indexing: torch.meshgrid(*xs, indexing=indexing), meshgrid_samples, dtypes=ALL),
    OpInfo("index_select", lambda x, i, dim: loom.index_select(x, dim, i),
           lambda x, i, dim: torch.index_select(x, dim, i), index_select_samples, dtypes=ALL),
    OpInfo("index_add", lambda x, i, s, dim: x.index_add(dim, i, s), lambda x, i, s, dim: x.index_add(dim, i, s),
           index_update_samples(unique=False), dtypes=ALL),
    OpInfo("index_add_alpha", lambda x, i, s, dim: loom.index_add(x, dim, i, s, alpha=2),
           lambda x, i, s, dim: torch.index_add(x, dim, i, s, alpha=2), index_update_samples(unique=False),
           dtypes=ALL[:-1]),
    OpInfo("index_copy", lambda x, i, s, dim: x.index_copy(dim, i, s), lambda x, i, s, dim: x.index_copy(dim, i, s),
           index_update_samples(unique=True), dtypes=ALL),
    OpInfo("index_fill", lambda x, i, dim: x.index_fill(dim, i, 2), lambda x, i, dim: x.index_fill(dim, i, 2),
           index_fill_samples, dtypes=ALL),
    OpInfo("gather", lambda x, i, dim: loom.gather(x, dim, i), lambda x, i, dim: torch.gather(x, dim, i),
           gather_samples, dtypes=ALL),
    OpInfo("scatter", lambda x, i, s, dim: x.scatter(dim, i, s),
           lambda x, i, s, dim: x.scatter(dim, i, corner(s, i)),
           scatter_samples(with_src=True, unique=True), dtypes=ALL),
    OpInfo("scatter_value", lambda x, i, dim: loom.scatter(x, dim, i, value=1),
           lambda x, i, dim: torch.scatter(x, dim, i, value=1), scatter_samples(with_src=False, unique=False),
           dtypes=ALL),
    OpInfo("scatter_add", lambda x, i, s, dim: x.scatter_add(dim, i, s),
           lambda x, i, s, dim: x.scatter_add(dim, i, corner(s, i)),
           scatter_samples(with_src=True, unique=False), dtypes=ALL),
    OpInfo("masked_fill", lambda x, m: x.masked_fill(m, 3), lambda x, m: x.masked_fill(m, 3), masked_samples,
           dtypes=ALL),
    OpInfo("masked_fill_tensor", lambda x, m, v: loom.masked_fill(x, m, v), lambda x, m, v: torch.masked_fill(x, m, v),
           masked_fill_tensor_samples, dtypes=ALL),
    OpInfo("masked_select", lambda x, m: loom.masked_select(x, m), lambda x, m: torch.masked_select(x, m),
           masked_select_samples, dtypes=ALL),
    OpInfo("nonzero", lambda x: loom.nonzero(x), lambda x: torch.nonzero(x), nonzero_samples, dtypes=ALL, grad=False),
    OpInfo("nonzero_tuple", lambda x: x.nonzero(as_tuple=True), lambda x: x.nonzero(as_tuple=True), nonzero_samples,
           dtypes=ALL, grad=False),
    OpInfo("flip", lambda x, dims: loom.flip(x, dims), lambda x, dims: torch.flip(x, dims),
           one(((3, 4), {"dims": (0,)}), ((2, 3, 4), {"dims": (0, 2)}), ((2, 3), {"dims": (-1,)}),
               ((0, 3), {"dims": (1,)}), ((), {"dims": ()})), dtypes=ALL),
    OpInfo("roll", lambda x, **kw: loom.roll(x, **kw), lambda x, **kw: torch.roll(x, **kw),
           one(((5,), {"shifts": 2}), ((3, 4), {"shifts": -1, "dims": 1}), ((3, 4), {"shifts": (1, 5), "dims": (0, 1)}),
               ((3, 4), {"shifts": 3}), ((0, 4), {"shifts": 1, "dims": 0})), dtypes=ALL),
    OpInfo("repeat", lambda x, sizes: x.repeat(*sizes), lambda x, sizes: x.repeat(*sizes),
           one(((2, 3), {"sizes": (2, 2)}), ((3,), {"sizes": (2, 1, 3)}), ((2, 3), {"sizes": (0, 1)}),
               ((), {"sizes": (3,)})), dtypes=ALL),
    OpInfo("tile", lambda x, dims: loom.tile(x, dims), lambda x, dims: torch.tile(x, dims),
           one(((2, 3), {"dims": (2,)}), ((2, 3), {"dims": (2, 1, 2)}), ((3,), {"dims": (0,)})), dtypes=ALL),
    OpInfo("index_put", put_fn(loom, False), put_fn(torch, False), index_put_samples(unique=True), dtypes=ALL),
    OpInfo("index_put_accumulate", put_fn(loom, True), put_fn(torch, True), index_put_samples(unique=False),
           dtypes=ALL),
    OpInfo("take", lambda x, i: loom.take(x, i), lambda x, i: torch.take(x, i), take_samples, dtypes=ALL),
    OpInfo("take_along_dim", lambda x, i, **kw: loom.take_along_dim(x, i, **kw),
           lambda x, i, **kw: torch.take_along_dim(x, i, **kw), take_along_dim_samples, dtypes=ALL),
    OpInfo("tril", lambda x, **kw: loom.tril(x, **kw), lambda x, **kw: torch.tril(x, **kw),
           one(((4, 4), {}), ((3, 5), {"diagonal": 1}), ((2, 4, 3), {"diagonal": -1}), ((0, 3), {})), dtypes=ALL),
    OpInfo("triu", lambda x, **kw: x.triu(**kw), lambda x, **kw: x.triu(**kw),
           one(((4, 4), {}), ((3, 5), {"diagonal": 2}), ((2, 4, 3), {"diagonal": -1}), ((3, 0), {})), dtypes=ALL),
    OpInfo("pad", lambda x, **kw: loom.pad(x, **kw), lambda x, **kw: F.pad(x, **kw), pad_samples, dtypes=ALL),
    OpInfo("one_hot", lambda x, **kw: loom.one_hot(x, **kw), lambda x, **kw: F.one_hot(x, **kw), one_hot_samples,
           dtypes=(loom.int64,), grad=False, noncontiguous=False),
    OpInfo("embedding", lambda i, w, **kw: loom.embedding(i, w, **kw), lambda i, w, **kw: F.embedding(i, w, **kw),
           embedding_samples, dtypes=(loom.float32, loom.float64, loom.float16, loom.bfloat16)),
    # padding_idx rows get no gradient by definition, so finite differences do not apply.
    OpInfo("embedding_padding", lambda i, w, **kw: loom.embedding(i, w, **kw),
           lambda i, w, **kw: F.embedding(i, w, **kw), embedding_padding_samples,
           dtypes=(loom.float32, loom.float64), fd=False),
]
