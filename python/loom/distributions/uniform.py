"""Uniform distribution on [low, high) with reparameterized sampling (torch.distributions.Uniform)."""
from loom import _C
from loom.distributions.distribution import Distribution, broadcast_all


class Uniform(Distribution):
    """Uniform on [low, high), elementwise over the broadcast shape of low and high."""

    has_rsample = True

    def __init__(self, low, high, validate_args=None):
        self.low, self.high = broadcast_all(low, high)
        super().__init__(batch_shape=tuple(self.low.shape), validate_args=validate_args)
        self._check((self.low < self.high).all(), "low must be smaller than high")

    @property
    def mean(self):
        return (self.high + self.low) / 2

    @property
    def stddev(self):
        return (self.high - self.low) / 12**0.5

    @property
    def variance(self):
        return (self.high - self.low).pow(2) / 12

    def rsample(self, sample_shape=()):
        u = _C.rand(self._extended_shape(sample_shape), dtype=self.low.dtype)
        return self.low + u * (self.high - self.low)

    def log_prob(self, value):
        inside = ((self.low <= value) & (self.high > value)).to(self.low.dtype)
        return _C.log(inside) - _C.log(self.high - self.low)

    def cdf(self, value):
        return _C.clamp((value - self.low) / (self.high - self.low), 0.0, 1.0)

    def entropy(self):
        return _C.log(self.high - self.low)

    def __repr__(self):
        return f"Uniform(low: {tuple(self.low.shape)}, high: {tuple(self.high.shape)})"
