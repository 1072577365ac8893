// Op definitions of the index family (see ops/index.h): validation, inference, backward formulas in loom ops,
// public functions and composites. CPU kernels: backends/cpu/index.cpp.
#include "loom/ops/index.h"

#include <algorithm>
#include <numeric>

#include "loom/core/checked.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/promotion.h"
#include "loom/ops/reduce.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom {

namespace {

bool is_legacy_empty(const Shape& s) { return s.size() == 1 && s[0] == 0; }

void check_index_dtype(const Tensor& index, const char* op, bool int32_ok) {
  bool ok = index.dtype() == DType::Int64 || (int32_ok && index.dtype() == DType::Int32);
  LOOM_CHECK(ok, Type, op, ": expected an index tensor of dtype int64", int32_ok ? " or int32" : "", ", got ",
             dtype_name(index.dtype()), " (shape ", shape_str(index.sizes()), ")");
}

// ---------------- cat ----------------

// The position of the first input that defines the shape (not a legacy empty tensor), or -1 if none.
int64_t cat_reference(const std::vector<Shape>& shapes) {
  for (size_t i = 0; i < shapes.size(); ++i)
    if (!is_legacy_empty(shapes[i])) return static_cast<int64_t>(i);
  return -1;
}

std::vector<TensorMeta> infer_cat(const std::vector<Tensor>& in, const Attrs& a) {
  LOOM_CHECK(!in.empty(), Value, "cat: expected a non-empty list of tensors");
  std::vector<Shape> shapes;
  for (size_t i = 0; i < in.size(); ++i) {
    LOOM_CHECK(in[i].dim() > 0, Value, "cat: zero-dimensional tensor (at position ", i, ") cannot be concatenated");
    shapes.push_back(in[i].sizes());
  }
  DType dtype = result_type(in);
  int64_t ref = cat_reference(shapes);
  if (ref < 0) return {TensorMeta{{0}, dtype, in[0].device()}};
  const Shape& rs = shapes[ref];
  int64_t dim = normalize_dim(a.get<int64_t>("dim"), static_cast<int64_t>(rs.size()), "cat");
  Shape out = rs;
  out[dim] = 0;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const Shape& s = shapes[i];
    if (is_legacy_empty(s)) continue;
    LOOM_CHECK(s.size() == rs.size(), Value, "cat: tensors must have the same number of dimensions: got ", rs.size(),
               " (shape ", shape_str(rs), ") and ", s.size(), " (shape ", shape_str(s), ", position ", i, ")");
    for (size_t d = 0; d < s.size(); ++d)
      LOOM_CHECK(static_cast<int64_t>(d) == dim || s[d] == rs[d], Value, "cat: sizes of tensors must match except in dimension ",
                 dim, ": expected size ", rs[d], " but got size ", s[d], " for tensor number ", i, " in the list (shapes ",
                 shape_str(rs), " and ", shape_str(s), ")");
    out[dim] = checked_add(out[dim], s[dim], "cat", "the concatenated size");  // zero-size inputs may be huge
  }
  return {TensorMeta{out, dtype, in[ref].device()}};
}

std::vector<Tensor> cat_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  if (c.outputs[0].sizes.size() == 1 && c.outputs[0].sizes[0] == 0) return {out};
  std::vector<Shape> shapes;
  for (const Tensor& t : c.inputs) shapes.push_back(t.sizes());
  int64_t dim = normalize_dim(c.attrs.get<int64_t>("dim"), out.dim(), "cat");
  int64_t start = 0;
  for (const Tensor& t : c.inputs) {
    if (is_legacy_empty(t.sizes())) continue;
    int64_t len = t.sizes()[dim];
    if (len > 0 && t.numel() > 0) {
      Tensor window = Tensor::make_view(out, t.sizes(), out.strides(), out.offset() + start * out.strides()[dim]);
      detail::copy_data(window, t);
    }
    start += len;
  }
  return {out};
}

std::vector<Tensor> cat_backward(BackwardContext& c) {
  Tensor g = c.grad();
  std::vector<Tensor> grads;
  if (g.dim() == 1 && g.sizes()[0] == 0 && c.input_meta.size() > 0) {
    for (const TensorMeta& m : c.input_meta) grads.push_back(zeros(m.sizes, g.dtype(), g.device()));
    return grads;
  }
  int64_t dim = normalize_dim(c.attrs.get<int64_t>("dim"), g.dim(), "cat");
  int64_t start = 0;
  for (size_t i = 0; i < c.input_meta.size(); ++i) {
    const TensorMeta& m = c.input_meta[i];
    if (!c.needs_input_grad[i] || is_legacy_empty(m.sizes)) {
      grads.push_back(c.needs_input_grad[i] ? zeros(m.sizes, g.dtype(), g.device()) : Tensor());
      if (!is_legacy_empty(m.sizes)) start += m.sizes[dim];
      continue;
    }
    grads.push_back(slice(g, dim, start, start + m.sizes[dim], 1));
    start += m.sizes[dim];
  }
  return grads;
}

// ---------------- index_select / index_add / index_copy ----------------

// The shape index_select produces (and index_add/index_copy's source must have).
Shape selected_shape(const Shape& self, int64_t dim, int64_t count) {
  if (self.empty()) return {};
  Shape s = self;
  s[dim] = count;
  return s;
}

void check_dim_index(const Tensor& self, const Tensor& index, const char* op) {
  check_index_dtype(index, op, true);
  LOOM_CHECK(index.dim() <= 1, Index, op, ": index must be 0-d or 1-D, got shape ", shape_str(index.sizes()));
  if (self.dim() == 0)
    LOOM_CHECK(index.numel() == 1, Index, op, ": index of a 0-d tensor must have one element, got shape ",
               shape_str(index.sizes()));
}

std::vector<TensorMeta> infer_index_select(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor &self = in[0], &index = in[1];
  int64_t dim = a.get<int64_t>("dim");
  check_dim_index(self, index, "index_select");
  return {TensorMeta{selected_shape(self.sizes(), dim, index.numel()), self.dtype(), self.device()}};
}

std::vector<Tensor> index_select_backward(BackwardContext& c) {
  Tensor g = c.grad();
  const TensorMeta& m = c.input_meta[0];
  return {index_add(zeros(m.sizes, g.dtype(), g.device()), c.attrs.get<int64_t>("dim"), c.inputs[1], g), Tensor()};
}

template <const char* Name>
std::vector<TensorMeta> infer_index_update(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor &self = in[0], &index = in[1], &source = in[2];
  int64_t dim = a.get<int64_t>("dim");
  check_dim_index(self, index, Name);
  LOOM_CHECK(source.dtype() == self.dtype(), Type, Name, ": self (", dtype_name(self.dtype()), ") and source (",
             dtype_name(source.dtype()), ") must have the same dtype");
  Shape want = selected_shape(self.sizes(), dim, index.numel());
  bool ok = source.sizes() == want || (self.dim() == 0 && source.numel() == 1 && source.dim() <= 1);
  LOOM_CHECK(ok, Value, Name, ": source of shape ", shape_str(source.sizes()), " does not match the expected shape ",
             shape_str(want), " (self ", shape_str(self.sizes()), ", dim ", dim, ", index with ", index.numel(),
             " elements)");
  return {TensorMeta{self.sizes(), self.dtype(), self.device()}};
}

std::vector<Tensor> index_add_backward(BackwardContext& c) {
  Tensor g = c.grad();
  Tensor gs;
  if (c.needs_input_grad[2]) {
    gs = index_select(g, c.attrs.get<int64_t>("dim"), c.inputs[1]);
    Scalar alpha = c.attrs.get<Scalar>("alpha");
    if (alpha.to_double() != 1.0) gs = mul(gs, alpha);
  }
  return {g, Tensor(), gs};
}

std::vector<Tensor> index_copy_backward(BackwardContext& c) {
  Tensor g = c.grad();
  int64_t dim = c.attrs.get<int64_t>("dim");
  const Tensor& index = c.inputs[1];
  Tensor gself, gs;
  if (c.needs_input_grad[0]) gself = index_fill(g, dim, index, Scalar(0.0));
  if (c.needs_input_grad[2]) gs = index_select(g, dim, index);
  return {gself, Tensor(), gs};
}

// ---------------- gather / scatter ----------------

void check_same_rank(const Tensor& a, const Tensor& index, const char* op, const char* what) {
  LOOM_CHECK(std::max<int64_t>(a.dim(), 1) == std::max<int64_t>(index.dim(), 1), Value, op, ": index ",
             shape_str(index.sizes()), " must have the same number of dimensions as ", what, " ",
             shape_str(a.sizes()));
}

int64_t size_or_one(const Tensor& t, int64_t d) { return t.dim() == 0 ? 1 : t.sizes()[d]; }

std::vector<TensorMeta> infer_gather(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor &self = in[0], &index = in[1];
  int64_t dim = a.get<int64_t>("dim");
  check_index_dtype(index, "gather", false);
  check_same_rank(self, index, "gather", "input");
  for (int64_t d = 0; d < index.dim(); ++d)
    LOOM_CHECK(d == dim || index.sizes()[d] <= size_or_one(self, d), Value, "gather: size of index ",
               shape_str(index.sizes()), " does not fit input ", shape_str(self.sizes()), " at dimension ", d,
               " (only dimension ", dim, " may be larger)");
  return {TensorMeta{index.sizes(), self.dtype(), self.device()}};
}

// Embeds g in the top-left corner of zeros(shape) (g's sizes <= shape's elementwise).
Tensor embed_in_zeros(const Tensor& g, const Shape& shape) {
  if (g.sizes() == shape) return g;
  return as_strided_scatter(zeros(shape, g.dtype(), g.device()), g, g.sizes(), contiguous_strides(shape), 0);
}

std::vector<Tensor> gather_backward(BackwardContext& c) {
  Tensor g = c.grad();
  const TensorMeta& m = c.input_meta[0];
  return {scatter_add(zeros(m.sizes, g.dtype(), g.device()), c.attrs.get<int64_t>("dim"), c.inputs[1], g), Tensor()};
}

template <const char* Name>
std::vector<TensorMeta> infer_scatter(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor &self = in[0], &index = in[1], &src = in[2];
  int64_t dim = a.get<int64_t>("dim");
  check_index_dtype(index, Name, false);
  LOOM_CHECK(src.dtype() == self.dtype(), Type, Name, ": self (", dtype_name(self.dtype()), ") and src (",
             dtype_name(src.dtype()), ") must have the same dtype");
  check_same_rank(self, index, Name, "self");
  if (index.numel() > 0) {
    check_same_rank(src, index, Name, "src");
    for (int64_t d = 0; d < index.dim(); ++d) {
      LOOM_CHECK(index.sizes()[d] <= size_or_one(src, d), Value, Name, ": index ", shape_str(index.sizes()),
                 " is larger than src ", shape_str(src.sizes()), " at dimension ", d);
      LOOM_CHECK(d == dim || index.sizes()[d] <= size_or_one(self, d), Value, Name, ": index ",
                 shape_str(index.sizes()), " is larger than self ", shape_str(self.sizes()), " at dimension ", d);
    }
  }
  return {TensorMeta{self.sizes(), self.dtype(), self.device()}};
}

std::vector<Tensor> scatter_backward(BackwardContext& c) {
  Tensor g = c.grad();
  int64_t dim = c.attrs.get<int64_t>("dim");
  const Tensor& index = c.inputs[1];
  Tensor gself, gsrc;
  if (c.needs_input_grad[0]) gself = scatter(g, dim, index, Scalar(0.0));
  if (c.needs_input_grad[2]) gsrc = embed_in_zeros(gather(g, dim, index), c.input_meta[2].sizes);
  return {gself, Tensor(), gsrc};
}

std::vector<Tensor> scatter_add_backward(BackwardContext& c) {
  Tensor g = c.grad();
  Tensor gsrc;
  if (c.needs_input_grad[2])
    gsrc = embed_in_zeros(gather(g, c.attrs.get<int64_t>("dim"), c.inputs[1]), c.input_meta[2].sizes);
  return {g, Tensor(), gsrc};
}

// ---------------- nonzero / wrap_index ----------------

std::vector<TensorMeta> infer_nonzero(const std::vector<Tensor>& in, const Attrs&) {
  // The row count depends on the data; the kernel allocates the output itself.
  return {TensorMeta{{0, in[0].dim()}, DType::Int64, in[0].device()}};
}

std::vector<TensorMeta> infer_wrap_index(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor& index = in[0];
  LOOM_CHECK(is_integral(index.dtype()), Index, a.get<std::string>("op"),
             ": tensors used as indices must be long, int, byte or bool tensors, got ", dtype_name(index.dtype()));
  return {TensorMeta{index.sizes(), DType::Int64, index.device()}};
}

constexpr uint64_t kSecond = 2;
#define LOOM_NAME(var, text) constexpr char var[] = text
LOOM_NAME(kIndexAdd, "index_add");
LOOM_NAME(kIndexCopy, "index_copy");
LOOM_NAME(kScatter, "scatter");
LOOM_NAME(kScatterAdd, "scatter_add");
#undef LOOM_NAME

}  // namespace

void define_index_ops(Registry& r) {
  // cat: attrs dim (as given; normalized against the first input that is not a legacy empty tensor).
  r.define({.name = "cat", .infer = infer_cat, .backward = cat_backward, .saved_inputs = 0});
  r.set_kernel("cat", DeviceType::Any, cat_kernel);
  // index ops: attrs dim (normalized; 0 for 0-d self). Input 1 is the index.
  r.define({.name = "index_select", .infer = infer_index_select, .backward = index_select_backward,
            .saved_inputs = kSecond, .nondiff_inputs = kSecond});
  r.define({.name = "index_add", .infer = infer_index_update<kIndexAdd>, .backward = index_add_backward,
            .saved_inputs = kSecond, .nondiff_inputs = kSecond});
  r.define({.name = "index_copy", .infer = infer_index_update<kIndexCopy>, .backward = index_copy_backward,
            .saved_inputs = kSecond, .nondiff_inputs = kSecond});
  r.define({.name = "gather", .infer = infer_gather, .backward = gather_backward, .saved_inputs = kSecond,
            .nondiff_inputs = kSecond});
  r.define({.name = "scatter", .infer = infer_scatter<kScatter>, .backward = scatter_backward,
            .saved_inputs = kSecond, .nondiff_inputs = kSecond});
  r.define({.name = "scatter_add", .infer = infer_scatter<kScatterAdd>, .backward = scatter_add_backward,
            .saved_inputs = kSecond, .nondiff_inputs = kSecond});
  r.define({.name = "nonzero", .infer = infer_nonzero});
  // wrap_index: attrs size, dim, op (the user-facing op named in errors).
  r.define({.name = "wrap_index", .infer = infer_wrap_index});
}

// ---------------- public functions ----------------

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  LOOM_CHECK(!tensors.empty(), Value, "cat: expected a non-empty list of tensors");
  for (const Tensor& t : tensors) LOOM_CHECK(t.defined(), Value, "cat: got an undefined tensor");
  return dispatch1(LOOM_OP("cat"), tensors, Attrs().set("dim", dim));
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  LOOM_CHECK(!tensors.empty(), Value, "stack: expected a non-empty list of tensors");
  const Shape& first = tensors[0].sizes();
  int64_t d = normalize_dim(dim, static_cast<int64_t>(first.size()) + 1, "stack");
  std::vector<Tensor> parts;
  for (size_t i = 0; i < tensors.size(); ++i) {
    LOOM_CHECK(tensors[i].sizes() == first, Value, "stack: expects each tensor to be equal size, but got ",
               shape_str(first), " at entry 0 and ", shape_str(tensors[i].sizes()), " at entry ", i);
    parts.push_back(unsqueeze(tensors[i], d));
  }
  return cat(parts, d);
}

Tensor hstack(const std::vector<Tensor>& tensors) {
  LOOM_CHECK(!tensors.empty(), Value, "hstack: expected a non-empty list of tensors");
  std::vector<Tensor> parts;
  for (const Tensor& t : tensors) parts.push_back(t.dim() == 0 ? reshape(t, {1}) : t);
  return cat(parts, parts[0].dim() == 1 ? 0 : 1);
}

Tensor vstack(const std::vector<Tensor>& tensors) {
  LOOM_CHECK(!tensors.empty(), Value, "vstack: expected a non-empty list of tensors");
  std::vector<Tensor> parts;
  for (const Tensor& t : tensors) parts.push_back(t.dim() < 2 ? reshape(t, {1, t.dim() == 0 ? 1 : t.sizes()[0]}) : t);
  return cat(parts, 0);
}

std::vector<Tensor> meshgrid(const std::vector<Tensor>& tensors, const std::string& indexing) {
  LOOM_CHECK(indexing == "ij" || indexing == "xy", Value, "meshgrid: indexing must be 'ij' or 'xy', got '", indexing, "'");
  LOOM_CHECK(!tensors.empty(), Value, "meshgrid: expects a non-empty list of tensors");
  std::vector<Tensor> in = tensors;
  for (const Tensor& t : in)
    LOOM_CHECK(t.dim() <= 1, Value, "meshgrid: expects 0-D or 1-D tensors, got shape ", shape_str(t.sizes()));
  bool swap = indexing == "xy" && in.size() >= 2;
  if (swap) std::swap(in[0], in[1]);
  Shape grid;
  for (const Tensor& t : in) grid.push_back(t.numel());
  std::vector<Tensor> out;
  for (size_t i = 0; i < in.size(); ++i) {
    Shape shape(in.size(), 1);
    shape[i] = in[i].numel();
    out.push_back(expand(reshape(in[i], shape), grid));
  }
  if (swap) std::swap(out[0], out[1]);  // grids over (y, x, ...) returned in the callers' order
  return out;
}

namespace {
int64_t index_dim(const Tensor& self, int64_t dim, const char* op) { return normalize_dim(dim, self.dim(), op); }
}  // namespace

Tensor index_select(const Tensor& self, int64_t dim, const Tensor& index) {
  return dispatch1(LOOM_OP("index_select"), {self, index}, Attrs().set("dim", index_dim(self, dim, "index_select")));
}

Tensor index_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& source, Scalar alpha) {
  return dispatch1(LOOM_OP("index_add"), {self, index, source},
                   Attrs().set("dim", index_dim(self, dim, "index_add")).set("alpha", alpha));
}

Tensor index_copy(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& source) {
  return dispatch1(LOOM_OP("index_copy"), {self, index, source}, Attrs().set("dim", index_dim(self, dim, "index_copy")));
}

Tensor index_fill(const Tensor& self, int64_t dim, const Tensor& index, Scalar value) {
  int64_t d = index_dim(self, dim, "index_fill");
  check_dim_index(self, index, "index_fill");
  Tensor fill = full(selected_shape(self.sizes(), d, index.numel()), value, self.dtype(), self.device());
  return index_copy(self, d, index, fill);
}

Tensor gather(const Tensor& self, int64_t dim, const Tensor& index) {
  return dispatch1(LOOM_OP("gather"), {self, index}, Attrs().set("dim", index_dim(self, dim, "gather")));
}

Tensor scatter(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src) {
  return dispatch1(LOOM_OP("scatter"), {self, index, src}, Attrs().set("dim", index_dim(self, dim, "scatter")));
}

Tensor scatter(const Tensor& self, int64_t dim, const Tensor& index, Scalar value) {
  Tensor src = expand(full({}, value, self.dtype(), self.device()), index.sizes());
  return scatter(self, dim, index, src);
}

Tensor scatter_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src) {
  return dispatch1(LOOM_OP("scatter_add"), {self, index, src}, Attrs().set("dim", index_dim(self, dim, "scatter_add")));
}

namespace {
Tensor broadcast_mask(const Tensor& self, const Tensor& mask, const char* op) {
  LOOM_CHECK(mask.dtype() == DType::Bool, Type, op, ": expected a bool mask, got ", dtype_name(mask.dtype()));
  Shape s = broadcast_shapes(self.sizes(), mask.sizes(), op);
  return s == mask.sizes() ? mask : expand(mask, s);
}
}  // namespace

Tensor masked_fill(const Tensor& self, const Tensor& mask, Scalar value) {
  Tensor m = broadcast_mask(self, mask, "masked_fill");
  return where(m, full({}, value, self.dtype(), self.device()), self);
}

Tensor masked_fill(const Tensor& self, const Tensor& mask, const Tensor& value) {
  LOOM_CHECK(value.dim() == 0, Value, "masked_fill: only supports a 0-dimensional value tensor, but got tensor with ",
             value.dim(), " dimension(s)");
  Tensor m = broadcast_mask(self, mask, "masked_fill");
  return where(m, to_dtype(value, self.dtype()), self);
}

Tensor masked_select(const Tensor& self, const Tensor& mask) {
  Tensor m = broadcast_mask(self, mask, "masked_select");
  Shape s = m.sizes();
  Tensor x = self.sizes() == s ? self : expand(self, s);
  Tensor positions = nonzero(reshape(m, {-1}));
  return index_select(reshape(x, {-1}), 0, reshape(positions, {-1}));
}

Tensor nonzero(const Tensor& self) { return dispatch1(LOOM_OP("nonzero"), {self}); }

std::vector<Tensor> nonzero_tuple(const Tensor& self) {
  Tensor nz = nonzero(self.dim() == 0 ? reshape(self, {1}) : self);
  return unbind(nz, 1);
}

Tensor& index_add_(Tensor& self, int64_t dim, const Tensor& index, const Tensor& source, Scalar alpha) {
  return detail::commit_inplace(self, index_add(self, dim, index, source, alpha), "index_add_");
}
Tensor& index_copy_(Tensor& self, int64_t dim, const Tensor& index, const Tensor& source) {
  return detail::commit_inplace(self, index_copy(self, dim, index, source), "index_copy_");
}
Tensor& index_fill_(Tensor& self, int64_t dim, const Tensor& index, Scalar value) {
  return detail::commit_inplace(self, index_fill(self, dim, index, value), "index_fill_");
}
Tensor& scatter_(Tensor& self, int64_t dim, const Tensor& index, const Tensor& src) {
  return detail::commit_inplace(self, scatter(self, dim, index, src), "scatter_");
}
Tensor& scatter_(Tensor& self, int64_t dim, const Tensor& index, Scalar value) {
  return detail::commit_inplace(self, scatter(self, dim, index, value), "scatter_");
}
Tensor& scatter_add_(Tensor& self, int64_t dim, const Tensor& index, const Tensor& src) {
  return detail::commit_inplace(self, scatter_add(self, dim, index, src), "scatter_add_");
}
Tensor& masked_fill_(Tensor& self, const Tensor& mask, Scalar value) {
  LOOM_CHECK(broadcast_shapes(self.sizes(), mask.sizes(), "masked_fill_") == self.sizes(), Value,
             "masked_fill_: mask of shape ", shape_str(mask.sizes()), " does not broadcast to self ", shape_str(self.sizes()));
  return detail::commit_inplace(self, masked_fill(self, mask, value), "masked_fill_");
}
Tensor& masked_fill_(Tensor& self, const Tensor& mask, const Tensor& value) {
  LOOM_CHECK(broadcast_shapes(self.sizes(), mask.sizes(), "masked_fill_") == self.sizes(), Value,
             "masked_fill_: mask of shape ", shape_str(mask.sizes()), " does not broadcast to self ", shape_str(self.sizes()));
  return detail::commit_inplace(self, masked_fill(self, mask, value), "masked_fill_");
}

// ---------------- layout composites ----------------

Tensor flip(const Tensor& self, const std::vector<int64_t>& dims) {
  std::vector<int64_t> which = normalize_dims(dims, self.dim(), "flip");
  if (dims.empty()) which.clear();
  Tensor out = self;
  for (int64_t d : which) {
    int64_t n = self.sizes()[d];
    if (n <= 1) continue;
    Tensor reversed = arange(Scalar(n - 1), Scalar(int64_t(-1)), Scalar(int64_t(-1)), DType::Int64, self.device());
    out = index_select(out, d, reversed);
  }
  return out.is_same(self) ? clone(self) : out;
}

Tensor roll(const Tensor& self, const std::vector<int64_t>& shifts, const std::vector<int64_t>& dims) {
  if (dims.empty()) {
    LOOM_CHECK(shifts.size() == 1, Value, "roll: with no dims, shifts must have one element, got ", shifts.size());
    return reshape(roll(reshape(self, {-1}), shifts, {0}), self.sizes());
  }
  LOOM_CHECK(shifts.size() == dims.size(), Value, "roll: shifts (", shifts.size(), " values) and dims (", dims.size(),
             " values) must align");
  Tensor out = self;
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = normalize_dim(dims[i], self.dim(), "roll");
    int64_t n = self.dim() == 0 ? 1 : self.sizes()[d];
    if (n == 0) continue;
    int64_t s = shifts[i] % n;
    if (s < 0) s += n;  // not (s + n) % n: n may be near 2^63 (a zero-size tensor's other dim)
    if (s == 0) continue;
    out = cat({slice(out, d, n - s, n, 1), slice(out, d, 0, n - s, 1)}, d);
  }
  return out.is_same(self) ? clone(self) : out;
}

Tensor repeat(const Tensor& self, const std::vector<int64_t>& sizes) {
  LOOM_CHECK(static_cast<int64_t>(sizes.size()) >= self.dim(), Value,
             "repeat: number of dimensions of repeat dims (", sizes.size(),
             ") can not be smaller than number of dimensions of tensor (", self.dim(), ")");
  for (int64_t s : sizes) LOOM_CHECK(s >= 0, Value, "repeat: repeats must be non-negative, got ", shape_str(sizes));
  int64_t lead = static_cast<int64_t>(sizes.size()) - self.dim();
  Shape padded(lead, 1);
  padded.insert(padded.end(), self.sizes().begin(), self.sizes().end());
  // (s0, s1, ...) -> (1, s0, 1, s1, ...) expanded to (r0, s0, r1, s1, ...) then merged pairwise.
  Shape interleaved, expanded, out;
  for (size_t i = 0; i < sizes.size(); ++i) {
    interleaved.push_back(1);
    interleaved.push_back(padded[i]);
    expanded.push_back(sizes[i]);
    expanded.push_back(padded[i]);
    out.push_back(checked_mul(sizes[i], padded[i], "repeat", "the repeated size"));
  }
  Tensor x = reshape(self, interleaved);
  return reshape(contiguous(expand(x, expanded)), out);
}

Tensor tile(const Tensor& self, const std::vector<int64_t>& dims) {
  std::vector<int64_t> sizes(std::max<int64_t>(0, self.dim() - static_cast<int64_t>(dims.size())), 1);
  sizes.insert(sizes.end(), dims.begin(), dims.end());
  return repeat(self, sizes);
}

namespace {
// mask[i][j] = (j - i) compared with diagonal, over the last two dims.
Tensor triangle_mask(const Tensor& self, int64_t diagonal, bool lower, const char* op) {
  LOOM_CHECK(self.dim() >= 2, Value, op, ": input tensor must have at least 2 dimensions, got shape ",
             shape_str(self.sizes()));
  // A zero-size tensor (whose other dim may be near 2^63) keeps nothing to mask: one broadcast value will do.
  if (self.numel() == 0) return full({}, Scalar(true), DType::Bool, self.device());
  int64_t rows = self.sizes()[self.dim() - 2], cols = self.sizes()[self.dim() - 1];
  Tensor r = reshape(arange(Scalar(int64_t(0)), Scalar(rows), Scalar(int64_t(1)), DType::Int64, self.device()), {rows, 1});
  Tensor c = reshape(arange(Scalar(int64_t(0)), Scalar(cols), Scalar(int64_t(1)), DType::Int64, self.device()), {1, cols});
  Tensor diff = sub(c, r);
  return lower ? le(diff, Scalar(diagonal)) : ge(diff, Scalar(diagonal));
}
}  // namespace

Tensor tril(const Tensor& self, int64_t diagonal) {
  Tensor keep = triangle_mask(self, diagonal, true, "tril");
  return where(keep, self, full({}, Scalar(int64_t(0)), self.dtype(), self.device()));
}

Tensor triu(const Tensor& self, int64_t diagonal) {
  Tensor keep = triangle_mask(self, diagonal, false, "triu");
  return where(keep, self, full({}, Scalar(int64_t(0)), self.dtype(), self.device()));
}

Tensor pad(const Tensor& self, const std::vector<int64_t>& pads, double value) {
  LOOM_CHECK(pads.size() % 2 == 0, Value, "pad: padding length must be divisible by 2, got ", pads.size());
  LOOM_CHECK(static_cast<int64_t>(pads.size() / 2) <= self.dim(), Value, "pad: padding length ", pads.size(),
             " is too large for a tensor of ", self.dim(), " dimension(s)");
  Scalar fill = is_floating(self.dtype()) ? Scalar(value) : Scalar(static_cast<int64_t>(value));
  if (self.dtype() == DType::Bool) fill = Scalar(value != 0.0);
  Tensor out = self;
  for (size_t k = 0; k < pads.size() / 2; ++k) {
    int64_t d = self.dim() - 1 - static_cast<int64_t>(k);
    int64_t left = pads[2 * k], right = pads[2 * k + 1];
    int64_t n = out.sizes()[d];
    int64_t padded = checked_add(checked_add(n, left, "pad", "the padded size"), right, "pad", "the padded size");
    LOOM_CHECK(padded >= 0, Value, "pad: the input size ", n, " at dimension ", d, " plus padding (", left,
               ", ", right, ") would be negative (input shape ", shape_str(self.sizes()), ")");
    // Crop first (negative pads), then concatenate constant blocks (positive pads).
    int64_t start = left < 0 ? (left < -n ? n : -left) : 0, end = right < 0 ? n + right : n;  // -left may overflow
    if (start > 0 || end < n) out = slice(out, d, start, std::max(start, end), 1);
    std::vector<Tensor> parts;
    Shape block = out.sizes();
    if (left > 0) {
      block[d] = left;
      parts.push_back(full(block, fill, self.dtype(), self.device()));
    }
    parts.push_back(out);
    if (right > 0) {
      block[d] = right;
      parts.push_back(full(block, fill, self.dtype(), self.device()));
    }
    if (parts.size() > 1) out = cat(parts, d);
  }
  return out.is_same(self) ? clone(self) : out;
}

Tensor one_hot(const Tensor& self, int64_t num_classes) {
  LOOM_CHECK(self.dtype() == DType::Int64, Type, "one_hot: is only applicable to index tensor of type int64, got ",
             dtype_name(self.dtype()));
  // The class range is checked on the host (one pass over the indices; a device synchronises here, as in PyTorch).
  Tensor flat = contiguous(reshape(self, {-1})).to_host();
  int64_t low = 0, high = -1;
  for (int64_t i = 0; i < flat.numel(); ++i) {
    int64_t v = flat.data<int64_t>()[i];
    low = i == 0 ? v : std::min(low, v);
    high = std::max(high, v);
  }
  if (num_classes == -1) {
    LOOM_CHECK(self.numel() > 0, Value, "one_hot: can not infer total number of classes from empty tensor");
    num_classes = checked_add(high, 1, "one_hot", "the number of classes");
  }
  LOOM_CHECK(num_classes >= 0, Value, "one_hot: num_classes should be positive or -1, got ", num_classes);
  LOOM_CHECK(self.numel() == 0 || low >= 0, Value, "one_hot: class values must be non-negative, got ", low);
  LOOM_CHECK(self.numel() == 0 || high < num_classes, Value, "one_hot: class values must be smaller than num_classes (",
             num_classes, "), got ", high);
  Tensor classes = arange(Scalar(int64_t(0)), Scalar(num_classes), Scalar(int64_t(1)), DType::Int64, self.device());
  return to_dtype(eq(unsqueeze(self, -1), classes), DType::Int64);
}

Tensor embedding(const Tensor& weight, const Tensor& indices, std::optional<int64_t> padding_idx) {
  LOOM_CHECK(weight.dim() == 2, Value, "embedding: weight must be 2-D (num_embeddings, embedding_dim), got shape ",
             shape_str(weight.sizes()));
  LOOM_CHECK(indices.dtype() == DType::Int64 || indices.dtype() == DType::Int32, Type,
             "embedding: expected indices of dtype int64 or int32, got ", dtype_name(indices.dtype()));
  int64_t rows = weight.sizes()[0];
  Shape out_shape = indices.sizes();
  out_shape.push_back(weight.sizes()[1]);
  Tensor flat = reshape(indices, {-1});
  Tensor out = reshape(index_select(weight, 0, flat), out_shape);
  if (padding_idx) {
    int64_t p = *padding_idx;
    LOOM_CHECK(p >= -rows && p < rows, Value, "embedding: padding_idx ", p, " must be within num_embeddings (", rows, ")");
    if (p < 0) p += rows;
    // Same values, but rows looked up at padding_idx pass no gradient back to the weight.
    Tensor is_pad = unsqueeze(eq(indices, Scalar(p)), -1);
    out = where(is_pad, out.detach(), out);
  }
  return out;
}

namespace detail {
Tensor wrap_index(const Tensor& index, int64_t size, int64_t dim, const char* op) {
  return dispatch1(LOOM_OP("wrap_index"), {index},
                   Attrs().set("size", size).set("dim", dim).set("op", std::string(op)));
}
}  // namespace detail

}  // namespace loom
