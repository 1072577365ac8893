"""Softmax-family functionals and loss functions (torch.nn.functional)."""
import warnings

import numpy as np
import torch.nn.functional as TF

import loom
import loom.nn.functional as LF
from op_db.common import FLOATS, OpInfo, Sample, rand

REDUCTIONS = ("mean", "sum", "none")
LOSS_DTYPES = FLOATS


def fn(name):
    """The loom and torch versions of F.<name>, with torch's deprecation warnings silenced."""
    def quiet(f):
        def call(*args, **kwargs):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return f(*args, **kwargs)
        return call
    return quiet(getattr(LF, name)), quiet(getattr(TF, name))


def class_targets(rng, shape, C, ignore=None):
    t = rng.integers(0, C, size=shape)
    if ignore is not None and t.size:
        t.reshape(-1)[:: 3] = ignore
    return np.asarray(t, dtype=np.int64)


def probabilities(rng, shape, axis):
    x = np.exp(rand(rng, shape))
    return x / x.sum(axis=axis, keepdims=True)


def cross_entropy_samples(dtype, rng):
    for reduction in REDUCTIONS:
        yield Sample((rand(rng, (4, 5)), class_targets(rng, (4,), 5)), {"reduction": reduction}, keep_dtype=(1,),
                     name=f"(4, 5) {reduction}")
        yield Sample((rand(rng, (2, 3, 2, 2)), class_targets(rng, (2, 2, 2), 3)), {"reduction": reduction},
                     keep_dtype=(1,), name=f"(2, 3, 2, 2) {reduction}")
        yield Sample((rand(rng, (4, 5)), class_targets(rng, (4,), 5, ignore=-100), rng.uniform(0.5, 2, 5)),
                     {"reduction": reduction}, keep_dtype=(1,), name=f"weight ignore {reduction}")
        yield Sample((rand(rng, (6, 5)), class_targets(rng, (6,), 5, ignore=2)),
                     {"reduction": reduction, "ignore_index": 2, "label_smoothing": 0.2}, keep_dtype=(1,),
                     name=f"ignore_index=2 smoothing {reduction}")
        yield Sample((rand(rng, (6, 5)), class_targets(rng, (6,), 5, ignore=-100), rng.uniform(0.5, 2, 5)),
                     {"reduction": reduction, "label_smoothing": 0.1}, keep_dtype=(1,),
                     name=f"weight smoothing {reduction}")
        yield Sample((rand(rng, (4, 5)), probabilities(rng, (4, 5), 1)), {"reduction": reduction},
                     name=f"probabilities {reduction}")
        yield Sample((rand(rng, (2, 3, 4)), probabilities(rng, (2, 3, 4), 1), rng.uniform(0.5, 2, 3)),
                     {"reduction": reduction, "label_smoothing": 0.3}, name=f"probabilities weight smoothing {reduction}")
    yield Sample((rand(rng, (5,)), np.asarray(3, dtype=np.int64)), {}, keep_dtype=(1,), name="unbatched")
    yield Sample((rand(rng, (0, 5)), np.zeros((0,), dtype=np.int64)), {"reduction": "sum"}, keep_dtype=(1,), name="empty")


def nll_samples(dtype, rng):
    for reduction in REDUCTIONS:
        yield Sample((rand(rng, (4, 5)), class_targets(rng, (4,), 5)), {"reduction": reduction}, keep_dtype=(1,),
                     name=f"(4, 5) {reduction}")
        yield Sample((rand(rng, (2, 3, 4)), class_targets(rng, (2, 4), 3, ignore=1), rng.uniform(0.5, 2, 3)),
                     {"reduction": reduction, "ignore_index": 1}, keep_dtype=(1,), name=f"(2, 3, 4) weight {reduction}")


def pair_samples(dtype, rng, kwargs_list=({},), weighted=False):
    for kwargs in kwargs_list:
        for reduction in REDUCTIONS:
            kw = dict(kwargs, reduction=reduction)
            yield Sample((rand(rng, (3, 4)), rand(rng, (3, 4))), kw, name=f"{kw}")
            yield Sample((rand(rng, (2, 3, 4)), rand(rng, (4,))), kw, name=f"broadcast {kw}")
            if weighted:
                yield Sample((rand(rng, (3, 4)), rand(rng, (3, 4))), dict(kw), name=f"no weight {kw}")
    yield Sample((rand(rng, ()), rand(rng, ())), {}, name="0-d")


def weighted_samples(dtype, rng, kwargs=None):
    for reduction in REDUCTIONS:
        yield Sample((rand(rng, (3, 4)), rand(rng, (3, 4)), rng.uniform(0.5, 2, (3, 4))),
                     dict(kwargs or {}, reduction=reduction), name=f"weight {reduction}")


def bce_samples(dtype, rng):
    for reduction in REDUCTIONS:
        yield Sample((rng.uniform(0.05, 0.95, (3, 4)), rng.uniform(0, 1, (3, 4))), {"reduction": reduction},
                     name=reduction)
        yield Sample((rng.uniform(0.05, 0.95, (3, 4)), rng.uniform(0, 1, (3, 4)), rng.uniform(0.5, 2, (4,))),
                     {"reduction": reduction}, name=f"weight {reduction}")


def bce_edge_samples(dtype, rng):
    yield Sample((np.array([0.0, 1.0, 0.5, 1.0]), np.array([0.0, 1.0, 1.0, 0.0])), {"reduction": "none"}, name="0 and 1")


def bce_logits_samples(dtype, rng):
    for reduction in REDUCTIONS:
        yield Sample((rand(rng, (3, 4), -3, 3), rng.uniform(0, 1, (3, 4))), {"reduction": reduction}, name=reduction)
        yield Sample((rand(rng, (3, 4), -3, 3), rng.uniform(0, 1, (3, 4)), rng.uniform(0.5, 2, (3, 1))),
                     {"reduction": reduction, "pos_weight": None}, name=f"weight {reduction}")
    yield Sample((np.array([-200.0, 200.0, 0.0, 30.0]), np.array([1.0, 0.0, 0.5, 1.0])), {}, name="extreme logits")


def with_weight(lib_fn):
    """weight passed by keyword (its positional slot is size_average/reduction in torch's signatures)."""
    def call(x, t, weight, **kw):
        return lib_fn(x, t, weight=weight, **kw)
    return call


def bce_pos_weight(lib_fn):
    def call(x, t, pos_weight, **kw):
        return lib_fn(x, t, pos_weight=pos_weight, **kw)
    return call


def pos_weight_samples(dtype, rng):
    for reduction in REDUCTIONS:
        yield Sample((rand(rng, (3, 4), -3, 3), rng.uniform(0, 1, (3, 4)), rng.uniform(0.5, 3, (4,))),
                     {"reduction": reduction}, name=f"pos_weight {reduction}")


def kl_samples(dtype, rng):
    for reduction in REDUCTIONS + ("batchmean",):
        log_p = np.log(probabilities(rng, (3, 4), 1))
        yield Sample((log_p, probabilities(rng, (3, 4), 1)), {"reduction": reduction}, name=reduction)
        yield Sample((log_p, np.log(probabilities(rng, (3, 4), 1))), {"reduction": reduction, "log_target": True},
                     name=f"log_target {reduction}")


def kl_zero_target_samples(dtype, rng):
    target = probabilities(rng, (3, 4), 1)
    target[0, 1] = 0.0
    yield Sample((np.log(probabilities(rng, (3, 4), 1)), target), {"reduction": "sum"}, name="zero target")


def softmax_f_samples(dtype, rng):
    for shape, dim in [((3, 4), 1), ((2, 3, 4), 0), ((5,), -1), ((2, 3, 4), None), ((3, 4), None)]:
        yield Sample((rand(rng, shape),), {"dim": dim}, name=f"{shape} dim={dim}")


def signs(rng, shape):
    return rng.choice([-1.0, 1.0], size=shape)


def poisson_samples(dtype, rng):
    for reduction in REDUCTIONS:
        yield Sample((rand(rng, (3, 4)), rng.poisson(2.0, (3, 4)).astype(np.float64)), {"reduction": reduction},
                     name=reduction)
        yield Sample((rng.uniform(0.2, 3, (3, 4)), rng.poisson(2.0, (3, 4)).astype(np.float64)),
                     {"reduction": reduction, "log_input": False, "full": True}, name=f"rates full {reduction}")


def gaussian_samples(dtype, rng):
    for reduction in REDUCTIONS:
        yield Sample((rand(rng, (3, 4)), rand(rng, (3, 4)), rng.uniform(0.2, 2, (3, 4))), {"reduction": reduction},
                     name=reduction)
    yield Sample((rand(rng, (3, 4)), rand(rng, (3, 4)), rng.uniform(0.2, 2, (3,))), {"full": True}, name="var (N)")
    yield Sample((rand(rng, (3, 4)), rand(rng, (3, 4)), rng.uniform(0.2, 2, (3, 1))), {}, name="var (N, 1)")


def gaussian_clamped_samples(dtype, rng):
    yield Sample((rand(rng, (3, 4)), rand(rng, (3, 4)), np.array([[1e-8, 0.5, 1.0, 2.0]] * 3)), {}, name="clamped var")


def margin_ranking_samples(dtype, rng):
    for reduction in REDUCTIONS:
        yield Sample((rand(rng, (6,)), rand(rng, (6,)), signs(rng, (6,))), {"reduction": reduction, "margin": 0.3},
                     name=reduction)


def hinge_samples(dtype, rng):
    for reduction in REDUCTIONS:
        yield Sample((rand(rng, (3, 4)), signs(rng, (3, 4))), {"reduction": reduction, "margin": 0.7}, name=reduction)


def soft_margin_samples(dtype, rng):
    for reduction in REDUCTIONS:
        yield Sample((rand(rng, (3, 4)), signs(rng, (3, 4))), {"reduction": reduction}, name=reduction)


def multilabel_samples(dtype, rng):
    for reduction in REDUCTIONS:
        yield Sample((rand(rng, (3, 4)), rng.integers(0, 2, (3, 4)).astype(np.float64)), {"reduction": reduction},
                     name=reduction)
        yield Sample((rand(rng, (3, 4)), rng.integers(0, 2, (3, 4)).astype(np.float64), rng.uniform(0.5, 2, (4,))),
                     {"reduction": reduction}, name=f"weight {reduction}")


def cosine_samples(dtype, rng):
    for reduction in REDUCTIONS:
        yield Sample((rand(rng, (5, 4)), rand(rng, (5, 4)), signs(rng, (5,))), {"reduction": reduction, "margin": 0.2},
                     name=reduction)
    yield Sample((rand(rng, (4,)), rand(rng, (4,)), np.array(-1.0)), {}, name="unbatched")


def triplet_samples(dtype, rng):
    for reduction in REDUCTIONS:
        yield Sample((rand(rng, (5, 4)), rand(rng, (5, 4)), rand(rng, (5, 4))), {"reduction": reduction}, name=reduction)
    yield Sample((rand(rng, (5, 4)), rand(rng, (5, 4)), rand(rng, (5, 4))), {"p": 1.0, "swap": True, "margin": 2.0},
                 name="p=1 swap")


OPS = [
    OpInfo("F.softmax", *fn("softmax"), softmax_f_samples, dtypes=FLOATS),
    OpInfo("F.log_softmax", *fn("log_softmax"), softmax_f_samples, dtypes=FLOATS),
    OpInfo("F.softmin", *fn("softmin"), softmax_f_samples, dtypes=FLOATS),
    OpInfo("F.cross_entropy", *fn("cross_entropy"), cross_entropy_samples, dtypes=LOSS_DTYPES, grad_args=(0,),
           value_scale=10),
    OpInfo("F.cross_entropy_prob_target_grad", *fn("cross_entropy"),
           lambda d, rng: [s for s in cross_entropy_samples(d, rng) if s.name.startswith("probabilities")],
           dtypes=(loom.float32, loom.float64), grad_args=(0, 1)),
    OpInfo("F.nll_loss", *fn("nll_loss"), nll_samples, dtypes=LOSS_DTYPES, grad_args=(0,), value_scale=10),
    OpInfo("F.mse_loss", *fn("mse_loss"), pair_samples, dtypes=FLOATS, value_scale=10),
    OpInfo("F.mse_loss_weight", *[with_weight(f) for f in fn("mse_loss")], weighted_samples, dtypes=(loom.float32, loom.float64)),
    OpInfo("F.l1_loss", *fn("l1_loss"), pair_samples, dtypes=FLOATS, value_scale=10),
    OpInfo("F.l1_loss_weight", *[with_weight(f) for f in fn("l1_loss")], weighted_samples, dtypes=(loom.float32, loom.float64)),
    OpInfo("F.smooth_l1_loss", *fn("smooth_l1_loss"),
           lambda d, rng: pair_samples(d, rng, ({}, {"beta": 0.5}, {"beta": 0.0})), dtypes=FLOATS, value_scale=10),
    OpInfo("F.huber_loss", *fn("huber_loss"), lambda d, rng: pair_samples(d, rng, ({}, {"delta": 0.7})),
           dtypes=FLOATS, value_scale=10),
    OpInfo("F.huber_loss_weight", *[with_weight(f) for f in fn("huber_loss")], weighted_samples, dtypes=(loom.float32, loom.float64)),
    OpInfo("F.binary_cross_entropy", *fn("binary_cross_entropy"), bce_samples, dtypes=LOSS_DTYPES, value_scale=10,
           grad_args=(0, 1)),
    # Input gradients at p = 0 and 1 are torch's (x - t) / max(x (1 - x), 1e-12); torch's target gradient there is
    # +-inf (unclamped logs), loom's the clamped loss's derivative: test_numeric_edges.py.
    OpInfo("F.binary_cross_entropy_edges", *fn("binary_cross_entropy"), bce_edge_samples,
           dtypes=(loom.float32, loom.float64), grad_args=(0,), fd=False),
    OpInfo("F.binary_cross_entropy_with_logits", *fn("binary_cross_entropy_with_logits"), bce_logits_samples,
           dtypes=LOSS_DTYPES, value_scale=10, grad_args=(0, 1)),
    OpInfo("F.binary_cross_entropy_with_logits_pos_weight",
           *[bce_pos_weight(f) for f in fn("binary_cross_entropy_with_logits")], pos_weight_samples,
           dtypes=(loom.float32, loom.float64), grad_args=(0, 1)),
    OpInfo("F.kl_div", *fn("kl_div"), kl_samples, dtypes=LOSS_DTYPES, value_scale=10),
    OpInfo("F.kl_div_zero_target", *fn("kl_div"), kl_zero_target_samples, dtypes=(loom.float32, loom.float64),
           grad_args=(0,)),
    OpInfo("F.poisson_nll_loss", *fn("poisson_nll_loss"), poisson_samples, dtypes=LOSS_DTYPES, value_scale=10,
           grad_args=(0,)),
    OpInfo("F.gaussian_nll_loss", *fn("gaussian_nll_loss"), gaussian_samples, dtypes=LOSS_DTYPES, value_scale=10),
    # The eps clamp passes gradients straight through (like torch), which finite differences cannot see.
    OpInfo("F.gaussian_nll_loss_clamped", *fn("gaussian_nll_loss"), gaussian_clamped_samples,
           dtypes=(loom.float32, loom.float64), fd=False),
    OpInfo("F.margin_ranking_loss", *fn("margin_ranking_loss"), margin_ranking_samples, dtypes=LOSS_DTYPES,
           grad_args=(0, 1)),
    OpInfo("F.hinge_embedding_loss", *fn("hinge_embedding_loss"), hinge_samples, dtypes=LOSS_DTYPES, grad_args=(0,)),
    OpInfo("F.soft_margin_loss", *fn("soft_margin_loss"), soft_margin_samples, dtypes=LOSS_DTYPES, grad_args=(0,)),
    OpInfo("F.multilabel_soft_margin_loss", *fn("multilabel_soft_margin_loss"), multilabel_samples, dtypes=LOSS_DTYPES,
           grad_args=(0, 1)),
    OpInfo("F.cosine_embedding_loss", *fn("cosine_embedding_loss"), cosine_samples, dtypes=LOSS_DTYPES,
           grad_args=(0, 1)),
    OpInfo("F.triplet_margin_loss", *fn("triplet_margin_loss"), triplet_samples, dtypes=LOSS_DTYPES, value_scale=10),
]

# Registry ops checked through the entries above.
COVERED_ELSEWHERE = {
    "binary_cross_entropy",  # the unreduced loss behind F.binary_cross_entropy (gradient at 0 and 1: test_numeric_edges.py)
}
