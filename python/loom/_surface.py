"""PyTorch surface composed in Python from loom's ops: Tensor.__format__, the Tensor.new_* factories, unique, diag
and the legacy typed constructors (FloatTensor, LongTensor, ...)."""
import builtins as _builtins
import numbers as _numbers

from loom import _C
from loom._C import Tensor

__all__ = [
    "unique", "diag",
    "FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor", "LongTensor", "IntTensor", "ShortTensor",
    "CharTensor", "ByteTensor", "BoolTensor",
]


def _format(self, format_spec):
    # As torch: a 0-d tensor formats as its Python number (f"{loss:.4f}"); others only with an empty spec.
    if self.dim() == 0:
        return self.item().__format__(format_spec)
    return object.__format__(self, format_spec)


def _size_arg(size):
    if len(size) == 1 and not isinstance(size[0], _numbers.Integral):
        return tuple(size[0])
    return size


def _like(self, dtype, device):
    return dtype if dtype is not None else self.dtype, device if device is not None else self.device


def _new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(self, dtype, device)
    return _C.zeros(_size_arg(size), dtype=dtype, device=device, requires_grad=requires_grad)


def _new_ones(self, *size, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(self, dtype, device)
    return _C.ones(_size_arg(size), dtype=dtype, device=device, requires_grad=requires_grad)


def _new_empty(self, *size, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(self, dtype, device)
    return _C.empty(_size_arg(size), dtype=dtype, device=device, requires_grad=requires_grad)


def _new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(self, dtype, device)
    return _C.full(size, fill_value, dtype=dtype, device=device, requires_grad=requires_grad)


def _new_tensor(self, data, *, dtype=None, device=None, requires_grad=False):
    dtype, device = _like(self, dtype, device)
    if isinstance(data, Tensor):  # torch copies and detaches
        out = data.detach().clone().to(dtype)
    else:
        out = _C.tensor(data, dtype=dtype)
    if out.device != device:
        out = out.to(device)
    if requires_grad:
        out.requires_grad_(True)
    return out


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The distinct values of input, flattened and in ascending order (sorted=False also sorts, which torch allows),
    with the index of each input element's value (return_inverse) and each value's count (return_counts)."""
    if dim is not None:
        raise NotImplementedError("unique: dim is not supported yet (only dim=None, over the flattened input)")
    flat = input.reshape(-1)
    values, order = _C.sort(flat, stable=True)
    n = flat.numel()
    is_first = _C.ones(n, dtype=_C.bool)
    if n > 1:
        is_first[1:] = values[1:] != values[:-1]
    out = values[is_first]
    if not (return_inverse or return_counts):
        return out
    result = (out,)
    if return_inverse:
        group = _C.cumsum(is_first.to(_C.int64), 0) - 1  # each sorted position's unique value
        inverse = _C.scatter(_C.zeros(n, dtype=_C.int64), 0, order, group)
        result += (inverse.reshape(input.shape),)
    if return_counts:
        starts = _C.nonzero(is_first).reshape(-1)
        ends = _C.cat([starts[1:], _C.tensor([n], dtype=_C.int64)])
        result += (ends - starts,)
    return result


def diag(input, diagonal=0):
    """1-D input: a square matrix with input on the given diagonal; 2-D input: that diagonal as a 1-D tensor."""
    row0, col0 = _builtins.max(-diagonal, 0), _builtins.max(diagonal, 0)
    if input.dim() == 1:
        n = input.shape[0]
        size = n + abs(diagonal)
        index = _C.arange(n)
        out = _C.zeros(size, size, dtype=input.dtype, device=input.device)
        return _C.index_put(out, (index + row0, index + col0), input)
    if input.dim() == 2:
        rows, cols = input.shape
        n = _builtins.max(_builtins.min(rows - row0, cols - col0), 0)
        index = _C.arange(n)
        return input[index + row0, index + col0]
    raise ValueError(f"diag: expected a 1-D or 2-D tensor, got shape {tuple(input.shape)}")


class _LegacyTensorType(type):
    """torch.FloatTensor and friends: constructors from data or sizes, and isinstance checks on dtype."""

    def __instancecheck__(cls, obj):
        return isinstance(obj, Tensor) and obj.dtype == cls.dtype and obj.device.type == "cpu"

    def __call__(cls, *args, device=None):
        name = cls.__name__
        if not args:
            out = _C.empty(0, dtype=cls.dtype)
        elif len(args) == 1 and isinstance(args[0], Tensor):
            if args[0].dtype != cls.dtype:
                raise TypeError(f"{name}: expected {cls.dtype} (got {args[0].dtype})")
            return args[0]
        elif all(isinstance(a, _numbers.Integral) and not isinstance(a, bool) for a in args):
            out = _C.empty(args, dtype=cls.dtype)
        elif len(args) == 1:
            out = _C.tensor(args[0], dtype=cls.dtype)
        else:
            raise TypeError(f"{name}: expected sizes (ints) or one sequence of data, got {args!r}")
        if device is not None and _C.device(device) != out.device:
            out = out.to(device)
        return out


def _legacy(name, dtype):
    return _LegacyTensorType(name, (), {"dtype": dtype, "__doc__": f"Legacy constructor of {dtype} CPU tensors."})


FloatTensor = _legacy("FloatTensor", _C.float32)
DoubleTensor = _legacy("DoubleTensor", _C.float64)
HalfTensor = _legacy("HalfTensor", _C.float16)
BFloat16Tensor = _legacy("BFloat16Tensor", _C.bfloat16)
LongTensor = _legacy("LongTensor", _C.int64)
IntTensor = _legacy("IntTensor", _C.int32)
ShortTensor = _legacy("ShortTensor", _C.int16)
CharTensor = _legacy("CharTensor", _C.int8)
ByteTensor = _legacy("ByteTensor", _C.uint8)
BoolTensor = _legacy("BoolTensor", _C.bool)

Tensor.__format__ = _format
Tensor.new_zeros = _new_zeros
Tensor.new_ones = _new_ones
Tensor.new_empty = _new_empty
Tensor.new_full = _new_full
Tensor.new_tensor = _new_tensor
Tensor.unique = unique
Tensor.diag = diag
