// Python-style indexing (see ops/indexing.h): basic indices become views (select/slice/unsqueeze), advanced
// indices become one index_select (read) or index_copy (write) over the indexed dims flattened together.
#include "loom/ops/indexing.h"

#include <algorithm>
#include <numeric>

#include "loom/core/checked.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/index.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom {

namespace {

using Kind = TensorIndex::Kind;

// The view left after applying the basic indices, and the advanced indices as (dim of that view, index).
struct Analysis {
  Tensor view;
  std::vector<int64_t> dims;
  std::vector<Tensor> tensors;
  bool basic_applied = false;
  // Where `view` sits inside a contiguous copy of self (for writing it back out of place).
  Shape window_sizes, window_strides;
  int64_t window_offset = 0;
  // With defer_masks: bool masks not yet turned into index tensors, as (first dim of the view, mask).
  std::vector<std::pair<int64_t, Tensor>> masks;
};

bool is_mask(const Tensor& t) { return t.dtype() == DType::Bool || t.dtype() == DType::UInt8; }

Analysis analyze(const Tensor& self, const std::vector<TensorIndex>& indices, const char* op,
                 bool defer_masks = false) {
  int64_t consumed = 0, ellipses = 0;
  for (const TensorIndex& ix : indices) {
    switch (ix.kind) {
      case Kind::Integer:
      case Kind::Slice: ++consumed; break;
      case Kind::Ellipsis: ++ellipses; break;
      case Kind::Tensor: consumed += is_mask(ix.tensor) ? ix.tensor.dim() : 1; break;
      default: break;
    }
  }
  LOOM_CHECK(ellipses <= 1, Index, op, ": an index can only have a single ellipsis ('...')");
  LOOM_CHECK(consumed <= self.dim(), Index, op, ": too many indices for tensor of dimension ", self.dim(),
             " (shape ", shape_str(self.sizes()), ")");

  // A 0-d integer tensor indexes like a Python int (a view), as in PyTorch.
  std::vector<TensorIndex> converted;
  const std::vector<TensorIndex>* list = &indices;
  for (size_t i = 0; i < indices.size(); ++i) {
    const TensorIndex& ix = indices[i];
    if (ix.kind == Kind::Tensor && ix.tensor.dim() == 0 && is_integral(ix.tensor.dtype()) && !is_mask(ix.tensor)) {
      if (converted.empty()) converted = indices;
      converted[i] = TensorIndex::make_integer(ix.tensor.item().to_int());
      list = &converted;
    }
  }

  Analysis a;
  Tensor r = self;
  int64_t d = 0;  // the dim of `r` the next index applies to
  Shape& ws = a.window_sizes;
  Shape& wt = a.window_strides;
  ws = self.sizes();
  wt = contiguous_strides(self.sizes());
  auto window_unsqueeze = [&](int64_t at) {
    ws.insert(ws.begin() + at, 1);
    wt.insert(wt.begin() + at, 0);
  };
  auto add_advanced = [&](int64_t dim, const Tensor& t) {
    a.dims.push_back(dim);
    a.tensors.push_back(t);
  };
  auto add_boolean = [&](bool value) {
    r = unsqueeze(r, d);
    window_unsqueeze(d);
    a.basic_applied = true;
    add_advanced(d, value ? zeros({1}, DType::Int64, self.device()) : empty({0}, DType::Int64, self.device()));
    ++d;
  };
  for (const TensorIndex& ix : *list) {
    switch (ix.kind) {
      case Kind::Integer: {
        int64_t size = r.sizes()[d];
        LOOM_CHECK(ix.integer >= -size && ix.integer < size, Index, op, ": index ", ix.integer,
                   " is out of bounds for dimension ", d, " with size ", size);
        r = select(r, d, ix.integer);
        a.window_offset += (ix.integer < 0 ? ix.integer + size : ix.integer) * wt[d];
        ws.erase(ws.begin() + d);
        wt.erase(wt.begin() + d);
        a.basic_applied = true;
        break;
      }
      case Kind::Slice:
        LOOM_CHECK(ix.step > 0, Value, op, ": step must be greater than zero, got ", ix.step);
        {
          int64_t size = r.sizes()[d];
          auto clamp_bound = [size](int64_t v) { return v < 0 ? std::max<int64_t>(v + size, 0) : std::min(v, size); };
          int64_t start = ix.start ? clamp_bound(*ix.start) : 0;
          r = slice(r, d, ix.start, ix.stop, ix.step);
          if (r.sizes()[d] > 0) a.window_offset += start * wt[d];
          ws[d] = r.sizes()[d];
          // With at most one element along d the stride is never used (and step may be up to 2^63 - 1).
          if (ws[d] > 1) wt[d] = checked_mul(wt[d], ix.step, op, "the stride");
        }
        a.basic_applied = true;
        ++d;
        break;
      case Kind::None:
        r = unsqueeze(r, d);
        window_unsqueeze(d);
        a.basic_applied = true;
        ++d;
        break;
      case Kind::Ellipsis: d += self.dim() - consumed; break;
      case Kind::Boolean: add_boolean(ix.boolean); break;
      case Kind::Tensor: {
        const Tensor& t = ix.tensor;
        if (is_mask(t)) {
          if (t.dim() == 0) {
            add_boolean(t.item().to_bool());
            break;
          }
          for (int64_t k = 0; k < t.dim(); ++k)
            LOOM_CHECK(t.sizes()[k] == r.sizes()[d + k], Index, op, ": the shape of the mask ", shape_str(t.sizes()),
                       " at index ", k, " does not match the shape of the indexed tensor ", shape_str(r.sizes()),
                       " at index ", d + k);
          Tensor mask = t.dtype() == DType::Bool ? t : ne(t, Scalar(int64_t(0)));
          if (defer_masks) {
            a.masks.emplace_back(d, mask);
            d += t.dim();
            break;
          }
          std::vector<Tensor> columns = nonzero_tuple(mask);
          for (int64_t k = 0; k < t.dim(); ++k) add_advanced(d + k, columns[k]);
          d += t.dim();
        } else {
          LOOM_CHECK(is_integral(t.dtype()), Index, op,
                     ": tensors used as indices must be long, int, byte or bool tensors, got ", dtype_name(t.dtype()));
          add_advanced(d, t);
          ++d;
        }
        break;
      }
    }
  }
  a.view = r;
  return a;
}

// How the advanced indices of an Analysis address the view: broadcast shape, wrapped flat indices, layout.
struct Advanced {
  Shape broadcast;       // B: the shape the index tensors broadcast to
  Tensor linear;         // int64 (numel(B),): positions in the indexed dims flattened together
  std::vector<int64_t> perm;  // the view's dims with the indexed ones first
  bool adjacent = true;  // indexed dims are consecutive: result dims stay in place
  Shape permuted;        // sizes of permute(view, perm)
};

Advanced prepare(const Analysis& a, const char* op) {
  Advanced adv;
  const Tensor& v = a.view;
  for (const Tensor& t : a.tensors) adv.broadcast = broadcast_shapes(adv.broadcast, t.sizes(), op);
  for (size_t i = 1; i < a.dims.size(); ++i)
    if (a.dims[i] != a.dims[i - 1] + 1) adv.adjacent = false;
  Tensor linear;
  int64_t stride = 1;
  for (int64_t i = static_cast<int64_t>(a.dims.size()) - 1; i >= 0; --i) {
    int64_t dim = a.dims[i], size = v.sizes()[dim];
    Tensor w = detail::wrap_index(a.tensors[i], size, dim, op);
    if (w.sizes() != adv.broadcast) w = expand(w, adv.broadcast);
    Tensor term = stride == 1 ? w : mul(w, Scalar(stride));
    linear = linear.defined() ? add(linear, term) : term;
    if (i > 0) stride = checked_mul(stride, size, op, "the flattened index");  // the last product is unused
  }
  adv.linear = reshape(linear, {-1});
  adv.perm = a.dims;
  for (int64_t d = 0; d < v.dim(); ++d)
    if (std::find(a.dims.begin(), a.dims.end(), d) == a.dims.end()) adv.perm.push_back(d);
  for (int64_t d : adv.perm) adv.permuted.push_back(v.sizes()[d]);
  return adv;
}

// [B..., rest...] -> the result layout: B moved to where the first indexed dim was when indices are adjacent.
std::vector<int64_t> result_order(const Analysis& a, const Advanced& adv, int64_t result_dim) {
  std::vector<int64_t> order(result_dim);
  std::iota(order.begin(), order.end(), 0);
  int64_t nb = static_cast<int64_t>(adv.broadcast.size());
  int64_t at = a.dims[0];
  if (!adv.adjacent || at == 0 || nb == 0) return order;
  // order[i] = the dim of the front-form tensor that lands at position i.
  std::vector<int64_t> out;
  for (int64_t i = 0; i < at; ++i) out.push_back(nb + i);
  for (int64_t i = 0; i < nb; ++i) out.push_back(i);
  for (int64_t i = nb + at; i < result_dim; ++i) out.push_back(i);
  return out;
}

bool identity(const std::vector<int64_t>& order) {
  for (size_t i = 0; i < order.size(); ++i)
    if (order[i] != static_cast<int64_t>(i)) return false;
  return true;
}

std::vector<int64_t> inverse(const std::vector<int64_t>& order) {
  std::vector<int64_t> inv(order.size());
  for (size_t i = 0; i < order.size(); ++i) inv[order[i]] = static_cast<int64_t>(i);
  return inv;
}

// The indexed dims flattened into one leading dim: (prod(indexed sizes), rest...).
Shape flat_shape(const Analysis& a, const Advanced& adv) {
  int64_t m = static_cast<int64_t>(a.dims.size());
  Shape s{numel(Shape(adv.permuted.begin(), adv.permuted.begin() + m))};  // 0 if one is 0, however large the rest
  s.insert(s.end(), adv.permuted.begin() + m, adv.permuted.end());
  return s;
}

Shape front_shape(const Analysis& a, const Advanced& adv) {
  Shape s = adv.broadcast;
  s.insert(s.end(), adv.permuted.begin() + a.dims.size(), adv.permuted.end());
  return s;
}

// Drops leading size-1 dims of value beyond the target's rank (PyTorch accepts x[0] = t[None]).
Tensor strip_leading_ones(const Tensor& value, int64_t target_dim) {
  Shape s = value.sizes();
  size_t drop = 0;
  while (static_cast<int64_t>(s.size() - drop) > target_dim && s[drop] == 1) ++drop;
  if (drop == 0) return value;
  return reshape(value, Shape(s.begin() + drop, s.end()));
}

// Writes `updated` (the new contents of the indexed view) back: directly through the view when autograd is
// not involved, otherwise as an out-of-place update of all of self committed to self, so that self (which
// may itself be a view) and its base both take the new history.
Tensor& write_back(Tensor& self, const Analysis& a, const Tensor& updated, const char* op) {
  bool track = grad_mode_enabled() && (self.requires_grad() || updated.requires_grad());
  Tensor value = updated.dtype() == self.dtype() ? updated : to_dtype(updated, self.dtype());
  if (!a.basic_applied) return detail::commit_inplace(self, value, op);
  if (!track) {
    Tensor target = a.view;
    detail::commit_inplace(target, value, op);
    return self;
  }
  if (value.sizes() != a.window_sizes) value = reshape(value, a.window_sizes);  // size-1 dims added by None
  Tensor whole = as_strided_scatter(self, value, a.window_sizes, a.window_strides, a.window_offset);
  return detail::commit_inplace(self, whole, op);
}

}  // namespace

Tensor index(const Tensor& self, const std::vector<TensorIndex>& indices) {
  const char* op = "index";
  Analysis a = analyze(self, indices, op);
  if (a.tensors.empty()) return a.basic_applied ? a.view : view(self, self.sizes());
  Advanced adv = prepare(a, op);
  const Tensor& v = a.view;
  Tensor front;
  if (a.dims.size() == 1) {
    // One indexed dim: index_select in place, then unflatten its dim into B.
    int64_t dim = a.dims[0];
    Tensor picked = index_select(v, dim, adv.linear);
    Shape out(v.sizes().begin(), v.sizes().begin() + dim);
    out.insert(out.end(), adv.broadcast.begin(), adv.broadcast.end());
    out.insert(out.end(), v.sizes().begin() + dim + 1, v.sizes().end());
    return reshape(picked, out);
  }
  Tensor flat = reshape(permute(v, adv.perm), flat_shape(a, adv));
  front = reshape(index_select(flat, 0, adv.linear), front_shape(a, adv));
  std::vector<int64_t> order = result_order(a, adv, front.dim());
  return identity(order) ? front : permute(front, order);
}

namespace {

// The view of `a` with value (broadcast to the indexing result, cast to the view's dtype) written at the
// advanced indices, or added there when `accumulate`; out of place.
Tensor put_advanced(const Analysis& a, const Tensor& value, bool accumulate, const char* op) {
  const Tensor& target = a.view;
  Advanced adv = prepare(a, op);
  Tensor v = value.dtype() == target.dtype() ? value : to_dtype(value, target.dtype());
  Shape front = front_shape(a, adv);
  std::vector<int64_t> order = result_order(a, adv, static_cast<int64_t>(front.size()));
  Shape result_shape;
  for (int64_t d : order) result_shape.push_back(front[d]);
  v = strip_leading_ones(v, static_cast<int64_t>(result_shape.size()));
  Shape b = broadcast_shapes(result_shape, v.sizes(), op);
  LOOM_CHECK(b == result_shape, Value, op, ": shape mismatch: value tensor of shape ", shape_str(value.sizes()),
             " cannot be broadcast to indexing result of shape ", shape_str(result_shape));
  if (v.sizes() != result_shape) v = expand(v, result_shape);
  auto put = [accumulate](const Tensor& t, int64_t dim, const Tensor& index, const Tensor& source) {
    return accumulate ? index_add(t, dim, index, source) : index_copy(t, dim, index, source);
  };
  if (a.dims.size() == 1) {
    int64_t dim = a.dims[0];
    Shape src(target.sizes().begin(), target.sizes().begin() + dim);
    src.push_back(adv.linear.numel());
    src.insert(src.end(), target.sizes().begin() + dim + 1, target.sizes().end());
    return put(target, dim, adv.linear, reshape(v, src));
  }
  Tensor front_v = identity(order) ? v : permute(v, inverse(order));
  Shape flat = flat_shape(a, adv);
  Shape src = flat;
  src[0] = adv.linear.numel();
  Tensor flat_target = reshape(permute(target, adv.perm), flat);
  Tensor written = put(flat_target, 0, adv.linear, reshape(front_v, src));
  return permute(reshape(written, adv.permuted), inverse(adv.perm));
}

std::vector<TensorIndex> tensor_indices(const std::vector<Tensor>& indices, const char* op) {
  std::vector<TensorIndex> out;
  bool any = false;
  for (const Tensor& t : indices) {
    out.push_back(t.defined() ? TensorIndex::make_tensor(t) : TensorIndex::make_slice(std::nullopt, std::nullopt));
    any = any || t.defined();
  }
  LOOM_CHECK(any, Index, op, ": expected at least one index tensor");
  return out;
}

}  // namespace

Tensor& index_put_(Tensor& self, const std::vector<TensorIndex>& indices, const Tensor& value) {
  const char* op = "__setitem__";
  Analysis a = analyze(self, indices, op, /*defer_masks=*/true);
  if (!a.masks.empty()) {
    if (a.masks.size() == 1 && a.tensors.empty() && value.numel() == 1) {
      // x[mask] = number: a masked fill of the view, no index tensors needed.
      auto [at, mask] = a.masks[0];
      Shape shape(at, 1);
      shape.insert(shape.end(), mask.sizes().begin(), mask.sizes().end());
      shape.resize(a.view.dim(), 1);
      Tensor v = reshape(value.dtype() == a.view.dtype() ? value : to_dtype(value, a.view.dtype()), {});
      return write_back(self, a, where(reshape(mask, shape), v, a.view), op);
    }
    a = analyze(self, indices, op);
  }
  Tensor target = a.view;
  if (a.tensors.empty()) {
    Tensor v = strip_leading_ones(value, target.dim());
    if (!a.basic_applied) return copy_(self, v);
    Shape b = broadcast_shapes(target.sizes(), v.sizes(), op);
    LOOM_CHECK(b == target.sizes(), Value, op, ": shape mismatch: value tensor of shape ", shape_str(value.sizes()),
               " cannot be broadcast to indexing result of shape ", shape_str(target.sizes()));
    if (v.sizes() != target.sizes()) v = expand(v, target.sizes());
    return write_back(self, a, v, op);
  }
  return write_back(self, a, put_advanced(a, value, false, op), op);
}

Tensor& index_put_(Tensor& self, const std::vector<TensorIndex>& indices, Scalar value) {
  return index_put_(self, indices, full({}, value, self.dtype(), self.device()));
}

Tensor index_put(const Tensor& self, const std::vector<Tensor>& indices, const Tensor& values, bool accumulate) {
  const char* op = "index_put";
  Analysis a = analyze(self, tensor_indices(indices, op), op);
  // Undefined entries are full slices, so the view has self's geometry and the update is all of self.
  return put_advanced(a, values, accumulate, op);
}

Tensor& index_put_(Tensor& self, const std::vector<Tensor>& indices, const Tensor& values, bool accumulate) {
  return detail::commit_inplace(self, index_put(self, indices, values, accumulate), "index_put_");
}

Tensor take(const Tensor& self, const Tensor& index) {
  Tensor flat = reshape(self, {-1});
  Tensor wrapped = detail::wrap_index(index, flat.numel(), 0, "take");
  return reshape(index_select(flat, 0, reshape(wrapped, {-1})), index.sizes());
}

Tensor take_along_dim(const Tensor& self, const Tensor& indices, std::optional<int64_t> dim) {
  if (!dim) return gather(reshape(self, {-1}), 0, reshape(indices, {-1}));
  LOOM_CHECK(self.dim() == indices.dim(), Value, "take_along_dim: input ", shape_str(self.sizes()), " and indices ",
             shape_str(indices.sizes()), " should have the same number of dimensions");
  int64_t d = normalize_dim(*dim, self.dim(), "take_along_dim");
  Shape self_shape = self.sizes(), index_shape = indices.sizes();
  for (int64_t k = 0; k < self.dim(); ++k) {
    if (k == d) continue;
    int64_t s = broadcast_shapes({self_shape[k]}, {index_shape[k]}, "take_along_dim")[0];
    self_shape[k] = index_shape[k] = s;
  }
  Tensor x = self.sizes() == self_shape ? self : expand(self, self_shape);
  Tensor i = indices.sizes() == index_shape ? indices : expand(indices, index_shape);
  return gather(x, d, i);
}

}  // namespace loom
