"""Matrix products."""
import torch

import loom
from op_db.common import FLOATS, OpInfo, Sample, ints, rand

MATMUL_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)),
                 ((2, 3), (5, 3, 4)), ((2, 1, 2, 3), (4, 3, 2)), ((3,), (2, 3, 4)), ((2, 0), (0, 3)), ((0, 3), (3, 2))]


def pairs(shapes):
    def make(dtype, rng):
        for sa, sb in shapes:
            if dtype.is_floating_point:
                yield Sample((rand(rng, sa), rand(rng, sb)), name=f"{sa}@{sb}")
            else:
                yield Sample((ints(rng, sa), ints(rng, sb)), name=f"{sa}@{sb}")
    return make


OPS = [
    OpInfo("matmul", loom.matmul, torch.matmul, pairs(MATMUL_SHAPES), dtypes=FLOATS + (loom.int64, loom.int32),
           value_scale=10),
    OpInfo("mm", loom.mm, torch.mm, pairs([((3, 4), (4, 5)), ((1, 7), (7, 1))]), dtypes=FLOATS, value_scale=10),
    # Batch 6: at 2 threads the batch runs one single-threaded product per thread (tests/python/test_matmul_paths.py
    # covers thread counts and operand layouts).
    OpInfo("bmm", loom.bmm, torch.bmm, pairs([((2, 3, 4), (2, 4, 5)), ((6, 5, 4), (6, 4, 3))]), dtypes=FLOATS,
           value_scale=10),
    OpInfo("addmm", lambda i, a, b: loom.addmm(i, a, b, beta=0.5, alpha=2.0),
           lambda i, a, b: torch.addmm(i, a, b, beta=0.5, alpha=2.0),
           lambda d, rng: [Sample((rand(rng, (3, 5)), rand(rng, (3, 4)), rand(rng, (4, 5)))),
                           Sample((rand(rng, (5,)), rand(rng, (3, 4)), rand(rng, (4, 5)))),
                           Sample((rand(rng, (3, 1)), rand(rng, (3, 4)), rand(rng, (4, 5))), name="column")],
           value_scale=10),
    OpInfo("addmm_beta1", lambda i, a, b: loom.addmm(i, a, b), lambda i, a, b: torch.addmm(i, a, b),
           lambda d, rng: [Sample((rand(rng, (5,)), rand(rng, (3, 4)), rand(rng, (4, 5))))], value_scale=10),
    OpInfo("linear", loom.linear, torch.nn.functional.linear,
           lambda d, rng: [Sample((rand(rng, (2, 3, 4)), rand(rng, (5, 4)), rand(rng, (5,)))),
                           Sample((rand(rng, (3, 4)), rand(rng, (5, 4)), rand(rng, (5,))), name="2d_bias"),
                           Sample((rand(rng, (3, 4)), rand(rng, (5, 4))), name="2d"),
                           Sample((rand(rng, (4,)), rand(rng, (5, 4))))], value_scale=10),
    OpInfo("outer", loom.outer, torch.outer, pairs([((3,), (4,))])),
    OpInfo("dot", loom.dot, torch.dot, pairs([((5,), (5,))]), value_scale=10),
    OpInfo("einsum", lambda *ops, eq: loom.einsum(eq, *ops), lambda *ops, eq: torch.einsum(eq, *ops),
           lambda d, rng: [Sample((rand(rng, (3, 4)), rand(rng, (4, 5))), {"eq": "ij,jk->ik"}, name="mm"),
                           Sample((rand(rng, (2, 3, 4)), rand(rng, (2, 5, 4))), {"eq": "bqd,bkd->bqk"}, name="bmm_t"),
                           Sample((rand(rng, (2, 3, 4, 5)), rand(rng, (2, 3, 6, 5))), {"eq": "bhqd,bhkd->bhqk"},
                                  name="attention"),
                           Sample((rand(rng, (3,)), rand(rng, (4,))), {"eq": "i,j->ij"}, name="outer"),
                           Sample((rand(rng, (3, 4)), rand(rng, (3, 4))), {"eq": "ij,ij->i"}, name="rowdot"),
                           Sample((rand(rng, (3, 4)), rand(rng, (4, 2))), {"eq": "ij,jk"}, name="implicit"),
                           Sample((rand(rng, (2, 3, 4)), rand(rng, (4, 5))), {"eq": "...j,jk->...k"}, name="ellipsis"),
                           Sample((rand(rng, (3, 4)), rand(rng, (5,))), {"eq": "ij,k->ik"}, name="sum_unlisted"),
                           Sample((rand(rng, (3, 4, 2)),), {"eq": "ijk->kj"}, name="single")], value_scale=10),
    OpInfo("matmul_operator", lambda a, b: a @ b, lambda a, b: a @ b, pairs([((2, 3), (3, 2))]), value_scale=10),
]
