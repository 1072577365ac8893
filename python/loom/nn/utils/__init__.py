"""loom.nn.utils: gradient clipping (like torch.nn.utils)."""
from loom.nn.utils import rnn  # noqa: F401
from loom.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_

__all__ = ["clip_grad_norm_", "clip_grad_value_"]
