"""The conformance table's building blocks: OpInfo (one entry per op) and Sample (one call)."""
from dataclasses import dataclass, field
from collections.abc import Iterable
from typing import Any, Callable

import numpy as np
import torch

import loom

FLOATS = (loom.float32, loom.float64, loom.float16, loom.bfloat16)
FLOAT32_64 = (loom.float32, loom.float64)
INTS = (loom.uint8, loom.int8, loom.int16, loom.int32, loom.int64)
ALL = FLOATS + INTS + (loom.bool,)

TORCH_DTYPE = {
    loom.bool: torch.bool, loom.uint8: torch.uint8, loom.int8: torch.int8, loom.int16: torch.int16,
    loom.int32: torch.int32, loom.int64: torch.int64, loom.float16: torch.float16,
    loom.bfloat16: torch.bfloat16, loom.float32: torch.float32, loom.float64: torch.float64,
}


@dataclass
class Sample:
    """One call: positional args and kwargs. NumPy arrays become tensors (of the dtype under test unless
    `keep_dtype` names their index); everything else is passed through unchanged."""
    args: tuple
    kwargs: dict = field(default_factory=dict)
    keep_dtype: tuple = ()  # indices of array args whose own dtype is kept (indices, masks)
    name: str = ""


@dataclass
class OpInfo:
    name: str
    loom_fn: Callable  # called with loom tensors
    torch_fn: Callable  # called with torch tensors
    samples: Callable[[Any, np.random.Generator], Iterable[Sample]]  # (loom dtype, rng) -> samples
    dtypes: tuple = FLOATS
    grad: bool = True  # differentiable: checked against torch autograd and finite differences
    grad_args: tuple | None = None  # indices of tensor args to differentiate (default: all float arrays)
    value_scale: float = 1.0  # loosens value tolerances for ops with large rounding (reductions)
    noncontiguous: bool = True
    fd: bool = True  # run finite differences (off for ops with kinks at random points)
    skip_torch_dtypes: tuple = ()  # dtypes torch lacks on the CPU for this op (still checked against float64)


def rand(rng, shape, low=-2.0, high=2.0):
    return rng.uniform(low, high, size=shape)


def positive(rng, shape, low=0.5, high=2.0):
    return rng.uniform(low, high, size=shape)


def ints(rng, shape, low=-5, high=6):
    return rng.integers(low, high, size=shape)
