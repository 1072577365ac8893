// Scaled dot-product attention (declared in ops/nn.h): the public function, and the fused flash-attention ops
// it uses on the CPU. CPU kernels: backends/cpu/attention.cpp.
//
// _flash_attention(q, k, v[, mask]) -> (out, lse): q (B..., L, E), k (B..., S, E), v (B..., S, Ev), mask
// (B..., L, S) bool (True keeps) or float32 (added), all float32 with the same batch dims (views: any strides).
// Attrs scale (double), is_causal (bool, keeps key j <= query i). out (B..., L, Ev); lse (B..., L) is the
// row logsumexp of the scaled, masked scores, which the backward uses to recompute the probabilities tile by
// tile. The backward is the fused _flash_attention_backward when no graph of the backward is needed, and the
// same formulas in differentiable loom ops otherwise (create_graph=True).
//
// scaled_dot_product_attention takes the fused op for float32 (16-bit inputs are computed in float32) on a device
// that has its kernel, without dropout and without a mask that needs a gradient; everything else (float64,
// dropout_p > 0, devices without the kernel, empty sizes) runs the composite: matmul, scale, mask, softmax, matmul.
// Both fused ops also have composites (the same ops), for a device that lacks their kernels.
#include <cmath>
#include <limits>

#include "loom/ops/composite_hook.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/grad_mode.h"
#include "loom/ops/linalg.h"
#include "loom/ops/nn.h"
#include "loom/ops/random.h"
#include "loom/ops/reduce.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom {

namespace {

DType compute_dtype(DType d) { return d == DType::Float16 || d == DType::BFloat16 ? DType::Float32 : d; }
Tensor upcast(const Tensor& t) {
  return t.defined() && t.dtype() != compute_dtype(t.dtype()) ? to_dtype(t, compute_dtype(t.dtype())) : t;
}
Tensor cast_back(const Tensor& t, DType dtype) { return t.dtype() == dtype ? t : to_dtype(t, dtype); }

// q @ k^T * scale with the causal and attn_mask masks applied (masked entries -inf): the composite's scores.
Tensor masked_scores(const Tensor& q, const Tensor& k, const Tensor& attn_mask, double scale, bool is_causal) {
  Tensor scores = mul(matmul(q, transpose(k, -2, -1)), Scalar(scale));  // (..., L, S)
  double neg_inf = -std::numeric_limits<double>::infinity();
  if (is_causal) {
    int64_t L = q.sizes()[q.dim() - 2], S = k.sizes()[k.dim() - 2];
    Device device = q.device();
    Tensor rows = unsqueeze(arange(Scalar(int64_t(0)), Scalar(L), Scalar(int64_t(1)), DType::Int64, device), 1);
    Tensor cols = unsqueeze(arange(Scalar(int64_t(0)), Scalar(S), Scalar(int64_t(1)), DType::Int64, device), 0);
    scores = where(ge(rows, cols), scores, Scalar(neg_inf));  // keep j <= i (top-left aligned)
  }
  if (attn_mask.defined()) {
    if (attn_mask.dtype() == DType::Bool)
      scores = where(attn_mask, scores, Scalar(neg_inf));
    else
      scores = add(scores, upcast(attn_mask));
  }
  return scores;
}

// softmax over the last dim, with rows whose every score is -inf (fully masked) set to 0 instead of 0/0 = NaN,
// as PyTorch's _safe_softmax. The row's scores are replaced by zeros before the softmax, so its backward (which
// reads the softmax output) sees finite values and gives a zero gradient.
Tensor masked_softmax(const Tensor& scores) {
  Tensor masked = all(eq(scores, Scalar(-std::numeric_limits<double>::infinity())), {-1}, true);
  Tensor weights = softmax(where(masked, Scalar(0.0), scores), -1);
  return where(masked, Scalar(0.0), weights);
}

// ---------------- _flash_attention ----------------

void check_same_batch(const char* op, const Tensor& a, const Tensor& b, const char* what) {
  bool same = a.dim() == b.dim();
  for (int64_t i = 0; same && i + 2 < a.dim(); ++i) same = a.sizes()[i] == b.sizes()[i];
  LOOM_CHECK(same, Value, op, ": expected query and ", what, " with the same batch dims, got shapes ",
             shape_str(a.sizes()), " and ", shape_str(b.sizes()));
}

void check_flash_inputs(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* mask) {
  LOOM_CHECK(q.dim() >= 2, Value, op, ": expected query of at least 2 dims (..., L, E), got ", shape_str(q.sizes()));
  for (const Tensor* t : {&q, &k, &v})
    LOOM_CHECK(t->dtype() == DType::Float32, Type, op, ": expected float32 query, key and value, got ",
               dtype_name(t->dtype()));
  check_same_batch(op, q, k, "key");
  check_same_batch(op, q, v, "value");
  int64_t d = q.dim();
  LOOM_CHECK(k.sizes()[d - 1] == q.sizes()[d - 1] && v.sizes()[d - 2] == k.sizes()[d - 2], Value, op,
             ": expected query (..., L, E), key (..., S, E) and value (..., S, Ev), got ", shape_str(q.sizes()), ", ",
             shape_str(k.sizes()), " and ", shape_str(v.sizes()));
  if (mask) {
    Shape want = q.sizes();
    want.back() = k.sizes()[d - 2];
    LOOM_CHECK(mask->sizes() == want, Value, op, ": expected a mask of shape ", shape_str(want), ", got ",
               shape_str(mask->sizes()));
    LOOM_CHECK(mask->dtype() == DType::Bool || mask->dtype() == DType::Float32, Type, op,
               ": expected a bool or float32 mask, got ", dtype_name(mask->dtype()));
  }
}

std::vector<TensorMeta> infer_flash_attention(const std::vector<Tensor>& in, const Attrs&) {
  const char* op = "_flash_attention";
  LOOM_CHECK(in.size() == 3 || in.size() == 4, Value, op, ": expected 3 or 4 inputs, got ", in.size());
  check_flash_inputs(op, in[0], in[1], in[2], in.size() == 4 ? &in[3] : nullptr);
  Shape out = in[0].sizes();
  out.back() = in[2].sizes().back();
  Shape lse(in[0].sizes().begin(), in[0].sizes().end() - 1);
  return {TensorMeta{out, DType::Float32, in[0].device()}, TensorMeta{lse, DType::Float32, in[0].device()}};
}

// Inputs (grad_out, q, k, v, out, lse[, mask]) -> (dq, dk, dv).
std::vector<TensorMeta> infer_flash_attention_backward(const std::vector<Tensor>& in, const Attrs&) {
  const char* op = "_flash_attention_backward";
  LOOM_CHECK(in.size() == 6 || in.size() == 7, Value, op, ": expected 6 or 7 inputs, got ", in.size());
  check_flash_inputs(op, in[1], in[2], in[3], in.size() == 7 ? &in[6] : nullptr);
  Shape out = in[1].sizes();
  out.back() = in[3].sizes().back();
  LOOM_CHECK(in[0].sizes() == out && in[4].sizes() == out, Value, op, ": expected grad_out and out of shape ",
             shape_str(out), ", got ", shape_str(in[0].sizes()), " and ", shape_str(in[4].sizes()));
  LOOM_CHECK(in[0].dtype() == DType::Float32 && in[4].dtype() == DType::Float32 && in[5].dtype() == DType::Float32,
             Type, op, ": expected float32 grad_out, out and lse");
  return {TensorMeta{in[1].sizes(), DType::Float32, in[1].device()},
          TensorMeta{in[2].sizes(), DType::Float32, in[2].device()},
          TensorMeta{in[3].sizes(), DType::Float32, in[3].device()}};
}

Attrs flash_attrs(double scale, bool is_causal) { return Attrs().set("scale", scale).set("is_causal", is_causal); }

// The attention gradients (dq, dk, dv) in differentiable ops, the probabilities recomputed from q and k
// (rowsum(dP * P) = rowsum(dO * O)): the create_graph backward and _flash_attention_backward's composite.
std::vector<Tensor> attention_grads_ops(const Tensor& g, const Tensor& q, const Tensor& k, const Tensor& v,
                                        const Tensor& mask, double scale, bool is_causal) {
  Tensor p = masked_softmax(masked_scores(q, k, mask, scale, is_causal));
  Tensor dv = matmul(transpose(p, -2, -1), g);
  Tensor dp = matmul(g, transpose(v, -2, -1));
  Tensor ds = mul(mul(p, sub(dp, sum(mul(dp, p), {-1}, true))), Scalar(scale));
  return {matmul(ds, k), matmul(transpose(ds, -2, -1), q), dv};
}

std::vector<Tensor> flash_attention_grad(BackwardContext& c) {
  double scale = c.attrs.get<double>("scale");
  bool is_causal = c.attrs.get<bool>("is_causal");
  const Tensor &q = c.inputs[0], &k = c.inputs[1], &v = c.inputs[2];
  Tensor mask = c.inputs.size() > 3 ? c.inputs[3] : Tensor();
  Tensor g = c.grad(0);
  std::vector<Tensor> r;
  if (!grad_mode_enabled() && has_kernel(LOOM_OP("_flash_attention_backward"), q.device())) {
    // First-order backward: one fused pass that recomputes the probabilities tile by tile from lse.
    std::vector<Tensor> in{g, q, k, v, c.outputs[0], c.outputs[1]};
    if (mask.defined()) in.push_back(mask);
    r = dispatch(LOOM_OP("_flash_attention_backward"), std::move(in), flash_attrs(scale, is_causal));
  } else {
    r = attention_grads_ops(g, q, k, v, mask, scale, is_causal);
  }
  r.resize(c.inputs.size());
  return r;
}

// Whether the fused op can compute this call (else the composite runs): float32 (16-bit inputs arrive upcast)
// without dropout, on a device that has the kernel.
bool use_flash(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask, double dropout_p) {
  if (dropout_p > 0.0 || q.dtype() != DType::Float32) return false;
  if (q.numel() == 0 || k.numel() == 0 || v.numel() == 0) return false;
  if (!has_kernel(LOOM_OP("_flash_attention"), q.device())) return false;
  if (mask.defined()) {
    if (mask.device() != q.device()) return false;
    if (mask.dtype() != DType::Bool && (mask.requires_grad() && grad_mode_enabled())) return false;
  }
  return true;
}

// ---- composites (devices without the fused kernels): the kernels' outputs, in ops ----

// (out, lse): lse is the row logsumexp of the scaled, masked scores (-inf for a fully masked row, whose out is 0).
std::vector<Tensor> flash_attention_composite(const std::vector<Tensor>& in, const Attrs& a) {
  Tensor mask = in.size() == 4 ? in[3] : Tensor();
  Tensor scores = masked_scores(in[0], in[1], mask, a.get<double>("scale"), a.get<bool>("is_causal"));
  Tensor out = matmul(masked_softmax(scores), in[2]);
  if (scores.sizes().back() == 0 || in[2].sizes().back() == 0)  // no keys or no values: -inf, as the kernel
    return {out, full(Shape(scores.sizes().begin(), scores.sizes().end() - 1),
                      Scalar(-std::numeric_limits<double>::infinity()), DType::Float32, in[0].device())};
  return {out, logsumexp(scores, {-1})};
}

// Inputs (grad_out, q, k, v, out, lse[, mask]): the probabilities are recomputed from q and k, not from lse.
std::vector<Tensor> flash_attention_backward_composite(const std::vector<Tensor>& in, const Attrs& a) {
  return attention_grads_ops(in[0], in[1], in[2], in[3], in.size() == 7 ? in[6] : Tensor(), a.get<double>("scale"),
                             a.get<bool>("is_causal"));
}

Shape batch_of(const Tensor& t) { return Shape(t.sizes().begin(), t.sizes().end() - 2); }

Shape with_batch(const Shape& batch, int64_t rows, int64_t cols) {
  Shape s = batch;
  s.push_back(rows);
  s.push_back(cols);
  return s;
}

}  // namespace

void define_attention_ops(Registry& r) {
  r.define({.name = "_flash_attention", .infer = infer_flash_attention, .backward = flash_attention_grad,
            .composite = flash_attention_composite, .saves_outputs = true, .nondiff_inputs = 0b1000});
  // The fused first-order backward of _flash_attention; grad mode is off when it runs, so it has no backward.
  r.define({.name = "_flash_attention_backward", .infer = infer_flash_attention_backward,
            .composite = flash_attention_backward_composite});
}

// ================= attention =================

Tensor scaled_dot_product_attention(const Tensor& query, const Tensor& key, const Tensor& value,
                                    const Tensor& attn_mask, double dropout_p, bool is_causal,
                                    std::optional<double> scale, bool enable_gqa) {
  LOOM_AUTOCAST_COMPOSITE("scaled_dot_product_attention", scaled_dot_product_attention, query, key, value, attn_mask,
                          dropout_p, is_causal, scale, enable_gqa);
  const char* op = "scaled_dot_product_attention";
  LOOM_CHECK(query.dim() >= 2 && key.dim() >= 2 && value.dim() >= 2, Value, op,
             ": expected query, key and value of at least 2 dims (..., L, E), got ", shape_str(query.sizes()), ", ",
             shape_str(key.sizes()), " and ", shape_str(value.sizes()));
  LOOM_CHECK(is_floating(query.dtype()), Type, op, ": expected a floating point query, got dtype ",
             dtype_name(query.dtype()));
  LOOM_CHECK(query.dtype() == key.dtype() && query.dtype() == value.dtype(), Type, op,
             ": expected query, key and value to have the same dtype, got ", dtype_name(query.dtype()), ", ",
             dtype_name(key.dtype()), " and ", dtype_name(value.dtype()));
  int64_t E = query.sizes().back(), L = query.sizes()[query.dim() - 2], S = key.sizes()[key.dim() - 2];
  LOOM_CHECK(key.sizes().back() == E, Value, op, ": query's last dim (", E, ") must match key's, got shapes ",
             shape_str(query.sizes()), " and ", shape_str(key.sizes()));
  LOOM_CHECK(value.sizes()[value.dim() - 2] == S, Value, op, ": key and value must have the same sequence length, got ",
             "shapes ", shape_str(key.sizes()), " and ", shape_str(value.sizes()));
  LOOM_CHECK(dropout_p >= 0.0 && dropout_p <= 1.0, Value, op, ": dropout_p has to be between 0 and 1, but got ",
             dropout_p);
  LOOM_CHECK(!(is_causal && attn_mask.defined()), Value, op, ": attn_mask must be None when is_causal=True");
  if (attn_mask.defined() && attn_mask.dtype() != DType::Bool)
    LOOM_CHECK(attn_mask.dtype() == query.dtype(), Type, op, ": expected attn_mask of dtype bool or ",
               dtype_name(query.dtype()), " (the query's), got ", dtype_name(attn_mask.dtype()));
  Tensor q = upcast(query), k = upcast(key), v = upcast(value);
  if (enable_gqa && query.dim() >= 3 && key.dim() >= 3) {
    // Each key/value head serves a group of query heads (repeat_interleave along the head dim).
    int64_t hq = q.sizes()[q.dim() - 3], hk = k.sizes()[k.dim() - 3], hv = v.sizes()[v.dim() - 3];
    LOOM_CHECK(hk > 0 && hv > 0 && hq % hk == 0 && hq % hv == 0, Value, op, ": with enable_gqa the number of query ",
               "heads (", hq, ") must be a multiple of the key (", hk, ") and value (", hv, ") heads");
    auto repeat_heads = [&](const Tensor& t, int64_t heads) {
      if (heads == hq) return t;
      Shape expanded = t.sizes();
      expanded.insert(expanded.end() - 2, hq / heads);
      Shape merged = t.sizes();
      merged[merged.size() - 3] = hq;
      return reshape(expand(unsqueeze(t, t.dim() - 2), expanded), merged);
    };
    k = repeat_heads(k, hk);
    v = repeat_heads(v, hv);
  }
  double factor = scale.value_or(1.0 / std::sqrt(static_cast<double>(E)));
  if (use_flash(q, k, v, attn_mask, dropout_p)) {
    // Broadcast the batch dims (views, no copies): the kernel reads any strides.
    Shape batch = broadcast_shapes(broadcast_shapes(batch_of(q), batch_of(k), op), batch_of(v), op);
    Tensor mask = attn_mask;
    if (mask.defined()) {
      Shape mask_batch = mask.dim() > 2 ? batch_of(mask) : Shape{};
      batch = broadcast_shapes(batch, mask_batch, op);
      Shape full = with_batch(batch, L, S);
      LOOM_CHECK(broadcast_shapes(mask.sizes(), full, op) == full, Value, op, ": attn_mask of shape ",
                 shape_str(mask.sizes()), " does not broadcast to the attention weights' shape ", shape_str(full));
      mask = upcast(mask);
      if (mask.sizes() != full) mask = expand(mask, full);
    }
    auto fit = [&](const Tensor& t) {
      Shape s = with_batch(batch, t.sizes()[t.dim() - 2], t.sizes().back());
      return t.sizes() == s ? t : expand(t, s);
    };
    std::vector<Tensor> in{fit(q), fit(k), fit(v)};
    if (mask.defined()) in.push_back(mask);
    Tensor out = dispatch(LOOM_OP("_flash_attention"), std::move(in), flash_attrs(factor, is_causal))[0];
    return cast_back(out, query.dtype());
  }
  Tensor weights = masked_softmax(masked_scores(q, k, attn_mask, factor, is_causal));
  if (dropout_p > 0.0) weights = dropout(weights, dropout_p, true);
  return cast_back(matmul(weights, v), query.dtype());
}

}  // namespace loom
