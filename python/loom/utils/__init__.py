"""Utilities (torch.utils): data loading in loom.utils.data."""
from loom.utils import data  # noqa: F401
