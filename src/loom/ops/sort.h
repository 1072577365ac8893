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

// The k-th smallest element (1-based k) along `dim` and its index (NaN counts as the largest).
std::pair<Tensor, Tensor> kthvalue(const Tensor& t, int64_t k, int64_t dim = -1, bool keepdim = false);
// The lower median: of all elements (NaN when the tensor is empty or holds a NaN), or along `dim` with its index
// (NaN and the index of the first NaN when the line holds one). nanmedian ignores NaNs (NaN for all-NaN lines).
Tensor median(const Tensor& t);
std::pair<Tensor, Tensor> median(const Tensor& t, int64_t dim, bool keepdim = false);
Tensor nanmedian(const Tensor& t);
std::pair<Tensor, Tensor> nanmedian(const Tensor& t, int64_t dim, bool keepdim = false);

}  // namespace loom
