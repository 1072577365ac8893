"""The one place where comparison tolerances live, per dtype (values) and for gradients."""
import loom

# (rtol, atol) for comparing loom's values against PyTorch's.
VALUE = {
    loom.float64: (1e-7, 1e-7),
    loom.float32: (1e-5, 1e-5),
    loom.float16: (2e-3, 2e-3),
    loom.bfloat16: (1.6e-2, 1.6e-2),
}
# float32 elementwise math (AVX2 and scalar kernels) against PyTorch's (Sleef), (rtol, atol) per function: a few
# ulp relative; atol only where a result is a difference of nearly equal numbers (1 + erf(x) for x << 0 in gelu,
# gelu_backward, add with alpha) or underflows to subnormals (sigmoid, silu of large negative inputs).
SIMD_MATH = {
    "exp": (1e-6, 0.0), "log": (1e-6, 0.0), "tanh": (1e-6, 0.0), "erf": (1e-6, 0.0), "sqrt": (1e-6, 0.0),
    "rsqrt": (1e-6, 0.0), "reciprocal": (1e-6, 0.0), "neg": (0.0, 0.0), "abs": (0.0, 0.0), "relu": (0.0, 0.0),
    "sigmoid": (1e-6, 1e-37), "silu": (1e-6, 1e-37),
    "alpha": (1e-6, 1e-5), "default": (1e-6, 1e-6),
    "bfloat16": (8e-3, 1e-6),  # computed in float, rounded once: one bfloat16 rounding apart (atol: gelu of x << 0)
}
# Gradients compared against PyTorch's autograd, by dtype.
GRAD = {
    loom.float64: (1e-6, 1e-6),
    loom.float32: (1e-4, 1e-4),
}
# Whole layers and models against their PyTorch twins (longer chains of ops than one op), by dtype.
MODULE = {
    loom.float64: (1e-7, 1e-8),
    loom.float32: (2e-4, 2e-5),
}
# Finite differences in float64: central differences with this step, compared at this tolerance.
FD_EPS = 1e-6
FD_TOL = (1e-4, 1e-5)


def value_tolerance(dtype, scale=1.0):
    rtol, atol = VALUE.get(dtype, (0.0, 0.0))  # integers and bool compare exactly
    return rtol * scale, atol * scale

# Optimizer trajectories (params and state after ~20 steps) against torch.optim, by dtype: the float32 kernel
# differs from torch's vectorised one only in fused multiply-adds, so a few ulps.
OPTIMIZER = {
    loom.float64: (1e-10, 1e-12),
    loom.float32: (1e-6, 1e-7),
}

# Whole training runs against PyTorch (same weights, same batches): the loss at every step, relative (issue 3).
TRAINING_LOSS_RTOL = 1e-4

# Autocast (bfloat16 mixed precision) against torch.autocast("cpu"): one op's value within bfloat16 rounding of
# both sides (rtol, atol); whole-model losses (rtol) and gradients (relative L2 error) after chains of bf16 ops.
AUTOCAST_VALUE = (3.2e-2, 3.2e-2)
AUTOCAST_LOSS_RTOL = 2e-2
AUTOCAST_GRAD_REL_L2 = 5e-2
