"""Functional layers: convolution, pooling, normalisation, dropout, attention (torch.nn.functional names)."""
from loom import _C

__all__ = [
    "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "unfold", "fold",
    "max_pool2d", "max_pool2d_with_indices", "avg_pool2d", "adaptive_avg_pool2d",
    "max_pool1d", "max_pool1d_with_indices", "avg_pool1d", "adaptive_avg_pool1d",
    "layer_norm", "rms_norm", "group_norm", "batch_norm", "instance_norm", "dropout",
    "scaled_dot_product_attention",
]

conv1d = _C.conv1d
conv2d = _C.conv2d
conv_transpose1d = _C.conv_transpose1d
conv_transpose2d = _C.conv_transpose2d
avg_pool2d = _C.avg_pool2d
adaptive_avg_pool2d = _C.adaptive_avg_pool2d
max_pool2d_with_indices = _C.max_pool2d_with_indices
max_pool1d_with_indices = _C.max_pool1d_with_indices
avg_pool1d = _C.avg_pool1d
adaptive_avg_pool1d = _C.adaptive_avg_pool1d
layer_norm = _C.layer_norm
instance_norm = _C._nn_instance_norm
rms_norm = _C.rms_norm
group_norm = _C.group_norm
scaled_dot_product_attention = _C.scaled_dot_product_attention


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding local blocks (N, C, H, W) -> (N, C*kh*kw, L), as torch.nn.functional.unfold."""
    return _C._nn_unfold(input, kernel_size, dilation, padding, stride)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Sums blocks (N, C*kh*kw, L) into (N, C, *output_size), as torch.nn.functional.fold."""
    return _C._nn_fold(input, output_size, kernel_size, dilation, padding, stride)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-D max pooling; with return_indices=True also the flat argmax positions within each (H, W) plane."""
    if return_indices:
        return _C.max_pool2d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)
    return _C.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """1-D max pooling over (N, C, L) or (C, L); with return_indices=True also the argmax positions along L."""
    if return_indices:
        return _C.max_pool1d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode)
    return _C.max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalisation; in training mode updates running_mean/running_var in place (when given)."""
    if momentum is None:
        raise NotImplementedError("batch_norm: momentum=None (cumulative moving average) is not supported")
    return _C._nn_batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def dropout(input, p=0.5, training=True, inplace=False):
    """Zeroes elements with probability p and scales the rest by 1/(1-p) (identity when not training)."""
    out = _C.dropout(input, p, training)
    if inplace and training and p > 0:
        input.copy_(out)
        return input
    return out
