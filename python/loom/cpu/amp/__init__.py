"""loom.cpu.amp.autocast: torch.cpu.amp.autocast, i.e. loom.autocast("cpu", ...) with bfloat16 by default."""
from loom import _C
from loom.amp import autocast as _autocast

__all__ = ["autocast"]


class autocast(_autocast):  # noqa: N801 (PyTorch's name)
    """loom.autocast("cpu", dtype) with dtype bfloat16 by default."""

    def __init__(self, enabled=True, dtype=_C.bfloat16, cache_enabled=None):
        super().__init__("cpu", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)

    def __call__(self, func):
        return super().__call__(func)
