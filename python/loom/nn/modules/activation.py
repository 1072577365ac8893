"""Activation modules over loom's functional ops; ELU, Hardtanh, ReLU6, Mish, Softsign, LogSigmoid, Hardsigmoid,
Hardswish and PReLU are composed here from existing ops."""
from loom import _C
from loom.nn import functional as F
from loom.nn.module import Module
from loom.nn.parameter import Parameter

__all__ = [
    "ReLU", "ReLU6", "LeakyReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish", "Sigmoid", "Tanh", "Softplus", "Softsign",
    "Hardtanh", "Hardsigmoid", "Hardswish", "LogSigmoid", "PReLU", "Softmax", "LogSoftmax", "Softmin",
]


def _maybe_inplace(input, out, inplace):
    if inplace:
        input.copy_(out)
        return input
    return out


class _InplaceActivation(Module):
    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def _fn(self, input):
        raise NotImplementedError

    def forward(self, input):
        return _maybe_inplace(input, self._fn(input), self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class ReLU(_InplaceActivation):
    """max(0, x)."""

    def _fn(self, input):
        return _C.relu(input)


class SiLU(_InplaceActivation):
    """x * sigmoid(x)."""

    def _fn(self, input):
        return _C.silu(input)


class Mish(_InplaceActivation):
    """x * tanh(softplus(x))."""

    def _fn(self, input):
        return input * _C.tanh(_C.softplus(input))


class Hardsigmoid(_InplaceActivation):
    """clamp(x / 6 + 1/2, 0, 1)."""

    def _fn(self, input):
        return _C.clamp(input / 6 + 0.5, 0.0, 1.0)


class Hardswish(_InplaceActivation):
    """x * clamp(x + 3, 0, 6) / 6."""

    def _fn(self, input):
        return input * _C.clamp(input + 3, 0.0, 6.0) / 6


class Hardtanh(Module):
    """clamp(x, min_val, max_val)."""

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__()
        if max_val <= min_val:
            raise ValueError(f"Hardtanh: max_val ({max_val}) must be greater than min_val ({min_val})")
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace

    def forward(self, input):
        return _maybe_inplace(input, _C.clamp(input, self.min_val, self.max_val), self.inplace)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}" + (", inplace=True" if self.inplace else "")


class ReLU6(Hardtanh):
    """min(max(0, x), 6)."""

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """x if x >= 0 else negative_slope * x."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input):
        return _maybe_inplace(input, _C.leaky_relu(input, self.negative_slope), self.inplace)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class ELU(Module):
    """x if x > 0 else alpha * (exp(x) - 1)."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input):
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class GELU(Module):
    """x * Phi(x); approximate='tanh' uses the tanh approximation."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return _C.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Sigmoid(Module):
    """1 / (1 + exp(-x))."""

    def forward(self, input):
        return _C.sigmoid(input)


class Tanh(Module):
    """tanh(x)."""

    def forward(self, input):
        return _C.tanh(input)


class Softsign(Module):
    """x / (1 + |x|)."""

    def forward(self, input):
        return input / (input.abs() + 1)


class LogSigmoid(Module):
    """log(sigmoid(x)) = -softplus(-x)."""

    def forward(self, input):
        return -_C.softplus(-input)


class Softplus(Module):
    """log(1 + exp(beta * x)) / beta, linear above threshold."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input):
        return _C.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class PReLU(Module):
    """x if x >= 0 else a * x with a learnable slope per channel (dim 1) or shared; a starts at ``init``."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters = num_parameters
        self.init = init
        self.weight = Parameter(_C.empty(num_parameters, dtype=dtype, device=device))
        self.reset_parameters()

    def reset_parameters(self):
        from loom.nn import init as nn_init

        nn_init.constant_(self.weight, self.init)

    def forward(self, input):
        weight = self.weight
        if self.num_parameters != 1:
            if input.dim() < 2 or input.shape[1] != self.num_parameters:
                raise ValueError(f"PReLU: expected {self.num_parameters} channels in dim 1, got input of shape "
                                 f"{tuple(input.shape)}")
            weight = weight.reshape((self.num_parameters,) + (1,) * (input.dim() - 2))
        return _C.where(input >= 0, input, weight * input)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class Softmax(Module):
    """Softmax along ``dim``."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim, _stacklevel=5)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log(softmax(x)) along ``dim``."""

    def forward(self, input):
        return F.log_softmax(input, self.dim, _stacklevel=5)


class Softmin(Softmax):
    """softmax(-x) along ``dim``."""

    def forward(self, input):
        return F.softmin(input, self.dim, _stacklevel=5)


class SELU(_InplaceActivation):
    """scale * elu(x, alpha) with SELU's fixed constants."""

    def _fn(self, input):
        return F.selu(input)


class CELU(Module):
    """x if x > 0 else alpha * (exp(x / alpha) - 1)."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input):
        return F.celu(input, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")
