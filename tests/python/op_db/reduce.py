"""Reductions."""
import numpy as np
import torch

import loom
from op_db.common import ALL, FLOATS, INTS, OpInfo, Sample, ints, rand

SHAPES_AND_DIMS = [((3, 4), None, False), ((3, 4), 0, False), ((3, 4), 1, True), ((2, 3, 4), (0, 2), False),
                   ((2, 3, 4), (-1, 0), True), ((), None, False), ((0, 3), 0, False), ((0, 3), 1, False),
                   ((5,), 0, True)]


def reduce_samples(dtype, rng):
    for shape, dim, keepdim in SHAPES_AND_DIMS:
        values = rand(rng, shape) if dtype.is_floating_point else ints(rng, shape, 0, 5)
        if dtype == loom.bool:
            values = rng.integers(0, 2, size=shape).astype(bool)
        kwargs = {"keepdim": keepdim} if dim is not None else {}
        if dim is not None:
            kwargs["dim"] = dim
        yield Sample((np.asarray(values),), kwargs, name=f"{shape} dim={dim}")


OPS = [
    OpInfo("sum", loom.sum, torch.sum, reduce_samples, dtypes=ALL, value_scale=10),
    OpInfo("mean", loom.mean, torch.mean, reduce_samples, dtypes=FLOATS, value_scale=10),
    OpInfo("sum_dtype", lambda x: x.sum(dtype=loom.float64), lambda x: x.sum(dtype=torch.float64),
           lambda d, rng: [Sample((ints(rng, (3, 4)),))], dtypes=INTS, grad=False),
]
