"""The one place where comparison tolerances live, per dtype (values) and for gradients."""
import loom

# (rtol, atol) for comparing loom's values against PyTorch's.
VALUE = {
    loom.float64: (1e-7, 1e-7),
    loom.float32: (1e-5, 1e-5),
    loom.float16: (2e-3, 2e-3),
    loom.bfloat16: (1.6e-2, 1.6e-2),
}
# Gradients compared against PyTorch's autograd, by dtype.
GRAD = {
    loom.float64: (1e-6, 1e-6),
    loom.float32: (1e-4, 1e-4),
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
