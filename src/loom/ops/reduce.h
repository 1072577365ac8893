// Reductions over any set of dims (an empty dim list means all dims), with keepdim as in PyTorch.
#pragma once
#include <optional>
#include <utility>
#include <vector>

#include "loom/core/tensor.h"

namespace loom {

using Dims = std::vector<int64_t>;

// Integer and bool inputs sum to int64 unless `dtype` says otherwise.
Tensor sum(const Tensor& t, const Dims& dims = {}, bool keepdim = false, std::optional<DType> dtype = std::nullopt);
// Floating inputs only (as in PyTorch), or pass a floating `dtype`.
Tensor mean(const Tensor& t, const Dims& dims = {}, bool keepdim = false, std::optional<DType> dtype = std::nullopt);
// Product; integer and bool inputs give int64 unless `dtype` says otherwise. The gradient is exact with zeros.
Tensor prod(const Tensor& t, const Dims& dims = {}, bool keepdim = false, std::optional<DType> dtype = std::nullopt);
// Largest/smallest value over `dims` (NaN propagates). Ties share the gradient evenly. Raises IndexError when a
// reduced dim has size 0.
Tensor amax(const Tensor& t, const Dims& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& t, const Dims& dims = {}, bool keepdim = false);
// torch.max(t) / torch.min(t): the value over all elements (raises for an empty tensor).
Tensor max(const Tensor& t);
Tensor min(const Tensor& t);
// torch.max(t, dim) / torch.min(t, dim): (values, int64 indices of the first extreme, NaN counting as the
// extreme). The gradient flows to the index.
std::pair<Tensor, Tensor> max(const Tensor& t, int64_t dim, bool keepdim = false);
std::pair<Tensor, Tensor> min(const Tensor& t, int64_t dim, bool keepdim = false);
// Index of the first largest/smallest value along `dim`, or in the flattened tensor when dim is nullopt.
Tensor argmax(const Tensor& t, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
Tensor argmin(const Tensor& t, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
// Truth of all/any element; bool output (uint8 for uint8 inputs, as in PyTorch).
Tensor all(const Tensor& t, const Dims& dims = {}, bool keepdim = false);
Tensor any(const Tensor& t, const Dims& dims = {}, bool keepdim = false);
// Variance / standard deviation with `correction` (1 = Bessel's correction, 0 = population). Floating only.
Tensor var(const Tensor& t, const Dims& dims = {}, double correction = 1.0, bool keepdim = false);
Tensor std(const Tensor& t, const Dims& dims = {}, double correction = 1.0, bool keepdim = false);
std::pair<Tensor, Tensor> var_mean(const Tensor& t, const Dims& dims = {}, double correction = 1.0, bool keepdim = false);
std::pair<Tensor, Tensor> std_mean(const Tensor& t, const Dims& dims = {}, double correction = 1.0, bool keepdim = false);
// Vector p-norm over `dims` (all dims when empty): p = 2 (default), 1, inf, -inf, 0 (count of non-zeros) or any
// other real p. Floating inputs only (or pass a floating `dtype`).
Tensor norm(const Tensor& t, double p = 2.0, const Dims& dims = {}, bool keepdim = false,
            std::optional<DType> dtype = std::nullopt);
// log(sum(exp(t))) over `dims`, computed stably (the max is subtracted first). Integer inputs give floats.
Tensor logsumexp(const Tensor& t, const Dims& dims, bool keepdim = false);
// Inclusive scans along `dim`; integer and bool inputs give int64 unless `dtype` says otherwise.
// cumprod's gradient uses a division by the input: exact for nonzero inputs only.
Tensor cumsum(const Tensor& t, int64_t dim, std::optional<DType> dtype = std::nullopt);
Tensor cumprod(const Tensor& t, int64_t dim, std::optional<DType> dtype = std::nullopt);
// log(cumsum(exp(t))) along `dim`, computed stably with a running log-add-exp. Integer inputs give floats.
Tensor logcumsumexp(const Tensor& t, int64_t dim);
// Running max/min along `dim` with the index where it was reached (ties and NaNs take the latest index, as in
// PyTorch). The gradient flows to those indices.
std::pair<Tensor, Tensor> cummax(const Tensor& t, int64_t dim);
std::pair<Tensor, Tensor> cummin(const Tensor& t, int64_t dim);
// (amin, amax) in one call.
std::pair<Tensor, Tensor> aminmax(const Tensor& t, const Dims& dims = {}, bool keepdim = false);
// Sum / mean treating NaN as zero / as absent. nanmean takes floating inputs only.
Tensor nansum(const Tensor& t, const Dims& dims = {}, bool keepdim = false, std::optional<DType> dtype = std::nullopt);
Tensor nanmean(const Tensor& t, const Dims& dims = {}, bool keepdim = false, std::optional<DType> dtype = std::nullopt);
// The number of nonzero elements (int64).
Tensor count_nonzero(const Tensor& t, const Dims& dims = {});
// softmax / log_softmax along `dim` (fused, stable kernel); `dtype` casts the input first. Floating only.
Tensor softmax(const Tensor& t, int64_t dim, std::optional<DType> dtype = std::nullopt);
Tensor log_softmax(const Tensor& t, int64_t dim, std::optional<DType> dtype = std::nullopt);

// Sums `t` down to `shape` (the inverse of broadcasting `shape` up to t's shape). Used by autograd.
Tensor sum_to(const Tensor& t, const Shape& shape);

namespace detail {
// The output shape of a reduction over normalized `dims`.
Shape reduced_shape(const Shape& in, const Dims& dims, bool keepdim);
// logcumsumexp scanning from the end of `dim` towards its start (used by logcumsumexp's backward).
Tensor reverse_logcumsumexp(const Tensor& t, int64_t dim);
// Re-inserts reduced dims as size 1 so a reduced tensor broadcasts against its input.
Tensor unsqueeze_reduced(const Tensor& reduced, const Shape& input_shape, const Dims& dims, bool keepdim);
}  // namespace detail

}  // namespace loom
