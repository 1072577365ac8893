// Reduction op definitions and public functions. CPU kernels: backends/cpu/reduce.cpp.
#include "loom/ops/reduce.h"

#include <algorithm>

#include "loom/ops/elementwise.h"
#include "loom/ops/promotion.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom {

namespace detail {

Shape reduced_shape(const Shape& in, const Dims& dims, bool keepdim) {
  Shape out;
  for (int64_t i = 0; i < static_cast<int64_t>(in.size()); ++i) {
    bool reduced = std::find(dims.begin(), dims.end(), i) != dims.end();
    if (!reduced) out.push_back(in[i]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

Tensor unsqueeze_reduced(const Tensor& reduced, const Shape& input_shape, const Dims& dims, bool keepdim) {
  if (keepdim) return reduced;
  return reshape(reduced, reduced_shape(input_shape, dims, true));
}

}  // namespace detail

namespace {

std::vector<TensorMeta> infer_sum(const std::vector<Tensor>& in, const Attrs& a) {
  const Dims& dims = a.get<Dims>("dims");
  DType dtype = a.get<DType>("dtype");
  return {TensorMeta{detail::reduced_shape(in[0].sizes(), dims, a.get<bool>("keepdim")), dtype, in[0].device()}};
}

std::vector<Tensor> sum_backward(BackwardContext& c) {
  const Dims& dims = c.attrs.get<Dims>("dims");
  const Shape& in = c.input_meta[0].sizes;
  Tensor g = detail::unsqueeze_reduced(c.grad(), in, dims, c.attrs.get<bool>("keepdim"));
  return {expand(g, in)};
}

}  // namespace

void define_reduce_ops(Registry& r) {
  // sum: attrs dims (normalized, sorted; all dims listed when reducing everything), keepdim, dtype (output).
  r.define({.name = "sum", .infer = infer_sum, .backward = sum_backward, .saved_inputs = 0});
}

Tensor sum(const Tensor& t, const Dims& dims, bool keepdim, std::optional<DType> dtype) {
  Dims normalized = normalize_dims(dims, t.dim(), "sum");
  DType out = dtype.value_or(is_floating(t.dtype()) ? t.dtype() : DType::Int64);
  return dispatch1(LOOM_OP("sum"), {t}, Attrs().set("dims", normalized).set("keepdim", keepdim).set("dtype", out));
}

Tensor mean(const Tensor& t, const Dims& dims, bool keepdim, std::optional<DType> dtype) {
  DType out = dtype.value_or(t.dtype());
  LOOM_CHECK(is_floating(out), Type, "mean: could not infer output dtype. Input dtype must be a floating point dtype, got ",
             dtype_name(t.dtype()));
  Dims normalized = normalize_dims(dims, t.dim(), "mean");
  int64_t count = 1;
  for (int64_t d : normalized) count *= t.sizes()[d];
  Tensor total = sum(t, normalized, keepdim, out);
  return div(total, Scalar(static_cast<double>(count)));
}

Tensor sum_to(const Tensor& t, const Shape& shape) {
  if (t.sizes() == shape) return t;
  int64_t lead = t.dim() - static_cast<int64_t>(shape.size());
  LOOM_CHECK(lead >= 0, Value, "sum_to: cannot sum shape ", shape_str(t.sizes()), " to ", shape_str(shape));
  Dims dims;
  for (int64_t i = 0; i < t.dim(); ++i) {
    if (i < lead) dims.push_back(i);
    else if (shape[i - lead] == 1 && t.sizes()[i] != 1) dims.push_back(i);
    else LOOM_CHECK(shape[i - lead] == t.sizes()[i], Value, "sum_to: cannot sum shape ", shape_str(t.sizes()), " to ", shape_str(shape));
  }
  if (dims.empty()) return reshape(t, shape);
  return reshape(sum(t, dims, true), shape);
}

}  // namespace loom
