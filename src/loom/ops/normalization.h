// Fused normalisation ops (layer norm, RMS norm): the registry ops behind loom::layer_norm and loom::rms_norm (ops/nn.h).
#pragma once
#include <tuple>

#include "loom/ops/registry.h"

namespace loom {

// Defines native_layer_norm and layer_norm_backward (called from define_reduce_ops).
void define_normalization_ops(Registry& r);

// PyTorch's native_layer_norm: normalizes over the last `normalized_dims` dims of `input` with the biased
// variance, then applies the optional weight and bias (same dtype as input). Returns (y, mean, rstd); mean and
// rstd have the input's shape with the normalized dims set to 1 and are float32 for 16-bit inputs (the compute
// dtype). Differentiable in input, weight and bias through y (mean and rstd are not differentiable outputs).
// Inputs are not validated against a normalized_shape here: loom::layer_norm does that.
// With `rms`, RMS norm instead: y = x * rsqrt(mean(x^2) + eps) * weight (no bias; mean is returned as 0).
std::tuple<Tensor, Tensor, Tensor> native_layer_norm(const Tensor& input, int64_t normalized_dims, const Tensor& weight,
                                                     const Tensor& bias, double eps, bool rms = false);

}  // namespace loom
