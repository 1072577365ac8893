"""Dropout layers."""
from loom import _C
from loom.nn import functional as F
from loom.nn.module import Module

__all__ = ["Dropout", "Dropout1d", "Dropout2d"]


class _DropoutNd(Module):
    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zeroes elements with probability p during training and scales the rest by 1/(1-p)."""

    def forward(self, input):
        if not self.training or self.p == 0:
            return input
        return F.dropout(input, self.p, self.training, self.inplace)


class _ChannelDropout(_DropoutNd):
    _spatial_dims = 1

    def forward(self, input):
        if not self.training or self.p == 0:
            return input
        batched = input.dim() == self._spatial_dims + 2
        if input.dim() not in (self._spatial_dims + 1, self._spatial_dims + 2):
            raise ValueError(f"{self._get_name()}: expected a {self._spatial_dims + 1}-D or "
                             f"{self._spatial_dims + 2}-D input, got shape {tuple(input.shape)}")
        mask_shape = tuple(input.shape[:2 if batched else 1]) + (1,) * self._spatial_dims
        if self.p == 1:
            out = input * 0
        else:
            mask = _C.empty(*mask_shape, dtype=input.dtype, device=input.device).bernoulli_(1 - self.p)
            out = input * mask / (1 - self.p)
        if self.inplace:
            input.copy_(out)
            return input
        return out


class Dropout1d(_ChannelDropout):
    """Zeroes whole channels of (N, C, L) inputs with probability p."""

    _spatial_dims = 1


class Dropout2d(_ChannelDropout):
    """Zeroes whole channels of (N, C, H, W) inputs with probability p."""

    _spatial_dims = 2
