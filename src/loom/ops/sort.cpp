// Op definitions of the sort family (see ops/sort.h). CPU kernels: backends/cpu/sort.cpp.
#include "loom/ops/sort.h"

#include <limits>

#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/index.h"
#include "loom/ops/reduce.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom {

namespace {

// sort_topk: attrs dim (normalized), k, largest (descending). Outputs (values, int64 indices).
std::vector<TensorMeta> infer_sort_topk(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor& t = in[0];
  Shape shape = t.sizes();
  int64_t k = a.get<int64_t>("k");
  if (!shape.empty()) shape[a.get<int64_t>("dim")] = k;
  return {TensorMeta{shape, t.dtype(), t.device()}, TensorMeta{shape, DType::Int64, t.device()}};
}

std::vector<Tensor> sort_topk_backward(BackwardContext& c) {
  const Shape& in = c.input_meta[0].sizes;
  if (in.empty()) return {reshape(c.grad(0), in)};
  Tensor g = c.grad(0);
  return {scatter_add(zeros(in, g.dtype(), g.device()), c.attrs.get<int64_t>("dim"), c.outputs[1], g)};
}

}  // namespace

void define_sort_ops(Registry& r) {
  r.define({.name = "sort_topk", .infer = infer_sort_topk, .backward = sort_topk_backward, .saved_inputs = 0,
            .saves_outputs = true});
}

namespace {

std::pair<Tensor, Tensor> sort_topk(const char* op, const Tensor& t, int64_t k, int64_t dim, bool largest) {
  int64_t d = normalize_dim(dim, t.dim(), op);
  int64_t size = t.dim() == 0 ? 1 : t.sizes()[d];
  LOOM_CHECK(k >= 0 && k <= size, Index, op, ": k (", k, ") is out of range for dimension ", dim, " of size ", size,
             " (input shape ", shape_str(t.sizes()), ")");
  std::vector<Tensor> out =
      dispatch(LOOM_OP("sort_topk"), {t}, Attrs().set("dim", d).set("k", k).set("largest", largest));
  return {out[0], out[1]};
}

}  // namespace

std::pair<Tensor, Tensor> sort(const Tensor& t, int64_t dim, bool descending, bool stable) {
  int64_t d = normalize_dim(dim, t.dim(), "sort");
  return sort_topk("sort", t, t.dim() == 0 ? 1 : t.sizes()[d], dim, descending);
}

Tensor argsort(const Tensor& t, int64_t dim, bool descending, bool stable) {
  return sort(t, dim, descending, stable).second;
}

std::pair<Tensor, Tensor> topk(const Tensor& t, int64_t k, int64_t dim, bool largest, bool sorted) {
  return sort_topk("topk", t, k, dim, largest);
}

namespace {

// Element `position` (an int64 tensor with size 1 along dim) of each sorted line, and its input index.
template <class Position>
std::pair<Tensor, Tensor> pick_sorted(const char* op, const Tensor& t, int64_t dim, bool keepdim, Position position) {
  int64_t d = normalize_dim(dim, t.dim(), op);
  if (t.dim() == 0) return sort(t, d);
  int64_t size = t.sizes()[d];
  LOOM_CHECK(size != 0, Index, op, "(): Expected reduction dim ", d, " to have non-zero size (input shape ",
             shape_str(t.sizes()), ")");
  auto [values, indices] = sort(t, d);
  Tensor pos = position(t, d, size);
  Tensor value = gather(values, d, pos), index = gather(indices, d, pos);
  if (keepdim) return {value, index};
  return {squeeze(value, {d}), squeeze(index, {d})};
}

Tensor nan_count(const Tensor& t, int64_t dim) { return sum(isnan(t), {dim}, true); }

Tensor median_position(const Tensor& t, int64_t dim, int64_t size) {
  // Sorted NaNs come last, in input order: with any NaN the median is the first of them.
  Tensor nans = nan_count(t, dim);
  return where(gt(nans, Scalar(int64_t(0))), rsub(nans, Scalar(size)), Scalar((size - 1) / 2));
}

Tensor nanmedian_position(const Tensor& t, int64_t dim, int64_t size) {
  Tensor valid = rsub(nan_count(t, dim), Scalar(size));
  return clamp(floor_divide(sub(valid, Scalar(int64_t(1))), Scalar(int64_t(2))), Scalar(int64_t(0)), std::nullopt);
}

Tensor whole_median(const char* op, const Tensor& t, bool ignore_nan) {
  if (t.numel() == 0) return full({}, Scalar(std::numeric_limits<double>::quiet_NaN()), t.dtype(), t.device());
  Tensor flat = reshape(t, {-1});
  return (ignore_nan ? nanmedian(flat, 0) : median(flat, 0)).first;
}

}  // namespace

std::pair<Tensor, Tensor> kthvalue(const Tensor& t, int64_t k, int64_t dim, bool keepdim) {
  int64_t d = normalize_dim(dim, t.dim(), "kthvalue");
  int64_t size = t.dim() == 0 ? 1 : t.sizes()[d];
  LOOM_CHECK(k >= 1 && k <= size, Index, "kthvalue(): selected number k (", k, ") out of range for dimension ", dim,
             " of size ", size, " (input shape ", shape_str(t.sizes()), ")");
  return pick_sorted("kthvalue", t, d, keepdim, [k](const Tensor& x, int64_t line_dim, int64_t) {
    Shape shape = x.sizes();
    shape[line_dim] = 1;
    return full(shape, Scalar(k - 1), DType::Int64, x.device());
  });
}

std::pair<Tensor, Tensor> median(const Tensor& t, int64_t dim, bool keepdim) {
  return pick_sorted("median", t, dim, keepdim, median_position);
}
std::pair<Tensor, Tensor> nanmedian(const Tensor& t, int64_t dim, bool keepdim) {
  return pick_sorted("nanmedian", t, dim, keepdim, nanmedian_position);
}
Tensor median(const Tensor& t) { return whole_median("median", t, false); }
Tensor nanmedian(const Tensor& t) { return whole_median("nanmedian", t, true); }


}  // namespace loom
