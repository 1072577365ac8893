// Op definitions of the sort family (see ops/sort.h). CPU kernels: backends/cpu/sort.cpp.
#include "loom/ops/sort.h"

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
  return {detail::sort_scatter(c.grad(0), c.outputs[1], c.attrs.get<int64_t>("dim"), in)};
}

void check_index_pair(const Tensor& a, const Tensor& index, const char* op) {
  LOOM_CHECK(index.dtype() == DType::Int64, Type, op, ": index must be int64, got ", dtype_name(index.dtype()));
  LOOM_CHECK(a.sizes() == index.sizes(), Value, op, ": index shape ", shape_str(index.sizes()),
             " must match the source shape ", shape_str(a.sizes()));
}

// sort_scatter: inputs (src, index); attrs dim, sizes.
std::vector<TensorMeta> infer_sort_scatter(const std::vector<Tensor>& in, const Attrs& a) {
  check_index_pair(in[0], in[1], "sort_scatter");
  const Shape& sizes = a.get<Shape>("sizes");
  int64_t dim = a.get<int64_t>("dim");
  LOOM_CHECK(static_cast<int64_t>(sizes.size()) == in[0].dim(), Value, "sort_scatter: output shape ", shape_str(sizes),
             " and source shape ", shape_str(in[0].sizes()), " must have the same number of dims");
  for (int64_t d = 0; d < in[0].dim(); ++d)
    LOOM_CHECK(d == dim || in[0].sizes()[d] == sizes[d], Value, "sort_scatter: source shape ", shape_str(in[0].sizes()),
               " must match the output shape ", shape_str(sizes), " except in dim ", dim);
  return {TensorMeta{a.get<Shape>("sizes"), in[0].dtype(), in[0].device()}};
}
std::vector<Tensor> sort_scatter_backward(BackwardContext& c) {
  return {detail::sort_gather(c.grad(), c.inputs[1], c.attrs.get<int64_t>("dim")), Tensor()};
}

// sort_gather: inputs (t, index); attrs dim.
std::vector<TensorMeta> infer_sort_gather(const std::vector<Tensor>& in, const Attrs& a) {
  LOOM_CHECK(in[1].dtype() == DType::Int64, Type, "sort_gather: index must be int64, got ", dtype_name(in[1].dtype()));
  LOOM_CHECK(in[0].dim() == in[1].dim(), Value, "sort_gather: index shape ", shape_str(in[1].sizes()),
             " and input shape ", shape_str(in[0].sizes()), " must have the same number of dims");
  int64_t dim = a.get<int64_t>("dim");
  for (int64_t d = 0; d < in[0].dim(); ++d)
    LOOM_CHECK(d == dim || in[0].sizes()[d] == in[1].sizes()[d], Value, "sort_gather: index shape ",
               shape_str(in[1].sizes()), " must match the input shape ", shape_str(in[0].sizes()), " except in dim ", dim);
  return {TensorMeta{in[1].sizes(), in[0].dtype(), in[0].device()}};
}
std::vector<Tensor> sort_gather_backward(BackwardContext& c) {
  return {detail::sort_scatter(c.grad(), c.inputs[1], c.attrs.get<int64_t>("dim"), c.input_meta[0].sizes), Tensor()};
}

}  // namespace

void define_sort_ops(Registry& r) {
  r.define({.name = "sort_topk", .infer = infer_sort_topk, .backward = sort_topk_backward, .saved_inputs = 0,
            .saves_outputs = true});
  r.define({.name = "sort_scatter", .infer = infer_sort_scatter, .backward = sort_scatter_backward, .saved_inputs = 2,
            .nondiff_inputs = 2});
  r.define({.name = "sort_gather", .infer = infer_sort_gather, .backward = sort_gather_backward, .saved_inputs = 2,
            .nondiff_inputs = 2});
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

namespace detail {

Tensor sort_scatter(const Tensor& src, const Tensor& index, int64_t dim, const Shape& sizes) {
  return dispatch1(LOOM_OP("sort_scatter"), {src, index}, Attrs().set("dim", dim).set("sizes", sizes));
}

Tensor sort_gather(const Tensor& t, const Tensor& index, int64_t dim) {
  return dispatch1(LOOM_OP("sort_gather"), {t, index}, Attrs().set("dim", dim));
}

}  // namespace detail

}  // namespace loom
