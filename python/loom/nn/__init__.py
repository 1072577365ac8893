"""loom.nn: neural-network building blocks (functional API now; Module and layers come with the training issue)."""
from loom.nn import functional  # noqa: F401
