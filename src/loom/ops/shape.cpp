// Views and layout ops: definitions (validation, shape inference, backward) and their public functions.
#include "loom/ops/shape.h"

#include <algorithm>
#include <numeric>

#include "loom/core/checked.h"
#include "loom/ops/creation.h"
#include "loom/ops/device.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/grad_mode.h"
#include "loom/ops/reduce.h"
#include "loom/ops/registry.h"

namespace loom {

namespace {

// The contiguous-input geometry of a slice/select, used to scatter its gradient back.
struct Window {
  Shape sizes, strides;
  int64_t offset = 0;
};

Window slice_window(const Shape& in, int64_t dim, int64_t start, int64_t end, int64_t step) {
  Window w{in, contiguous_strides(in), 0};
  w.sizes[dim] = end <= start ? 0 : (end - start - 1) / step + 1;  // as infer_slice: end - start + step may overflow
  w.offset = start * w.strides[dim];
  if (w.sizes[dim] > 1) w.strides[dim] *= step;  // with more than one element the stride fits (a view has it)
  return w;
}

Window select_window(const Shape& in, int64_t dim, int64_t index) {
  Window w{in, contiguous_strides(in), 0};
  w.offset = index * w.strides[dim];
  w.sizes.erase(w.sizes.begin() + dim);
  w.strides.erase(w.strides.begin() + dim);
  return w;
}

Tensor scatter_into_zeros(const TensorMeta& in, const Tensor& grad, const Window& w) {
  return as_strided_scatter(zeros(in.sizes, in.dtype, in.device), grad, w.sizes, w.strides, w.offset);
}

// Strides for viewing `t` as `shape` without copying, or nullopt when impossible (PyTorch's computeStride).
std::optional<Shape> view_strides(const Tensor& t, const Shape& shape) {
  const Shape& old_sizes = t.sizes();
  const Shape& old_strides = t.strides();
  Shape strides(shape.size());
  if (t.numel() <= 1) return contiguous_strides(shape);
  int64_t view_d = static_cast<int64_t>(shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.empty() ? 1 : old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(old_sizes.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_sizes[d];
    if (d == 0 || (old_sizes[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        strides[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = old_strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return strides;
}

// Resolves one -1 and checks the element count.
Shape infer_view_shape(const Shape& shape, int64_t numel, const char* op, const Shape& from) {
  Shape out = shape;
  int64_t known = 1, infer_at = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      LOOM_CHECK(infer_at < 0, Value, op, ": only one dimension can be inferred (-1) in shape ", shape_str(shape));
      infer_at = static_cast<int64_t>(i);
    } else {
      LOOM_CHECK(out[i] >= 0, Value, op, ": invalid shape dimension ", out[i], " in ", shape_str(shape));
      LOOM_CHECK(!__builtin_mul_overflow(known, out[i], &known), Value, op, ": shape ", shape_str(shape), " is too large");
    }
  }
  if (infer_at >= 0) {
    LOOM_CHECK(known != 0 && numel % known == 0, Value, op, ": shape ", shape_str(shape),
               " is invalid for input of size ", numel, " (input shape ", shape_str(from), ")");
    out[infer_at] = numel / known;
  } else {
    LOOM_CHECK(known == numel, Value, op, ": shape ", shape_str(shape), " is invalid for input of size ", numel,
               " (input shape ", shape_str(from), ")");
  }
  return out;
}

std::vector<TensorMeta> meta_of(const Tensor& t, Shape sizes) { return {TensorMeta{std::move(sizes), t.dtype(), t.device()}}; }

// ---- view ----
std::vector<TensorMeta> infer_view(const std::vector<Tensor>& in, const Attrs& a) {
  Shape shape = infer_view_shape(a.get<Shape>("shape"), in[0].numel(), "view", in[0].sizes());
  LOOM_CHECK(view_strides(in[0], shape).has_value(), Runtime, "view: size ", shape_str(shape),
             " is not compatible with input of size ", shape_str(in[0].sizes()), " and stride ",
             shape_str(in[0].strides()), " (at least one dimension spans across two contiguous subspaces); use "
             "reshape() instead");
  return meta_of(in[0], shape);
}
std::vector<Tensor> view_kernel(const KernelContext& c) {
  const Tensor& t = c.inputs[0];
  Shape shape = c.outputs[0].sizes;
  return {Tensor::make_view(t, shape, *view_strides(t, shape), t.offset())};
}
std::vector<Tensor> view_backward(BackwardContext& c) { return {reshape(c.grad(), c.input_meta[0].sizes)}; }

// ---- permute ----
std::vector<TensorMeta> infer_permute(const std::vector<Tensor>& in, const Attrs& a) {
  const auto& dims = a.get<std::vector<int64_t>>("dims");
  int64_t nd = in[0].dim();
  LOOM_CHECK(static_cast<int64_t>(dims.size()) == nd, Value, "permute: number of dims (", dims.size(),
             ") does not match the tensor's ", nd, " dimensions (shape ", shape_str(in[0].sizes()), ")");
  std::vector<bool> used(nd, false);
  Shape sizes(nd);
  for (int64_t i = 0; i < nd; ++i) {
    int64_t d = normalize_dim(dims[i], nd, "permute");
    LOOM_CHECK(!used[d], Value, "permute: dim ", dims[i], " appears more than once");
    used[d] = true;
    sizes[i] = in[0].sizes()[d];
  }
  return meta_of(in[0], sizes);
}
std::vector<Tensor> permute_kernel(const KernelContext& c) {
  const Tensor& t = c.inputs[0];
  const auto& dims = c.attrs.get<std::vector<int64_t>>("dims");
  Shape sizes(dims.size()), strides(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = normalize_dim(dims[i], t.dim(), "permute");
    sizes[i] = t.sizes()[d];
    strides[i] = t.strides()[d];
  }
  return {Tensor::make_view(t, sizes, strides, t.offset())};
}
std::vector<Tensor> permute_backward(BackwardContext& c) {
  const auto& dims = c.attrs.get<std::vector<int64_t>>("dims");
  int64_t nd = static_cast<int64_t>(dims.size());
  std::vector<int64_t> inverse(nd);
  for (int64_t i = 0; i < nd; ++i) inverse[normalize_dim(dims[i], nd, "permute")] = i;
  return {permute(c.grad(), inverse)};
}

// ---- expand ----
std::vector<TensorMeta> infer_expand(const std::vector<Tensor>& in, const Attrs& a) {
  const Shape& want = a.get<Shape>("sizes");
  const Tensor& t = in[0];
  LOOM_CHECK(want.size() >= static_cast<size_t>(t.dim()), Value, "expand: the number of sizes provided (",
             want.size(), ") must be greater or equal to the number of dimensions in the tensor (", t.dim(), ")");
  Shape out(want.size());
  size_t lead = want.size() - t.dim();
  for (size_t i = 0; i < want.size(); ++i) {
    if (i < lead) {
      LOOM_CHECK(want[i] >= 0, Value, "expand: the expanded size ", want[i], " is not allowed in a leading, non-existing dimension ", i);
      out[i] = want[i];
      continue;
    }
    int64_t have = t.sizes()[i - lead];
    int64_t w = want[i] == -1 ? have : want[i];
    LOOM_CHECK(w == have || have == 1, Value, "expand: the expanded size of the tensor (", w,
               ") must match the existing size (", have, ") at non-singleton dimension ", i, ". Target sizes: ",
               shape_str(want), ". Tensor sizes: ", shape_str(t.sizes()));
    LOOM_CHECK(w >= 0, Value, "expand: invalid size ", w);
    out[i] = w;
  }
  checked_numel(out, "expand");
  return meta_of(t, out);
}
std::vector<Tensor> expand_kernel(const KernelContext& c) {
  const Tensor& t = c.inputs[0];
  const Shape& out = c.outputs[0].sizes;
  size_t lead = out.size() - t.dim();
  Shape strides(out.size(), 0);
  for (size_t i = lead; i < out.size(); ++i)
    strides[i] = t.sizes()[i - lead] == out[i] && out[i] != 1 ? t.strides()[i - lead] : 0;
  return {Tensor::make_view(t, out, strides, t.offset())};
}
std::vector<Tensor> expand_backward(BackwardContext& c) { return {sum_to(c.grad(), c.input_meta[0].sizes)}; }

// ---- slice (attrs already normalized: 0 <= start <= end <= size, step > 0) ----
std::vector<TensorMeta> infer_slice(const std::vector<Tensor>& in, const Attrs& a) {
  int64_t dim = a.get<int64_t>("dim"), start = a.get<int64_t>("start"), end = a.get<int64_t>("end"),
          step = a.get<int64_t>("step");
  Shape sizes = in[0].sizes();
  sizes[dim] = end <= start ? 0 : (end - start - 1) / step + 1;  // ceil((end - start) / step) for any step
  return meta_of(in[0], sizes);
}
std::vector<Tensor> slice_kernel(const KernelContext& c) {
  const Tensor& t = c.inputs[0];
  int64_t dim = c.attrs.get<int64_t>("dim"), start = c.attrs.get<int64_t>("start"), step = c.attrs.get<int64_t>("step");
  Shape strides = t.strides();
  int64_t offset = checked_add(t.offset(), checked_mul(start, strides[dim], "slice", "the offset"), "slice",
                               "the offset");  // also for empty slices, as PyTorch
  // With at most one element along dim the stride is never used (and step may be up to 2^63 - 1).
  if (c.outputs[0].sizes[dim] > 1) strides[dim] = checked_mul(strides[dim], step, "slice", "the stride");
  return {Tensor::make_view(t, c.outputs[0].sizes, strides, offset)};
}
std::vector<Tensor> slice_backward(BackwardContext& c) {
  const Attrs& a = c.attrs;
  Window w = slice_window(c.input_meta[0].sizes, a.get<int64_t>("dim"), a.get<int64_t>("start"), a.get<int64_t>("end"),
                          a.get<int64_t>("step"));
  return {scatter_into_zeros(c.input_meta[0], c.grad(), w)};
}

// ---- select (attrs normalized) ----
std::vector<TensorMeta> infer_select(const std::vector<Tensor>& in, const Attrs& a) {
  Shape sizes = in[0].sizes();
  sizes.erase(sizes.begin() + a.get<int64_t>("dim"));
  return meta_of(in[0], sizes);
}
std::vector<Tensor> select_kernel(const KernelContext& c) {
  const Tensor& t = c.inputs[0];
  int64_t dim = c.attrs.get<int64_t>("dim"), index = c.attrs.get<int64_t>("index");
  Shape strides = t.strides();
  int64_t offset = t.offset() + index * strides[dim];
  strides.erase(strides.begin() + dim);
  return {Tensor::make_view(t, c.outputs[0].sizes, strides, offset)};
}
std::vector<Tensor> select_backward(BackwardContext& c) {
  Window w = select_window(c.input_meta[0].sizes, c.attrs.get<int64_t>("dim"), c.attrs.get<int64_t>("index"));
  return {scatter_into_zeros(c.input_meta[0], c.grad(), w)};
}

// ---- as_strided (geometry relative to the storage, as in PyTorch) ----
std::vector<TensorMeta> infer_as_strided(const std::vector<Tensor>& in, const Attrs& a) {
  const Shape& sizes = a.get<Shape>("sizes");
  const Shape& strides = a.get<Shape>("strides");
  LOOM_CHECK(sizes.size() == strides.size(), Value, "as_strided: got ", sizes.size(), " sizes but ", strides.size(), " strides");
  checked_numel(sizes, "as_strided");
  for (int64_t s : strides) LOOM_CHECK(s >= 0, Value, "as_strided: negative strides are not supported, got ", shape_str(strides));
  LOOM_CHECK(a.get<int64_t>("offset") >= 0, Value, "as_strided: negative storage offset ", a.get<int64_t>("offset"));
  return meta_of(in[0], sizes);
}
std::vector<Tensor> as_strided_kernel(const KernelContext& c) {
  return {Tensor::make_view(c.inputs[0], c.attrs.get<Shape>("sizes"), c.attrs.get<Shape>("strides"),
                            c.attrs.get<int64_t>("offset"))};
}
std::vector<Tensor> as_strided_backward(BackwardContext& c) {
  // Exact when the input is laid out contiguously from its offset (the only way loom itself uses it).
  // Only the input's storage offset is needed, kept as an attribute: saving the input itself would make a
  // later in-place write to the same storage (an in-place op on a view) invalidate this node.
  return {scatter_into_zeros(c.input_meta[0], c.grad(),
                             {c.attrs.get<Shape>("sizes"), c.attrs.get<Shape>("strides"),
                              c.attrs.get<int64_t>("offset") - c.attrs.get<int64_t>("input_offset")})};
}

// ---- as_strided_scatter ----
std::vector<TensorMeta> infer_as_strided_scatter(const std::vector<Tensor>& in, const Attrs& a) {
  const Shape& sizes = a.get<Shape>("sizes");
  LOOM_CHECK(in[1].sizes() == sizes, Value, "as_strided_scatter: src has shape ", shape_str(in[1].sizes()),
             " but the window has shape ", shape_str(sizes));
  return meta_of(in[0], in[0].sizes());
}
std::vector<Tensor> as_strided_scatter_kernel(const KernelContext& c) {
  Tensor out = clone(c.inputs[0]);
  Tensor window = Tensor::make_view(out, c.attrs.get<Shape>("sizes"), c.attrs.get<Shape>("strides"),
                                    c.attrs.get<int64_t>("offset"));
  detail::copy_data(window, c.inputs[1]);
  return {out};
}
std::vector<Tensor> as_strided_scatter_backward(BackwardContext& c) {
  const Shape& sizes = c.attrs.get<Shape>("sizes");
  const Shape& strides = c.attrs.get<Shape>("strides");
  int64_t offset = c.attrs.get<int64_t>("offset");
  Tensor g = contiguous(c.grad());
  Tensor grad_base, grad_src;
  if (c.needs_input_grad[0])
    grad_base = as_strided_scatter(g, zeros(sizes, g.dtype(), g.device()), sizes, strides, offset);
  if (c.needs_input_grad[1]) grad_src = contiguous(as_strided(g, sizes, strides, g.offset() + offset));
  return {grad_base, grad_src};
}

// ---- clone / to_dtype / copy ----
std::vector<TensorMeta> infer_same(const std::vector<Tensor>& in, const Attrs&) { return meta_of(in[0], in[0].sizes()); }
std::vector<Tensor> clone_kernel(const KernelContext& c) {
  Tensor out = c.alloc(0);
  detail::copy_data(out, c.inputs[0]);
  return {out};
}
std::vector<Tensor> identity_backward(BackwardContext& c) { return {c.grad()}; }

std::vector<TensorMeta> infer_to_dtype(const std::vector<Tensor>& in, const Attrs& a) {
  return {TensorMeta{in[0].sizes(), a.get<DType>("dtype"), in[0].device()}};
}
std::vector<Tensor> to_dtype_backward(BackwardContext& c) { return {to_dtype(c.grad(), c.input_meta[0].dtype)}; }

std::vector<TensorMeta> infer_copy(const std::vector<Tensor>& in, const Attrs&) {
  const Tensor& dst = in[0];
  const Tensor& src = in[1];
  Shape b = broadcast_shapes(dst.sizes(), src.sizes(), "copy_");
  LOOM_CHECK(b == dst.sizes(), Value, "copy_: source of shape ", shape_str(src.sizes()),
             " cannot be broadcast to the destination shape ", shape_str(dst.sizes()));
  return meta_of(dst, dst.sizes());
}

}  // namespace

void define_shape_ops(Registry& r) {
  r.define({.name = "view", .infer = infer_view, .backward = view_backward, .saved_inputs = 0, .is_view = true});
  r.define({.name = "permute", .infer = infer_permute, .backward = permute_backward, .saved_inputs = 0, .is_view = true});
  r.define({.name = "expand", .infer = infer_expand, .backward = expand_backward, .saved_inputs = 0, .is_view = true});
  r.define({.name = "slice", .infer = infer_slice, .backward = slice_backward, .saved_inputs = 0, .is_view = true});
  r.define({.name = "select", .infer = infer_select, .backward = select_backward, .saved_inputs = 0, .is_view = true});
  r.define({.name = "as_strided", .infer = infer_as_strided, .backward = as_strided_backward, .saved_inputs = 0,
            .is_view = true});
  r.define({.name = "as_strided_scatter", .infer = infer_as_strided_scatter, .backward = as_strided_scatter_backward,
            .saved_inputs = 0});
  r.define({.name = "clone", .infer = infer_same, .backward = identity_backward, .saved_inputs = 0});
  r.define({.name = "to_dtype", .infer = infer_to_dtype, .backward = to_dtype_backward, .saved_inputs = 0});
  // copy: writes input 1 into input 0 and returns input 0. The raw data mover; never recorded by autograd.
  r.define({.name = "copy", .infer = infer_copy, .mutates_inputs = true});
  r.set_kernel("view", DeviceType::Any, view_kernel);
  r.set_kernel("permute", DeviceType::Any, permute_kernel);
  r.set_kernel("expand", DeviceType::Any, expand_kernel);
  r.set_kernel("slice", DeviceType::Any, slice_kernel);
  r.set_kernel("select", DeviceType::Any, select_kernel);
  r.set_kernel("as_strided", DeviceType::Any, as_strided_kernel);
  r.set_kernel("as_strided_scatter", DeviceType::Any, as_strided_scatter_kernel);
  r.set_kernel("clone", DeviceType::Any, clone_kernel);
  r.set_kernel("to_dtype", DeviceType::Any, clone_kernel);
}

// ---- public functions ----

Tensor as_strided(const Tensor& t, const Shape& sizes, const Shape& strides, std::optional<int64_t> offset) {
  return dispatch1(LOOM_OP("as_strided"), {t},
                   Attrs().set("sizes", sizes).set("strides", strides).set("offset", offset.value_or(t.offset()))
                       .set("input_offset", t.offset()));
}

Tensor as_strided_scatter(const Tensor& base, const Tensor& src, const Shape& sizes, const Shape& strides,
                          int64_t offset) {
  return dispatch1(LOOM_OP("as_strided_scatter"), {base, src},
                   Attrs().set("sizes", sizes).set("strides", strides).set("offset", offset));
}

Tensor view(const Tensor& t, const Shape& shape) { return dispatch1(LOOM_OP("view"), {t}, Attrs().set("shape", shape)); }

Tensor reshape(const Tensor& t, const Shape& shape) {
  Shape resolved = infer_view_shape(shape, t.numel(), "reshape", t.sizes());
  if (view_strides(t, resolved)) return view(t, resolved);
  return view(clone(t), resolved);
}

Tensor permute(const Tensor& t, const std::vector<int64_t>& dims) {
  return dispatch1(LOOM_OP("permute"), {t}, Attrs().set("dims", dims));
}

Tensor transpose(const Tensor& t, int64_t dim0, int64_t dim1) {
  int64_t nd = t.dim();
  int64_t a = normalize_dim(dim0, nd, "transpose"), b = normalize_dim(dim1, nd, "transpose");
  if (nd == 0) return view(t, t.sizes());
  std::vector<int64_t> dims(nd);
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[a], dims[b]);
  return permute(t, dims);
}

Tensor movedim(const Tensor& t, int64_t source, int64_t destination) {
  int64_t nd = t.dim();
  int64_t s = normalize_dim(source, nd, "movedim"), d = normalize_dim(destination, nd, "movedim");
  if (nd == 0) return view(t, t.sizes());
  std::vector<int64_t> order;
  for (int64_t i = 0; i < nd; ++i)
    if (i != s) order.push_back(i);
  order.insert(order.begin() + d, s);
  return permute(t, order);
}

Tensor t(const Tensor& x) {
  LOOM_CHECK(x.dim() <= 2, Value, "t: expects a tensor with <= 2 dimensions, but got ", x.dim(), "D (shape ",
             shape_str(x.sizes()), ")");
  return x.dim() < 2 ? view(x, x.sizes()) : transpose(x, 0, 1);
}

Tensor expand(const Tensor& t, const Shape& sizes) { return dispatch1(LOOM_OP("expand"), {t}, Attrs().set("sizes", sizes)); }
Tensor broadcast_to(const Tensor& t, const Shape& sizes) { return expand(t, sizes); }

std::vector<Tensor> broadcast_tensors(const std::vector<Tensor>& tensors) {
  Shape shape;
  for (const Tensor& x : tensors) shape = broadcast_shapes(shape, x.sizes(), "broadcast_tensors");
  std::vector<Tensor> out;
  for (const Tensor& x : tensors) out.push_back(x.sizes() == shape ? x : expand(x, shape));
  return out;
}

Tensor slice(const Tensor& t, int64_t dim, std::optional<int64_t> start, std::optional<int64_t> end, int64_t step) {
  LOOM_CHECK(t.dim() > 0, Index, "slice: cannot slice a 0-d tensor");
  int64_t d = normalize_dim(dim, t.dim(), "slice");
  LOOM_CHECK(step > 0, Value, "slice: step must be positive, got ", step);
  int64_t size = t.sizes()[d];
  auto clamp_bound = [size](int64_t v) { return v < 0 ? std::max<int64_t>(v + size, 0) : std::min(v, size); };
  int64_t s = start ? clamp_bound(*start) : 0;
  int64_t e = end ? clamp_bound(*end) : size;
  if (e < s) e = s;
  return dispatch1(LOOM_OP("slice"), {t}, Attrs().set("dim", d).set("start", s).set("end", e).set("step", step));
}

Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length) {
  LOOM_CHECK(t.dim() > 0, Index, "narrow: cannot narrow a 0-d tensor");
  int64_t d = normalize_dim(dim, t.dim(), "narrow");
  int64_t size = t.sizes()[d];
  LOOM_CHECK(start >= -size && start <= size, Index, "narrow: start (", start, ") is out of range for dimension ", d,
             " of size ", size);
  if (start < 0) start += size;
  LOOM_CHECK(length >= 0 && length <= size - start, Index, "narrow: start (", start, ") + length (", length,
             ") exceeds dimension size (", size, ")");
  return slice(t, d, start, start + length, 1);
}

Tensor select(const Tensor& t, int64_t dim, int64_t index) {
  LOOM_CHECK(t.dim() > 0, Index, "select: cannot select from a 0-d tensor");
  int64_t d = normalize_dim(dim, t.dim(), "select");
  int64_t size = t.sizes()[d];
  LOOM_CHECK(index >= -size && index < size, Index, "select: index ", index, " is out of bounds for dimension ", d,
             " with size ", size);
  if (index < 0) index += size;
  return dispatch1(LOOM_OP("select"), {t}, Attrs().set("dim", d).set("index", index));
}

Tensor squeeze(const Tensor& t, const std::vector<int64_t>& dims) {
  std::vector<int64_t> which = normalize_dims(dims, t.dim(), "squeeze");
  Shape out;
  for (int64_t i = 0; i < t.dim(); ++i) {
    bool listed = std::find(which.begin(), which.end(), i) != which.end();
    if (!(listed && t.sizes()[i] == 1)) out.push_back(t.sizes()[i]);
  }
  return view(t, out);
}

Tensor unsqueeze(const Tensor& t, int64_t dim) {
  int64_t d = normalize_dim(dim, t.dim() + 1, "unsqueeze");
  Shape out = t.sizes();
  out.insert(out.begin() + d, 1);
  return view(t, out);
}

Tensor flatten(const Tensor& t, int64_t start_dim, int64_t end_dim) {
  if (t.dim() == 0) return reshape(t, {1});
  int64_t s = normalize_dim(start_dim, t.dim(), "flatten"), e = normalize_dim(end_dim, t.dim(), "flatten");
  LOOM_CHECK(s <= e, Value, "flatten: start_dim (", start_dim, ") cannot come after end_dim (", end_dim, ")");
  Shape out(t.sizes().begin(), t.sizes().begin() + s);
  // 0 when one of the merged dims is 0, however large the others (a zero-size tensor's may multiply past int64).
  out.push_back(checked_numel(Shape(t.sizes().begin() + s, t.sizes().begin() + e + 1), "flatten"));
  out.insert(out.end(), t.sizes().begin() + e + 1, t.sizes().end());
  return reshape(t, out);
}

Tensor unflatten(const Tensor& t, int64_t dim, const Shape& sizes) {
  LOOM_CHECK(t.dim() > 0, Index, "unflatten: cannot unflatten a 0-d tensor");
  int64_t d = normalize_dim(dim, t.dim(), "unflatten");
  LOOM_CHECK(!sizes.empty(), Value, "unflatten: sizes must be non-empty");
  Shape inner = infer_view_shape(sizes, t.sizes()[d], "unflatten", t.sizes());
  Shape out(t.sizes().begin(), t.sizes().begin() + d);
  out.insert(out.end(), inner.begin(), inner.end());
  out.insert(out.end(), t.sizes().begin() + d + 1, t.sizes().end());
  return view(t, out);
}

std::vector<Tensor> split_with_sizes(const Tensor& t, const std::vector<int64_t>& sizes, int64_t dim) {
  LOOM_CHECK(t.dim() > 0, Index, "split: cannot split a 0-d tensor");
  int64_t d = normalize_dim(dim, t.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    LOOM_CHECK(s >= 0, Value, "split: split sizes must be non-negative, got ", shape_str(sizes));
    total = checked_add(total, s, "split", "the sum of the split sizes");
  }
  LOOM_CHECK(total == t.sizes()[d], Value, "split: split sizes ", shape_str(sizes), " must sum to the size of dim ",
             d, " (", t.sizes()[d], ")");
  std::vector<Tensor> out;
  int64_t start = 0;
  for (int64_t s : sizes) {
    out.push_back(slice(t, d, start, start + s, 1));
    start += s;
  }
  return out;
}

std::vector<Tensor> split(const Tensor& t, int64_t split_size, int64_t dim) {
  LOOM_CHECK(t.dim() > 0, Index, "split: cannot split a 0-d tensor");
  int64_t d = normalize_dim(dim, t.dim(), "split");
  int64_t size = t.sizes()[d];
  LOOM_CHECK(split_size > 0 || (split_size == 0 && size == 0), Value, "split: split_size must be positive, got ", split_size);
  std::vector<int64_t> sizes;
  // Advance by the piece actually taken: start + split_size may overflow for a huge split_size.
  for (int64_t start = 0; start < size; start += sizes.back()) sizes.push_back(std::min(split_size, size - start));
  if (sizes.empty()) sizes.push_back(0);
  return split_with_sizes(t, sizes, d);
}

std::vector<Tensor> chunk(const Tensor& t, int64_t chunks, int64_t dim) {
  LOOM_CHECK(chunks > 0, Value, "chunk: number of chunks must be positive, got ", chunks);
  LOOM_CHECK(t.dim() > 0, Index, "chunk: cannot chunk a 0-d tensor");
  int64_t d = normalize_dim(dim, t.dim(), "chunk");
  int64_t size = t.sizes()[d];
  if (size == 0) {  // `chunks` empty pieces, as PyTorch
    LOOM_CHECK(chunks <= (int64_t{1} << 20), Value, "chunk: ", chunks, " chunks of an empty dimension is too many");
    return split_with_sizes(t, std::vector<int64_t>(chunks, 0), d);
  }
  return split(t, size / chunks + (size % chunks != 0), d);  // ceil(size / chunks); size + chunks - 1 may overflow
}

std::vector<Tensor> unbind(const Tensor& t, int64_t dim) {
  LOOM_CHECK(t.dim() > 0, Index, "unbind: cannot unbind a 0-d tensor");
  int64_t d = normalize_dim(dim, t.dim(), "unbind");
  std::vector<Tensor> out;
  for (int64_t i = 0; i < t.sizes()[d]; ++i) out.push_back(select(t, d, i));
  return out;
}

Tensor contiguous(const Tensor& t) { return t.is_contiguous() ? t : clone(t); }
Tensor clone(const Tensor& t) { return dispatch1(LOOM_OP("clone"), {t}); }

Tensor to_dtype(const Tensor& t, DType dtype) {
  if (t.dtype() == dtype) return t;
  return dispatch1(LOOM_OP("to_dtype"), {t}, Attrs().set("dtype", dtype));
}

Tensor& copy_(Tensor& dst, const Tensor& src) {
  Tensor value = src;
  // Across devices, the bytes move first (at the source's size), then broadcast and cast on the destination.
  if (value.device() != dst.device() && !(value.dim() == 0 && value.device().type == DeviceType::CPU))
    value = to_device(value, dst.device());
  if (value.sizes() != dst.sizes()) {
    broadcast_shapes(dst.sizes(), src.sizes(), "copy_");
    value = expand(value, dst.sizes());
  }
  if (value.dtype() != dst.dtype()) value = to_dtype(value, dst.dtype());
  return detail::commit_inplace(dst, value, "copy_");
}

namespace detail {

void copy_data(const Tensor& dst, const Tensor& src) { dispatch(LOOM_OP("copy"), {dst, src}); }

namespace {
bool can_cast(DType from, DType to) {
  if (is_floating(from) && !is_floating(to)) return false;
  if (from != DType::Bool && to == DType::Bool) return false;
  return true;
}

// No two indices of `t` address the same element (false for expanded, stride-0 dims and odd as_strided views).
bool non_overlapping(const Tensor& t) {
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size) of the dims that matter
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.sizes()[d] > 1) dims.emplace_back(std::abs(t.strides()[d]), t.sizes()[d]);
  std::sort(dims.begin(), dims.end());
  int64_t extent = 1;  // elements spanned by the dims with smaller strides
  for (const auto& [stride, size] : dims) {
    if (stride < extent) return false;
    extent = stride * size;
  }
  return true;
}

// Every element of `t` reads the same memory location (a broadcast scalar, as fill_ and zero_ write).
bool single_location(const Tensor& t) {
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.sizes()[d] > 1 && t.strides()[d] != 0) return false;
  return true;
}

// Some elements of `t` certainly share memory: a dim of size > 1 with stride 0 (expand, broadcast_to).
// PyTorch's MemOverlap::Yes; other as_strided layouts are not decided (non_overlapping above is conservative).
bool expanded(const Tensor& t) {
  for (int64_t d = 0; d < t.dim(); ++d)
    if (t.sizes()[d] > 1 && t.strides()[d] == 0) return true;
  return false;
}
}  // namespace

bool try_inplace(Tensor& self, const OpDef& op, std::vector<Tensor> inputs, Attrs attrs) {
  if (!self.defined() || !non_overlapping(self)) return false;
  const bool grad = grad_mode_enabled();
  for (const Tensor& t : inputs) {
    if (!t.defined()) continue;
    if (grad && t.requires_grad()) return false;
    if (!t.is_same(self) && t.storage() == self.storage()) return false;
  }
  if (grad && self.requires_grad()) return false;
  if (!dispatch_into(op, std::move(inputs), self, std::move(attrs))) return false;
  self.bump_version();
  return true;
}

Tensor& commit_inplace(Tensor& self, const Tensor& result, const char* op) {
  LOOM_CHECK(result.sizes() == self.sizes(), Value, op, ": output with shape ", shape_str(self.sizes()),
             " doesn't match the broadcast shape ", shape_str(result.sizes()));
  LOOM_CHECK(can_cast(result.dtype(), self.dtype()), Type, op, ": result type ", dtype_name(result.dtype()),
             " can't be cast to the desired output type ", dtype_name(self.dtype()));
  // Writing into elements that share memory (an expanded view) keeps whichever write lands last: raise, as
  // PyTorch does. try_inplace never writes such a self, so this is the one check for every in-place op and
  // __setitem__. Writing one value everywhere (fill_, zero_) is well defined and allowed.
  LOOM_CHECK(!expanded(self) || single_location(result), Runtime, op, ": unsupported operation: more than ",
             "one element of the written-to tensor refers to a single memory location. Please clone() the tensor ",
             "before performing the operation.");
  bool track = grad_mode_enabled() && (result.requires_grad() || self.requires_grad());
  if (track) {
    LOOM_CHECK(!(self.is_leaf() && self.requires_grad()), Runtime, op,
               ": a leaf Variable that requires grad is being used in an in-place operation.");
  }
  Tensor value = result.dtype() == self.dtype() ? result : to_dtype(result, self.dtype());
  // A source that aliases the destination (x.copy_(x.t())) must be read completely before anything is written.
  if (!value.is_same(self) && value.storage() == self.storage()) value = clone(value);
  if (!track) {
    if (!value.is_same(self)) copy_data(self, value);
    self.bump_version();
    return self;
  }
  const InplaceAutogradHooks& hooks = inplace_autograd_hooks();
  LOOM_CHECK(hooks.protect_saved && hooks.adopt_history, Runtime, op, ": autograd's in-place hooks are not installed");
  hooks.protect_saved(value, self);
  // A leaf source has no node to adopt: give the write one (clone records it), so the gradient reaches the leaf, as
  // PyTorch's CopyBackwards does for x.copy_(w).
  if (value.requires_grad() && value.is_leaf()) value = clone(value);
  if (!self.is_view()) {
    // Overwritten by a value with no history (x[...] = constant): the old history continues with a zero
    // gradient, as PyTorch's CopySlices does, so the tensor still requires grad.
    if (!value.requires_grad()) value = where(ones(self.sizes(), DType::Bool, self.device()), value, self);
    copy_data(self, value);
    self.bump_version();
    hooks.adopt_history(self, value);  // the tensor now carries the result's history
    return self;
  }
  // A view: rewrite its base out of place, then make both the base and this view point at the new history.
  Tensor base = self.base();
  Tensor new_base = as_strided_scatter(base, value, self.sizes(), self.strides(), self.offset() - base.offset());
  LOOM_CHECK(!(base.is_leaf() && base.requires_grad()), Runtime, op,
             ": a view of a leaf Variable that requires grad is being used in an in-place operation.");
  copy_data(base, new_base);
  base.bump_version();
  hooks.adopt_history(base, new_base);
  hooks.adopt_history(self, as_strided(base, self.sizes(), self.strides(), self.offset()));
  self.impl()->view_version = self.version();
  return self;
}

}  // namespace detail

}  // namespace loom
