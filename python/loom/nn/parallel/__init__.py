"""Parallel training wrappers (torch.nn.parallel)."""
from loom.nn.parallel.distributed import DistributedDataParallel  # noqa: F401

__all__ = ["DistributedDataParallel"]
