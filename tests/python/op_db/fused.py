"""The fused reduction-family kernels at sizes that reach their vector bodies and tails (1, 7, 8, 9, 31, 1000+):
sums, softmax/log_softmax (last and inner dims, masked -inf entries), layer norm, RMS norm, cross-entropy. test_fused_capability.py runs
these entries (and the small ones of reduce/nn/loss) on both CPU paths, scalar and AVX2."""
import numpy as np
import torch
import torch.nn.functional as TF

import loom
import loom.nn.functional as LF
from op_db.common import OpInfo, Sample, rand

TAILS = (1, 7, 8, 9, 31, 1000)


def sum_samples(dtype, rng):
    for n in TAILS + (70001,):
        yield Sample((rand(rng, (n,)),), name=f"({n},) all")
    yield Sample((rand(rng, (3, 1000)),), {"dim": 1}, name="rows 1000")
    for inner in (1, 7, 9, 70, 131):
        yield Sample((rand(rng, (300, inner)),), {"dim": 0}, name=f"(300, {inner}) dim 0")
    yield Sample((rand(rng, (3, 200, 9)),), {"dim": 1, "keepdim": True}, name="(3, 200, 9) dim 1")
    yield Sample((rand(rng, (4, 50, 6)),), {"dim": (0, 2)}, name="(4, 50, 6) dims (0, 2)")


def extreme_samples(dtype, rng):
    for sample in sum_samples(dtype, rng):
        kwargs = dict(sample.kwargs)
        kwargs.setdefault("dim", tuple(range(sample.args[0].ndim)))
        yield Sample(sample.args, kwargs, name=sample.name)
    x = rand(rng, (5, 37))
    x[1, 20] = x[3, 0] = x[4, 36] = np.nan
    yield Sample((x,), {"dim": 1}, name="nan rows")
    yield Sample((np.ascontiguousarray(x.T),), {"dim": 0}, name="nan columns")


def softmax_samples(dtype, rng):
    for n in TAILS + (1031,):
        yield Sample((rand(rng, (3, n), -4, 4),), {"dim": -1}, name=f"(3, {n}) last dim")
    for inner in (1, 3, 8, 10, 17):
        yield Sample((rand(rng, (2, 9, inner), -4, 4),), {"dim": 1}, name=f"(2, 9, {inner}) dim 1")
    yield Sample((rand(rng, (40, 3), -4, 4),), {"dim": 0}, name="(40, 3) dim 0")


def masked_softmax_samples(dtype, rng):
    for shape, dim in (((4, 37), -1), ((4, 37, 5), 1), ((3, 9), 0)):
        x = rand(rng, shape, -4, 4)
        x[rng.random(shape) < 0.3] = -np.inf
        yield Sample((x,), {"dim": dim}, name=f"{shape} dim={dim} masked")


def softmax_special_samples(dtype, rng):
    """Whole -inf rows, +inf and NaN entries: values only (torch gives NaN rows)."""
    x = rand(rng, (5, 19), -4, 4)
    x[0, :] = -np.inf
    x[1, 3] = np.inf
    x[2, 17] = np.nan
    x[3, :] = np.inf
    yield Sample((x,), {"dim": -1}, name="inf/nan rows")
    yield Sample((np.ascontiguousarray(x.T),), {"dim": 0}, name="inf/nan columns")


def layer_norm_samples(dtype, rng):
    for n in TAILS + (1031,):
        yield Sample((rand(rng, (3, n)), (n,), rand(rng, (n,)), rand(rng, (n,))), name=f"(3, {n}) affine")
    yield Sample((rand(rng, (2, 4, 9)), (9,)), {"eps": 1e-3}, name="no affine")
    yield Sample((rand(rng, (2, 3, 20)), (3, 20), rand(rng, (3, 20))), name="two dims, weight only")
    yield Sample((rand(rng, (5, 33), 10, 12), (33,), None, rand(rng, (33,))), name="offset mean, bias only")


def rms_norm_samples(dtype, rng):
    for n in TAILS + (1031,):
        yield Sample((rand(rng, (3, n)), (n,), rand(rng, (n,))), name=f"(3, {n}) weight")
    yield Sample((rand(rng, (2, 4, 9)), (9,)), {"eps": 1e-3}, name="no weight")
    yield Sample((rand(rng, (2, 3, 20)), (3, 20), rand(rng, (3, 20))), name="two dims")


def cross_entropy_samples(dtype, rng):
    for C in TAILS:
        t = rng.integers(0, C, size=6)
        yield Sample((rand(rng, (6, C), -4, 4), t), {}, keep_dtype=(1,), name=f"(6, {C}) mean")
        t2 = t.copy()
        t2[::4] = -100
        yield Sample((rand(rng, (6, C), -4, 4), t2, rng.uniform(0.5, 2, C)),
                     {"reduction": "none", "label_smoothing": 0.15}, keep_dtype=(1,), name=f"(6, {C}) weight ignore none")
    t = rng.integers(0, 33, size=9)
    t[1] = 5
    yield Sample((rand(rng, (9, 33), -4, 4), t), {"ignore_index": 5, "reduction": "sum", "label_smoothing": 0.3},
                 keep_dtype=(1,), name="ignore_index=5 sum smoothing")
    yield Sample((rand(rng, (9, 33), -4, 4), t, rng.uniform(0.5, 2, 33)), {"label_smoothing": 0.2},
                 keep_dtype=(1,), name="weight mean smoothing")


def all_ignored_samples(dtype, rng):
    for reduction in ("mean", "sum", "none"):
        yield Sample((rand(rng, (4, 9), -4, 4), np.full(4, -100)), {"reduction": reduction}, keep_dtype=(1,),
                     name=f"all ignored {reduction}")


OPS = [
    OpInfo("sum_wide", loom.sum, torch.sum, sum_samples, value_scale=10),
    OpInfo("mean_wide", loom.mean, torch.mean, sum_samples, value_scale=10),
    OpInfo("amax_wide", loom.amax, torch.amax, extreme_samples, fd=False),
    OpInfo("amin_wide", loom.amin, torch.amin, extreme_samples, fd=False),
    OpInfo("softmax_wide", loom.softmax, torch.softmax, softmax_samples),
    OpInfo("log_softmax_wide", loom.log_softmax, torch.log_softmax, softmax_samples),
    OpInfo("softmax_masked", loom.softmax, torch.softmax, masked_softmax_samples, fd=False),
    OpInfo("log_softmax_masked", loom.log_softmax, torch.log_softmax, masked_softmax_samples, grad=False),
    OpInfo("softmax_special", lambda x, dim: (x.softmax(dim), x.log_softmax(dim)),
           lambda x, dim: (x.softmax(dim), x.log_softmax(dim)), softmax_special_samples, grad=False),
    OpInfo("cross_entropy_wide", LF.cross_entropy, TF.cross_entropy, cross_entropy_samples, grad_args=(0,),
           value_scale=10),
    OpInfo("cross_entropy_all_ignored", LF.cross_entropy, TF.cross_entropy, all_ignored_samples, grad=False),
    OpInfo("rms_norm_wide", LF.rms_norm, TF.rms_norm, rms_norm_samples, value_scale=10),
    OpInfo("layer_norm_wide", LF.layer_norm, TF.layer_norm, layer_norm_samples, value_scale=10),
]

# Fused first-order backward ops: checked through the gradients of the ops above (grad mode is off while a
# first-order backward runs) and against the differentiable formulas by test_fused_capability.py.
COVERED_ELSEWHERE = {"softmax_backward", "log_softmax_backward", "native_layer_norm", "layer_norm_backward",
                     "cross_entropy_loss", "cross_entropy_backward"}
