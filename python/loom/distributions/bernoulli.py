"""Bernoulli distribution over {0, 1} (torch.distributions.Bernoulli)."""
from loom import _C
from loom.distributions.distribution import Distribution, broadcast_all, clamp_probs
from loom.nn.functional import binary_cross_entropy_with_logits


class Bernoulli(Distribution):
    """1 with probability `probs` (or sigmoid(`logits`)), else 0."""

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Bernoulli: either `probs` or `logits` must be specified, but not both")
        if probs is not None:
            (self.probs,) = broadcast_all(probs)
            clamped = clamp_probs(self.probs)
            self.logits = _C.log(clamped) - _C.log1p(-clamped)
        else:
            (self.logits,) = broadcast_all(logits)
            self.probs = _C.sigmoid(self.logits)
        super().__init__(batch_shape=tuple(self.probs.shape), validate_args=validate_args)
        if probs is not None:
            self._check(((self.probs >= 0) & (self.probs <= 1)).all(), "probs must be in [0, 1]")

    @property
    def mean(self):
        return self.probs

    @property
    def variance(self):
        return self.probs * (1 - self.probs)

    @property
    def mode(self):
        return (self.probs >= 0.5).to(self.probs.dtype)

    def sample(self, sample_shape=()):
        return _C.bernoulli(self.probs.detach().expand(self._extended_shape(sample_shape)))

    def log_prob(self, value):
        logits, value = _C.broadcast_tensors(self.logits, value.to(self.logits.dtype))
        return -binary_cross_entropy_with_logits(logits, value, reduction="none")

    def entropy(self):
        return binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none")

    def __repr__(self):
        return f"Bernoulli(probs: {tuple(self.probs.shape)})"
