"""The reduction-family kernels (sums, softmax, layer norm, cross-entropy) on both CPU paths, scalar and AVX2,
against PyTorch: values, gradients (the fused first-order backward ops) and non-contiguous inputs, plus
double backward (create_graph=True), which takes the differentiable formulas instead of the fused ops."""
import numpy as np
import pytest
import torch

import loom
import loom.nn.functional as LF
import torch.nn.functional as TF
from harness import check_grads, check_values
from op_db import OPS
from op_db.common import FLOAT32_64

OPS_BY_NAME = {op.name: op for op in OPS}
NAMES = ["sum_wide", "mean_wide", "softmax_wide", "log_softmax_wide", "softmax_masked", "log_softmax_masked",
         "softmax_special", "layer_norm_wide", "softmax", "log_softmax", "softmax_inf", "sum", "mean", "layer_norm",
         "F.softmax", "F.log_softmax", "F.cross_entropy"]
NAMES += ["cross_entropy_wide", "cross_entropy_all_ignored", "amax_wide", "amin_wide", "amax", "amin", "rms_norm", "rms_norm_wide"]


@pytest.mark.parametrize("name", NAMES)
def test_values_and_grads(capability, name):
    op = OPS_BY_NAME[name]
    for dtype in op.dtypes:
        for sample in op.samples(dtype, np.random.default_rng(0)):
            check_values(op, sample, dtype)
    if op.noncontiguous:
        for dtype in op.dtypes[:2]:
            for sample in op.samples(dtype, np.random.default_rng(0)):
                check_values(op, sample, dtype, noncontiguous=True)
    if op.grad:
        for dtype in FLOAT32_64:
            for sample in op.samples(dtype, np.random.default_rng(0)):
                check_grads(op, sample, dtype, np.random.default_rng(1))


def double_backward(lib, f, arrays, dtype):
    """grad of sum(grad(f(*xs) . c, xs, create_graph) . d) with respect to xs."""
    rng = np.random.default_rng(3)
    xs = [lib.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
    out = f(*xs)
    c = lib.tensor(rng.uniform(-1, 1, tuple(out.shape)), dtype=dtype)
    grads = lib.autograd.grad((out * c).sum(), xs, create_graph=True)
    total = sum((g * lib.tensor(rng.uniform(-1, 1, tuple(g.shape)), dtype=dtype)).sum() for g in grads)
    second = lib.autograd.grad(total, xs, allow_unused=True)
    return [g.detach() for g in grads], [lib.zeros_like(x) if s is None else s for s, x in zip(second, xs)]


CASES = {
    "softmax": (lambda F: lambda x: F.softmax(x, dim=-1), [(3, 11)]),
    "log_softmax": (lambda F: lambda x: F.log_softmax(x, dim=1), [(2, 9, 3)]),
    "layer_norm": (lambda F: lambda x, w, b: F.layer_norm(x, (10,), w, b), [(4, 10), (10,), (10,)]),
    "rms_norm": (lambda F: lambda x, w: F.rms_norm(x, (2, 5), w, eps=1e-5), [(3, 2, 5), (2, 5)]),
    "cross_entropy": (lambda F: lambda x: F.cross_entropy(x, F_target(F), label_smoothing=0.1), [(5, 7)]),
}


def F_target(F):
    t = np.array([1, 0, 6, 3, 6])
    return torch.tensor(t) if F is TF else loom.tensor(t)


@pytest.mark.parametrize("case", sorted(CASES))
def test_double_backward(capability, case):
    make, shapes = CASES[case]
    rng = np.random.default_rng(4)
    arrays = [rng.uniform(-2, 2, s) for s in shapes]
    l_grads, l_second = double_backward(loom, make(LF), arrays, loom.float64)
    t_grads, t_second = double_backward(torch, make(TF), arrays, torch.float64)
    for lg, tg in zip(l_grads + l_second, t_grads + t_second):
        np.testing.assert_allclose(np.asarray(lg.detach().numpy()), tg.detach().numpy(), rtol=1e-6, atol=1e-7)
