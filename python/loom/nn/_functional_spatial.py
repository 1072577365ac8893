"""Functional resampling and padding composed from loom's indexing ops (torch.nn.functional names): pad with the
reflect/replicate/circular modes, interpolate (nearest, nearest-exact, linear, bilinear), pixel_shuffle and
pixel_unshuffle. Every output is an index_select/reshape of the input, so gradients come from those ops."""
import math

import numpy as np

from loom import _C

__all__ = ["pad", "interpolate", "upsample", "pixel_shuffle", "pixel_unshuffle"]


def _index(values):
    return _C.tensor(np.asarray(values, dtype=np.int64))


def _border_indices(size, left, right, mode):
    """Source index of each padded position along one dimension."""
    if left < 0 or right < 0:
        raise NotImplementedError(f"pad: negative padding is only supported with mode 'constant' (got {mode!r})")
    positions = np.arange(-left, size + right)
    if mode == "replicate":
        return np.clip(positions, 0, size - 1)
    if mode == "circular":
        if left > size or right > size:
            raise ValueError(f"pad: padding ({left}, {right}) for mode 'circular' must be at most the dimension size"
                             f" {size}")
        return positions % size
    if left >= size or right >= size:
        raise ValueError(f"pad: padding ({left}, {right}) for mode 'reflect' must be smaller than the dimension "
                         f"size {size}")
    positions = np.abs(positions)
    return np.where(positions >= size, 2 * (size - 1) - positions, positions)


def pad(input, pad, mode="constant", value=None):
    """Pads the last len(pad) // 2 dimensions; pad lists (left, right) pairs starting from the last dimension."""
    if mode == "constant":
        return _C.pad(input, pad, mode="constant", value=value)
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"pad: mode {mode!r} is not supported (constant, reflect, replicate, circular)")
    if value not in (None, 0, 0.0):
        raise ValueError(f"pad: padding mode {mode!r} does not take a value (got {value})")
    pad = list(pad)
    if len(pad) % 2 or len(pad) // 2 > input.dim():
        raise ValueError(f"pad: padding of length {len(pad)} is invalid for an input of shape {tuple(input.shape)}")
    if input.dim() < len(pad) // 2 + 1:
        raise ValueError(f"pad: mode {mode!r} pads all but the batch/channel dimension; input of shape "
                         f"{tuple(input.shape)} has too few dimensions for padding of length {len(pad)}")
    out = input
    for i in range(len(pad) // 2):
        dim = input.dim() - 1 - i
        left, right = pad[2 * i], pad[2 * i + 1]
        if left or right:
            out = _C.index_select(out, dim, _index(_border_indices(input.shape[dim], left, right, mode)))
    return out


def _as_list(value, n, name):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"interpolate: {name} has {len(value)} elements; the input has {n} spatial dimensions")
        return list(value)
    return [value] * n


def _source_scale(in_size, out_size, scale_factor, align_corners, dtype):
    # torch's area_pixel_compute_scale: the scale maps an output position back to the input.
    if align_corners:
        return dtype((in_size - 1) / (out_size - 1)) if out_size > 1 else dtype(0)
    if scale_factor is not None:
        return dtype(1.0 / scale_factor)
    return dtype(in_size) / dtype(out_size)


def _resample_dim(x, dim, in_size, out_size, scale_factor, mode, align_corners):
    # Index arithmetic in the precision torch's CPU kernels use: float32 for nearest and float32-or-lower inputs.
    dtype = np.float64 if (x.dtype == _C.float64 and mode == "linear") else np.float32
    scale = _source_scale(in_size, out_size, scale_factor, align_corners, dtype)
    dst = np.arange(out_size, dtype=dtype)
    if mode == "nearest":
        return _C.index_select(x, dim, _index(np.minimum(np.floor(dst * scale), in_size - 1)))
    if mode == "nearest-exact":
        return _C.index_select(x, dim, _index(np.minimum(np.floor((dst + dtype(0.5)) * scale), in_size - 1)))
    if align_corners:
        src = dst * scale
    else:
        src = np.maximum((dst + dtype(0.5)) * scale - dtype(0.5), dtype(0))
    low = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    weight_shape = [1] * x.dim()
    weight_shape[dim] = out_size
    weight = _C.tensor((src - low).astype(dtype)).to(x.dtype).reshape(weight_shape)
    below = _C.index_select(x, dim, _index(low))
    above = _C.index_select(x, dim, _index(high))
    return below + (above - below) * weight


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None,
                antialias=False):
    """Resizes the spatial dimensions of (N, C, L) or (N, C, H, W) input, as torch.nn.functional.interpolate."""
    modes = {"nearest": None, "nearest-exact": None, "linear": 1, "bilinear": 2}
    if mode not in modes:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported (nearest, nearest-exact, linear, "
                                  f"bilinear)")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    spatial = input.dim() - 2
    if spatial not in (1, 2) or (modes[mode] is not None and modes[mode] != spatial):
        raise ValueError(f"interpolate: mode {mode!r} got an input of shape {tuple(input.shape)}; expected "
                         f"(N, C, L) or (N, C, H, W) input matching the mode")
    if mode.startswith("nearest") and align_corners is not None:
        raise ValueError("interpolate: align_corners option can only be set with the interpolating modes: linear | "
                         "bilinear")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: exactly one of size or scale_factor must be given")
    in_sizes = list(input.shape[2:])
    sizes = _as_list(size, spatial, "size")
    scales = _as_list(scale_factor, spatial, "scale_factor")
    if sizes is None:
        sizes = [int(math.floor(n * s)) for n, s in zip(in_sizes, scales)]
        if recompute_scale_factor:
            scales = None
    if scales is None:
        scales = [None] * spatial
    if any(s <= 0 for s in sizes):
        raise ValueError(f"interpolate: output size {tuple(sizes)} must be positive (input {tuple(input.shape)})")
    resample_mode = "linear" if mode in ("linear", "bilinear") else mode
    out = input
    for i in range(spatial):
        out = _resample_dim(out, 2 + i, in_sizes[i], sizes[i], scales[i], resample_mode, bool(align_corners))
    return out


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated alias of interpolate, as in torch."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def pixel_shuffle(input, upscale_factor):
    """(*, C*r*r, H, W) -> (*, C, H*r, W*r)."""
    r = upscale_factor
    *batch, channels, height, width = input.shape
    if channels % (r * r):
        raise ValueError(f"pixel_shuffle: channels {channels} of input {tuple(input.shape)} are not divisible by "
                         f"upscale_factor^2 = {r * r}")
    n = len(batch)
    x = input.reshape(*batch, channels // (r * r), r, r, height, width)
    x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return x.reshape(*batch, channels // (r * r), height * r, width * r)


def pixel_unshuffle(input, downscale_factor):
    """(*, C, H*r, W*r) -> (*, C*r*r, H, W)."""
    r = downscale_factor
    *batch, channels, height, width = input.shape
    if height % r or width % r:
        raise ValueError(f"pixel_unshuffle: spatial size ({height}, {width}) of input {tuple(input.shape)} is not "
                         f"divisible by downscale_factor {r}")
    n = len(batch)
    x = input.reshape(*batch, channels, height // r, r, width // r, r)
    x = x.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return x.reshape(*batch, channels * r * r, height // r, width // r)
