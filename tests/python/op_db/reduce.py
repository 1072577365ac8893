"""Reductions, scans and the softmax family."""
import math

import numpy as np
import torch

import loom
from op_db.common import ALL, FLOATS, INTS, OpInfo, Sample, ints, rand

NUMERIC = FLOATS + INTS

SHAPES_AND_DIMS = [((3, 4), None, False), ((3, 4), 0, False), ((3, 4), 1, True), ((2, 3, 4), (0, 2), False),
                   ((2, 3, 4), (-1, 0), True), ((), None, False), ((0, 3), 0, False), ((0, 3), 1, False),
                   ((5,), 0, True)]
# One dim at a time (ops whose torch signature takes a single int dim).
SHAPES_AND_DIM = [((3, 4), 0, False), ((3, 4), 1, True), ((2, 3, 4), 1, False), ((2, 3, 4), -1, True),
                  ((), 0, False), ((5,), 0, False), ((0, 3), 1, False), ((4, 1), 1, False)]


def values_for(dtype, rng, shape, gen=rand):
    if dtype == loom.bool:
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype.is_floating_point:
        return np.asarray(gen(rng, shape))
    return np.asarray(ints(rng, shape, 0, 5))


def away_from_zero(rng, shape):
    return rng.uniform(0.3, 1.5, size=shape) * rng.choice([-1, 1], size=shape)


def make_samples(cases, gen=rand, nonempty_reduction=False, extra=None):
    def make(dtype, rng):
        for shape, dim, keepdim in cases:
            if nonempty_reduction:
                reduced = range(len(shape)) if dim is None else np.atleast_1d(dim)
                if any(shape[d] == 0 for d in reduced if len(shape)):
                    continue
            kwargs = {} if dim is None else {"dim": dim, "keepdim": keepdim}
            yield Sample((values_for(dtype, rng, shape, gen),), kwargs, name=f"{shape} dim={dim}")
        yield from (extra(dtype, rng) if extra else ())
    return make


reduce_samples = make_samples(SHAPES_AND_DIMS)
extreme_samples = make_samples(SHAPES_AND_DIMS, nonempty_reduction=True)
dim_samples = make_samples(SHAPES_AND_DIM)
nonempty_dim_samples = make_samples(SHAPES_AND_DIM, nonempty_reduction=True)


def full_samples(dtype, rng):
    for shape in [(3, 4), (), (2, 3, 4), (1,)]:
        yield Sample((values_for(dtype, rng, shape),), name=f"{shape}")


def tie_samples(dtype, rng):
    x = np.array([[1.0, 3.0, 3.0, 0.5], [2.0, 2.0, -1.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    yield Sample((x,), name="ties all")
    yield Sample((x,), {"dim": 1}, name="ties dim 1")
    yield Sample((x,), {"dim": 0, "keepdim": True}, name="ties dim 0")


def prod_zero_samples(dtype, rng):
    x = rand(rng, (3, 4))
    x[0, 1] = 0.0  # one zero in row 0
    x[1, 0] = x[1, 2] = 0.0  # two zeros in row 1
    yield Sample((x,), {"dim": 1}, name="zeros dim 1")
    yield Sample((x,), {"dim": 0, "keepdim": True}, name="zeros dim 0")
    yield Sample((x[0],), name="one zero, all")


def arg_samples(dtype, rng):
    for shape, dim, keepdim in [((3, 4), None, False), ((3, 4), 1, False), ((2, 3, 4), 0, True), ((2, 3, 4), -1, False),
                                ((), None, False), ((5,), 0, True), ((3, 4), None, True), ((0, 3), 1, False)]:
        kwargs = {"dim": dim, "keepdim": keepdim} if dim is not None else {"keepdim": keepdim}
        yield Sample((values_for(dtype, rng, shape),), kwargs, name=f"{shape} dim={dim}")


def var_samples(dtype, rng):
    for shape, dim, keepdim in SHAPES_AND_DIMS:
        if shape == () or 0 in shape:
            continue
        x = rand(rng, shape)
        kw = {} if dim is None else {"dim": dim, "keepdim": keepdim}
        yield Sample((x,), kw, name=f"{shape} dim={dim}")
        yield Sample((x,), dict(kw, correction=0), name=f"{shape} dim={dim} correction=0")
        yield Sample((x,), dict(kw, correction=2), name=f"{shape} dim={dim} correction=2")
    yield Sample((rand(rng, (3, 4)),), {"dim": 1, "unbiased": False}, name="unbiased=False")
    yield Sample((rand(rng, (3, 4)),), {"dim": 0, "unbiased": True, "keepdim": True}, name="unbiased=True")


NORM_PS = [2, 1, 3, 0.5, math.inf, -math.inf, "fro", 1.5]


def norm_samples(dtype, rng):
    for p in NORM_PS:
        for shape, dim, keepdim in [((3, 4), None, False), ((3, 4), 1, True), ((2, 3, 4), (0, 2), False), ((5,), 0, False)]:
            kwargs = {"p": p} if dim is None else {"p": p, "dim": dim, "keepdim": keepdim}
            yield Sample((away_from_zero(rng, shape),), kwargs, name=f"p={p} {shape} dim={dim}")
    yield Sample((rand(rng, (3, 4)),), {}, name="default p")


def norm_zero_samples(dtype, rng):
    x = rand(rng, (3, 4))
    x[1] = 0.0
    yield Sample((x,), {"p": 2, "dim": 1}, name="p=2 zero row")
    yield Sample((x,), {"p": 3, "dim": 1}, name="p=3 zero row")
    yield Sample((np.array([0.0, 1.0, 0.0, -2.5]),), {"p": 0}, name="p=0")


def logsumexp_samples(dtype, rng):
    for shape, dim, keepdim in SHAPES_AND_DIMS:
        if dim is None:
            dim = tuple(range(len(shape))) if shape else 0
        yield Sample((values_for(dtype, rng, shape),), {"dim": dim, "keepdim": keepdim}, name=f"{shape} dim={dim}")
    if dtype.is_floating_point:
        yield Sample((rand(rng, (3, 4)) * 10 + 40,), {"dim": 1}, name="large values")


def logsumexp_inf_samples(dtype, rng):
    yield Sample((np.array([[-np.inf, -np.inf], [1.0, -np.inf], [np.inf, 2.0]]),), {"dim": 1}, name="infinities")


def scan_samples(gen=rand):
    def make(dtype, rng):
        for shape, dim, _ in SHAPES_AND_DIM:
            yield Sample((values_for(dtype, rng, shape, gen),), {"dim": dim}, name=f"{shape} dim={dim}")
        yield Sample((values_for(dtype, rng, (3, 4), gen),), {"dim": 1, "dtype": loom.float64}, name="dtype=float64")
    return make


def softmax_samples(dtype, rng):
    for shape, dim, _ in SHAPES_AND_DIM:
        yield Sample((rand(rng, shape, -4, 4),), {"dim": dim}, name=f"{shape} dim={dim}")
    yield Sample((rand(rng, (3, 5), 500, 510),), {"dim": 1}, name="large values")
    yield Sample((rand(rng, (3, 5)),), {"dim": 0, "dtype": loom.float64}, name="dtype=float64")


def softmax_inf_samples(dtype, rng):
    yield Sample((np.array([[-np.inf, 1.0, 2.0], [-np.inf, -np.inf, -np.inf], [0.0, 0.0, 0.0]]),), {"dim": 1},
                 name="-inf")


def nan_samples(dtype, rng):
    x = rand(rng, (3, 5))
    x[0, 1] = x[2, 0] = x[2, 4] = np.nan
    yield Sample((x,), name="nan all")
    yield Sample((x,), {"dim": 1}, name="nan dim 1")
    yield Sample((x,), {"dim": 0, "keepdim": True}, name="nan dim 0")


def cumulative_nan_samples(dtype, rng):
    x = np.array([[1.0, 3.0, 3.0, 2.0, np.nan, 5.0, np.nan], [3.0, 1.0, 1.0, 0.0, 4.0, 4.0, 9.0]])
    yield Sample((x, 1), name="nan and ties")


def aminmax_samples(dtype, rng):
    for sample in extreme_samples(dtype, rng):
        if not isinstance(sample.kwargs.get("dim", 0), tuple):  # torch.aminmax takes one int dim
            yield sample


def _double_backward(lib, x):
    """The gradient of logcumsumexp, itself differentiated by the grad tests (the reversed scan's backward)."""
    if not x.requires_grad:
        x = x.detach().requires_grad_(True)
    weights = lib.arange(x.shape[1], dtype=x.dtype, device=x.device) - 2
    return lib.autograd.grad((lib.logcumsumexp(x, 1) * weights).sum(), [x], create_graph=True)[0]


def with_torch_dtype(fn):
    """Calls fn, translating a loom dtype kwarg into torch's."""
    from op_db.common import TORCH_DTYPE

    def call(*args, **kwargs):
        if "dtype" in kwargs and isinstance(kwargs["dtype"], loom.dtype):
            kwargs["dtype"] = TORCH_DTYPE[kwargs["dtype"]]
        return fn(*args, **kwargs)
    return call


OPS = [
    OpInfo("sum", loom.sum, torch.sum, reduce_samples, dtypes=ALL, value_scale=10),
    OpInfo("mean", loom.mean, torch.mean, reduce_samples, dtypes=FLOATS, value_scale=10),
    OpInfo("sum_dtype", lambda x: x.sum(dtype=loom.float64), lambda x: x.sum(dtype=torch.float64),
           lambda d, rng: [Sample((ints(rng, (3, 4)),))], dtypes=INTS, grad=False),
    OpInfo("prod", loom.prod, torch.prod, dim_samples, dtypes=ALL, value_scale=10),
    OpInfo("prod_all", lambda x: x.prod(), lambda x: x.prod(), full_samples, dtypes=ALL, value_scale=10),
    OpInfo("prod_zeros", loom.prod, torch.prod, prod_zero_samples, dtypes=FLOATS),
    OpInfo("prod_dtype", lambda x: loom.prod(x, 1, dtype=loom.float64), lambda x: torch.prod(x, 1, dtype=torch.float64),
           lambda d, rng: [Sample((ints(rng, (3, 4)),))], dtypes=INTS, grad=False),
    OpInfo("amax", loom.amax, torch.amax, extreme_samples, dtypes=ALL),
    OpInfo("amin", loom.amin, torch.amin, extreme_samples, dtypes=ALL),
    OpInfo("amax_ties", loom.amax, torch.amax, tie_samples, dtypes=(loom.float32, loom.float64), fd=False),
    OpInfo("amin_ties", loom.amin, torch.amin, tie_samples, dtypes=(loom.float32, loom.float64), fd=False),
    OpInfo("max", loom.max, torch.max, full_samples, dtypes=ALL),
    OpInfo("min", loom.min, torch.min, full_samples, dtypes=ALL),
    OpInfo("max_ties", lambda x: x.max(), lambda x: x.max(), lambda d, rng: [next(tie_samples(d, rng))],
           dtypes=(loom.float32, loom.float64), fd=False),
    OpInfo("max_dim", loom.max, torch.max, nonempty_dim_samples, dtypes=ALL),
    OpInfo("min_dim", loom.min, torch.min, nonempty_dim_samples, dtypes=ALL),
    OpInfo("max_dim_ties", lambda x: x.max(1), lambda x: x.max(1), lambda d, rng: [next(tie_samples(d, rng))],
           dtypes=(loom.float32, loom.float64), fd=False),
    OpInfo("max_binary", lambda a, b: loom.max(a, b), lambda a, b: torch.max(a, b),
           lambda d, rng: [Sample((rand(rng, (3, 4)), rand(rng, (4,))))], dtypes=FLOATS),
    OpInfo("min_binary", lambda a, b: a.min(b), lambda a, b: a.min(b),
           lambda d, rng: [Sample((rand(rng, (3, 4)), rand(rng, (3, 1))))], dtypes=FLOATS),
    OpInfo("argmax", loom.argmax, torch.argmax, arg_samples, dtypes=NUMERIC, grad=False),
    OpInfo("argmin", loom.argmin, torch.argmin, arg_samples, dtypes=NUMERIC, grad=False),
    OpInfo("all", loom.all, torch.all, reduce_samples, dtypes=ALL, grad=False),
    OpInfo("any", loom.any, torch.any, reduce_samples, dtypes=ALL, grad=False),
    OpInfo("var", loom.var, torch.var, var_samples, dtypes=FLOATS, value_scale=10),
    OpInfo("std", loom.std, torch.std, var_samples, dtypes=FLOATS, value_scale=10),
    OpInfo("var_mean", loom.var_mean, torch.var_mean, var_samples, dtypes=(loom.float32, loom.float64)),
    OpInfo("std_mean", loom.std_mean, torch.std_mean, var_samples, dtypes=(loom.float32, loom.float64)),
    OpInfo("norm", loom.norm, torch.norm, norm_samples, dtypes=FLOATS, value_scale=10),
    OpInfo("norm_zeros", loom.norm, torch.norm, norm_zero_samples, dtypes=(loom.float32, loom.float64), grad=False),
    OpInfo("norm_zero_grad", loom.norm, torch.norm,
           lambda d, rng: list(norm_zero_samples(d, rng))[:1], dtypes=(loom.float32, loom.float64), fd=False),
    OpInfo("logsumexp", loom.logsumexp, torch.logsumexp, logsumexp_samples, dtypes=ALL[:-1], value_scale=10),
    OpInfo("logsumexp_inf", loom.logsumexp, torch.logsumexp, logsumexp_inf_samples, dtypes=(loom.float32, loom.float64),
           grad=False),
    OpInfo("cumsum", loom.cumsum, with_torch_dtype(torch.cumsum), scan_samples(), dtypes=ALL, value_scale=10),
    OpInfo("cumprod", loom.cumprod, with_torch_dtype(torch.cumprod), scan_samples(away_from_zero), dtypes=ALL,
           value_scale=10),
    OpInfo("logcumsumexp", loom.logcumsumexp, torch.logcumsumexp,
           lambda d, rng: (Sample((values_for(d, rng, shape), dim), name=f"{shape} dim={dim}")
                           for shape, dim, _ in SHAPES_AND_DIM), dtypes=FLOATS, value_scale=10),
    OpInfo("logcumsumexp_wide", loom.logcumsumexp, torch.logcumsumexp,
           lambda d, rng: [Sample((np.array([[-300.0, 0.0, 200.0, -50.0], [5.0, -np.inf, 3.0, 700.0]]), 1),
                                  name="wide range")], dtypes=(loom.float64,)),
    OpInfo("logcumsumexp_inf", loom.logcumsumexp, torch.logcumsumexp,
           lambda d, rng: [Sample((np.array([[-np.inf, -np.inf, 1.0], [np.inf, 2.0, -np.inf]]), 1), name="inf")],
           dtypes=(loom.float32, loom.float64), grad=False),
    OpInfo("logcumsumexp_double_backward", lambda x: _double_backward(loom, x), lambda x: _double_backward(torch, x),
           lambda d, rng: [Sample((rand(rng, (3, 5)),))], dtypes=(loom.float32, loom.float64)),
    OpInfo("cummax", loom.cummax, torch.cummax,
           lambda d, rng: (Sample((values_for(d, rng, shape), dim), name=f"{shape} dim={dim}")
                           for shape, dim, _ in SHAPES_AND_DIM), dtypes=ALL),
    OpInfo("cummin", loom.cummin, torch.cummin,
           lambda d, rng: (Sample((values_for(d, rng, shape), dim), name=f"{shape} dim={dim}")
                           for shape, dim, _ in SHAPES_AND_DIM), dtypes=ALL),
    OpInfo("cummax_nan", loom.cummax, torch.cummax, cumulative_nan_samples, dtypes=FLOATS, grad=False),
    OpInfo("cummin_nan", loom.cummin, torch.cummin, cumulative_nan_samples, dtypes=FLOATS, grad=False),
    OpInfo("aminmax", lambda x, **kw: loom.aminmax(x, **kw), lambda x, **kw: torch.aminmax(x, **kw),
           aminmax_samples, dtypes=ALL),
    OpInfo("nansum", loom.nansum, torch.nansum, reduce_samples, dtypes=NUMERIC, value_scale=10),
    OpInfo("nansum_nan", loom.nansum, torch.nansum, nan_samples, dtypes=FLOATS, value_scale=10),
    OpInfo("nanmean", loom.nanmean, torch.nanmean, reduce_samples, dtypes=FLOATS, value_scale=10),
    OpInfo("nanmean_nan", loom.nanmean, torch.nanmean, nan_samples, dtypes=FLOATS, value_scale=10),
    OpInfo("count_nonzero", loom.count_nonzero, torch.count_nonzero,
           lambda d, rng: (Sample(s.args, {"dim": s.kwargs["dim"]} if "dim" in s.kwargs else {}, name=s.name)
                           for s in reduce_samples(d, rng)), dtypes=ALL, grad=False),
    OpInfo("softmax", loom.softmax, with_torch_dtype(torch.softmax), softmax_samples, dtypes=FLOATS),
    OpInfo("log_softmax", loom.log_softmax, with_torch_dtype(torch.log_softmax), softmax_samples, dtypes=FLOATS),
    OpInfo("softmax_inf", lambda x, dim: (x.softmax(dim), x.log_softmax(dim)),
           lambda x, dim: (x.softmax(dim), x.log_softmax(dim)), softmax_inf_samples, dtypes=FLOATS, grad=False),
]
