"""kl_divergence(p, q) between two distributions of the same kind, and register_kl for new pairs (torch names)."""
import math

from loom import _C
from loom.distributions.categorical import Categorical
from loom.distributions.normal import Normal

_KL = {}


def register_kl(type_p, type_q):
    """Decorator registering fn(p, q) as KL(p || q) for distributions of these types."""

    def decorator(fn):
        _KL[(type_p, type_q)] = fn
        return fn

    return decorator


def kl_divergence(p, q):
    fn = _KL.get((type(p), type(q)))
    if fn is None:
        raise NotImplementedError(f"kl_divergence: no KL(p || q) for p {type(p).__name__} and q {type(q).__name__}")
    return fn(p, q)


@register_kl(Normal, Normal)
def _kl_normal_normal(p, q):
    var_ratio = (p.scale / q.scale).pow(2)
    t1 = ((p.loc - q.loc) / q.scale).pow(2)
    return 0.5 * (var_ratio + t1 - 1 - _C.log(var_ratio))


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p, q):
    t = p.probs * (p.logits - q.logits)
    t = _C.where(q.probs == 0, _C.full_like(t, math.inf), t)
    t = _C.where(p.probs == 0, _C.zeros_like(t), t)
    return t.sum(-1)
