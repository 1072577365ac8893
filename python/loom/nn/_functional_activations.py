"""Functional activations composed from loom's elementwise ops (torch.nn.functional names): elu, selu, celu.
Gradients come from the composed ops."""
from loom import _C

__all__ = ["elu", "selu", "celu"]

# SELU's constants, as in torch (Klambauer et al., 2017).
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _finish(input, out, inplace):
    if inplace:
        input.copy_(out)
        return input
    return out


def _elu(input, alpha, input_scale=1.0):
    # expm1 of min(x, 0) keeps the unused branch finite (no inf * 0 in the gradient).
    negative = _C.expm1(_C.clamp(input, None, 0.0) * input_scale) * alpha
    return _C.where(input > 0, input, negative)


def elu(input, alpha=1.0, inplace=False):
    """x if x > 0 else alpha * (exp(x) - 1)."""
    return _finish(input, _elu(input, alpha), inplace)


def selu(input, inplace=False):
    """scale * elu(x, alpha) with SELU's fixed constants."""
    return _finish(input, _elu(input, _SELU_ALPHA) * _SELU_SCALE, inplace)


def celu(input, alpha=1.0, inplace=False):
    """x if x > 0 else alpha * (exp(x / alpha) - 1)."""
    if alpha == 0:
        raise ValueError("celu: alpha must be non-zero (it divides the input)")
    return _finish(input, _elu(input, alpha, 1.0 / alpha), inplace)
