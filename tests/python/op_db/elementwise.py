"""Elementwise ops: unary math, activations, binary arithmetic, comparisons, logic, where, clamp."""
import numpy as np
import torch

import loom
from op_db.common import ALL, FLOATS, INTS, OpInfo, Sample, ints, positive, rand

NUMERIC = FLOATS + INTS

# Shapes every elementwise op sees: scalar, vector, matrix, 3-D, zero-size.
UNARY_SHAPES = [(), (7,), (3, 5), (2, 3, 4), (0, 3)]
# Pairs exercising broadcasting (including 0-d and zero-size).
BINARY_SHAPES = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (3,)), ((5,), ()), ((0, 4), (4,)),
                 ((2, 3), (1, 1))]


def unary_samples(gen=rand):
    def make(dtype, rng):
        for shape in UNARY_SHAPES:
            values = gen(rng, shape) if dtype.is_floating_point else ints(rng, shape, 0 if dtype == loom.uint8 else -5)
            if dtype == loom.bool:
                values = rng.integers(0, 2, size=shape).astype(bool)
            yield Sample((np.asarray(values),), name=f"{shape}")
    return make


def binary_samples(gen_a=rand, gen_b=rand, int_b_nonzero=False):
    def make(dtype, rng):
        for sa, sb in BINARY_SHAPES:
            if dtype.is_floating_point:
                a, b = gen_a(rng, sa), gen_b(rng, sb)
            elif dtype == loom.bool:
                a, b = rng.integers(0, 2, size=sa).astype(bool), rng.integers(0, 2, size=sb).astype(bool)
            else:
                low = 0 if dtype == loom.uint8 else -5
                a, b = ints(rng, sa, low), ints(rng, sb, 1 if int_b_nonzero else low)
                if int_b_nonzero and low < 0:
                    b = np.where(b == 0, 3, b)
            yield Sample((np.asarray(a), np.asarray(b)), name=f"{sa}x{sb}")
    return make


def scalar_samples(values):
    """tensor (op) python-number samples: checks wrapped-number type promotion."""
    def make(dtype, rng):
        for v in values:
            a = rand(rng, (3, 2)) if dtype.is_floating_point else ints(rng, (3, 2), 0 if dtype == loom.uint8 else -5)
            if dtype == loom.bool:
                a = rng.integers(0, 2, size=(3, 2)).astype(bool)
            yield Sample((np.asarray(a), v), name=f"scalar {v!r}")
    return make


def away_from_zero(rng, shape):
    return rng.uniform(0.3, 2.0, size=shape) * rng.choice([-1, 1], size=shape)


def unary(name, gen=rand, dtypes=FLOATS, grad=True, fd=True, loom_fn=None, torch_fn=None, **kw):
    return OpInfo(name, loom_fn or getattr(loom, name), torch_fn or getattr(torch, name), unary_samples(gen),
                  dtypes=dtypes, grad=grad, fd=fd, **kw)


def binary(name, gen_a=rand, gen_b=rand, dtypes=ALL, grad=True, fd=True, int_b_nonzero=False, **kw):
    return OpInfo(name, getattr(loom, name), getattr(torch, name), binary_samples(gen_a, gen_b, int_b_nonzero),
                  dtypes=dtypes, grad=grad, fd=fd, **kw)


OPS = [
    unary("neg", dtypes=NUMERIC),
    unary("abs", away_from_zero, dtypes=NUMERIC),
    unary("sign", dtypes=NUMERIC + (loom.bool,), grad=False),
    unary("exp"),
    unary("expm1"),
    unary("log", positive),
    unary("log1p", positive),
    unary("log2", positive),
    unary("sqrt", positive),
    unary("rsqrt", positive),
    unary("sin"),
    unary("cos"),
    unary("tanh"),
    unary("sigmoid"),
    unary("erf"),
    unary("reciprocal", away_from_zero),
    unary("square", dtypes=NUMERIC),
    unary("floor", dtypes=NUMERIC, grad=False),
    unary("ceil", dtypes=NUMERIC, grad=False),
    unary("round", dtypes=FLOATS, grad=False),
    unary("trunc", dtypes=NUMERIC, grad=False),
    unary("relu", away_from_zero, dtypes=NUMERIC),
    unary("silu", torch_fn=torch.nn.functional.silu),
    unary("leaky_relu", away_from_zero, loom_fn=lambda x: loom.leaky_relu(x, 0.1),
          torch_fn=lambda x: torch.nn.functional.leaky_relu(x, 0.1)),
    unary("gelu", loom_fn=loom.gelu, torch_fn=torch.nn.functional.gelu),
    OpInfo("gelu_tanh", lambda x: loom.gelu(x, approximate="tanh"),
           lambda x: torch.nn.functional.gelu(x, approximate="tanh"), unary_samples()),
    unary("softplus", loom_fn=lambda x: loom.softplus(x, 2.0, 3.0),
          torch_fn=lambda x: torch.nn.functional.softplus(x, 2.0, 3.0)),
    unary("logical_not", dtypes=ALL, grad=False),
    unary("bitwise_not", dtypes=INTS + (loom.bool,), grad=False),
    OpInfo("isnan", loom.isnan, torch.isnan,
           lambda d, rng: [Sample((np.array([0.0, np.nan, np.inf, -np.inf, 1.5]),))], dtypes=FLOATS, grad=False),
    OpInfo("isinf", loom.isinf, torch.isinf,
           lambda d, rng: [Sample((np.array([0.0, np.nan, np.inf, -np.inf, 1.5]),))], dtypes=FLOATS, grad=False),
    OpInfo("isfinite", loom.isfinite, torch.isfinite,
           lambda d, rng: [Sample((np.array([0.0, np.nan, np.inf, -np.inf, 1.5]),))], dtypes=FLOATS, grad=False),
    OpInfo("clamp", lambda x: loom.clamp(x, -0.5, 0.7), lambda x: torch.clamp(x, -0.5, 0.7), unary_samples(),
           dtypes=FLOATS),
    OpInfo("clamp_int", lambda x: loom.clamp(x, -2, 3), lambda x: torch.clamp(x, -2, 3), unary_samples(),
           dtypes=(loom.int32, loom.int64), grad=False),
    OpInfo("clamp_tensor", lambda x, lo, hi: loom.clamp(x, lo, hi), lambda x, lo, hi: torch.clamp(x, lo, hi),
           lambda d, rng: [Sample((rand(rng, (3, 4)), rand(rng, (4,), -1.5, -0.1), rand(rng, (3, 1), 0.1, 1.5)))],
           dtypes=FLOATS),
    binary("add"),
    binary("sub", dtypes=FLOATS + INTS),
    binary("mul"),
    OpInfo("add_alpha", lambda a, b: loom.add(a, b, alpha=2), lambda a, b: torch.add(a, b, alpha=2),
           binary_samples(), dtypes=FLOATS + INTS),
    OpInfo("sub_alpha", lambda a, b: loom.sub(a, b, alpha=0.5), lambda a, b: torch.sub(a, b, alpha=0.5),
           binary_samples(), dtypes=FLOATS),
    binary("div", gen_b=away_from_zero, dtypes=ALL, int_b_nonzero=True),
    OpInfo("div_trunc", lambda a, b: loom.div(a, b, rounding_mode="trunc"),
           lambda a, b: torch.div(a, b, rounding_mode="trunc"), binary_samples(rand, away_from_zero, True),
           dtypes=FLOATS + INTS, grad=False),
    OpInfo("div_floor", lambda a, b: loom.div(a, b, rounding_mode="floor"),
           lambda a, b: torch.div(a, b, rounding_mode="floor"), binary_samples(rand, away_from_zero, True),
           dtypes=FLOATS + INTS, grad=False),
    binary("floor_divide", gen_b=away_from_zero, dtypes=FLOATS + INTS, grad=False, int_b_nonzero=True),
    binary("remainder", gen_b=away_from_zero, dtypes=(loom.float32, loom.float64) + INTS, int_b_nonzero=True,
           fd=False),
    binary("pow", gen_a=positive, gen_b=rand, dtypes=FLOATS),
    OpInfo("pow_int", loom.pow, torch.pow,
           lambda d, rng: [Sample((ints(rng, (3, 4), -3, 4), ints(rng, (4,), 0, 4)))],
           dtypes=(loom.int32, loom.int64), grad=False),
    binary("maximum", dtypes=ALL),
    binary("minimum", dtypes=ALL),
    binary("atan2", dtypes=(loom.float32, loom.float64)),
    binary("eq", dtypes=ALL, grad=False),
    binary("ne", dtypes=ALL, grad=False),
    binary("lt", dtypes=ALL, grad=False),
    binary("le", dtypes=ALL, grad=False),
    binary("gt", dtypes=ALL, grad=False),
    binary("ge", dtypes=ALL, grad=False),
    binary("logical_and", dtypes=ALL, grad=False),
    binary("logical_or", dtypes=ALL, grad=False),
    binary("logical_xor", dtypes=ALL, grad=False),
    binary("bitwise_and", dtypes=INTS + (loom.bool,), grad=False),
    binary("bitwise_or", dtypes=INTS + (loom.bool,), grad=False),
    binary("bitwise_xor", dtypes=INTS + (loom.bool,), grad=False),
    OpInfo("add_scalar", lambda a, s: a + s, lambda a, s: a + s, scalar_samples([2, 0.5, True]), dtypes=ALL,
           grad=False),
    OpInfo("mul_scalar", lambda a, s: a * s, lambda a, s: a * s, scalar_samples([3, -1.5]), dtypes=ALL, grad=False),
    OpInfo("rsub_scalar", lambda a, s: s - a, lambda a, s: s - a, scalar_samples([3, 1.5]), dtypes=FLOATS + INTS,
           grad=False),
    OpInfo("rdiv_scalar", lambda a, s: s / a, lambda a, s: s / a,
           lambda d, rng: [Sample((away_from_zero(rng, (3, 2)), 2.0))], dtypes=FLOATS),
    OpInfo("pow_scalar", lambda a, s: a ** s, lambda a, s: a ** s, lambda d, rng: [Sample((positive(rng, (4,)), 2.5))],
           dtypes=FLOATS),
    OpInfo("compare_scalar", lambda a, s: a < s, lambda a, s: a < s, scalar_samples([0, 0.5]), dtypes=ALL, grad=False),
    OpInfo("where", lambda c, a, b: loom.where(c, a, b), lambda c, a, b: torch.where(c, a, b),
           lambda d, rng: [Sample((rng.integers(0, 2, size=(3, 4)).astype(bool), rand(rng, (3, 4)), rand(rng, (4,))),
                                  keep_dtype=(0,)),
                           Sample((rng.integers(0, 2, size=(2, 1)).astype(bool), rand(rng, (2, 3)), rand(rng, ())),
                                  keep_dtype=(0,))],
           dtypes=ALL),
]

# gelu_backward / relu_backward are the fused first-order backwards of exact GELU and relu: gelu's and relu's
# gradient checks (against torch's autograd and float64 finite differences, above) run them; create_graph
# backward uses the op formulas instead. tests/python/test_simd_elementwise.py checks both under both CPU paths.
COVERED_ELSEWHERE = {"gelu_backward", "relu_backward"}
