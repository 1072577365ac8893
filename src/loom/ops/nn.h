// Neural-network ops with torch.nn.functional semantics: convolution (im2col + matmul), pooling,
// normalisation, dropout and attention. Primitives with CPU kernels: im2col, col2im, max_pool2d,
// max_pool2d_backward; everything else is a composite of existing ops, so autograd comes for free.
//
// Layout is (N, C, H, W), row-major. Pair arguments are {height, width}. Unbatched inputs (C, H, W) are
// accepted wherever PyTorch accepts them.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "loom/core/tensor.h"

namespace loom {

using Pair = std::vector<int64_t>;  // {h, w}; a single value is used for both

// ---- im2col / col2im (torch.nn.functional.unfold / fold) ----

// Sliding local blocks of (N, C, H, W) (or (C, H, W)) as columns: (N, C*kh*kw, L), L = number of blocks.
Tensor unfold(const Tensor& input, const Pair& kernel_size, const Pair& dilation = {1}, const Pair& padding = {0},
              const Pair& stride = {1});
// The adjoint of unfold: sums columns (N, C*kh*kw, L) (or unbatched) into (N, C, output_size...).
Tensor fold(const Tensor& input, const Pair& output_size, const Pair& kernel_size, const Pair& dilation = {1},
            const Pair& padding = {0}, const Pair& stride = {1});

namespace detail {
// The registry ops behind unfold/fold with asymmetric padding {top, bottom, left, right} (4-D only).
Tensor im2col(const Tensor& input, const Pair& kernel_size, const Pair& dilation, const Pair& padding4,
              const Pair& stride);
Tensor col2im(const Tensor& input, const Pair& output_size, const Pair& kernel_size, const Pair& dilation,
              const Pair& padding4, const Pair& stride);
}  // namespace detail

// ---- convolution ----

// Padding for conv: explicit sizes, or "same" / "valid" as in PyTorch.
struct ConvPadding {
  Pair sizes{0};
  std::string mode;  // "", "same" or "valid"
};

// input (N, C, H, W) or (C, H, W); weight (O, C/groups, kh, kw); bias (O) or undefined.
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(), const Pair& stride = {1},
              const ConvPadding& padding = {}, const Pair& dilation = {1}, int64_t groups = 1);
// input (N, C, L) or (C, L); weight (O, C/groups, k). Runs conv2d with H = 1.
Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(), int64_t stride = 1,
              const ConvPadding& padding = {}, int64_t dilation = 1, int64_t groups = 1);

// The transpose (adjoint) of conv2d: input (N, C_in, H, W) or unbatched; weight (C_in, C_out/groups, kh, kw).
// Output size (H-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1. output_padding must be smaller
// than stride (PyTorch also allows it below dilation; that case raises NotImplementedError here).
Tensor conv_transpose2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(),
                        const Pair& stride = {1}, const Pair& padding = {0}, const Pair& output_padding = {0},
                        int64_t groups = 1, const Pair& dilation = {1});
// input (N, C_in, L) or (C_in, L); weight (C_in, C_out/groups, k).
Tensor conv_transpose1d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(), int64_t stride = 1,
                        int64_t padding = 0, int64_t output_padding = 0, int64_t groups = 1, int64_t dilation = 1);

// ---- pooling ----

// Returns (values, indices); indices are int64 flat positions within each input (H, W) plane, as in PyTorch.
// stride empty = kernel_size.
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input, const Pair& kernel_size, const Pair& stride = {},
                                                  const Pair& padding = {0}, const Pair& dilation = {1},
                                                  bool ceil_mode = false);
Tensor max_pool2d(const Tensor& input, const Pair& kernel_size, const Pair& stride = {}, const Pair& padding = {0},
                  const Pair& dilation = {1}, bool ceil_mode = false);
Tensor avg_pool2d(const Tensor& input, const Pair& kernel_size, const Pair& stride = {}, const Pair& padding = {0},
                  bool ceil_mode = false, bool count_include_pad = true,
                  std::optional<int64_t> divisor_override = std::nullopt);
// output_size entries may be nullopt (keep the input size).
Tensor adaptive_avg_pool2d(const Tensor& input, const std::vector<std::optional<int64_t>>& output_size);

// 1-D pooling over (N, C, L) or (C, L), through the 2-D ops with H = 1 (indices are positions along L).
std::pair<Tensor, Tensor> max_pool1d_with_indices(const Tensor& input, int64_t kernel_size,
                                                  std::optional<int64_t> stride = std::nullopt, int64_t padding = 0,
                                                  int64_t dilation = 1, bool ceil_mode = false);
Tensor avg_pool1d(const Tensor& input, int64_t kernel_size, std::optional<int64_t> stride = std::nullopt,
                  int64_t padding = 0, bool ceil_mode = false, bool count_include_pad = true);
Tensor adaptive_avg_pool1d(const Tensor& input, int64_t output_size);

// ---- normalisation ----

// Normalises over the trailing dims given by normalized_shape; weight/bias (normalized_shape) may be undefined.
Tensor layer_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);
// eps nullopt = the machine epsilon of input's dtype (as torch).
Tensor rms_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                std::optional<double> eps = std::nullopt);
// input (N, C, *); weight/bias (C).
Tensor group_norm(const Tensor& input, int64_t num_groups, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);
// input (N, C, *). In training mode normalises with batch statistics and, when given, updates running_mean and
// running_var in place (running_var with the unbiased variance); otherwise uses the running statistics.
Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight = Tensor(), const Tensor& bias = Tensor(), bool training = false,
                  double momentum = 0.1, double eps = 1e-5);

// Normalises each (n, c) slice of (N, C, *) over its spatial dims (group_norm with one channel per group);
// weight/bias (C). Running statistics are not supported (use_input_stats=True only).
Tensor instance_norm(const Tensor& input, const Tensor& weight = Tensor(), const Tensor& bias = Tensor(),
                     double eps = 1e-5);

// ---- dropout ----

// Zeroes elements with probability p and scales the rest by 1/(1-p); identity when !training or p == 0.
Tensor dropout(const Tensor& input, double p = 0.5, bool training = true);

// ---- attention ----

// softmax(q @ k^T * scale + mask) @ v over (..., L, E) x (..., S, E) x (..., S, Ev), batch dims broadcast.
// A bool mask keeps True positions; a float mask is added; is_causal keeps key j <= query i (top-left aligned).
// scale defaults to 1/sqrt(E). dropout_p drops attention weights. enable_gqa: key/value heads (dim -3) are
// shared by groups of query heads. A fully masked row gives NaN, as PyTorch's math reference does.
Tensor scaled_dot_product_attention(const Tensor& query, const Tensor& key, const Tensor& value,
                                    const Tensor& attn_mask = Tensor(), double dropout_p = 0.0, bool is_causal = false,
                                    std::optional<double> scale = std::nullopt, bool enable_gqa = false);

}  // namespace loom
