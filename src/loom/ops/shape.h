// Views and layout: reshape/view, permute/transpose, expand, slicing, squeeze/unsqueeze, split/chunk/unbind,
// plus contiguous/clone/to_dtype/copy_. Views share storage with their input and never copy.
#pragma once
#include <optional>
#include <vector>

#include "loom/core/tensor.h"
#include "loom/ops/registry.h"

namespace loom {

Tensor as_strided(const Tensor& t, const Shape& sizes, const Shape& strides, std::optional<int64_t> offset = std::nullopt);
// Writes `src` into the strided window of a copy of `base` (out of place); the backward of views and the
// mechanism behind in-place ops on views.
Tensor as_strided_scatter(const Tensor& base, const Tensor& src, const Shape& sizes, const Shape& strides,
                          int64_t offset);

// A view with a new shape (one size may be -1); raises if the strides cannot express it without a copy.
Tensor view(const Tensor& t, const Shape& shape);
// view() when possible, otherwise a contiguous copy.
Tensor reshape(const Tensor& t, const Shape& shape);
Tensor permute(const Tensor& t, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& t, int64_t dim0, int64_t dim1);
Tensor movedim(const Tensor& t, int64_t source, int64_t destination);
// Transpose of a tensor of at most 2 dims.
Tensor t(const Tensor& t);
// Broadcast to `sizes` (a size of -1 keeps the dim); new dims are prepended. Stride-0 view.
Tensor expand(const Tensor& t, const Shape& sizes);
Tensor broadcast_to(const Tensor& t, const Shape& sizes);
std::vector<Tensor> broadcast_tensors(const std::vector<Tensor>& tensors);
// Python slicing t[start:end:step] along `dim` (step > 0; bounds clamp like Python's).
Tensor slice(const Tensor& t, int64_t dim, std::optional<int64_t> start, std::optional<int64_t> end, int64_t step = 1);
Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length);
// Removes `dim`, taking element `index` (negative counts from the end).
Tensor select(const Tensor& t, int64_t dim, int64_t index);
// Removes the listed size-1 dims (all size-1 dims when `dims` is empty); other listed dims are kept.
Tensor squeeze(const Tensor& t, const std::vector<int64_t>& dims = {});
Tensor unsqueeze(const Tensor& t, int64_t dim);
Tensor flatten(const Tensor& t, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor unflatten(const Tensor& t, int64_t dim, const Shape& sizes);
std::vector<Tensor> split(const Tensor& t, int64_t split_size, int64_t dim = 0);
std::vector<Tensor> split_with_sizes(const Tensor& t, const std::vector<int64_t>& sizes, int64_t dim = 0);
std::vector<Tensor> chunk(const Tensor& t, int64_t chunks, int64_t dim = 0);
std::vector<Tensor> unbind(const Tensor& t, int64_t dim = 0);

Tensor contiguous(const Tensor& t);
Tensor clone(const Tensor& t);
Tensor to_dtype(const Tensor& t, DType dtype);
// Copies `src` (broadcast, cast) into `dst` in place; differentiable w.r.t. src (and dst's history is replaced).
Tensor& copy_(Tensor& dst, const Tensor& src);

namespace detail {
// The raw data copy behind copy_: no autograd, no version bump. src must broadcast to dst.
void copy_data(const Tensor& dst, const Tensor& src);
// Finishes an in-place op: writes `result` into `self` (which must keep its shape and be able to hold the
// result's dtype), bumps the version, and gives `self` the result's autograd history (through its base if
// `self` is a view). Every `op_` function ends here.
Tensor& commit_inplace(Tensor& self, const Tensor& result, const char* op);
// The fast path of an in-place op: runs `op` (one output) with its result written straight into `self` and
// bumps self's version, when that is exactly what computing out of place + commit_inplace would do: no graph
// to record, the result has self's size and dtype, self has no overlapping elements, and no input shares
// self's memory other than self itself. Returns false, doing nothing, otherwise (the caller then falls back).
bool try_inplace(Tensor& self, const OpDef& op, std::vector<Tensor> inputs, Attrs attrs = {});
}  // namespace detail

}  // namespace loom
