// Op definitions of the nn family (see ops/nn.h): im2col/col2im and max_pool2d primitives, and the composites
// (conv, pooling, normalisation, dropout, attention) built on them. CPU kernels: backends/cpu/nn.cpp.
#include "loom/ops/nn.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "loom/core/checked.h"
#include "loom/ops/composite_hook.h"
#include "loom/ops/conv.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/grad_mode.h"
#include "loom/ops/linalg.h"
#include "loom/ops/normalization.h"
#include "loom/ops/random.h"
#include "loom/ops/reduce.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom {

namespace {

// ---------------- argument helpers ----------------

// {v} -> {v, v}; {h, w} stays; anything else raises. Every window argument (kernel_size, stride, padding,
// dilation, output_padding, output_size) passes here and is capped at kMaxGeometry (core/checked.h).
Pair as_pair(const Pair& p, const char* op, const char* name) {
  LOOM_CHECK(p.size() == 1 || p.size() == 2, Value, op, ": ", name, " must be an int or a pair of ints, got ",
             p.size(), " values");
  for (int64_t v : p) checked_geometry(v, op, name);
  return p.size() == 1 ? Pair{p[0], p[0]} : p;
}

Pair positive_pair(const Pair& p, const char* op, const char* name) {
  Pair out = as_pair(p, op, name);
  LOOM_CHECK(out[0] > 0 && out[1] > 0, Value, op, ": ", name, " must be positive, got ", shape_str(out));
  return out;
}

Pair non_negative_pair(const Pair& p, const char* op, const char* name) {
  Pair out = as_pair(p, op, name);
  LOOM_CHECK(out[0] >= 0 && out[1] >= 0, Value, op, ": ", name, " must be non-negative, got ", shape_str(out));
  return out;
}


void check_floating(const char* op, const Tensor& t, const char* what) {
  LOOM_CHECK(is_floating(t.dtype()), Type, op, ": expected a floating point ", what, ", got dtype ",
             dtype_name(t.dtype()));
}

// "2, 3" for error messages.
std::string dims_str(const Shape& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out;
}

DType compute_dtype(DType d) { return d == DType::Float16 || d == DType::BFloat16 ? DType::Float32 : d; }
Tensor upcast(const Tensor& t) {
  return t.defined() && t.dtype() != compute_dtype(t.dtype()) ? to_dtype(t, compute_dtype(t.dtype())) : t;
}
Tensor cast_back(const Tensor& t, DType dtype) { return t.dtype() == dtype ? t : to_dtype(t, dtype); }

// ---------------- im2col / col2im ----------------

struct WindowAttrs {
  Pair kernel, dilation, padding4, stride;
};

WindowAttrs window_attrs(const Attrs& a) {
  return {a.get<Shape>("kernel_size"), a.get<Shape>("dilation"), a.get<Shape>("padding"), a.get<Shape>("stride")};
}

Attrs make_window_attrs(const Pair& kernel, const Pair& dilation, const Pair& padding4, const Pair& stride) {
  return Attrs().set("kernel_size", kernel).set("dilation", dilation).set("padding", padding4).set("stride", stride);
}

void check_window(const char* op, const WindowAttrs& w) {
  LOOM_CHECK(w.kernel.size() == 2 && w.dilation.size() == 2 && w.stride.size() == 2 && w.padding4.size() == 4, Value,
             op, ": malformed window attributes");
  LOOM_CHECK(w.kernel[0] > 0 && w.kernel[1] > 0, Value, op, ": kernel_size must be positive, got ",
             shape_str(w.kernel));
  LOOM_CHECK(w.dilation[0] > 0 && w.dilation[1] > 0, Value, op, ": dilation must be positive, got ",
             shape_str(w.dilation));
  LOOM_CHECK(w.stride[0] > 0 && w.stride[1] > 0, Value, op, ": stride must be positive, got ", shape_str(w.stride));
  for (int64_t p : w.padding4)
    LOOM_CHECK(p >= 0, Value, op, ": padding must be non-negative, got ", shape_str(w.padding4));
  for (const Pair* pair : {&w.kernel, &w.dilation, &w.padding4, &w.stride})
    for (int64_t v : *pair) checked_geometry(v, op, "a window argument");
}

// Output (h, w) block counts; raises when the (dilated) kernel does not fit the padded input.
std::pair<int64_t, int64_t> window_blocks(const char* op, int64_t H, int64_t W, const WindowAttrs& w) {
  int64_t oh = sliding_windows(H, w.padding4[0], w.padding4[1], w.kernel[0], w.dilation[0], w.stride[0], op);
  int64_t ow = sliding_windows(W, w.padding4[2], w.padding4[3], w.kernel[1], w.dilation[1], w.stride[1], op);
  // Both extents fit int64 here: sliding_windows computed them with checked arithmetic.
  int64_t ph = H + w.padding4[0] + w.padding4[1], pw = W + w.padding4[2] + w.padding4[3];
  int64_t kh = w.dilation[0] * (w.kernel[0] - 1) + 1, kw = w.dilation[1] * (w.kernel[1] - 1) + 1;
  LOOM_CHECK(oh > 0 && ow > 0, Value, op, ": calculated padded input size per channel (", ph, " x ", pw,
             ") is smaller than the (dilated) kernel size (", kh, " x ", kw, ")");
  return {oh, ow};
}

std::vector<TensorMeta> infer_im2col(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor& x = in[0];
  LOOM_CHECK(x.dim() == 4, Value, "im2col: expected a 4-D input (N, C, H, W), got shape ", shape_str(x.sizes()));
  check_floating("im2col", x, "input");
  WindowAttrs w = window_attrs(a);
  check_window("im2col", w);
  auto [oh, ow] = window_blocks("im2col", x.sizes()[2], x.sizes()[3], w);
  int64_t rows = checked_mul(x.sizes()[1], w.kernel[0] * w.kernel[1], "im2col", "C * kh * kw");
  return {TensorMeta{{x.sizes()[0], rows, checked_mul(oh, ow, "im2col", "the number of blocks")}, x.dtype(),
                     x.device()}};
}

std::vector<TensorMeta> infer_col2im(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor& x = in[0];
  LOOM_CHECK(x.dim() == 3, Value, "col2im: expected a 3-D input (N, C*kh*kw, L), got shape ", shape_str(x.sizes()));
  check_floating("col2im", x, "input");
  WindowAttrs w = window_attrs(a);
  check_window("col2im", w);
  const Shape& out = a.get<Shape>("output_size");
  LOOM_CHECK(out.size() == 2 && out[0] > 0 && out[1] > 0, Value, "col2im: output_size must be two positive sizes, got ",
             shape_str(out));
  int64_t k = w.kernel[0] * w.kernel[1];
  LOOM_CHECK(x.sizes()[1] % k == 0, Value, "col2im: expected size of input's dimension 1 to be divisible by the ",
             "product of kernel_size (", k, "), got input of shape ", shape_str(x.sizes()));
  auto [oh, ow] = window_blocks("col2im", out[0], out[1], w);
  LOOM_CHECK(x.sizes()[2] == checked_mul(oh, ow, "col2im", "the number of blocks"), Value, "col2im: expected input's dimension 2 to match the number of sliding ",
             "blocks (", oh, " * ", ow, " = ", oh * ow, ") for output_size ", shape_str(out), ", got input of shape ",
             shape_str(x.sizes()));
  return {TensorMeta{{x.sizes()[0], x.sizes()[1] / k, out[0], out[1]}, x.dtype(), x.device()}};
}

std::vector<Tensor> im2col_backward(BackwardContext& c) {
  WindowAttrs w = window_attrs(c.attrs);
  const Shape& in = c.input_meta[0].sizes;
  return {detail::col2im(c.grad(), {in[2], in[3]}, w.kernel, w.dilation, w.padding4, w.stride)};
}

std::vector<Tensor> col2im_backward(BackwardContext& c) {
  WindowAttrs w = window_attrs(c.attrs);
  return {detail::im2col(c.grad(), w.kernel, w.dilation, w.padding4, w.stride)};
}

// ---------------- max_pool2d ----------------

// torch's pooling output size (with ceil_mode's rule that the last window must start inside the input or
// its left padding).
// Geometry arguments are at most kMaxGeometry (as_pair), so only `size` (a tensor dim) can push these past int64.
int64_t pool_output_size(const char* op, int64_t size, int64_t kernel, int64_t pad, int64_t stride, int64_t dilation,
                         bool ceil_mode) {
  int64_t numerator = checked_add(size, 2 * pad + (ceil_mode ? stride - 1 : 0), op, "the padded input size") -
                      dilation * (kernel - 1) - 1;
  int64_t out = (numerator >= 0 ? numerator / stride : -((-numerator + stride - 1) / stride)) + 1;
  if (ceil_mode && (out - 1) * stride >= size + pad) --out;
  return out;
}

struct PoolGeometry {
  Pair kernel, stride, padding, dilation;
  int64_t oh = 0, ow = 0;
};

PoolGeometry pool_geometry(const char* op, const Tensor& x, const Pair& kernel_size, const Pair& stride,
                           const Pair& padding, const Pair& dilation, bool ceil_mode) {
  PoolGeometry g;
  g.kernel = positive_pair(kernel_size, op, "kernel_size");
  g.stride = stride.empty() ? g.kernel : positive_pair(stride, op, "stride");
  g.padding = non_negative_pair(padding, op, "padding");
  g.dilation = positive_pair(dilation, op, "dilation");
  LOOM_CHECK(g.padding[0] <= g.kernel[0] / 2 && g.padding[1] <= g.kernel[1] / 2, Value, op,
             ": pad should be at most half of the kernel size, got padding ", shape_str(g.padding), " and kernel_size ",
             shape_str(g.kernel));
  int64_t H = x.sizes()[x.dim() - 2], W = x.sizes()[x.dim() - 1];
  g.oh = pool_output_size(op, H, g.kernel[0], g.padding[0], g.stride[0], g.dilation[0], ceil_mode);
  g.ow = pool_output_size(op, W, g.kernel[1], g.padding[1], g.stride[1], g.dilation[1], ceil_mode);
  LOOM_CHECK(g.oh >= 1 && g.ow >= 1, Value, op, ": given input of shape ", shape_str(x.sizes()),
             ", the calculated output size (", g.oh, " x ", g.ow, ") is too small");
  return g;
}

void check_pool_input(const char* op, const Tensor& x) {
  LOOM_CHECK(x.dim() == 3 || x.dim() == 4, Value, op, ": expected input of shape (N, C, H, W) or (C, H, W), got ",
             shape_str(x.sizes()));
  check_floating(op, x, "input");
  int64_t H = x.sizes()[x.dim() - 2], W = x.sizes()[x.dim() - 1];
  LOOM_CHECK(H > 0 && W > 0, Value, op, ": expected non-empty spatial dims, got input of shape ", shape_str(x.sizes()));
}

std::vector<TensorMeta> infer_max_pool2d(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor& x = in[0];
  LOOM_CHECK(x.dim() == 4, Value, "max_pool2d: expected a 4-D input (N, C, H, W), got shape ", shape_str(x.sizes()));
  check_pool_input("max_pool2d", x);
  PoolGeometry g = pool_geometry("max_pool2d", x, a.get<Shape>("kernel_size"), a.get<Shape>("stride"),
                                 a.get<Shape>("padding"), a.get<Shape>("dilation"), a.get<bool>("ceil_mode"));
  Shape out{x.sizes()[0], x.sizes()[1], g.oh, g.ow};
  return {TensorMeta{out, x.dtype(), x.device()}, TensorMeta{out, DType::Int64, x.device()}};
}

std::vector<TensorMeta> infer_max_pool2d_backward(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor &g = in[0], &indices = in[1];
  LOOM_CHECK(g.dim() == 4 && g.sizes() == indices.sizes(), Value, "max_pool2d_backward: expected a 4-D gradient and ",
             "indices of the same shape, got ", shape_str(g.sizes()), " and ", shape_str(indices.sizes()));
  LOOM_CHECK(indices.dtype() == DType::Int64, Type, "max_pool2d_backward: expected int64 indices, got ",
             dtype_name(indices.dtype()));
  check_floating("max_pool2d_backward", g, "gradient");
  const Shape& size = a.get<Shape>("input_size");
  return {TensorMeta{{g.sizes()[0], g.sizes()[1], size[0], size[1]}, g.dtype(), g.device()}};
}

std::vector<TensorMeta> infer_max_pool2d_gather(const std::vector<Tensor>& in, const Attrs&) {
  const Tensor &x = in[0], &indices = in[1];
  LOOM_CHECK(x.dim() == 4 && indices.dim() == 4 && x.sizes()[0] == indices.sizes()[0] &&
                 x.sizes()[1] == indices.sizes()[1],
             Value, "max_pool2d_gather: expected 4-D input and indices with equal (N, C), got ", shape_str(x.sizes()),
             " and ", shape_str(indices.sizes()));
  LOOM_CHECK(indices.dtype() == DType::Int64, Type, "max_pool2d_gather: expected int64 indices, got ",
             dtype_name(indices.dtype()));
  check_floating("max_pool2d_gather", x, "input");
  return {TensorMeta{indices.sizes(), x.dtype(), x.device()}};
}

Tensor max_pool2d_gather(const Tensor& x, const Tensor& indices) {
  return dispatch1(LOOM_OP("max_pool2d_gather"), {x, indices});
}

Tensor max_pool2d_scatter(const Tensor& grad, const Tensor& indices, const Shape& input_size) {
  return dispatch1(LOOM_OP("max_pool2d_backward"), {grad, indices},
                   Attrs().set("input_size", Shape{input_size[2], input_size[3]}));
}

// max_pool2d_backward and max_pool2d_gather are each other's adjoints (scatter-add / gather at the argmax).
std::vector<Tensor> max_pool2d_backward_grad(BackwardContext& c) {
  return {max_pool2d_gather(c.grad(), c.inputs[1]), Tensor()};
}

std::vector<Tensor> max_pool2d_gather_grad(BackwardContext& c) {
  return {max_pool2d_scatter(c.grad(), c.inputs[1], c.input_meta[0].sizes), Tensor()};
}

std::vector<Tensor> max_pool2d_grad(BackwardContext& c) {
  return {max_pool2d_scatter(c.grad(0), c.outputs[1], c.input_meta[0].sizes)};
}

// adaptive_avg_pool2d(x (N, C, H, W)) attr output_size {oh, ow}: output (i, j) is the mean of rows
// [floor(i H / oh), ceil((i + 1) H / oh)) and columns likewise (backends/cpu/nn.cpp reads only that window, so a
// NaN or inf stays in the windows that hold it). Its backward spreads g / window size over each window; the two
// are each other's adjoints, so each one's backward is the other.
void check_adaptive_sizes(const char* op, const Shape& in, const Shape& out) {
  for (int d = 0; d < 2; ++d) {
    int64_t product = 0;
    LOOM_CHECK(out[d] > 0 && !__builtin_mul_overflow(out[d], in[d] + 1, &product), Value, op, ": output size ",
               shape_str(out), " is too large for input size ", shape_str(in));
  }
}

std::vector<TensorMeta> infer_adaptive_avg_pool2d(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor& x = in[0];
  LOOM_CHECK(x.dim() == 4, Value, "adaptive_avg_pool2d: expected a 4-D input (N, C, H, W), got shape ",
             shape_str(x.sizes()));
  check_pool_input("adaptive_avg_pool2d", x);
  const Shape& out = a.get<Shape>("output_size");
  check_adaptive_sizes("adaptive_avg_pool2d", {x.sizes()[2], x.sizes()[3]}, out);
  return {TensorMeta{{x.sizes()[0], x.sizes()[1], out[0], out[1]}, x.dtype(), x.device()}};
}

std::vector<TensorMeta> infer_adaptive_avg_pool2d_backward(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor& g = in[0];
  LOOM_CHECK(g.dim() == 4, Value, "adaptive_avg_pool2d_backward: expected a 4-D gradient, got shape ",
             shape_str(g.sizes()));
  check_floating("adaptive_avg_pool2d_backward", g, "gradient");
  const Shape& size = a.get<Shape>("input_size");
  LOOM_CHECK(size.size() == 2 && size[0] > 0 && size[1] > 0, Value,
             "adaptive_avg_pool2d_backward: input_size must be two positive sizes, got ", shape_str(size));
  check_adaptive_sizes("adaptive_avg_pool2d_backward", size, {g.sizes()[2], g.sizes()[3]});
  return {TensorMeta{{g.sizes()[0], g.sizes()[1], size[0], size[1]}, g.dtype(), g.device()}};
}

std::vector<Tensor> adaptive_avg_pool2d_grad(BackwardContext& c) {
  const Shape& x = c.input_meta[0].sizes;
  return {dispatch1(LOOM_OP("adaptive_avg_pool2d_backward"), {c.grad()},
                    Attrs().set("input_size", Shape{x[2], x[3]}))};
}

std::vector<Tensor> adaptive_avg_pool2d_backward_grad(BackwardContext& c) {
  const Shape& g = c.input_meta[0].sizes;
  return {dispatch1(LOOM_OP("adaptive_avg_pool2d"), {c.grad()}, Attrs().set("output_size", Shape{g[2], g[3]}))};
}

}  // namespace

void define_nn_ops(Registry& r) {
  detail::define_conv_ops(r);  // conv2d, conv2d_backward, native_batch_norm(_backward): ops/conv.cpp
  // Window attrs: kernel_size {kh, kw}, dilation {dh, dw}, padding {top, bottom, left, right}, stride {sh, sw}.
  r.define({.name = "im2col", .infer = infer_im2col, .backward = im2col_backward, .saved_inputs = 0});
  // Also output_size {H, W}.
  r.define({.name = "col2im", .infer = infer_col2im, .backward = col2im_backward, .saved_inputs = 0});
  // Attrs kernel_size, stride, padding {ph, pw}, dilation, ceil_mode. Outputs (values, int64 indices).
  r.define({.name = "max_pool2d", .infer = infer_max_pool2d, .backward = max_pool2d_grad, .saved_inputs = 0,
            .saves_outputs = true});
  // Inputs (grad_output, indices); attr input_size {H, W}. Scatters gradients to the argmax positions.
  r.define({.name = "max_pool2d_backward", .infer = infer_max_pool2d_backward, .backward = max_pool2d_backward_grad,
            .saved_inputs = 0b10, .nondiff_inputs = 0b10});
  // Inputs (input, indices): out[n, c, q] = input[n, c, indices[n, c, q]] (its double backward).
  r.define({.name = "max_pool2d_gather", .infer = infer_max_pool2d_gather, .backward = max_pool2d_gather_grad,
            .saved_inputs = 0b10, .nondiff_inputs = 0b10});
  // Attr output_size {oh, ow}; and its backward, inputs (grad_output), attr input_size {H, W}.
  r.define({.name = "adaptive_avg_pool2d", .infer = infer_adaptive_avg_pool2d, .backward = adaptive_avg_pool2d_grad,
            .saved_inputs = 0});
  r.define({.name = "adaptive_avg_pool2d_backward", .infer = infer_adaptive_avg_pool2d_backward,
            .backward = adaptive_avg_pool2d_backward_grad, .saved_inputs = 0});
}

// ================= im2col / col2im =================

namespace detail {

Tensor im2col(const Tensor& input, const Pair& kernel_size, const Pair& dilation, const Pair& padding4,
              const Pair& stride) {
  return dispatch1(LOOM_OP("im2col"), {input}, make_window_attrs(kernel_size, dilation, padding4, stride));
}

Tensor col2im(const Tensor& input, const Pair& output_size, const Pair& kernel_size, const Pair& dilation,
              const Pair& padding4, const Pair& stride) {
  return dispatch1(LOOM_OP("col2im"), {input},
                   make_window_attrs(kernel_size, dilation, padding4, stride).set("output_size", output_size));
}

}  // namespace detail

Tensor unfold(const Tensor& input, const Pair& kernel_size, const Pair& dilation, const Pair& padding,
              const Pair& stride) {
  LOOM_CHECK(input.dim() == 3 || input.dim() == 4, Value,
             "unfold: expected input of shape (N, C, H, W) or (C, H, W), got ", shape_str(input.sizes()));
  Pair k = positive_pair(kernel_size, "unfold", "kernel_size"), d = positive_pair(dilation, "unfold", "dilation");
  Pair p = non_negative_pair(padding, "unfold", "padding"), s = positive_pair(stride, "unfold", "stride");
  bool batched = input.dim() == 4;
  Tensor x = batched ? input : unsqueeze(input, 0);
  Tensor out = detail::im2col(x, k, d, {p[0], p[0], p[1], p[1]}, s);
  return batched ? out : squeeze(out, {0});
}

Tensor fold(const Tensor& input, const Pair& output_size, const Pair& kernel_size, const Pair& dilation,
            const Pair& padding, const Pair& stride) {
  LOOM_CHECK(input.dim() == 2 || input.dim() == 3, Value,
             "fold: expected input of shape (N, C*kh*kw, L) or (C*kh*kw, L), got ", shape_str(input.sizes()));
  Pair o = positive_pair(output_size, "fold", "output_size");
  Pair k = positive_pair(kernel_size, "fold", "kernel_size"), d = positive_pair(dilation, "fold", "dilation");
  Pair p = non_negative_pair(padding, "fold", "padding"), s = positive_pair(stride, "fold", "stride");
  bool batched = input.dim() == 3;
  Tensor x = batched ? input : unsqueeze(input, 0);
  Tensor out = detail::col2im(x, o, k, d, {p[0], p[0], p[1], p[1]}, s);
  return batched ? out : squeeze(out, {0});
}

// ================= convolution =================

namespace {

// A convolution's optional bias: one value per output channel, in the input's dtype.
void check_conv_bias(const char* op, const Tensor& bias, int64_t out_channels, const Tensor& x) {
  if (!bias.defined()) return;
  LOOM_CHECK(bias.dim() == 1 && bias.sizes()[0] == out_channels, Value, op, ": expected bias of shape ",
             shape_str({out_channels}), ", got ", shape_str(bias.sizes()));
  LOOM_CHECK(bias.dtype() == x.dtype(), Type, op, ": bias (", dtype_name(bias.dtype()), ") and input (",
             dtype_name(x.dtype()), ") must have the same dtype");
}

// x (N, C, H, W), w (O, C/groups, kh, kw) already validated for rank. Checks the rest and runs im2col + matmul.
Tensor conv_core(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias, const Pair& stride,
                 const ConvPadding& padding, const Pair& dilation, int64_t groups, const Shape& shown_input,
                 const Shape& shown_weight) {
  check_floating(op, x, "input");
  LOOM_CHECK(x.dtype() == w.dtype(), Type, op, ": input (", dtype_name(x.dtype()), ") and weight (",
             dtype_name(w.dtype()), ") must have the same dtype");
  LOOM_CHECK(groups > 0, Value, op, ": groups must be positive, got ", groups);
  int64_t N = x.sizes()[0], C = x.sizes()[1], H = x.sizes()[2], W = x.sizes()[3];
  int64_t O = w.sizes()[0], Cg = w.sizes()[1], kh = w.sizes()[2], kw = w.sizes()[3];
  LOOM_CHECK(C == Cg * groups, Value, op, ": input of shape ", shape_str(shown_input), " has ", C,
             " channels, but weight of shape ", shape_str(shown_weight), " with groups=", groups, " expects ",
             Cg * groups, " channels");
  LOOM_CHECK(O % groups == 0, Value, op, ": out_channels (", O, ") of weight of shape ", shape_str(shown_weight),
             " must be divisible by groups (", groups, ")");
  LOOM_CHECK(O > 0 && kh > 0 && kw > 0, Value, op, ": weight of shape ", shape_str(shown_weight), " must be non-empty");
  check_conv_bias(op, bias, O, x);
  Pair s = positive_pair(stride, op, "stride"), d = positive_pair(dilation, op, "dilation");
  Pair pad4;
  if (padding.mode == "valid") {
    pad4 = {0, 0, 0, 0};
  } else if (padding.mode == "same") {
    LOOM_CHECK(s[0] == 1 && s[1] == 1, Value, op, ": padding='same' is not supported for strided convolutions");
    int64_t th = checked_mul(d[0], kh - 1, op, "the dilated kernel size");
    int64_t tw = checked_mul(d[1], kw - 1, op, "the dilated kernel size");
    pad4 = {th / 2, th - th / 2, tw / 2, tw - tw / 2};
  } else {
    LOOM_CHECK(padding.mode.empty(), Value, op, ": invalid padding string '", padding.mode,
               "', expected 'same' or 'valid'");
    Pair p = non_negative_pair(padding.sizes, op, "padding");
    pad4 = {p[0], p[0], p[1], p[1]};
  }
  int64_t oh = sliding_windows(H, pad4[0], pad4[1], kh, d[0], s[0], op);
  int64_t ow = sliding_windows(W, pad4[2], pad4[3], kw, d[1], s[1], op);
  // Both extents fit int64 here: sliding_windows computed them with checked arithmetic.
  int64_t padded_h = H + pad4[0] + pad4[1], padded_w = W + pad4[2] + pad4[3];
  int64_t eff_h = d[0] * (kh - 1) + 1, eff_w = d[1] * (kw - 1) + 1;
  LOOM_CHECK(oh > 0 && ow > 0, Value, op, ": calculated padded input size per channel (",
             padded_h, " x ", padded_w, ") is smaller than the (dilated) kernel size (", eff_h, " x ", eff_w,
             "); input shape ", shape_str(shown_input), ", weight shape ", shape_str(shown_weight));
  // float32/float64 on a device with the kernel: the fused conv2d op (per-image im2col + GEMM, fused backward).
  if (detail::fused_conv_supported(x)) return detail::conv2d_fused(x, w, bias, s, pad4, d, groups);
  return detail::conv2d_ops(x, w, bias, s, pad4, d, groups);
}

}  // namespace

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, const Pair& stride,
              const ConvPadding& padding, const Pair& dilation, int64_t groups) {
  LOOM_AUTOCAST_COMPOSITE("conv2d", conv2d, input, weight, bias, stride, padding, dilation, groups);
  LOOM_CHECK(input.dim() == 3 || input.dim() == 4, Value,
             "conv2d: expected input of shape (N, C, H, W) or (C, H, W), got ", shape_str(input.sizes()));
  LOOM_CHECK(weight.dim() == 4, Value,
             "conv2d: expected weight of shape (out_channels, in_channels/groups, kH, kW), got ",
             shape_str(weight.sizes()));
  bool batched = input.dim() == 4;
  Tensor x = batched ? input : unsqueeze(input, 0);
  Tensor out = conv_core("conv2d", x, weight, bias, stride, padding, dilation, groups, input.sizes(), weight.sizes());
  return batched ? out : squeeze(out, {0});
}

Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias, int64_t stride,
              const ConvPadding& padding, int64_t dilation, int64_t groups) {
  LOOM_AUTOCAST_COMPOSITE("conv1d", conv1d, input, weight, bias, stride, padding, dilation, groups);
  LOOM_CHECK(input.dim() == 2 || input.dim() == 3, Value, "conv1d: expected input of shape (N, C, L) or (C, L), got ",
             shape_str(input.sizes()));
  LOOM_CHECK(weight.dim() == 3, Value, "conv1d: expected weight of shape (out_channels, in_channels/groups, kL), got ",
             shape_str(weight.sizes()));
  LOOM_CHECK(padding.mode.empty() || padding.mode == "same" || padding.mode == "valid", Value,
             "conv1d: invalid padding string '", padding.mode, "', expected 'same' or 'valid'");
  LOOM_CHECK(padding.sizes.size() == 1, Value, "conv1d: padding must be a single int, got ", padding.sizes.size(),
             " values");
  bool batched = input.dim() == 3;
  Tensor x = unsqueeze(batched ? input : unsqueeze(input, 0), 2);  // (N, C, 1, L)
  ConvPadding pad2{{0, padding.sizes[0]}, padding.mode};
  Tensor out = conv_core("conv1d", x, unsqueeze(weight, 2), bias, {1, stride}, pad2, {1, dilation}, groups,
                         input.sizes(), weight.sizes());
  out = squeeze(out, {2});
  return batched ? out : squeeze(out, {0});
}

namespace {

// x (N, C_in, H, W), w (C_in, C_out/groups, kh, kw): columns W^T x per group, then col2im sums them into place.
Tensor conv_transpose_core(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias, const Pair& stride,
                           const Pair& padding, const Pair& output_padding, int64_t groups, const Pair& dilation,
                           const Shape& shown_input, const Shape& shown_weight) {
  check_floating(op, x, "input");
  LOOM_CHECK(x.dtype() == w.dtype(), Type, op, ": input (", dtype_name(x.dtype()), ") and weight (",
             dtype_name(w.dtype()), ") must have the same dtype");
  LOOM_CHECK(groups > 0, Value, op, ": groups must be positive, got ", groups);
  int64_t N = x.sizes()[0], C = x.sizes()[1], H = x.sizes()[2], W = x.sizes()[3];
  int64_t Cw = w.sizes()[0], Og = w.sizes()[1], kh = w.sizes()[2], kw = w.sizes()[3];
  LOOM_CHECK(C == Cw, Value, op, ": input of shape ", shape_str(shown_input), " has ", C,
             " channels, but weight of shape ", shape_str(shown_weight), " expects ", Cw);
  LOOM_CHECK(C % groups == 0, Value, op, ": in_channels (", C, ") must be divisible by groups (", groups, ")");
  LOOM_CHECK(Og > 0 && kh > 0 && kw > 0, Value, op, ": weight of shape ", shape_str(shown_weight),
             " must be non-empty");
  int64_t O = Og * groups;
  check_conv_bias(op, bias, O, x);
  Pair s = positive_pair(stride, op, "stride"), d = positive_pair(dilation, op, "dilation");
  Pair p = non_negative_pair(padding, op, "padding"), op_pad = non_negative_pair(output_padding, op, "output_padding");
  for (int i = 0; i < 2; ++i) {
    LOOM_CHECK(op_pad[i] < s[i] || op_pad[i] < d[i], Value, op, ": output padding must be smaller than either ",
               "stride or dilation, got output_padding ", shape_str(op_pad), ", stride ", shape_str(s),
               " and dilation ", shape_str(d));
    LOOM_CHECK(op_pad[i] < s[i], NotImplemented, op, ": output_padding >= stride (allowed by PyTorch when it is ",
               "below dilation) is not supported, got output_padding ", shape_str(op_pad), " and stride ",
               shape_str(s));
  }
  auto out_size = [&](int64_t size, int64_t k, int i) {  // (size-1)*s - 2p + d*(k-1) + output_padding + 1
    int64_t span = checked_mul(size - 1, s[i], op, "the output size");
    int64_t taps = checked_mul(d[i], k - 1, op, "the dilated kernel size");
    int64_t grown = checked_add(checked_add(span, taps, op, "the output size"), op_pad[i] + 1, op, "the output size");
    return checked_sub(grown, 2 * p[i], op, "the output size");
  };
  int64_t out_h = out_size(H, kh, 0), out_w = out_size(W, kw, 1);
  LOOM_CHECK(out_h > 0 && out_w > 0, Value, op, ": given input of shape ", shape_str(shown_input), ", weight ",
             shape_str(shown_weight), " and padding ", shape_str(p), ", the output size (", out_h, " x ", out_w,
             ") is too small");
  int64_t Cg = C / groups, K = Og * kh * kw, L = H * W;
  // x (N, g, Cg, L) -> (g, Cg, N*L); weight (g, Cg, K) -> (g, K, Cg); cols (g, K, N*L) -> (N, g*K, L).
  Tensor grouped_x = reshape(permute(reshape(x, {N, groups, Cg, L}), {1, 2, 0, 3}), {groups, Cg, N * L});
  Tensor grouped_w = transpose(reshape(w, {groups, Cg, K}), 1, 2);
  Tensor cols = reshape(permute(reshape(bmm(grouped_w, grouped_x), {groups, K, N, L}), {2, 0, 1, 3}),
                        {N, groups * K, L});
  Tensor out = detail::col2im(cols, {out_h, out_w}, {kh, kw}, d, {p[0], p[0], p[1], p[1]}, s);
  if (bias.defined()) out = add(out, reshape(bias, {1, O, 1, 1}));
  return out;
}

}  // namespace

Tensor conv_transpose2d(const Tensor& input, const Tensor& weight, const Tensor& bias, const Pair& stride,
                        const Pair& padding, const Pair& output_padding, int64_t groups, const Pair& dilation) {
  LOOM_AUTOCAST_COMPOSITE("conv_transpose2d", conv_transpose2d, input, weight, bias, stride, padding, output_padding, groups,
                          dilation);
  LOOM_CHECK(input.dim() == 3 || input.dim() == 4, Value,
             "conv_transpose2d: expected input of shape (N, C, H, W) or (C, H, W), got ", shape_str(input.sizes()));
  LOOM_CHECK(weight.dim() == 4, Value,
             "conv_transpose2d: expected weight of shape (in_channels, out_channels/groups, kH, kW), got ",
             shape_str(weight.sizes()));
  bool batched = input.dim() == 4;
  Tensor x = batched ? input : unsqueeze(input, 0);
  Tensor out = conv_transpose_core("conv_transpose2d", x, weight, bias, stride, padding, output_padding, groups,
                                   dilation, input.sizes(), weight.sizes());
  return batched ? out : squeeze(out, {0});
}

Tensor conv_transpose1d(const Tensor& input, const Tensor& weight, const Tensor& bias, int64_t stride, int64_t padding,
                        int64_t output_padding, int64_t groups, int64_t dilation) {
  LOOM_AUTOCAST_COMPOSITE("conv_transpose1d", conv_transpose1d, input, weight, bias, stride, padding, output_padding,
                          groups, dilation);
  LOOM_CHECK(input.dim() == 2 || input.dim() == 3, Value,
             "conv_transpose1d: expected input of shape (N, C, L) or (C, L), got ", shape_str(input.sizes()));
  LOOM_CHECK(weight.dim() == 3, Value,
             "conv_transpose1d: expected weight of shape (in_channels, out_channels/groups, kL), got ",
             shape_str(weight.sizes()));
  bool batched = input.dim() == 3;
  Tensor x = unsqueeze(batched ? input : unsqueeze(input, 0), 2);  // (N, C, 1, L)
  // The height dim uses stride 1 (and output_padding 0 < 1), so it stays 1.
  Tensor out = conv_transpose_core("conv_transpose1d", x, unsqueeze(weight, 2), bias, {1, stride}, {0, padding},
                                   {0, output_padding}, groups, {1, dilation}, input.sizes(), weight.sizes());
  out = squeeze(out, {2});
  return batched ? out : squeeze(out, {0});
}

// ================= pooling =================

std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input, const Pair& kernel_size, const Pair& stride,
                                                  const Pair& padding, const Pair& dilation, bool ceil_mode) {
  check_pool_input("max_pool2d", input);
  PoolGeometry g = pool_geometry("max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode);
  bool batched = input.dim() == 4;
  Tensor x = batched ? input : unsqueeze(input, 0);
  std::vector<Tensor> out = dispatch(LOOM_OP("max_pool2d"), {x},
                                     Attrs()
                                         .set("kernel_size", g.kernel)
                                         .set("stride", g.stride)
                                         .set("padding", g.padding)
                                         .set("dilation", g.dilation)
                                         .set("ceil_mode", ceil_mode));
  if (!batched) return {squeeze(out[0], {0}), squeeze(out[1], {0})};
  return {out[0], out[1]};
}

Tensor max_pool2d(const Tensor& input, const Pair& kernel_size, const Pair& stride, const Pair& padding,
                  const Pair& dilation, bool ceil_mode) {
  return max_pool2d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode).first;
}

Tensor avg_pool2d(const Tensor& input, const Pair& kernel_size, const Pair& stride, const Pair& padding, bool ceil_mode,
                  bool count_include_pad, std::optional<int64_t> divisor_override) {
  check_pool_input("avg_pool2d", input);
  PoolGeometry g = pool_geometry("avg_pool2d", input, kernel_size, stride, padding, {1}, ceil_mode);
  LOOM_CHECK(!divisor_override || *divisor_override != 0, Value, "avg_pool2d: divisor_override must be non-zero");
  bool batched = input.dim() == 4;
  Tensor x = upcast(batched ? input : unsqueeze(input, 0));
  int64_t N = x.sizes()[0], C = x.sizes()[1], H = x.sizes()[2], W = x.sizes()[3];
  int64_t kh = g.kernel[0], kw = g.kernel[1], sh = g.stride[0], sw = g.stride[1], ph = g.padding[0], pw = g.padding[1];
  // Pad the bottom/right enough that im2col yields the (possibly ceil_mode) number of windows.
  // Window starts are below H + ph (pool_output_size), so these stay near the geometry arguments.
  int64_t pb = std::max(ph, (g.oh - 1) * sh + kh - H - ph), pr = std::max(pw, (g.ow - 1) * sw + kw - W - pw);
  Tensor cols = detail::im2col(reshape(x, {N * C, 1, H, W}), g.kernel, {1, 1}, {ph, pb, pw, pr}, g.stride);
  int64_t rows = sliding_windows(H, ph, pb, kh, 1, sh, "avg_pool2d"), columns = sliding_windows(W, pw, pr, kw, 1, sw, "avg_pool2d");
  Tensor sums = reshape(sum(cols, {1}), {N * C, rows, columns});
  sums = slice(slice(sums, 1, 0, g.oh), 2, 0, g.ow);
  // The divisor of each window, as torch computes it (windows clipped to the padded input, then to the input).
  std::vector<double> divisor(static_cast<size_t>(checked_mul(g.oh, g.ow, "avg_pool2d", "the output size")));
  for (int64_t i = 0; i < g.oh; ++i)
    for (int64_t j = 0; j < g.ow; ++j) {
      int64_t h0 = i * sh - ph, w0 = j * sw - pw;
      int64_t h1 = std::min(h0 + kh, H + ph), w1 = std::min(w0 + kw, W + pw);
      int64_t pool_size = (h1 - h0) * (w1 - w0);
      h0 = std::max<int64_t>(h0, 0), w0 = std::max<int64_t>(w0, 0);
      h1 = std::min(h1, H), w1 = std::min(w1, W);
      double value;
      if (divisor_override) value = static_cast<double>(*divisor_override);
      else if (h0 >= h1 || w0 >= w1) value = 1.0;  // empty window: the sum is 0 and so is the output
      else value = static_cast<double>(count_include_pad ? pool_size : (h1 - h0) * (w1 - w0));
      divisor[static_cast<size_t>(i * g.ow + j)] = value;
    }
  Tensor div_t = to_dtype(from_blob_copy(divisor.data(), {g.oh, g.ow}, DType::Float64, x.device()), x.dtype());
  Tensor out = reshape(div(sums, div_t), {N, C, g.oh, g.ow});
  out = cast_back(out, input.dtype());
  return batched ? out : squeeze(out, {0});
}

namespace {

void check_pool1d_input(const char* op, const Tensor& x) {
  LOOM_CHECK(x.dim() == 2 || x.dim() == 3, Value, op, ": expected input of shape (N, C, L) or (C, L), got ",
             shape_str(x.sizes()));
}

}  // namespace

std::pair<Tensor, Tensor> max_pool1d_with_indices(const Tensor& input, int64_t kernel_size,
                                                  std::optional<int64_t> stride, int64_t padding, int64_t dilation,
                                                  bool ceil_mode) {
  check_pool1d_input("max_pool1d", input);
  Pair s = stride ? Pair{1, *stride} : Pair{1, kernel_size};
  auto [values, indices] =
      max_pool2d_with_indices(unsqueeze(input, -2), {1, kernel_size}, s, {0, padding}, {1, dilation}, ceil_mode);
  return {squeeze(values, {-2}), squeeze(indices, {-2})};
}

Tensor avg_pool1d(const Tensor& input, int64_t kernel_size, std::optional<int64_t> stride, int64_t padding,
                  bool ceil_mode, bool count_include_pad) {
  check_pool1d_input("avg_pool1d", input);
  Pair s = stride ? Pair{1, *stride} : Pair{1, kernel_size};
  Tensor out = avg_pool2d(unsqueeze(input, -2), {1, kernel_size}, s, {0, padding}, ceil_mode, count_include_pad);
  return squeeze(out, {-2});
}

Tensor adaptive_avg_pool1d(const Tensor& input, int64_t output_size) {
  check_pool1d_input("adaptive_avg_pool1d", input);
  return squeeze(adaptive_avg_pool2d(unsqueeze(input, -2), {1, output_size}), {-2});
}

Tensor adaptive_avg_pool2d(const Tensor& input, const std::vector<std::optional<int64_t>>& output_size) {
  check_pool_input("adaptive_avg_pool2d", input);
  LOOM_CHECK(output_size.size() == 1 || output_size.size() == 2, Value,
             "adaptive_avg_pool2d: output_size must be an int or a pair, got ", output_size.size(), " values");
  int64_t H = input.sizes()[input.dim() - 2], W = input.sizes()[input.dim() - 1];
  auto pick = [&](size_t i, int64_t keep) {
    const std::optional<int64_t>& v = output_size[output_size.size() == 1 ? 0 : i];
    int64_t size = v.value_or(keep);
    LOOM_CHECK(size > 0, Value, "adaptive_avg_pool2d: output_size must be positive, got ", size);
    return size;
  };
  int64_t oh = pick(0, H), ow = pick(1, W);
  bool batched = input.dim() == 4;
  Tensor x = batched ? input : unsqueeze(input, 0);
  Tensor out = dispatch1(LOOM_OP("adaptive_avg_pool2d"), {x}, Attrs().set("output_size", Shape{oh, ow}));
  return batched ? out : squeeze(out, {0});
}

// ================= normalisation =================

namespace {

// Checks that weight/bias have `shape` and input's dtype.
void check_affine(const char* op, const Tensor& p, const char* name, const Shape& shape, const Tensor& input) {
  if (!p.defined()) return;
  LOOM_CHECK(p.sizes() == shape, Value, op, ": expected ", name, " of shape ", shape_str(shape), ", got ",
             shape_str(p.sizes()));
  check_floating(op, p, name);
}

// (x - mean) / sqrt(var + eps) over `dims` with the biased variance.
Tensor normalize(const Tensor& x, const Dims& dims, double eps) {
  Tensor centered = sub(x, mean(x, dims, true));
  Tensor var = mean(mul(centered, centered), dims, true);
  return mul(centered, rsqrt(add(var, Scalar(eps))));
}

// Validates a layer/rms norm's input against normalized_shape (its trailing dims); returns their count.
int64_t check_normalized_shape(const char* op, const Tensor& input, const Shape& normalized_shape) {
  check_floating(op, input, "input");
  int64_t k = static_cast<int64_t>(normalized_shape.size());
  bool matches = k >= 1 && k <= input.dim() &&
                 std::equal(normalized_shape.begin(), normalized_shape.end(), input.sizes().end() - k);
  LOOM_CHECK(matches, Value, op, ": given normalized_shape=", shape_str(normalized_shape),
             ", expected input with shape (*, ", dims_str(normalized_shape), "), but got input of shape ",
             shape_str(input.sizes()));
  return k;
}

}  // namespace

Tensor layer_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  int64_t k = check_normalized_shape("layer_norm", input, normalized_shape);
  check_affine("layer_norm", weight, "weight", normalized_shape, input);
  check_affine("layer_norm", bias, "bias", normalized_shape, input);
  // The fused op (one pass forward, one backward) when the device has it and weight and bias have the input's dtype.
  if ((!weight.defined() || weight.dtype() == input.dtype()) && (!bias.defined() || bias.dtype() == input.dtype()) &&
      has_kernel(LOOM_OP("native_layer_norm"), input.device()))
    return std::get<0>(native_layer_norm(input, k, weight, bias, eps));
  Dims dims;
  for (int64_t i = input.dim() - k; i < input.dim(); ++i) dims.push_back(i);
  Tensor y = normalize(upcast(input), dims, eps);
  if (weight.defined()) y = mul(y, upcast(weight));
  if (bias.defined()) y = add(y, upcast(bias));
  return cast_back(y, input.dtype());
}

Tensor rms_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight, std::optional<double> eps) {
  int64_t k = check_normalized_shape("rms_norm", input, normalized_shape);
  check_affine("rms_norm", weight, "weight", normalized_shape, input);
  double epsilon = 0.0;
  if (eps) epsilon = *eps;
  else if (input.dtype() == DType::Float16) epsilon = 0.0009765625;
  else if (input.dtype() == DType::BFloat16) epsilon = 0.0078125;
  else if (input.dtype() == DType::Float32) epsilon = std::numeric_limits<float>::epsilon();
  else epsilon = std::numeric_limits<double>::epsilon();
  if ((!weight.defined() || weight.dtype() == input.dtype()) && has_kernel(LOOM_OP("native_layer_norm"), input.device()))
    return std::get<0>(native_layer_norm(input, k, weight, Tensor(), epsilon, /*rms=*/true));
  Dims dims;
  for (int64_t i = input.dim() - k; i < input.dim(); ++i) dims.push_back(i);
  Tensor x = upcast(input);
  Tensor y = mul(x, rsqrt(add(mean(mul(x, x), dims, true), Scalar(epsilon))));
  if (weight.defined()) y = mul(y, upcast(weight));
  return cast_back(y, input.dtype());
}

namespace {

// Reshapes a per-channel (C) parameter to broadcast against (N, C, *) of rank `dim`.
Tensor per_channel(const Tensor& p, int64_t dim) {
  Shape shape(static_cast<size_t>(dim), 1);
  shape[1] = p.sizes()[0];
  return reshape(p, shape);
}

}  // namespace

Tensor group_norm(const Tensor& input, int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps) {
  check_floating("group_norm", input, "input");
  LOOM_CHECK(input.dim() >= 2, Value, "group_norm: expected input of shape (N, C, *), got ", shape_str(input.sizes()));
  LOOM_CHECK(num_groups > 0, Value, "group_norm: num_groups must be positive, got ", num_groups);
  int64_t N = input.sizes()[0], C = input.sizes()[1];
  LOOM_CHECK(C % num_groups == 0, Value, "group_norm: expected number of channels in input to be divisible by ",
             "num_groups, but got input of shape ", shape_str(input.sizes()), " and num_groups=", num_groups);
  check_affine("group_norm", weight, "weight", {C}, input);
  check_affine("group_norm", bias, "bias", {C}, input);
  Tensor x = upcast(input);
  Tensor y = N * C == 0 ? x : reshape(normalize(reshape(x, {N, num_groups, -1}), {2}, eps), input.sizes());
  if (weight.defined()) y = mul(y, per_channel(upcast(weight), input.dim()));
  if (bias.defined()) y = add(y, per_channel(upcast(bias), input.dim()));
  return cast_back(y, input.dtype());
}

Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  check_floating("batch_norm", input, "input");
  LOOM_CHECK(input.dim() >= 2, Value, "batch_norm: expected input of shape (N, C, *), got ", shape_str(input.sizes()));
  int64_t C = input.sizes()[1];
  check_affine("batch_norm", weight, "weight", {C}, input);
  check_affine("batch_norm", bias, "bias", {C}, input);
  check_affine("batch_norm", running_mean, "running_mean", {C}, input);
  check_affine("batch_norm", running_var, "running_var", {C}, input);
  Dims dims{0};
  for (int64_t i = 2; i < input.dim(); ++i) dims.push_back(i);
  int64_t count = C == 0 ? 0 : input.numel() / C;
  Tensor x = upcast(input);
  Tensor y;
  if (training) {
    LOOM_CHECK(count > 1, Value, "batch_norm: expected more than 1 value per channel when training, got input of ",
               "shape ", shape_str(input.sizes()));
    if (detail::fused_batch_norm_supported(x)) {
      // One fused op: batch statistics, normalisation and affine map; fused backward.
      std::vector<Tensor> r = detail::native_batch_norm(x, upcast(weight), upcast(bias), eps);
      if (running_mean.defined() || running_var.defined()) {
        NoGradGuard no_grad;
        if (running_mean.defined()) {
          Tensor updated = add(mul(upcast(running_mean), Scalar(1.0 - momentum)), mul(r[1], Scalar(momentum)));
          Tensor target = running_mean;
          copy_(target, updated);
        }
        if (running_var.defined()) {
          // Unbiased batch variance from invstd = 1 / sqrt(var + eps).
          double unbias = static_cast<double>(count) / static_cast<double>(count - 1);
          Tensor var = sub(reciprocal(mul(r[2], r[2])), Scalar(eps));
          Tensor updated = add(mul(upcast(running_var), Scalar(1.0 - momentum)), mul(var, Scalar(momentum * unbias)));
          Tensor target = running_var;
          copy_(target, updated);
        }
      }
      return cast_back(r[0], input.dtype());
    }
    Tensor centered = sub(x, mean(x, dims, true));
    Tensor var = mean(mul(centered, centered), dims, true);
    y = mul(centered, rsqrt(add(var, Scalar(eps))));
    if (running_mean.defined() || running_var.defined()) {
      NoGradGuard no_grad;
      if (running_mean.defined()) {
        Tensor stat = reshape(mean(x, dims), {C});
        Tensor updated = add(mul(upcast(running_mean), Scalar(1.0 - momentum)), mul(stat, Scalar(momentum)));
        Tensor target = running_mean;
        copy_(target, updated);
      }
      if (running_var.defined()) {
        double unbias = static_cast<double>(count) / static_cast<double>(count - 1);
        Tensor stat = reshape(var, {C});
        Tensor updated = add(mul(upcast(running_var), Scalar(1.0 - momentum)), mul(stat, Scalar(momentum * unbias)));
        Tensor target = running_var;
        copy_(target, updated);
      }
    }
  } else {
    LOOM_CHECK(running_mean.defined() && running_var.defined(), Value,
               "batch_norm: running_mean and running_var must be given in evaluation mode (training=False)");
    Tensor m = per_channel(upcast(running_mean), input.dim()), v = per_channel(upcast(running_var), input.dim());
    y = mul(sub(x, m), rsqrt(add(v, Scalar(eps))));
  }
  if (weight.defined()) y = mul(y, per_channel(upcast(weight), input.dim()));
  if (bias.defined()) y = add(y, per_channel(upcast(bias), input.dim()));
  return cast_back(y, input.dtype());
}

Tensor instance_norm(const Tensor& input, const Tensor& weight, const Tensor& bias, double eps) {
  LOOM_CHECK(input.dim() >= 3, Value, "instance_norm: expected input of shape (N, C, *) with at least one spatial ",
             "dim, got ", shape_str(input.sizes()));
  int64_t C = input.sizes()[1];
  LOOM_CHECK(C > 0, Value, "instance_norm: expected at least one channel, got input of shape ",
             shape_str(input.sizes()));
  return group_norm(input, C, weight, bias, eps);
}

// ================= dropout =================

Tensor dropout(const Tensor& input, double p, bool training) {
  LOOM_CHECK(p >= 0.0 && p <= 1.0, Value, "dropout: probability has to be between 0 and 1, but got ", p);
  if (!training || p == 0.0) return input;
  check_floating("dropout", input, "input");
  if (p == 1.0) return mul(input, zeros_like(input));
  Tensor mask = bernoulli(input, 1.0 - p);  // 1 keeps, in input's dtype
  return mul(input, mul(mask, Scalar(1.0 / (1.0 - p))));
}

// scaled_dot_product_attention: ops/attention.cpp.

}  // namespace loom
