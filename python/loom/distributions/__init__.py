"""loom.distributions: probability distributions with PyTorch's API (torch.distributions) for the common cases —
Categorical, Normal, Bernoulli, Uniform and kl_divergence between two of the same kind."""
from loom.distributions.distribution import Distribution  # noqa: F401
from loom.distributions.categorical import Categorical  # noqa: F401
from loom.distributions.normal import Normal  # noqa: F401
from loom.distributions.bernoulli import Bernoulli  # noqa: F401
from loom.distributions.uniform import Uniform  # noqa: F401
from loom.distributions.kl import kl_divergence, register_kl  # noqa: F401

__all__ = ["Distribution", "Categorical", "Normal", "Bernoulli", "Uniform", "kl_divergence", "register_kl"]
