"""The Distribution base class and helpers shared by the distributions (as torch.distributions.distribution)."""
import numbers

import numpy as np

from loom import _C
from loom.autograd import no_grad


def tensor_param(value, like=None):
    """A parameter as a floating tensor: numbers become tensors of the default dtype (or `like`'s dtype)."""
    if isinstance(value, _C.Tensor):
        return value
    dtype = like.dtype if isinstance(like, _C.Tensor) else _C.get_default_dtype()
    return _C.tensor(float(value), dtype=dtype)


def broadcast_all(*values):
    """Numbers and tensors broadcast to one shape (numbers take the dtype of the first tensor)."""
    like = next((v for v in values if isinstance(v, _C.Tensor)), None)
    tensors = [tensor_param(v, like) for v in values]
    return _C.broadcast_tensors(*tensors)


def _finfo(dtype):
    return np.finfo({_C.float64: np.float64, _C.float16: np.float16}.get(dtype, np.float32))


def eps_of(dtype):
    return float(_finfo(dtype).eps)


def finfo_min(dtype):
    return float(_finfo(dtype).min)


def clamp_probs(probs):
    eps = eps_of(probs.dtype)
    return _C.clamp(probs, eps, 1.0 - eps)


class Distribution:
    """Base class: batch_shape and event_shape, sample via rsample without gradients, and argument validation."""

    has_rsample = False
    _validate_args = True

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        self._batch_shape = tuple(batch_shape)
        self._event_shape = tuple(event_shape)
        if validate_args is not None:
            self._validate_args = validate_args

    @staticmethod
    def set_default_validate_args(value):
        Distribution._validate_args = bool(value)

    @property
    def batch_shape(self):
        return self._batch_shape

    @property
    def event_shape(self):
        return self._event_shape

    @property
    def stddev(self):
        return self.variance.sqrt()

    def _extended_shape(self, sample_shape=()):
        if isinstance(sample_shape, numbers.Integral):
            sample_shape = (sample_shape,)
        return tuple(sample_shape) + self._batch_shape + self._event_shape

    def sample(self, sample_shape=()):
        with no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=()):
        raise NotImplementedError(f"{type(self).__name__} has no reparameterized sampling (rsample)")

    def sample_n(self, n):
        return self.sample((n,))

    def perplexity(self):
        return _C.exp(self.entropy())

    def _check(self, condition, message):
        if self._validate_args and not bool(condition):
            raise ValueError(f"{type(self).__name__}: {message}")

    def __repr__(self):
        return f"{type(self).__name__}()"
