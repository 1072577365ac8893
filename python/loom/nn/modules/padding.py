"""Padding layers over F.pad (torch.nn names): zero, constant, reflection, replication and circular padding."""
from loom.nn import functional as F
from loom.nn.module import Module

__all__ = [
    "ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
    "ReflectionPad1d", "ReflectionPad2d", "ReplicationPad1d", "ReplicationPad2d", "CircularPad1d", "CircularPad2d",
]


class _Pad(Module):
    mode = "constant"
    dims = 1

    def __init__(self, padding, value=None):
        super().__init__()
        self.padding = tuple(padding) if isinstance(padding, (list, tuple)) else (padding,) * (2 * self.dims)
        if len(self.padding) != 2 * self.dims:
            raise ValueError(f"{type(self).__name__}: padding must be an int or {2 * self.dims} ints, got {padding}")
        self.value = value

    def forward(self, input):
        return F.pad(input, self.padding, self.mode, self.value)

    def extra_repr(self):
        return f"{self.padding}"


class _ZeroPad(_Pad):
    def __init__(self, padding):
        super().__init__(padding, 0.0)


class _ConstantPad(_Pad):
    def __init__(self, padding, value):
        super().__init__(padding, value)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class _ModePad(_Pad):
    def __init__(self, padding):
        super().__init__(padding)


class ZeroPad1d(_ZeroPad):
    dims = 1


class ZeroPad2d(_ZeroPad):
    dims = 2


class ZeroPad3d(_ZeroPad):
    dims = 3


class ConstantPad1d(_ConstantPad):
    dims = 1


class ConstantPad2d(_ConstantPad):
    dims = 2


class ConstantPad3d(_ConstantPad):
    dims = 3


class ReflectionPad1d(_ModePad):
    dims, mode = 1, "reflect"


class ReflectionPad2d(_ModePad):
    dims, mode = 2, "reflect"


class ReplicationPad1d(_ModePad):
    dims, mode = 1, "replicate"


class ReplicationPad2d(_ModePad):
    dims, mode = 2, "replicate"


class CircularPad1d(_ModePad):
    dims, mode = 1, "circular"


class CircularPad2d(_ModePad):
    dims, mode = 2, "circular"
