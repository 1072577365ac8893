"""loom.cpu: CPU-specific helpers, as torch.cpu (loom.cpu.amp.autocast)."""
from loom.cpu import amp  # noqa: F401
