"""Views and layout ops (checked through values and gradients; views also in test_views.py)."""
import torch

import loom
from op_db.common import ALL, FLOATS, OpInfo, Sample, rand


def one(shape):
    return lambda dtype, rng: [Sample((rand(rng, shape),))]


def view_op(name, shape, loom_fn, torch_fn, dtypes=FLOATS):
    return OpInfo(name, loom_fn, torch_fn, one(shape), dtypes=dtypes)


OPS = [
    view_op("view", (2, 3, 4), lambda x: x.view(6, 4), lambda x: x.view(6, 4)),
    view_op("view_infer", (2, 3, 4), lambda x: x.view(-1, 2), lambda x: x.view(-1, 2)),
    view_op("reshape", (2, 3, 4), lambda x: x.transpose(0, 2).reshape(12, 2),
            lambda x: x.transpose(0, 2).reshape(12, 2)),
    view_op("permute", (2, 3, 4), lambda x: x.permute(2, 0, 1), lambda x: x.permute(2, 0, 1)),
    view_op("transpose", (2, 3, 4), lambda x: x.transpose(-1, 0), lambda x: x.transpose(-1, 0)),
    view_op("t", (3, 4), lambda x: x.t(), lambda x: x.t()),
    view_op("expand", (3, 1), lambda x: x.expand(2, 3, 4), lambda x: x.expand(2, 3, 4)),
    view_op("broadcast_to", (1, 4), lambda x: loom.broadcast_to(x, (3, 4)), lambda x: torch.broadcast_to(x, (3, 4))),
    view_op("narrow", (5, 4), lambda x: x.narrow(0, 1, 3), lambda x: x.narrow(0, 1, 3)),
    view_op("select", (5, 4), lambda x: x.select(1, -1), lambda x: x.select(1, -1)),
    view_op("squeeze", (1, 3, 1), lambda x: x.squeeze(), lambda x: x.squeeze()),
    view_op("squeeze_dim", (1, 3, 1), lambda x: x.squeeze(2), lambda x: x.squeeze(2)),
    view_op("unsqueeze", (3, 4), lambda x: x.unsqueeze(-1), lambda x: x.unsqueeze(-1)),
    view_op("flatten", (2, 3, 4), lambda x: x.flatten(1), lambda x: x.flatten(1)),
    view_op("unflatten", (2, 12), lambda x: x.unflatten(1, (3, 4)), lambda x: x.unflatten(1, (3, 4))),
    view_op("split", (7, 2), lambda x: x.split(3), lambda x: x.split(3)),
    view_op("split_sizes", (7, 2), lambda x: x.split([2, 5]), lambda x: x.split([2, 5])),
    view_op("chunk", (7, 2), lambda x: x.chunk(3), lambda x: x.chunk(3)),
    view_op("unbind", (3, 2), lambda x: x.unbind(1), lambda x: x.unbind(1)),
    view_op("movedim", (2, 3, 4), lambda x: x.movedim(0, 2), lambda x: x.movedim(0, 2)),
    view_op("contiguous", (3, 4), lambda x: x.t().contiguous(), lambda x: x.t().contiguous()),
    view_op("clone", (3, 4), lambda x: x.clone(), lambda x: x.clone()),
    OpInfo("to_dtype", lambda x: x.to(loom.float64), lambda x: x.to(torch.float64), one((3, 4)), dtypes=ALL,
           grad=True),
    # Geometry is relative to the storage, so a non-contiguous input means something else (as in PyTorch).
    OpInfo("as_strided", lambda x: x.as_strided((3, 2), (4, 1), 1), lambda x: x.as_strided((3, 2), (4, 1), 1),
           one((12,)), noncontiguous=False),
]
