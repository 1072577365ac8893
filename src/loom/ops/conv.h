// Fused CPU ops behind the nn family's conv2d and batch_norm (see ops/conv.cpp): a conv2d op whose forward and
// backward run im2col per image straight into a GEMM (no permute copies), and PyTorch's native_batch_norm
// (training statistics in one op, fused backward). Internal: the public entry points stay conv2d/batch_norm in
// ops/nn.h, which fall back to their composites where these ops do not apply.
#pragma once
#include <cstdint>
#include <vector>

#include "loom/core/tensor.h"

namespace loom {

class Registry;

namespace detail {

void define_conv_ops(Registry& r);

// True when the fused conv2d op takes this dtype (float32/float64) and t's device has its kernel.
bool fused_conv_supported(const Tensor& t);
// The same for native_batch_norm.
bool fused_batch_norm_supported(const Tensor& t);

// x (N, C, H, W), w (O, C/groups, kh, kw), bias (O) or undefined; all validated by the caller. padding4 is
// {top, bottom, left, right}.
Tensor conv2d_fused(const Tensor& x, const Tensor& w, const Tensor& bias, const std::vector<int64_t>& stride,
                    const std::vector<int64_t>& padding4, const std::vector<int64_t>& dilation, int64_t groups);

// The same convolution in ops (im2col + one bmm per group): conv2d's composite and the path for other dtypes and for
// devices without the fused kernel.
Tensor conv2d_ops(const Tensor& x, const Tensor& w, const Tensor& bias, const std::vector<int64_t>& stride,
                  const std::vector<int64_t>& padding4, const std::vector<int64_t>& dilation, int64_t groups);

// Training-mode batch norm of x (N, C, *): {y, mean (C), invstd (C)} with biased batch statistics.
// weight/bias may be undefined (no affine).
std::vector<Tensor> native_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps);

}  // namespace detail
}  // namespace loom
