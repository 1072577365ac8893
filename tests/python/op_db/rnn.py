"""_split_steps, the per-time-step split of the recurrent layers (their values and gradients: test_rnn.py)."""
from loom import _C

from op_db.common import FLOATS, OpInfo, Sample, rand


def one(shape):
    return lambda dtype, rng: [Sample((rand(rng, shape),))]


OPS = [
    OpInfo("_split_steps", lambda x: _C._split_steps(x, [3, 2, 2, 0]), lambda x: x.split([3, 2, 2, 0]), one((7, 4)),
           dtypes=FLOATS),
    OpInfo("_split_steps_3d", lambda x: _C._split_steps(x, [1, 1]), lambda x: x.split([1, 1]), one((2, 3, 2)),
           dtypes=FLOATS),
]
