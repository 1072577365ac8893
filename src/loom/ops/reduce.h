// Reductions over any set of dims (an empty dim list means all dims), with keepdim as in PyTorch.
#pragma once
#include <optional>
#include <vector>

#include "loom/core/tensor.h"

namespace loom {

using Dims = std::vector<int64_t>;

// Integer and bool inputs sum to int64 unless `dtype` says otherwise.
Tensor sum(const Tensor& t, const Dims& dims = {}, bool keepdim = false, std::optional<DType> dtype = std::nullopt);
// Floating inputs only (as in PyTorch), or pass a floating `dtype`.
Tensor mean(const Tensor& t, const Dims& dims = {}, bool keepdim = false, std::optional<DType> dtype = std::nullopt);
// Sums `t` down to `shape` (the inverse of broadcasting `shape` up to t's shape). Used by autograd.
Tensor sum_to(const Tensor& t, const Shape& shape);

namespace detail {
// The output shape of a reduction over normalized `dims`.
Shape reduced_shape(const Shape& in, const Dims& dims, bool keepdim);
// Re-inserts reduced dims as size 1 so a reduced tensor broadcasts against its input.
Tensor unsqueeze_reduced(const Tensor& reduced, const Shape& input_shape, const Dims& dims, bool keepdim);
}  // namespace detail

}  // namespace loom
