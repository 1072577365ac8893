// Sorting and selection along one dim: sort, argsort, topk. Values come with int64 indices into the input;
// the gradient of the values flows back to the input positions the indices name.
#pragma once
#include <utility>

#include "loom/core/tensor.h"

namespace loom {

// Sorts along `dim` (ascending unless `descending`). NaN sorts as the largest value. Equal elements keep their
// input order (the sort is always stable; `stable` is accepted for PyTorch compatibility).
// Returns (values, indices).
std::pair<Tensor, Tensor> sort(const Tensor& t, int64_t dim = -1, bool descending = false, bool stable = false);
// The indices of sort(t, dim, descending, stable).
Tensor argsort(const Tensor& t, int64_t dim = -1, bool descending = false, bool stable = false);
// The k largest (or smallest) elements along `dim` and their indices, in sorted order (the order is sorted even
// when `sorted` is false, which PyTorch allows). Raises IndexError unless 0 <= k <= size of dim.
std::pair<Tensor, Tensor> topk(const Tensor& t, int64_t k, int64_t dim = -1, bool largest = true, bool sorted = true);

namespace detail {
// Adds src[..., j, ...] into a zero tensor of shape `sizes` at position index[..., j, ...] along `dim` (the
// adjoint of picking elements along a dim; index and src have the same shape). Used by the backward of sort/topk.
Tensor sort_scatter(const Tensor& src, const Tensor& index, int64_t dim, const Shape& sizes);
// out[..., j, ...] = t[..., index[..., j, ...], ...] along `dim` (the adjoint of sort_scatter).
Tensor sort_gather(const Tensor& t, const Tensor& index, int64_t dim);
}  // namespace detail

}  // namespace loom
