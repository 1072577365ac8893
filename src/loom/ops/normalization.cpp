// Fused layer norm (and RMS norm, attr rms): native_layer_norm (forward, saves mean and rstd) and layer_norm_backward (dx, dweight, dbias
// in one pass), used by the forward's backward when no graph of the backward is needed. CPU kernels:
// backends/cpu/norm.cpp.
#include "loom/ops/normalization.h"

#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/reduce.h"
#include "loom/ops/shape.h"

namespace loom {

namespace {

DType compute_dtype_of(DType d) { return d == DType::Float16 || d == DType::BFloat16 ? DType::Float32 : d; }
Tensor upcast_to_compute(const Tensor& t) {
  return t.dtype() == compute_dtype_of(t.dtype()) ? t : to_dtype(t, compute_dtype_of(t.dtype()));
}

Shape stats_shape(const Shape& in, int64_t k) {
  Shape s = in;
  for (int64_t i = static_cast<int64_t>(s.size()) - k; i < static_cast<int64_t>(s.size()); ++i) s[i] = 1;
  return s;
}

Shape normalized_shape_of(const Shape& in, int64_t k) { return Shape(in.end() - k, in.end()); }

// inputs: input, [weight], [bias]; attrs normalized_dims, eps, has_weight, has_bias.
std::vector<TensorMeta> infer_native_layer_norm(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor& x = in[0];
  const int64_t k = a.get<int64_t>("normalized_dims");
  const bool has_weight = a.get<bool>("has_weight"), has_bias = a.get<bool>("has_bias");
  LOOM_CHECK(is_floating(x.dtype()), Type, "native_layer_norm: expected a floating point input, got ", dtype_name(x.dtype()));
  LOOM_CHECK(k >= 1 && k <= x.dim(), Value, "native_layer_norm: normalized_dims ", k, " out of range for input shape ",
             shape_str(x.sizes()));
  LOOM_CHECK(in.size() == 1 + size_t(has_weight) + size_t(has_bias), Value, "native_layer_norm: expected ",
             1 + int(has_weight) + int(has_bias), " inputs, got ", in.size());
  const Shape normalized = normalized_shape_of(x.sizes(), k);
  for (size_t i = 1; i < in.size(); ++i)
    LOOM_CHECK(in[i].sizes() == normalized && in[i].dtype() == x.dtype(), Value, "native_layer_norm: weight/bias of shape ",
               shape_str(in[i].sizes()), " and dtype ", dtype_name(in[i].dtype()), " must have shape ", shape_str(normalized),
               " and the input's dtype ", dtype_name(x.dtype()));
  const TensorMeta stats{stats_shape(x.sizes(), k), compute_dtype_of(x.dtype()), x.device()};
  return {TensorMeta{x.sizes(), x.dtype(), x.device()}, stats, stats};
}

// inputs: grad, input, mean, rstd, [weight]; attrs normalized_dims, has_weight. Outputs dx, dweight, dbias (the
// last two of the normalized shape, dweight computed also without a weight).
std::vector<TensorMeta> infer_layer_norm_backward(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor &g = in[0], &x = in[1];
  const int64_t k = a.get<int64_t>("normalized_dims");
  LOOM_CHECK(g.sizes() == x.sizes() && g.dtype() == x.dtype() && is_floating(x.dtype()), Value,
             "layer_norm_backward: grad ", shape_str(g.sizes()), " ", dtype_name(g.dtype()), " must match input ",
             shape_str(x.sizes()), " ", dtype_name(x.dtype()));
  LOOM_CHECK(k >= 1 && k <= x.dim(), Value, "layer_norm_backward: normalized_dims ", k, " out of range for input shape ",
             shape_str(x.sizes()));
  const Shape stats = stats_shape(x.sizes(), k);
  LOOM_CHECK(in[2].sizes() == stats && in[3].sizes() == stats && in[2].dtype() == compute_dtype_of(x.dtype()) &&
                 in[3].dtype() == in[2].dtype(),
             Value, "layer_norm_backward: mean/rstd must have shape ", shape_str(stats), " and dtype ",
             dtype_name(compute_dtype_of(x.dtype())));
  const Shape normalized = normalized_shape_of(x.sizes(), k);
  if (a.get<bool>("has_weight"))
    LOOM_CHECK(in.size() == 5 && in[4].sizes() == normalized && in[4].dtype() == x.dtype(), Value,
               "layer_norm_backward: weight must have shape ", shape_str(normalized), " and dtype ", dtype_name(x.dtype()));
  const TensorMeta param{normalized, x.dtype(), x.device()};
  return {TensorMeta{x.sizes(), x.dtype(), x.device()}, param, param};
}

Tensor cast_to(const Tensor& t, DType dtype) { return t.dtype() == dtype ? t : to_dtype(t, dtype); }

// The normalized dims (the last k) and the leading ones of a rank-`rank` input.
std::pair<Dims, Dims> split_dims(int64_t rank, int64_t k) {
  Dims normalized, lead;
  for (int64_t i = 0; i < rank; ++i) (i < rank - k ? lead : normalized).push_back(i);
  return {normalized, lead};
}

// Layer norm's gradients (dx, dweight, dbias; dweight also without a weight) from its statistics mean and rstd
// (stats shape, compute dtype), in ops: layer_norm_backward's composite, and with recomputed statistics the
// differentiable backward.
std::vector<Tensor> layer_norm_grads(const Tensor& g, const Tensor& x, const Tensor& mean_x, const Tensor& rstd,
                                     const Tensor& weight, int64_t k, bool rms) {
  auto [dims, lead] = split_dims(x.dim(), k);
  Tensor xf = upcast_to_compute(x), gf = upcast_to_compute(g);
  Tensor xhat = mul(rms ? xf : sub(xf, mean_x), rstd);
  Tensor gh = weight.defined() ? mul(gf, upcast_to_compute(weight)) : gf;
  Tensor centered_gh = rms ? gh : sub(gh, mean(gh, dims, true));
  Tensor dx = mul(rstd, sub(centered_gh, mul(xhat, mean(mul(gh, xhat), dims, true))));
  // An empty dim list would mean "all dims" to sum: with no leading dims there is nothing to sum over.
  auto over_lead = [&, &lead = lead](const Tensor& t) { return lead.empty() ? t : sum(t, lead); };
  return {cast_to(dx, x.dtype()), cast_to(over_lead(mul(gf, xhat)), x.dtype()), cast_to(over_lead(gf), x.dtype())};
}

// Layer norm's statistics in ops: (mean, rstd) over the last k dims, keepdim, in the compute dtype; mean is 0 for
// RMS norm.
std::pair<Tensor, Tensor> layer_norm_stats(const Tensor& xf, int64_t k, double eps, bool rms) {
  Dims dims = split_dims(xf.dim(), k).first;
  Tensor mean_x = rms ? zeros(stats_shape(xf.sizes(), k), xf.dtype(), xf.device()) : mean(xf, dims, true);
  Tensor centered = rms ? xf : sub(xf, mean_x);
  return {mean_x, rsqrt(add(mean(mul(centered, centered), dims, true), Scalar(eps)))};
}

std::vector<Tensor> native_layer_norm_backward(BackwardContext& c) {
  const int64_t k = c.attrs.get<int64_t>("normalized_dims");
  const bool has_weight = c.attrs.get<bool>("has_weight"), has_bias = c.attrs.get<bool>("has_bias");
  const bool rms = c.attrs.get_or<bool>("rms", false);
  const Tensor& x = c.inputs[0];
  const Tensor weight = has_weight ? c.inputs[1] : Tensor();
  Tensor g = c.grad(0);
  std::vector<Tensor> out;
  if (!grad_mode_enabled() && g.dtype() == x.dtype() && g.sizes() == x.sizes()) {
    // First order: the fused op where the device has it, else the same formulas from the saved statistics.
    if (has_kernel(LOOM_OP("layer_norm_backward"), x.device())) {
      std::vector<Tensor> inputs{g, x, c.outputs[1], c.outputs[2]};
      if (has_weight) inputs.push_back(weight);
      out = dispatch(LOOM_OP("layer_norm_backward"), inputs,
                     Attrs().set("normalized_dims", k).set("has_weight", has_weight).set("rms", rms));
    } else {
      out = layer_norm_grads(g, x, c.outputs[1], c.outputs[2], weight, k, rms);
    }
  } else {
    // With create_graph: the statistics are recomputed from x so they are part of the graph.
    auto [mean_x, rstd] = layer_norm_stats(upcast_to_compute(x), k, c.attrs.get<double>("eps"), rms);
    out = layer_norm_grads(g, x, mean_x, rstd, weight, k, rms);
  }
  std::vector<Tensor> grads(c.input_meta.size());
  grads[0] = out[0];
  if (has_weight) grads[1] = out[1];
  if (has_bias) grads[has_weight ? 2 : 1] = out[2];
  return grads;
}

// ---- composites (devices without the fused kernels): the kernels' outputs, in ops ----

std::vector<Tensor> native_layer_norm_composite(const std::vector<Tensor>& in, const Attrs& a) {
  const int64_t k = a.get<int64_t>("normalized_dims");
  const bool has_weight = a.get<bool>("has_weight"), has_bias = a.get<bool>("has_bias");
  const bool rms = a.get_or<bool>("rms", false);
  const Tensor& x = in[0];
  Tensor xf = upcast_to_compute(x);
  auto [mean_x, rstd] = layer_norm_stats(xf, k, a.get<double>("eps"), rms);
  Tensor y = mul(rms ? xf : sub(xf, mean_x), rstd);
  if (has_weight) y = mul(y, upcast_to_compute(in[1]));
  if (has_bias) y = add(y, upcast_to_compute(in[has_weight ? 2 : 1]));
  return {cast_to(y, x.dtype()), mean_x, rstd};
}

std::vector<Tensor> layer_norm_backward_composite(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor weight = a.get<bool>("has_weight") ? in[4] : Tensor();
  return layer_norm_grads(in[0], in[1], in[2], in[3], weight, a.get<int64_t>("normalized_dims"),
                          a.get_or<bool>("rms", false));
}

}  // namespace

void define_normalization_ops(Registry& r) {
  // native_layer_norm(input, [weight], [bias]): attrs normalized_dims, eps, has_weight, has_bias, rms (RMS norm:
  // no centering, mean output 0). Outputs (y, mean, rstd); only y carries a gradient.
  r.define({.name = "native_layer_norm", .infer = infer_native_layer_norm, .backward = native_layer_norm_backward,
            .composite = native_layer_norm_composite, .saves_outputs = true});
  // layer_norm_backward(grad, input, mean, rstd, [weight]) -> (dx, dweight, dbias): attrs normalized_dims, has_weight,
  // rms; first-order only.
  r.define({.name = "layer_norm_backward", .infer = infer_layer_norm_backward,
            .composite = layer_norm_backward_composite});
}

std::tuple<Tensor, Tensor, Tensor> native_layer_norm(const Tensor& input, int64_t normalized_dims, const Tensor& weight,
                                                     const Tensor& bias, double eps, bool rms) {
  LOOM_CHECK(!rms || !bias.defined(), Value, "native_layer_norm: RMS norm takes no bias");
  std::vector<Tensor> inputs{input};
  if (weight.defined()) inputs.push_back(weight);
  if (bias.defined()) inputs.push_back(bias);
  std::vector<Tensor> out = dispatch(LOOM_OP("native_layer_norm"), inputs,
                                     Attrs()
                                         .set("normalized_dims", normalized_dims)
                                         .set("eps", eps)
                                         .set("has_weight", weight.defined())
                                         .set("has_bias", bias.defined())
                                         .set("rms", rms));
  return {out[0], out[1], out[2]};
}

}  // namespace loom
