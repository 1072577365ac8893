"""Gradient clipping: clip_grad_norm_ and clip_grad_value_ (like torch.nn.utils)."""
import loom
from loom._C import _optim


def _params_list(parameters, name):
    if isinstance(parameters, loom.Tensor):
        return [parameters]
    params = list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, loom.Tensor):
            raise TypeError(f"{name}: expected an iterable of Tensors, but item {i} is a {type(p).__name__}")
    return params


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scales the gradients of `parameters` in place so that their total norm is at most `max_norm`.

    The total norm is the `norm_type`-norm (inf allowed) of the per-tensor norms, computed as if all gradients
    were concatenated; gradients are multiplied by min(1, max_norm / (total_norm + 1e-6)). Parameters whose
    grad is None are skipped. `foreach` is accepted for compatibility. Returns the total norm (a 0-d tensor).
    """
    params = _params_list(parameters, "clip_grad_norm_")
    return _optim.clip_grad_norm_(params, float(max_norm), float(norm_type), bool(error_if_nonfinite))


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamps the gradients of `parameters` in place to [-clip_value, clip_value]."""
    params = _params_list(parameters, "clip_grad_value_")
    _optim.clip_grad_value_(params, float(clip_value))
