"""loom.nn: neural-network building blocks — Module, Parameter, layers, init and the functional API (as torch.nn)."""
from loom.nn import functional  # noqa: F401
from loom.nn import init  # noqa: F401
from loom.nn import utils  # noqa: F401
from loom.nn.parameter import Buffer, Parameter  # noqa: F401
from loom.nn.module import Module  # noqa: F401
from loom.nn.modules import *  # noqa: F401,F403
