// Fused ops behind conv2d and batch_norm (see ops/conv.h). CPU kernels: backends/cpu/conv.cpp and
// backends/cpu/batch_norm.cpp.
//
// conv2d (inputs x, w[, bias]; attrs stride, padding {t, b, l, r}, dilation, groups): one op whose kernel runs
// im2col per image into a buffer and one GEMM per group straight into the (N, O, oh*ow) output. Its backward is
// the fused conv2d_backward when no graph of the backward is needed; with create_graph it is written in
// differentiable ops (im2col/col2im + bmm), so double backward works.
//
// native_batch_norm (inputs x, weight, bias; attr eps): training-mode batch norm, outputs (y, mean, invstd) as
// PyTorch's native_batch_norm; backward native_batch_norm_backward when no graph is needed, else ops.
#include "loom/ops/conv.h"

#include "loom/core/checked.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/linalg.h"
#include "loom/ops/nn.h"
#include "loom/ops/reduce.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom {
namespace detail {

namespace {

struct ConvGeometry {
  int64_t N, C, H, W, O, Cg, kh, kw, oh, ow, groups;
  Shape stride, padding, dilation;
};

ConvGeometry conv_geometry(const TensorMeta& x, const TensorMeta& w, const Attrs& a) {
  ConvGeometry g;
  g.N = x.sizes[0], g.C = x.sizes[1], g.H = x.sizes[2], g.W = x.sizes[3];
  g.O = w.sizes[0], g.Cg = w.sizes[1], g.kh = w.sizes[2], g.kw = w.sizes[3];
  g.stride = a.get<Shape>("stride"), g.padding = a.get<Shape>("padding"), g.dilation = a.get<Shape>("dilation");
  g.groups = a.get<int64_t>("groups");
  g.oh = sliding_windows(g.H, g.padding[0], g.padding[1], g.kh, g.dilation[0], g.stride[0], "conv2d");
  g.ow = sliding_windows(g.W, g.padding[2], g.padding[3], g.kw, g.dilation[1], g.stride[1], "conv2d");
  return g;
}

std::vector<TensorMeta> infer_conv2d(const std::vector<Tensor>& in, const Attrs& a) {
  LOOM_CHECK(in.size() == 2 || in.size() == 3, Value, "conv2d: expected (input, weight[, bias]), got ", in.size(),
             " tensors");
  const Tensor &x = in[0], &w = in[1];
  LOOM_CHECK(x.dim() == 4 && w.dim() == 4, Value, "conv2d: expected a 4-D input and weight, got shapes ",
             shape_str(x.sizes()), " and ", shape_str(w.sizes()));
  LOOM_CHECK(x.dtype() == w.dtype() && is_floating(x.dtype()), Type, "conv2d: expected floating input and weight of ",
             "one dtype, got ", dtype_name(x.dtype()), " and ", dtype_name(w.dtype()));
  const Shape &s = a.get<Shape>("stride"), &p = a.get<Shape>("padding"), &d = a.get<Shape>("dilation");
  int64_t groups = a.get<int64_t>("groups");
  LOOM_CHECK(s.size() == 2 && p.size() == 4 && d.size() == 2 && s[0] > 0 && s[1] > 0 && d[0] > 0 && d[1] > 0 &&
                 groups > 0,
             Value, "conv2d: malformed attributes stride ", shape_str(s), ", padding ", shape_str(p), ", dilation ",
             shape_str(d));
  LOOM_CHECK(x.sizes()[1] == w.sizes()[1] * groups && w.sizes()[0] % groups == 0, Value, "conv2d: input of shape ",
             shape_str(x.sizes()), " and weight of shape ", shape_str(w.sizes()), " do not match groups=", groups);
  if (in.size() == 3)
    LOOM_CHECK(in[2].dim() == 1 && in[2].sizes()[0] == w.sizes()[0] && in[2].dtype() == x.dtype(), Value,
               "conv2d: expected bias of shape ", shape_str({w.sizes()[0]}), ", got ", shape_str(in[2].sizes()));
  ConvGeometry g = conv_geometry({x.sizes(), x.dtype(), x.device()}, {w.sizes(), w.dtype(), w.device()}, a);
  LOOM_CHECK(g.oh > 0 && g.ow > 0, Value, "conv2d: input of shape ", shape_str(x.sizes()), " is smaller than the ",
             "(dilated) kernel of weight ", shape_str(w.sizes()));
  return {TensorMeta{{g.N, g.O, g.oh, g.ow}, x.dtype(), x.device()}};
}

std::vector<TensorMeta> infer_conv2d_backward(const std::vector<Tensor>& in, const Attrs& a) {
  LOOM_CHECK(in.size() == 3, Value, "conv2d_backward: expected (grad_output, input, weight), got ", in.size(),
             " tensors");
  const Tensor &g = in[0], &x = in[1], &w = in[2];
  auto metas = infer_conv2d({x, w}, a);
  LOOM_CHECK(g.sizes() == metas[0].sizes && g.dtype() == x.dtype(), Value, "conv2d_backward: expected grad_output ",
             "of shape ", shape_str(metas[0].sizes), " and dtype ", dtype_name(x.dtype()), ", got ",
             shape_str(g.sizes()), " and ", dtype_name(g.dtype()));
  return {TensorMeta{x.sizes(), x.dtype(), x.device()}, TensorMeta{w.sizes(), w.dtype(), w.device()},
          TensorMeta{{w.sizes()[0]}, w.dtype(), w.device()}};
}

// The gradients of conv2d in differentiable ops (the composite conv's own backward): one bmm per group with
// the batch folded into the columns.
std::vector<Tensor> conv2d_backward_ops(const Tensor& grad, const Tensor& x, const Tensor& w, const ConvGeometry& g,
                                        const std::vector<bool>& needs) {
  int64_t Og = g.O / g.groups, K = g.Cg * g.kh * g.kw, L = g.oh * g.ow, N = g.N;
  Pair kernel{g.kh, g.kw};
  Tensor g3 = reshape(permute(reshape(grad, {N, g.groups, Og, L}), {1, 2, 0, 3}), {g.groups, Og, N * L});
  std::vector<Tensor> out(3);
  if (needs[0]) {
    Tensor wg = transpose(reshape(w, {g.groups, Og, K}), 1, 2);
    Tensor cols = reshape(permute(reshape(bmm(wg, g3), {g.groups, K, N, L}), {2, 0, 1, 3}), {N, g.groups * K, L});
    out[0] = col2im(cols, {g.H, g.W}, kernel, g.dilation, g.padding, g.stride);
  }
  if (needs[1]) {
    Tensor cols = im2col(x, kernel, g.dilation, g.padding, g.stride);
    cols = reshape(permute(reshape(cols, {N, g.groups, K, L}), {1, 2, 0, 3}), {g.groups, K, N * L});
    out[1] = reshape(bmm(g3, transpose(cols, 1, 2)), w.sizes());
  }
  if (needs.size() > 2 && needs[2]) out[2] = sum(grad, {0, 2, 3});
  return out;
}

std::vector<Tensor> conv2d_grad(BackwardContext& c) {
  ConvGeometry g = conv_geometry(c.input_meta[0], c.input_meta[1], c.attrs);
  const Tensor &x = c.inputs[0], &w = c.inputs[1];
  Tensor grad = c.grad();
  std::vector<bool> needs = c.needs_input_grad;
  // The fused backward when no graph of it is needed and the device has it; else differentiable ops.
  if (grad_mode_enabled() || !has_kernel(LOOM_OP("conv2d_backward"), grad.device())) {
    auto out = conv2d_backward_ops(grad, x, w, g, needs);
    out.resize(c.needs_input_grad.size());
    return out;
  }
  Shape mask{needs[0] ? 1 : 0, needs[1] ? 1 : 0, needs.size() > 2 && needs[2] ? 1 : 0};
  Attrs a = c.attrs;
  a.set("output_mask", mask);
  std::vector<Tensor> r = dispatch(LOOM_OP("conv2d_backward"), {grad, x, w}, a);
  std::vector<Tensor> out(c.needs_input_grad.size());
  for (size_t i = 0; i < out.size(); ++i)
    if (mask[i]) out[i] = r[i];
  return out;
}

// ---------------- batch norm ----------------

std::vector<TensorMeta> infer_native_batch_norm(const std::vector<Tensor>& in, const Attrs&) {
  LOOM_CHECK(in.size() == 3, Value, "native_batch_norm: expected (input, weight, bias), got ", in.size(), " tensors");
  const Tensor& x = in[0];
  LOOM_CHECK(x.dim() >= 2 && is_floating(x.dtype()), Value, "native_batch_norm: expected a floating input of shape ",
             "(N, C, *), got ", shape_str(x.sizes()), " ", dtype_name(x.dtype()));
  int64_t C = x.sizes()[1];
  for (int i = 1; i < 3; ++i)
    LOOM_CHECK(in[i].sizes() == Shape{C} && in[i].dtype() == x.dtype(), Value, "native_batch_norm: expected ",
               i == 1 ? "weight" : "bias", " of shape ", shape_str({C}), " and dtype ", dtype_name(x.dtype()), ", got ",
               shape_str(in[i].sizes()), " ", dtype_name(in[i].dtype()));
  LOOM_CHECK(x.numel() / std::max<int64_t>(C, 1) > 1, Value, "native_batch_norm: expected more than 1 value per ",
             "channel when training, got input of shape ", shape_str(x.sizes()));
  return {TensorMeta{x.sizes(), x.dtype(), x.device()}, TensorMeta{{C}, x.dtype(), x.device()},
          TensorMeta{{C}, x.dtype(), x.device()}};
}

std::vector<TensorMeta> infer_native_batch_norm_backward(const std::vector<Tensor>& in, const Attrs&) {
  LOOM_CHECK(in.size() == 5, Value, "native_batch_norm_backward: expected (grad, input, weight, mean, invstd), got ",
             in.size(), " tensors");
  const Tensor &g = in[0], &x = in[1];
  LOOM_CHECK(g.sizes() == x.sizes() && g.dtype() == x.dtype() && x.dim() >= 2, Value,
             "native_batch_norm_backward: expected grad and input of one shape and dtype, got ", shape_str(g.sizes()),
             " ", dtype_name(g.dtype()), " and ", shape_str(x.sizes()), " ", dtype_name(x.dtype()));
  int64_t C = x.sizes()[1];
  for (int i = 2; i < 5; ++i)
    LOOM_CHECK(in[i].sizes() == Shape{C} && in[i].dtype() == x.dtype(), Value,
               "native_batch_norm_backward: expected per-channel tensors of shape ", shape_str({C}), ", got ",
               shape_str(in[i].sizes()));
  return {TensorMeta{x.sizes(), x.dtype(), x.device()}, TensorMeta{{C}, x.dtype(), x.device()},
          TensorMeta{{C}, x.dtype(), x.device()}};
}

Dims batch_norm_dims(int64_t dim) {
  Dims dims{0};
  for (int64_t i = 2; i < dim; ++i) dims.push_back(i);
  return dims;
}

// (C) -> (1, C, 1, ...) of rank `dim`, to broadcast against the input.
Tensor channel_view(const Tensor& p, int64_t dim) {
  Shape shape(static_cast<size_t>(dim), 1);
  shape[1] = p.sizes()[0];
  return reshape(p, shape);
}

// Batch norm's statistics in ops: (mean, invstd), each (C), biased variance.
std::pair<Tensor, Tensor> batch_norm_stats(const Tensor& x, double eps) {
  Dims dims = batch_norm_dims(x.dim());
  Tensor mean_x = mean(x, dims);
  Tensor centered = sub(x, channel_view(mean_x, x.dim()));
  return {mean_x, rsqrt(add(mean(mul(centered, centered), dims), Scalar(eps)))};
}

// Batch norm's gradients (input, weight, bias; undefined where `needs` is false) from the statistics mean and invstd
// (C): native_batch_norm_backward's composite, and with recomputed statistics the differentiable backward.
std::vector<Tensor> batch_norm_grads(const Tensor& gy, const Tensor& x, const Tensor& w, const Tensor& mean_x,
                                     const Tensor& invstd, const std::vector<bool>& needs) {
  const int64_t C = x.sizes()[1];
  Dims dims = batch_norm_dims(x.dim());
  double M = static_cast<double>(x.numel() / C);
  Tensor invstd_b = channel_view(invstd, x.dim());
  Tensor xhat = mul(sub(x, channel_view(mean_x, x.dim())), invstd_b);
  Tensor gsum = sum(gy, dims, true), gxsum = sum(mul(gy, xhat), dims, true);
  std::vector<Tensor> out(3);
  if (needs[0]) {
    Tensor inner = sub(sub(gy, mul(gsum, Scalar(1.0 / M))), mul(xhat, mul(gxsum, Scalar(1.0 / M))));
    out[0] = mul(inner, mul(invstd_b, channel_view(w, x.dim())));
  }
  if (needs[1]) out[1] = reshape(gxsum, {C});
  if (needs[2]) out[2] = reshape(gsum, {C});
  return out;
}

std::vector<Tensor> native_batch_norm_grad(BackwardContext& c) {
  const Tensor &x = c.inputs[0], &w = c.inputs[1];
  Tensor gy = c.grad(0);
  const std::vector<bool>& needs = c.needs_input_grad;
  if (grad_mode_enabled()) {
    // create_graph: the statistics are recomputed from x so they are part of the graph.
    auto [mean_x, invstd] = batch_norm_stats(x, c.attrs.get<double>("eps"));
    return batch_norm_grads(gy, x, w, mean_x, invstd, needs);
  }
  if (!has_kernel(LOOM_OP("native_batch_norm_backward"), x.device()))
    return batch_norm_grads(gy, x, w, c.outputs[1], c.outputs[2], needs);
  Shape mask{needs[0] ? 1 : 0, needs[1] ? 1 : 0, needs[2] ? 1 : 0};
  std::vector<Tensor> r = dispatch(LOOM_OP("native_batch_norm_backward"), {gy, x, w, c.outputs[1], c.outputs[2]},
                                   Attrs().set("output_mask", mask));
  for (size_t i = 0; i < 3; ++i)
    if (!mask[i]) r[i] = Tensor();
  return r;
}

// ---------------- composites (devices without the fused kernels): the kernels' outputs, in ops ----------------

// Outputs not asked for by output_mask (the kernels leave them uninitialised) are zeros of their inferred shape.
std::vector<Tensor> fill_unasked(std::vector<Tensor> out, const std::vector<Tensor>& in, const Attrs& a,
                                 InferFn infer) {
  std::vector<TensorMeta> metas = infer(in, a);
  for (size_t i = 0; i < out.size(); ++i)
    if (!out[i].defined()) out[i] = zeros(metas[i].sizes, metas[i].dtype, metas[i].device);
  return out;
}

std::vector<bool> output_mask(const Attrs& a) {
  const Shape& mask = a.get<Shape>("output_mask");
  return {mask[0] != 0, mask[1] != 0, mask[2] != 0};
}

std::vector<Tensor> conv2d_composite(const std::vector<Tensor>& in, const Attrs& a) {
  return {conv2d_ops(in[0], in[1], in.size() == 3 ? in[2] : Tensor(), a.get<Shape>("stride"), a.get<Shape>("padding"),
                     a.get<Shape>("dilation"), a.get<int64_t>("groups"))};
}

std::vector<Tensor> conv2d_backward_composite(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor &grad = in[0], &x = in[1], &w = in[2];
  ConvGeometry g = conv_geometry({x.sizes(), x.dtype(), x.device()}, {w.sizes(), w.dtype(), w.device()}, a);
  return fill_unasked(conv2d_backward_ops(grad, x, w, g, output_mask(a)), in, a, infer_conv2d_backward);
}

std::vector<Tensor> native_batch_norm_composite(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor &x = in[0], &w = in[1], &b = in[2];
  auto [mean_x, invstd] = batch_norm_stats(x, a.get<double>("eps"));
  Tensor xhat = mul(sub(x, channel_view(mean_x, x.dim())), channel_view(invstd, x.dim()));
  return {add(mul(xhat, channel_view(w, x.dim())), channel_view(b, x.dim())), mean_x, invstd};
}

std::vector<Tensor> native_batch_norm_backward_composite(const std::vector<Tensor>& in, const Attrs& a) {
  return fill_unasked(batch_norm_grads(in[0], in[1], in[2], in[3], in[4], output_mask(a)), in, a,
                      infer_native_batch_norm_backward);
}

}  // namespace

bool fused_conv_supported(const Tensor& t) {
  return (t.dtype() == DType::Float32 || t.dtype() == DType::Float64) && has_kernel(LOOM_OP("conv2d"), t.device());
}

bool fused_batch_norm_supported(const Tensor& t) {
  return (t.dtype() == DType::Float32 || t.dtype() == DType::Float64) &&
         has_kernel(LOOM_OP("native_batch_norm"), t.device());
}

Tensor conv2d_ops(const Tensor& x, const Tensor& w, const Tensor& bias, const std::vector<int64_t>& stride,
                  const std::vector<int64_t>& padding4, const std::vector<int64_t>& dilation, int64_t groups) {
  int64_t N = x.sizes()[0], H = x.sizes()[2], W = x.sizes()[3];
  int64_t O = w.sizes()[0], Cg = w.sizes()[1], kh = w.sizes()[2], kw = w.sizes()[3];
  int64_t oh = sliding_windows(H, padding4[0], padding4[1], kh, dilation[0], stride[0], "conv2d");
  int64_t ow = sliding_windows(W, padding4[2], padding4[3], kw, dilation[1], stride[1], "conv2d");
  Tensor cols = im2col(x, {kh, kw}, dilation, padding4, stride);  // (N, C*kh*kw, L)
  int64_t K = Cg * kh * kw, L = oh * ow;  // the sizes of im2col's (already allocated) output
  // One large product per group (batch folded into columns) rather than N small ones: its backward is then
  // two large products too. cols (N, g, K, L) -> (g, K, N*L); weight (g, O/g, K); out (g, O/g, N*L).
  Tensor grouped_cols = reshape(permute(reshape(cols, {N, groups, K, L}), {1, 2, 0, 3}), {groups, K, N * L});
  Tensor grouped_out = bmm(reshape(w, {groups, O / groups, K}), grouped_cols);
  Tensor out = reshape(permute(reshape(grouped_out, {groups, O / groups, N, L}), {2, 0, 1, 3}), {N, O, oh, ow});
  if (bias.defined()) out = add(out, reshape(bias, {1, O, 1, 1}));
  return out;
}

Tensor conv2d_fused(const Tensor& x, const Tensor& w, const Tensor& bias, const std::vector<int64_t>& stride,
                    const std::vector<int64_t>& padding4, const std::vector<int64_t>& dilation, int64_t groups) {
  std::vector<Tensor> inputs{x, w};
  if (bias.defined()) inputs.push_back(bias);
  return dispatch1(LOOM_OP("conv2d"), std::move(inputs),
                   Attrs().set("stride", stride).set("padding", padding4).set("dilation", dilation).set("groups", groups));
}

std::vector<Tensor> native_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  int64_t C = x.sizes()[1];
  Tensor w = weight.defined() ? weight : ones({C}, x.dtype(), x.device());
  Tensor b = bias.defined() ? bias : zeros({C}, x.dtype(), x.device());
  return dispatch(LOOM_OP("native_batch_norm"), {x, w, b}, Attrs().set("eps", eps));
}

void define_conv_ops(Registry& r) {
  r.define({.name = "conv2d", .infer = infer_conv2d, .backward = conv2d_grad, .composite = conv2d_composite,
            .saved_inputs = 0b011});
  // (grad_output, input, weight) -> (grad_input, grad_weight, grad_bias); attr output_mask {0|1, 0|1, 0|1}
  // (outputs not asked for are left uninitialised). conv2d's first-order backward, so it has no backward itself.
  r.define({.name = "conv2d_backward", .infer = infer_conv2d_backward, .composite = conv2d_backward_composite});
  r.define({.name = "native_batch_norm", .infer = infer_native_batch_norm, .backward = native_batch_norm_grad,
            .composite = native_batch_norm_composite, .saved_inputs = 0b011, .saves_outputs = true});
  // (grad, input, weight, mean, invstd) -> (grad_input, grad_weight, grad_bias); attr output_mask as above.
  r.define({.name = "native_batch_norm_backward", .infer = infer_native_batch_norm_backward,
            .composite = native_batch_norm_backward_composite});
}

}  // namespace detail
}  // namespace loom
