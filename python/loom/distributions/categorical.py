"""Categorical distribution over K categories (torch.distributions.Categorical)."""
import math

from loom import _C
from loom.distributions.distribution import Distribution, clamp_probs, finfo_min


class Categorical(Distribution):
    """Categories 0..K-1 with probabilities `probs` (normalised over the last dimension) or unnormalised `logits`."""

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Categorical: either `probs` or `logits` must be specified, but not both")
        super().__init__(validate_args=validate_args)
        if probs is not None:
            if probs.dim() < 1:
                raise ValueError("Categorical: `probs` parameter must be at least one-dimensional")
            self._check((probs >= 0).all(), "probs must be non-negative")
            self.probs = probs / probs.sum(-1, keepdim=True)
            self.logits = _C.log(clamp_probs(self.probs))
        else:
            if logits.dim() < 1:
                raise ValueError("Categorical: `logits` parameter must be at least one-dimensional")
            self.logits = logits - logits.logsumexp(-1, keepdim=True)
            self.probs = _C.softmax(self.logits, -1)
        self._num_events = self.probs.shape[-1]
        self._batch_shape = tuple(self.probs.shape[:-1])

    @property
    def param_shape(self):
        return tuple(self.probs.shape)

    @property
    def mean(self):
        return _C.full(self._batch_shape, math.nan, dtype=self.probs.dtype)

    @property
    def mode(self):
        return self.probs.argmax(-1)

    @property
    def variance(self):
        return _C.full(self._batch_shape, math.nan, dtype=self.probs.dtype)

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        count = math.prod(shape[: len(shape) - len(self._batch_shape)])
        probs_2d = self.probs.detach().reshape(-1, self._num_events)
        samples_2d = _C.multinomial(probs_2d, count, True).t()  # (count, rows)
        return samples_2d.reshape(shape)

    def log_prob(self, value):
        value = value.to(_C.int64)
        if self._validate_args:
            self._check(((value >= 0) & (value < self._num_events)).all(),
                        f"value must be an integer in [0, {self._num_events})")
        value, log_pmf = _C.broadcast_tensors(value.unsqueeze(-1), self.logits)
        return log_pmf.gather(-1, value[..., :1]).squeeze(-1)

    def entropy(self):
        logits = _C.clamp(self.logits, finfo_min(self.logits.dtype), None)
        return -(logits * self.probs).sum(-1)

    def enumerate_support(self, expand=True):
        values = _C.arange(self._num_events).reshape((-1,) + (1,) * len(self._batch_shape))
        return values.expand((-1,) + self._batch_shape) if expand else values

    def __repr__(self):
        return f"Categorical(probs: {tuple(self.probs.shape)})"

