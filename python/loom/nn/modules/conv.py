"""Convolution layers: Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d."""
import math

from loom import _C
from loom.nn import init
from loom.nn.module import Module
from loom.nn.parameter import Parameter

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]


def _ntuple(value, n, name):
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"{name}: expected {n} values, got {tuple(value)}")
        return tuple(value)
    return (value,) * n


def _pad_indices(size, before, after, mode):
    """Source indices along one dim for reflect/replicate/circular padding."""
    out = []
    for i in range(-before, size + after):
        if mode == "reflect":
            j = abs(i)
            if j >= size:
                j = 2 * (size - 1) - j
        elif mode == "replicate":
            j = min(max(i, 0), size - 1)
        else:  # circular
            j = i % size
        out.append(j)
    return out


def _mode_pad(input, padding, mode):
    """Pads the trailing len(padding) dims by padding[d] on both sides with reflect/replicate/circular values."""
    n = len(padding)
    for d, p in enumerate(padding):
        if p == 0:
            continue
        dim = input.dim() - n + d
        size = input.shape[dim]
        if mode == "reflect" and p >= size:
            raise ValueError(f"conv: reflect padding {p} must be smaller than the input size {size} along dim {dim}")
        index = _C.tensor(_pad_indices(size, p, p, mode), dtype=_C.int64, device=input.device)
        input = input.index_select(dim, index)
    return input


class _ConvNd(Module):
    _dims = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", output_padding=0, device=None, dtype=None):
        super().__init__()
        name = self._get_name()
        n = self._dims
        if groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups}")
        if in_channels % groups != 0:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by groups ({groups})")
        if out_channels % groups != 0:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by groups ({groups})")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"padding_mode must be one of 'zeros', 'reflect', 'replicate', 'circular', "
                             f"but got padding_mode='{padding_mode}'")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _ntuple(kernel_size, n, name)
        self.stride = _ntuple(stride, n, name)
        self.dilation = _ntuple(dilation, n, name)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of ['valid', 'same']")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = _ntuple(padding, n, name)
        self.transposed = self._transposed
        self.output_padding = _ntuple(output_padding, n, name)
        self.groups = groups
        self.padding_mode = padding_mode
        if padding_mode != "zeros" and self._transposed:
            raise ValueError(f'Only "zeros" padding mode is supported for {name}')
        if isinstance(self.padding, str):
            self._mode_padding = tuple(0 for _ in range(n))
            if padding == "same":
                self._mode_padding = tuple(d * (k - 1) // 2 for d, k in zip(self.dilation, self.kernel_size))
        else:
            self._mode_padding = self.padding
        if self._transposed:
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(_C.empty(*shape, dtype=dtype, device=device))
        if bias:
            self.bias = Parameter(_C.empty(out_channels, dtype=dtype, device=device))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def _conv(self, input, weight, bias):
        fn = _C.conv1d if self._dims == 1 else _C.conv2d
        if self.padding_mode != "zeros":
            if isinstance(self.padding, str) and self.padding == "same":
                # Asymmetric 'same' padding (even kernels) puts the extra element on the right, as torch does.
                total = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
                if any(t % 2 for t in total):
                    raise NotImplementedError(f"{self._get_name()}: padding='same' with an even effective kernel "
                                              f"and padding_mode='{self.padding_mode}' is not supported")
            input = _mode_pad(input, self._mode_padding, self.padding_mode)
            return fn(input, weight, bias, self.stride, 0, self.dilation, self.groups)
        return fn(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, input):
        return self._conv(input, self.weight, self.bias)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * len(self.kernel_size):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    """1-D convolution over (N, C_in, L) with weight (C_out, C_in / groups, k)."""

    _dims = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device=device, dtype=dtype)


class Conv2d(_ConvNd):
    """2-D convolution over (N, C_in, H, W) with weight (C_out, C_in / groups, kH, kW)."""

    _dims = 2

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device=device, dtype=dtype)


class _ConvTransposeNd(_ConvNd):
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        if isinstance(padding, str):
            raise ValueError(f"{type(self).__name__}: string padding {padding!r} is not supported")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, device=device, dtype=dtype)

    def forward(self, input, output_size=None):
        if output_size is not None:
            raise NotImplementedError(f"{self._get_name()}: output_size is not supported; use output_padding")
        fn = _C.conv_transpose1d if self._dims == 1 else _C.conv_transpose2d
        return fn(input, self.weight, self.bias, self.stride, self.padding, self.output_padding, self.groups,
                  self.dilation)


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-D convolution with weight (C_in, C_out / groups, k)."""

    _dims = 1


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-D convolution with weight (C_in, C_out / groups, kH, kW)."""

    _dims = 2
