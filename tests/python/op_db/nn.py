"""Neural-network ops: convolution, unfold/fold, pooling, normalisation, dropout, attention."""
import torch.nn.functional as TF

import loom
import loom.nn.functional as F
from op_db.common import OpInfo, Sample, positive, rand

# ---- convolution ----

# (input shape, weight shape, with bias, kwargs)
CONV2D_CASES = [
    ((2, 3, 5, 6), (4, 3, 3, 3), True, {}),
    ((1, 2, 6, 5), (3, 2, 2, 3), False, {"stride": 2, "padding": 1}),
    ((2, 4, 7, 6), (6, 2, 3, 2), True, {"stride": (2, 1), "padding": (1, 0), "groups": 2}),
    ((1, 2, 7, 7), (2, 2, 3, 3), True, {"dilation": 2, "padding": 2}),
    ((1, 2, 5, 6), (3, 2, 2, 3), True, {"padding": "same"}),  # asymmetric 'same' padding
    ((1, 2, 6, 5), (3, 2, 3, 3), False, {"padding": "same", "dilation": (2, 1)}),
    ((1, 2, 4, 4), (3, 2, 3, 3), True, {"padding": "valid"}),
    ((4, 5, 5), (4, 1, 3, 3), True, {"groups": 4, "padding": 1}),  # unbatched, depthwise
    ((2, 3, 4, 4), (2, 3, 1, 1), True, {}),
    ((0, 3, 4, 4), (2, 3, 3, 3), True, {"padding": 1}),  # empty batch
    # float32/float64 run the fused conv2d op: its stride-1 grad-input path (flipped weight), 1x1 without im2col,
    # strided col2im path, groups, more images than threads (uneven split), padding beyond the kernel.
    ((5, 4, 6, 7), (6, 4, 3, 3), True, {"padding": 1}),
    ((3, 4, 5, 5), (6, 2, 1, 1), True, {"groups": 2}),
    ((3, 4, 6, 5), (4, 2, 3, 3), False, {"stride": 2, "padding": (1, 2), "groups": 2}),
    ((2, 3, 5, 4), (2, 3, 3, 2), True, {"padding": (3, 2)}),
    ((3, 2, 6, 6), (3, 2, 2, 2), True, {"stride": 3, "dilation": 2}),
    ((2, 3, 4, 5), (4, 3, 1, 1), False, {"stride": 2}),
]

CONV1D_CASES = [
    ((2, 3, 9), (4, 3, 3), True, {}),
    ((1, 4, 8), (6, 2, 2), True, {"stride": 2, "padding": 1, "groups": 2}),
    ((1, 2, 8), (3, 2, 3), False, {"dilation": 2, "padding": "same"}),
    ((3, 7), (2, 3, 4), True, {"padding": "same"}),  # unbatched, asymmetric 'same'
]


# weight (C_in, C_out/groups, k...); out channels = weight.shape[1] * groups
CONV_TRANSPOSE2D_CASES = [
    ((2, 3, 4, 5), (3, 2, 3, 3), True, {}),
    ((1, 2, 4, 3), (2, 3, 2, 3), False, {"stride": 2, "padding": 1}),
    ((1, 4, 3, 4), (4, 2, 3, 2), True, {"stride": (2, 3), "padding": (1, 0), "output_padding": (1, 2), "groups": 2}),
    ((1, 2, 4, 4), (2, 2, 3, 3), True, {"dilation": 2, "padding": 1, "stride": 2, "output_padding": 1}),
    ((3, 4, 4), (3, 2, 2, 2), True, {"stride": 2}),  # unbatched
]

CONV_TRANSPOSE1D_CASES = [
    ((2, 3, 6), (3, 4, 3), True, {}),
    ((1, 4, 5), (4, 1, 2), True, {"stride": 3, "padding": 1, "output_padding": 2, "groups": 2}),
    ((3, 5), (3, 2, 4), False, {"dilation": 2}),  # unbatched
]


def conv_samples(cases, transposed=False):
    def make(dtype, rng):
        for x, w, bias, kwargs in cases:
            out_channels = w[1] * kwargs.get("groups", 1) if transposed else w[0]
            args = (rand(rng, x), rand(rng, w)) + ((rand(rng, (out_channels,)),) if bias else ())
            yield Sample(args, kwargs, name=f"{x}*{w} {kwargs}")
    return make


# ---- unfold / fold ----

UNFOLD_CASES = [
    ((2, 3, 5, 6), {"kernel_size": 2}),
    ((1, 2, 6, 7), {"kernel_size": (2, 3), "stride": (2, 1), "padding": 1, "dilation": (1, 2)}),
    ((2, 5, 4), {"kernel_size": 3, "padding": 1}),  # unbatched
]

FOLD_CASES = [
    ((2, 3 * 4, 20), {"output_size": (5, 6), "kernel_size": 2}),
    ((1, 2 * 6, 20), {"output_size": (6, 7), "kernel_size": (2, 3), "stride": (2, 1), "padding": 1,
                      "dilation": (1, 2)}),
    ((2 * 9, 16), {"output_size": 4, "kernel_size": 3, "padding": 1}),  # unbatched
]


def shaped_samples(cases, low=-2.0):
    def make(dtype, rng):
        for shape, kwargs in cases:
            yield Sample((rand(rng, shape, low=low),), kwargs, name=f"{shape} {kwargs}")
    return make


# ---- pooling ----

MAX_POOL_CASES = [
    ((2, 3, 6, 7), {"kernel_size": 2}),
    ((1, 2, 7, 7), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ((1, 2, 8, 7), {"kernel_size": (3, 2), "stride": (2, 1), "dilation": (2, 1), "padding": (1, 1)}),
    ((2, 6, 5), {"kernel_size": 2, "stride": 2, "ceil_mode": True}),  # unbatched
    ((1, 1, 7, 8), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    ((0, 2, 4, 4), {"kernel_size": 2}),  # empty batch
]

AVG_POOL_CASES = [
    ((2, 3, 6, 7), {"kernel_size": 2}),
    ((1, 2, 7, 7), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ((1, 2, 7, 7), {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
    ((1, 2, 8, 7), {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 1)}),
    ((2, 6, 5), {"kernel_size": 2, "stride": 2, "ceil_mode": True}),  # unbatched
    ((1, 1, 7, 8), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    ((1, 1, 7, 8), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False}),
    ((1, 2, 5, 5), {"kernel_size": 2, "divisor_override": 3}),
    ((0, 2, 4, 4), {"kernel_size": 2}),  # empty batch
]

ADAPTIVE_CASES = [
    ((2, 3, 7, 9), {"output_size": (3, 4)}),
    ((1, 2, 5, 5), {"output_size": 5}),
    ((1, 2, 6, 8), {"output_size": 1}),
    ((2, 10, 3), {"output_size": (4, None)}),  # unbatched, keep W
    ((1, 1, 3, 4), {"output_size": (5, 7)}),  # upsampling windows overlap
]


POOL1D_CASES = [
    ((2, 3, 9), {"kernel_size": 2}),
    ((1, 2, 10), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ((3, 9), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),  # unbatched
]
MAX_POOL1D_CASES = POOL1D_CASES + [((1, 2, 11), {"kernel_size": 3, "dilation": 2, "padding": 1})]
AVG_POOL1D_CASES = POOL1D_CASES + [((1, 2, 8), {"kernel_size": 3, "padding": 1, "count_include_pad": False})]
ADAPTIVE1D_CASES = [((2, 3, 10), {"output_size": 4}), ((3, 5), {"output_size": 7})]


def max_pool_indices(pool):
    return lambda x, **kw: pool(x, return_indices=True, **kw)


# ---- normalisation ----


def layer_norm_samples(dtype, rng):
    yield Sample((rand(rng, (2, 3, 5)), (5,), rand(rng, (5,)), rand(rng, (5,))), name="last dim, affine")
    yield Sample((rand(rng, (2, 3, 4)), (3, 4)), {"eps": 1e-3}, name="two dims, no affine")
    yield Sample((rand(rng, (4, 6)), [6], rand(rng, (6,))), name="weight only")
    yield Sample((rand(rng, (0, 3)), (3,), rand(rng, (3,)), rand(rng, (3,))), name="empty batch")


def rms_norm_samples(dtype, rng):
    yield Sample((rand(rng, (2, 3, 5)), (5,), rand(rng, (5,))), name="last dim, weight")
    yield Sample((rand(rng, (2, 3, 4)), (3, 4)), {"eps": 1e-3}, name="two dims, eps")
    yield Sample((rand(rng, (4, 6)), [6]), name="default eps")


def group_norm_samples(dtype, rng):
    yield Sample((rand(rng, (2, 6, 3, 2)), 3, rand(rng, (6,)), rand(rng, (6,))), name="4-D affine")
    yield Sample((rand(rng, (3, 4, 5)), 2), {"eps": 1e-3}, name="3-D")
    yield Sample((rand(rng, (2, 4)), 4, rand(rng, (4,))), name="2-D, one channel per group")


def instance_norm_samples(dtype, rng):
    yield Sample((rand(rng, (2, 3, 4, 5)), None, None, rand(rng, (3,)), rand(rng, (3,))), name="4-D affine")
    yield Sample((rand(rng, (2, 4, 6)),), {"eps": 1e-3}, name="3-D")


def batch_norm_samples(dtype, rng):
    for shape in [(4, 3), (3, 2, 5), (2, 3, 3, 2), (3, 2, 9), (2, 2, 17)]:  # rows of 9 and 17: AVX2 body + tail
        c = shape[1]
        yield Sample((rand(rng, shape), rand(rng, (c,)), positive(rng, (c,)), rand(rng, (c,)), rand(rng, (c,))),
                     name=f"{shape}")


def batch_norm_train(fn):
    # Outputs only the normalised values: running stats are checked by batch_norm_running_stats.
    return lambda x, rm, rv, w, b: fn(x, rm, rv, w, b, training=True, momentum=0.2, eps=1e-4)


def batch_norm_running_stats(fn):
    def run(x, rm, rv, w, b):
        fn(x, rm, rv, w, b, training=True, momentum=0.3)
        return rm, rv
    return run


def batch_norm_eval(fn):
    return lambda x, rm, rv, w, b: fn(x, rm, rv, w, b, training=False, eps=1e-3)


def batch_norm_no_stats(fn):
    return lambda x, rm, rv, w, b: fn(x, None, None, w, b, training=True)


# ---- dropout (deterministic cases; the random ones are in test_nn.py) ----


def dropout_scaling(fn, p):
    """Kept elements equal x/(1-p) exactly, dropped ones are 0: `where(kept, out*(1-p), x)` is x, and its
    gradient is 1 only if the gradient of out is mask/(1-p)."""
    def run(x):
        out = fn(x, p=p, training=True)
        return loom.where(out != 0, out * (1 - p), x)
    return run


# ---- attention ----


def sdpa_samples(dtype, rng):
    q, k, v = (2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7)
    yield Sample((rand(rng, q), rand(rng, k), rand(rng, v)), name="plain")
    yield Sample((rand(rng, (4, 5)), rand(rng, (6, 5)), rand(rng, (6, 3))), {"scale": 0.7}, name="2-D, scale")
    yield Sample((rand(rng, q), rand(rng, k), rand(rng, v)), {"is_causal": True}, name="causal L < S")
    yield Sample((rand(rng, (2, 6, 5)), rand(rng, (2, 4, 5)), rand(rng, (2, 4, 3))), {"is_causal": True},
                 name="causal L > S")
    mask = rng.uniform(size=(4, 6)) > 0.3
    mask[:, 0] = True  # no fully masked row
    yield Sample((rand(rng, q), rand(rng, k), rand(rng, v), mask), keep_dtype=(3,), name="bool mask")
    yield Sample((rand(rng, q), rand(rng, k), rand(rng, v), rand(rng, (3, 1, 6))), name="float mask")
    yield Sample((rand(rng, (1, 4, 3, 5)), rand(rng, (1, 2, 6, 5)), rand(rng, (1, 2, 6, 4))), {"enable_gqa": True},
                 name="grouped query heads")
    yield Sample((rand(rng, (2, 1, 4, 5)), rand(rng, (3, 6, 5)), rand(rng, (3, 6, 2))), name="broadcast batch")


def one_sample(shape):
    return lambda dtype, rng: [Sample((rand(rng, shape),))]


OPS = [
    OpInfo("conv2d", F.conv2d, TF.conv2d, conv_samples(CONV2D_CASES), value_scale=40),
    OpInfo("conv1d", F.conv1d, TF.conv1d, conv_samples(CONV1D_CASES), value_scale=40),
    OpInfo("conv_transpose2d", F.conv_transpose2d, TF.conv_transpose2d,
           conv_samples(CONV_TRANSPOSE2D_CASES, transposed=True), value_scale=40),
    OpInfo("conv_transpose1d", F.conv_transpose1d, TF.conv_transpose1d,
           conv_samples(CONV_TRANSPOSE1D_CASES, transposed=True), value_scale=40),
    OpInfo("unfold", F.unfold, TF.unfold, shaped_samples(UNFOLD_CASES)),
    OpInfo("fold", F.fold, TF.fold, shaped_samples(FOLD_CASES), value_scale=10),
    OpInfo("max_pool2d", F.max_pool2d, TF.max_pool2d, shaped_samples(MAX_POOL_CASES)),
    OpInfo("max_pool2d_with_indices", max_pool_indices(F.max_pool2d), max_pool_indices(TF.max_pool2d),
           shaped_samples(MAX_POOL_CASES)),
    OpInfo("avg_pool2d", F.avg_pool2d, TF.avg_pool2d, shaped_samples(AVG_POOL_CASES), value_scale=10),
    OpInfo("adaptive_avg_pool2d", F.adaptive_avg_pool2d, TF.adaptive_avg_pool2d, shaped_samples(ADAPTIVE_CASES),
           value_scale=10),
    OpInfo("max_pool1d", F.max_pool1d, TF.max_pool1d, shaped_samples(MAX_POOL1D_CASES)),
    OpInfo("max_pool1d_with_indices", max_pool_indices(F.max_pool1d), max_pool_indices(TF.max_pool1d),
           shaped_samples(MAX_POOL1D_CASES)),
    OpInfo("avg_pool1d", F.avg_pool1d, TF.avg_pool1d, shaped_samples(AVG_POOL1D_CASES), value_scale=10),
    OpInfo("adaptive_avg_pool1d", F.adaptive_avg_pool1d, TF.adaptive_avg_pool1d, shaped_samples(ADAPTIVE1D_CASES),
           value_scale=10),
    OpInfo("layer_norm", F.layer_norm, TF.layer_norm, layer_norm_samples, value_scale=10),
    OpInfo("rms_norm", F.rms_norm, TF.rms_norm, rms_norm_samples, value_scale=10),
    OpInfo("group_norm", F.group_norm, TF.group_norm, group_norm_samples, value_scale=10),
    OpInfo("instance_norm", F.instance_norm, TF.instance_norm, instance_norm_samples, value_scale=10),
    OpInfo("batch_norm_train", batch_norm_train(F.batch_norm), batch_norm_train(TF.batch_norm), batch_norm_samples,
           grad_args=(0, 3, 4), value_scale=10),
    OpInfo("batch_norm_running_stats", batch_norm_running_stats(F.batch_norm),
           batch_norm_running_stats(TF.batch_norm), batch_norm_samples, grad=False, value_scale=10),
    OpInfo("batch_norm_eval", batch_norm_eval(F.batch_norm), batch_norm_eval(TF.batch_norm), batch_norm_samples,
           grad_args=(0, 3, 4), value_scale=10),
    OpInfo("batch_norm_no_stats", batch_norm_no_stats(F.batch_norm), batch_norm_no_stats(TF.batch_norm),
           batch_norm_samples, grad_args=(0, 3, 4), value_scale=10),
    OpInfo("scaled_dot_product_attention", F.scaled_dot_product_attention, TF.scaled_dot_product_attention,
           sdpa_samples, value_scale=10),
    OpInfo("dropout_eval", lambda x: F.dropout(x, p=0.4, training=False),
           lambda x: TF.dropout(x, p=0.4, training=False), one_sample((3, 4))),
    OpInfo("dropout_p0", lambda x: F.dropout(x, p=0.0), lambda x: TF.dropout(x, p=0.0), one_sample((3, 4))),
    OpInfo("dropout_p1", lambda x: F.dropout(x, p=1.0), lambda x: TF.dropout(x, p=1.0), one_sample((3, 4))),
    OpInfo("dropout_scaling", dropout_scaling(F.dropout, 0.25), lambda x: x * 1, one_sample((20, 30)), fd=False,
           dtypes=(loom.float32, loom.float64)),
]

# Registry ops checked through the entries above.
COVERED_ELSEWHERE = {
    "im2col",  # unfold, conv2d, conv1d, avg_pool2d
    "col2im",  # fold, and the gradients of unfold/conv
    "max_pool2d_backward",  # gradients of max_pool2d
    "max_pool2d_gather",  # double backward of max_pool2d: test_nn.py
    "adaptive_avg_pool2d_backward",  # gradients of adaptive_avg_pool2d/1d; NaN/inf windows: test_numeric_edges.py
    "conv2d_backward",  # fused first-order backward of conv2d (float32/float64): conv2d's gradient checks
    "native_batch_norm",  # training-mode batch_norm (float32/float64): batch_norm_train / _running_stats / _no_stats
    "native_batch_norm_backward",  # its fused backward: batch_norm_train's gradient checks; test_conv_fused.py
}
