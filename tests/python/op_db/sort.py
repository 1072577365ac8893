"""Sorting and selection: sort, argsort, topk."""
import numpy as np
import torch

import loom
from op_db.common import ALL, FLOATS, INTS, OpInfo, Sample, ints

NUMERIC = FLOATS + INTS

SHAPES_AND_DIM = [((7,), -1), ((3, 5), 1), ((3, 5), 0), ((2, 3, 4), 1), ((), 0), ((0, 3), 1), ((4, 1), 1)]


def distinct(dtype, rng, shape):
    """Values without ties (so indices are unambiguous), in the range every dtype holds."""
    n = int(np.prod(shape)) if shape else 1
    if dtype == loom.bool:
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype.is_floating_point:
        values = rng.permutation(n).astype(np.float64) / 4 - n / 8
    else:
        values = rng.permutation(n) % (100 if dtype in (loom.int8, loom.uint8) else 10 ** 6)
    return values.reshape(shape)


def sort_samples(dtype, rng):
    for shape, dim in SHAPES_AND_DIM:
        x = distinct(dtype, rng, shape)
        yield Sample((x,), {"dim": dim}, name=f"{shape} dim={dim}")
        yield Sample((x,), {"dim": dim, "descending": True}, name=f"{shape} dim={dim} descending")


def tie_samples(dtype, rng):
    """Ties: a stable sort keeps the input order of equal values."""
    yield Sample((ints(rng, (4, 9), 0, 3) if dtype != loom.bool else rng.integers(0, 2, (4, 9)).astype(bool),),
                 {"dim": 1, "stable": True}, name="ties stable")
    yield Sample((ints(rng, (4, 9), 0, 3) if dtype != loom.bool else rng.integers(0, 2, (4, 9)).astype(bool),),
                 {"dim": 1, "descending": True, "stable": True}, name="ties stable descending")


def nan_samples(dtype, rng):
    x = np.array([[1.0, np.nan, -2.0, np.inf, 0.5], [np.nan, -np.inf, 3.0, np.nan, 0.0]])
    yield Sample((x,), {"dim": 1}, name="nan")
    yield Sample((x,), {"dim": 1, "descending": True}, name="nan descending")


def topk_samples(dtype, rng):
    for shape, dim, k in [((7,), -1, 3), ((3, 5), 1, 2), ((3, 5), 0, 3), ((2, 3, 4), 1, 1), ((3, 5), 1, 5),
                          ((3, 5), 1, 0), ((), 0, 1), ((0, 3), 1, 2)]:
        x = distinct(dtype, rng, shape)
        yield Sample((x, k), {"dim": dim}, name=f"{shape} dim={dim} k={k}")
        yield Sample((x, k), {"dim": dim, "largest": False}, name=f"{shape} dim={dim} k={k} smallest")


def median_samples(dtype, rng):
    for shape, dim in SHAPES_AND_DIM:
        if 0 in shape:
            continue
        x = distinct(dtype, rng, shape)
        yield Sample((x,), {"dim": dim}, name=f"{shape} dim={dim}")
        yield Sample((x,), {"dim": dim, "keepdim": True}, name=f"{shape} dim={dim} keepdim")
    yield Sample((distinct(dtype, rng, (4, 6)),), name="all even")
    yield Sample((distinct(dtype, rng, (3, 3)),), name="all odd")


def median_nan_samples(dtype, rng):
    x = distinct(dtype, rng, (4, 5))
    x[0, 1] = x[0, 3] = x[2, 2] = np.nan
    yield Sample((x,), {"dim": 1}, name="nan dim 1")
    yield Sample((x,), {"dim": 0, "keepdim": True}, name="nan dim 0")
    yield Sample((x,), name="nan all")


def kthvalue_samples(dtype, rng):
    for shape, dim, k in [((7,), -1, 3), ((3, 5), 1, 1), ((3, 5), 0, 3), ((2, 3, 4), 2, 4), ((), 0, 1)]:
        x = distinct(dtype, rng, shape)
        yield Sample((x, k), {"dim": dim}, name=f"{shape} dim={dim} k={k}")
        yield Sample((x, k), {"dim": dim, "keepdim": True}, name=f"{shape} dim={dim} k={k} keepdim")


def topk_unsorted(fn, sort):
    """topk(sorted=False): the order is unspecified, so both sides are compared after sorting the values."""
    def call(x, k, **kw):
        values, _ = fn(x, k, sorted=False, **kw)
        return sort(values, dim=kw.get("dim", -1)).values
    return call


def double_backward(lib, x):
    """The gradient of sum(sort(x)^3 * weights), itself differentiated by the grad tests (gather/scatter_add)."""
    if not x.requires_grad:
        x = x.detach().requires_grad_(True)
    values = lib.sort(x, 1).values
    weights = lib.arange(values.shape[1], dtype=values.dtype, device=values.device) + 1
    return lib.autograd.grad((values ** 3 * weights).sum(), [x], create_graph=True)[0]


OPS = [
    OpInfo("sort", loom.sort, torch.sort, sort_samples, dtypes=ALL),
    OpInfo("sort_ties", loom.sort, torch.sort, tie_samples, dtypes=ALL, fd=False),
    OpInfo("argsort_ties", loom.argsort, torch.argsort, tie_samples, dtypes=ALL, grad=False),
    OpInfo("sort_nan", loom.sort, torch.sort, nan_samples, dtypes=FLOATS, grad=False),
    OpInfo("argsort", loom.argsort, torch.argsort, sort_samples, dtypes=ALL, grad=False),
    OpInfo("topk", loom.topk, torch.topk, topk_samples, dtypes=NUMERIC),
    OpInfo("topk_nan", lambda x, **kw: loom.topk(x, 3, kw["dim"]),
           lambda x, **kw: torch.topk(x, 3, kw["dim"]), nan_samples, dtypes=FLOATS, grad=False),
    OpInfo("topk_unsorted", topk_unsorted(loom.topk, loom.sort), topk_unsorted(torch.topk, torch.sort), topk_samples,
           dtypes=(loom.float32, loom.int64), grad=False),
    OpInfo("kthvalue", loom.kthvalue, torch.kthvalue, kthvalue_samples, dtypes=NUMERIC),
    OpInfo("median", loom.median, torch.median, median_samples, dtypes=NUMERIC),
    OpInfo("nanmedian", loom.nanmedian, torch.nanmedian, median_samples, dtypes=NUMERIC),
    OpInfo("median_nan", loom.median, torch.median, median_nan_samples, dtypes=FLOATS, grad=False),
    OpInfo("nanmedian_nan", loom.nanmedian, torch.nanmedian, median_nan_samples, dtypes=FLOATS),
    OpInfo("sort_double_backward", lambda x: double_backward(loom, x), lambda x: double_backward(torch, x),
           lambda d, rng: [Sample((distinct(d, rng, (3, 5)),))], dtypes=(loom.float32, loom.float64)),
]

# The internal kernel behind sort/topk/median: checked through their OpInfo entries above.
COVERED_ELSEWHERE = {"sort_topk"}
