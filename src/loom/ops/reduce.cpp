// Reduction op definitions and public functions. CPU kernels: backends/cpu/reduce.cpp.
#include "loom/ops/reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/index.h"
#include "loom/ops/normalization.h"
#include "loom/ops/promotion.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"
#include "loom/ops/sort.h"

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

// Raises like PyTorch when a reduced dim is empty (there is no identity for max/min).
void check_nonempty_dims(const Tensor& t, const Dims& dims, const char* op) {
  for (int64_t d : dims)
    LOOM_CHECK(t.sizes()[d] != 0, Index, op, "(): Expected reduction dim ", d,
               " to have non-zero size (input shape ", shape_str(t.sizes()), ")");
}

std::vector<TensorMeta> infer_extreme(const std::vector<Tensor>& in, const Attrs& a) {
  const Dims& dims = a.get<Dims>("dims");
  check_nonempty_dims(in[0], dims, a.get<std::string>("op").c_str());
  return {TensorMeta{detail::reduced_shape(in[0].sizes(), dims, a.get<bool>("keepdim")), in[0].dtype(), in[0].device()}};
}

std::vector<TensorMeta> infer_logical(const std::vector<Tensor>& in, const Attrs& a) {
  DType out = in[0].dtype() == DType::UInt8 ? DType::UInt8 : DType::Bool;
  return {TensorMeta{detail::reduced_shape(in[0].sizes(), a.get<Dims>("dims"), a.get<bool>("keepdim")), out, in[0].device()}};
}

// max_dim/min_dim: (values, int64 indices) along one dim.
std::vector<TensorMeta> infer_arg_extreme(const std::vector<Tensor>& in, const Attrs& a) {
  int64_t dim = a.get<int64_t>("dim");
  const Tensor& t = in[0];
  Dims dims = t.dim() == 0 ? Dims{} : Dims{dim};
  check_nonempty_dims(t, dims, a.get<std::string>("op").c_str());
  Shape shape = detail::reduced_shape(t.sizes(), dims, a.get<bool>("keepdim"));
  return {TensorMeta{shape, t.dtype(), t.device()}, TensorMeta{shape, DType::Int64, t.device()}};
}

std::vector<TensorMeta> infer_scan(const std::vector<Tensor>& in, const Attrs& a) {
  return {TensorMeta{in[0].sizes(), a.get<DType>("dtype"), in[0].device()}};
}

std::vector<TensorMeta> infer_softmax(const std::vector<Tensor>& in, const Attrs& a) {
  LOOM_CHECK(is_floating(in[0].dtype()), Type, a.get<std::string>("op"), ": expected a floating point input, got ",
             dtype_name(in[0].dtype()), " (shape ", shape_str(in[0].sizes()), "); pass dtype= to cast");
  return {TensorMeta{in[0].sizes(), in[0].dtype(), in[0].device()}};
}

Tensor unsqueezed_grad(const BackwardContext& c) {
  return detail::unsqueeze_reduced(c.grad(), c.input_meta[0].sizes, c.attrs.get<Dims>("dims"), c.attrs.get<bool>("keepdim"));
}

std::vector<Tensor> prod_backward(BackwardContext& c) {
  const Dims& dims = c.attrs.get<Dims>("dims");
  Tensor g = unsqueezed_grad(c);
  Tensor x = c.inputs[0].dtype() == g.dtype() ? c.inputs[0] : to_dtype(c.inputs[0], g.dtype());
  Tensor out = detail::unsqueeze_reduced(c.outputs[0], x.sizes(), dims, c.attrs.get<bool>("keepdim"));
  // d prod / d x_i = prod_{j != i} x_j: out / x_i where x_i != 0; the product of the other (nonzero)
  // elements where x_i is the only zero; 0 where there are several zeros.
  Tensor is_zero = eq(x, Scalar(0.0));
  Tensor safe = where(is_zero, Scalar(1.0), x);
  Tensor others = prod(safe, dims, true);
  Tensor single_zero = eq(sum(is_zero, dims, true), Scalar(int64_t(1)));
  Tensor at_zero = where(single_zero, others, Scalar(0.0));
  return {mul(g, where(is_zero, at_zero, div(out, safe)))};
}

std::vector<Tensor> extreme_backward(BackwardContext& c) {
  const Dims& dims = c.attrs.get<Dims>("dims");
  Tensor g = unsqueezed_grad(c);
  Tensor out = detail::unsqueeze_reduced(c.outputs[0], c.input_meta[0].sizes, dims, c.attrs.get<bool>("keepdim"));
  // Ties share the gradient evenly, like PyTorch's amax/amin.
  Tensor mask = to_dtype(eq(c.inputs[0], out), g.dtype());
  return {mul(g, div(mask, sum(mask, dims, true)))};
}

std::vector<Tensor> arg_extreme_backward(BackwardContext& c) {
  const Shape& in = c.input_meta[0].sizes;
  Tensor g = c.grad(0);
  if (in.empty()) return {reshape(g, in)};
  int64_t dim = c.attrs.get<int64_t>("dim");
  bool keepdim = c.attrs.get<bool>("keepdim");
  Tensor index = keepdim ? c.outputs[1] : unsqueeze(c.outputs[1], dim);
  if (!keepdim) g = unsqueeze(g, dim);
  Shape positions_shape(in.size(), 1);
  positions_shape[dim] = in[dim];
  Tensor positions = reshape(arange(Scalar(int64_t(0)), Scalar(in[dim]), Scalar(int64_t(1)), DType::Int64, g.device()),
                             positions_shape);
  // One-hot of the index along dim, the shape of the input: the gradient goes to the selected element only.
  return {where(eq(positions, index), expand(g, in), zeros({}, g.dtype(), g.device()))};
}

// Sum of g from position i to the end along dim (the adjoint of an inclusive scan).
Tensor reverse_cumsum(const Tensor& g, int64_t dim) {
  return add(sub(sum(g, {dim}, true), cumsum(g, dim)), g);
}

std::vector<Tensor> cumsum_backward(BackwardContext& c) {
  return {reverse_cumsum(c.grad(), c.attrs.get<int64_t>("dim"))};
}

std::vector<Tensor> cumprod_backward(BackwardContext& c) {
  // Valid for nonzero inputs: d out_j / d x_i = out_j / x_i for j >= i.
  Tensor g = c.grad();
  Tensor x = c.inputs[0].dtype() == g.dtype() ? c.inputs[0] : to_dtype(c.inputs[0], g.dtype());
  return {div(reverse_cumsum(mul(g, c.outputs[0]), c.attrs.get<int64_t>("dim")), x)};
}

// d out_j / d x_i = exp(x_i - out_j) for j >= i (j <= i when reversed). The sum over j is taken in log space, with
// the positive and negative parts of the gradient separately, as PyTorch does.
std::vector<Tensor> logcumsumexp_backward(BackwardContext& c) {
  Tensor g = c.grad();
  const Tensor &x = c.inputs[0], &out = c.outputs[0];
  int64_t dim = c.attrs.get<int64_t>("dim");
  bool reverse = c.attrs.get<bool>("reverse");
  auto scan_back = [&](const Tensor& t) {
    return reverse ? logcumsumexp(t, dim) : detail::reverse_logcumsumexp(t, dim);
  };
  // log of the positive entries of h; elsewhere a very negative finite number instead of -inf, so that
  // the double backward never meets inf - inf.
  const double floor_value = g.dtype() == DType::Float16 ? -1e4 : -1e30;
  auto log_positive = [&](const Tensor& h) {
    Tensor positive = gt(h, Scalar(0.0));
    return where(positive, log(where(positive, h, Scalar(1.0))), Scalar(floor_value));
  };
  Tensor result;
  if (any(gt(g, Scalar(0.0))).item().to_bool()) result = exp(add(scan_back(sub(log_positive(g), out)), x));
  if (any(lt(g, Scalar(0.0))).item().to_bool()) {
    Tensor negative = exp(add(scan_back(sub(log_positive(neg(g)), out)), x));
    result = result.defined() ? sub(result, negative) : neg(negative);
  }
  return {result.defined() ? result : zeros_like(x, g.dtype())};
}

// cummax/cummin: each output came from the input at its index.
std::vector<Tensor> cumulative_extreme_backward(BackwardContext& c) {
  const Shape& in = c.input_meta[0].sizes;
  if (in.empty()) return {reshape(c.grad(0), in)};
  Tensor g = c.grad(0);
  return {scatter_add(zeros(in, g.dtype(), g.device()), c.attrs.get<int64_t>("dim"), c.outputs[1], g)};
}

std::vector<TensorMeta> infer_cumulative_extreme(const std::vector<Tensor>& in, const Attrs&) {
  return {TensorMeta{in[0].sizes(), in[0].dtype(), in[0].device()}, TensorMeta{in[0].sizes(), DType::Int64, in[0].device()}};
}

// The fused first-order backward (one kernel) when no graph of the backward is needed and the device has it;
// with create_graph the formula in ops, differentiable again.
bool use_fused_softmax_backward(const OpDef& op, const Tensor& g, const Tensor& y) {
  return !grad_mode_enabled() && g.dtype() == y.dtype() && g.sizes() == y.sizes() && has_kernel(op, y.device());
}

// The gradients in ops (also the fused backward ops' composites). A 0-d y is softmax over one element.
Tensor softmax_grad_ops(const Tensor& g, const Tensor& y, int64_t dim) {
  if (y.dim() == 0) return mul(y, sub(g, mul(g, y)));
  return mul(y, sub(g, sum(mul(g, y), {dim}, true)));
}
Tensor log_softmax_grad_ops(const Tensor& g, const Tensor& y, int64_t dim) {
  return sub(g, mul(exp(y), y.dim() == 0 ? g : sum(g, {dim}, true)));
}

std::vector<Tensor> softmax_backward(BackwardContext& c) {
  const Tensor& y = c.outputs[0];
  Tensor g = c.grad();
  const int64_t dim = c.attrs.get<int64_t>("dim");
  if (use_fused_softmax_backward(LOOM_OP("softmax_backward"), g, y))
    return {dispatch1(LOOM_OP("softmax_backward"), {g, y}, Attrs().set("dim", dim))};
  return {softmax_grad_ops(g, y, dim)};
}

std::vector<Tensor> log_softmax_backward(BackwardContext& c) {
  const Tensor& y = c.outputs[0];
  Tensor g = c.grad();
  const int64_t dim = c.attrs.get<int64_t>("dim");
  if (use_fused_softmax_backward(LOOM_OP("log_softmax_backward"), g, y))
    return {dispatch1(LOOM_OP("log_softmax_backward"), {g, y}, Attrs().set("dim", dim))};
  return {log_softmax_grad_ops(g, y, dim)};
}

// ---- composites of the fused softmax ops (devices without their kernels) ----

// x minus its (constant) max along dim. As in the kernels and PyTorch, a row whose max is infinite (all -inf, or
// a +inf entry) becomes NaN.
Tensor shifted_by_max(const Tensor& x, int64_t dim) { return sub(x, amax(x.detach(), {dim}, true)); }

// Runs fn on x seen as at least 1-d (softmax of a 0-d tensor is over its one element).
template <class Fn>
Tensor on_rows(const Tensor& x, Fn fn) {
  if (x.dim() > 0) return fn(x);
  return reshape(fn(reshape(x, {1})), {});
}

// An empty input (amax would raise on an empty dim): an empty output, still in x's graph.
Tensor empty_result(const Tensor& x) { return mul(x, Scalar(0.0)); }

std::vector<Tensor> softmax_composite(const std::vector<Tensor>& in, const Attrs& a) {
  const int64_t dim = a.get<int64_t>("dim");
  if (in[0].numel() == 0) return {empty_result(in[0])};
  return {on_rows(in[0], [&](const Tensor& x) {
    Tensor e = exp(shifted_by_max(x, dim));
    return div(e, sum(e, {dim}, true));
  })};
}

std::vector<Tensor> log_softmax_composite(const std::vector<Tensor>& in, const Attrs& a) {
  const int64_t dim = a.get<int64_t>("dim");
  if (in[0].numel() == 0) return {empty_result(in[0])};
  return {on_rows(in[0], [&](const Tensor& x) {
    Tensor shifted = shifted_by_max(x, dim);
    return sub(shifted, log(sum(exp(shifted), {dim}, true)));
  })};
}

std::vector<Tensor> softmax_backward_composite(const std::vector<Tensor>& in, const Attrs& a) {
  return {softmax_grad_ops(in[0], in[1], a.get<int64_t>("dim"))};
}

std::vector<Tensor> log_softmax_backward_composite(const std::vector<Tensor>& in, const Attrs& a) {
  return {log_softmax_grad_ops(in[0], in[1], a.get<int64_t>("dim"))};
}

std::vector<TensorMeta> infer_softmax_backward(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor &g = in[0], &y = in[1];
  LOOM_CHECK(g.sizes() == y.sizes() && g.dtype() == y.dtype() && is_floating(y.dtype()), Value,
             "softmax_backward: grad ", shape_str(g.sizes()), " ", dtype_name(g.dtype()), " and output ",
             shape_str(y.sizes()), " ", dtype_name(y.dtype()), " must have the same shape and floating dtype");
  LOOM_CHECK(a.get<int64_t>("dim") >= 0 && a.get<int64_t>("dim") < std::max<int64_t>(y.dim(), 1), Index,
             "softmax_backward: dim ", a.get<int64_t>("dim"), " out of range for shape ", shape_str(y.sizes()));
  return {TensorMeta{y.sizes(), y.dtype(), y.device()}};
}

}  // namespace

void define_reduce_ops(Registry& r) {
  define_normalization_ops(r);  // the fused layer norm (ops/normalization.cpp)
  // sum: attrs dims (normalized, sorted; all dims listed when reducing everything), keepdim, dtype (output).
  r.define({.name = "sum", .infer = infer_sum, .backward = sum_backward, .saved_inputs = 0});
  // prod: attrs as sum.
  r.define({.name = "prod", .infer = infer_sum, .backward = prod_backward, .saves_outputs = true});
  // amax/amin: attrs dims, keepdim, op (name for errors).
  r.define({.name = "amax", .infer = infer_extreme, .backward = extreme_backward, .saves_outputs = true});
  r.define({.name = "amin", .infer = infer_extreme, .backward = extreme_backward, .saves_outputs = true});
  // max_dim/min_dim: attrs dim (normalized), keepdim, op. Outputs (values, indices).
  r.define({.name = "max_dim", .infer = infer_arg_extreme, .backward = arg_extreme_backward, .saved_inputs = 0,
            .saves_outputs = true});
  r.define({.name = "min_dim", .infer = infer_arg_extreme, .backward = arg_extreme_backward, .saved_inputs = 0,
            .saves_outputs = true});
  r.define({.name = "all", .infer = infer_logical});
  r.define({.name = "any", .infer = infer_logical});
  // cumsum/cumprod: attrs dim (normalized), dtype (output).
  r.define({.name = "cumsum", .infer = infer_scan, .backward = cumsum_backward, .saved_inputs = 0});
  r.define({.name = "cumprod", .infer = infer_scan, .backward = cumprod_backward, .saves_outputs = true});
  // logcumsumexp: attrs dim (normalized), reverse.
  r.define({.name = "logcumsumexp", .infer = infer_softmax, .backward = logcumsumexp_backward, .saves_outputs = true});
  // cummax/cummin: attrs dim (normalized). Outputs (values, indices).
  r.define({.name = "cummax", .infer = infer_cumulative_extreme, .backward = cumulative_extreme_backward,
            .saved_inputs = 0, .saves_outputs = true});
  r.define({.name = "cummin", .infer = infer_cumulative_extreme, .backward = cumulative_extreme_backward,
            .saved_inputs = 0, .saves_outputs = true});
  // softmax/log_softmax: attrs dim (normalized), op.
  r.define({.name = "softmax", .infer = infer_softmax, .backward = softmax_backward,
            .composite = softmax_composite, .saved_inputs = 0, .saves_outputs = true});
  r.define({.name = "log_softmax", .infer = infer_softmax, .backward = log_softmax_backward,
            .composite = log_softmax_composite, .saved_inputs = 0, .saves_outputs = true});
  // softmax_backward/log_softmax_backward(grad, output): attrs dim (normalized). The fused first-order gradients,
  // used by softmax's/log_softmax's backward when grad mode is off; no backward of their own.
  r.define({.name = "softmax_backward", .infer = infer_softmax_backward, .composite = softmax_backward_composite});
  r.define({.name = "log_softmax_backward", .infer = infer_softmax_backward,
            .composite = log_softmax_backward_composite});
}

namespace {
// The number of elements each output of a reduction over `normalized` sees, in double: a zero-size tensor's
// other dims may multiply past int64 (loom allows (2^62, 64, 0)); the count is exactly 0 when one of those dims is.
double reduced_count(const Tensor& t, const Dims& normalized) {
  double count = 1;
  for (int64_t d : normalized) count *= static_cast<double>(t.sizes()[d]);
  return count;
}
}  // namespace

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
  Tensor total = sum(t, normalized, keepdim, out);
  return div(total, Scalar(reduced_count(t, normalized)));
}

namespace {

DType integer_to_long(const Tensor& t, std::optional<DType> dtype) {
  return dtype.value_or(is_floating(t.dtype()) ? t.dtype() : DType::Int64);
}

Tensor extreme(const char* op, const Tensor& t, const Dims& dims, bool keepdim) {
  Dims normalized = normalize_dims(dims, t.dim(), op);
  return dispatch1(Registry::instance().op(op), {t},
                   Attrs().set("dims", normalized).set("keepdim", keepdim).set("op", std::string(op)));
}

std::pair<Tensor, Tensor> arg_extreme(const char* op, const char* label, const Tensor& t, int64_t dim, bool keepdim) {
  int64_t d = normalize_dim(dim, t.dim(), label);
  std::vector<Tensor> out = dispatch(Registry::instance().op(op), {t},
                                     Attrs().set("dim", d).set("keepdim", keepdim).set("op", std::string(label)));
  return {out[0], out[1]};
}

Tensor arg_index(const char* op, const char* label, const Tensor& t, std::optional<int64_t> dim, bool keepdim) {
  LOOM_CHECK(t.dtype() != DType::Bool, Runtime, label, "(): does not support bool input");
  if (dim) return arg_extreme(op, label, t, *dim, keepdim).second;
  LOOM_CHECK(t.numel() != 0, Index, label, "(): Expected reduction dim to be specified for input.numel() == 0 (input shape ",
             shape_str(t.sizes()), ")");
  Tensor index = arg_extreme(op, label, reshape(t, {-1}), 0, false).second;
  return keepdim ? reshape(index, Shape(t.dim(), 1)) : index;
}

Tensor scan(const char* op, const Tensor& t, int64_t dim, std::optional<DType> dtype) {
  int64_t d = normalize_dim(dim, t.dim(), op);
  DType out = integer_to_long(t, dtype);
  Tensor input = t.dtype() == out ? t : to_dtype(t, out);
  return dispatch1(Registry::instance().op(op), {input}, Attrs().set("dim", d).set("dtype", out));
}

Tensor softmax_like(const char* op, const Tensor& t, int64_t dim, std::optional<DType> dtype) {
  int64_t d = normalize_dim(dim, t.dim(), op);
  Tensor input = dtype && *dtype != t.dtype() ? to_dtype(t, *dtype) : t;
  return dispatch1(Registry::instance().op(op), {input}, Attrs().set("dim", d).set("op", std::string(op)));
}

void check_floating(const Tensor& t, const char* op) {
  LOOM_CHECK(is_floating(t.dtype()), Type, op, ": expected a floating point input, got ", dtype_name(t.dtype()),
             " (shape ", shape_str(t.sizes()), ")");
}

// sqrt-like root that has a zero (not NaN) gradient where its argument is 0, as PyTorch's norm backward.
Tensor safe_root(const Tensor& s, double inverse_power) {
  Tensor is_zero = eq(s, Scalar(0.0));
  Tensor safe = where(is_zero, Scalar(1.0), s);
  Tensor root = inverse_power == 0.5 ? sqrt(safe) : pow(safe, Scalar(inverse_power));
  return where(is_zero, Scalar(0.0), root);
}

}  // namespace

Tensor prod(const Tensor& t, const Dims& dims, bool keepdim, std::optional<DType> dtype) {
  Dims normalized = normalize_dims(dims, t.dim(), "prod");
  DType out = integer_to_long(t, dtype);
  Tensor input = t.dtype() == out ? t : to_dtype(t, out);
  return dispatch1(LOOM_OP("prod"), {input}, Attrs().set("dims", normalized).set("keepdim", keepdim).set("dtype", out));
}

Tensor amax(const Tensor& t, const Dims& dims, bool keepdim) { return extreme("amax", t, dims, keepdim); }
Tensor amin(const Tensor& t, const Dims& dims, bool keepdim) { return extreme("amin", t, dims, keepdim); }

Tensor max(const Tensor& t) {
  LOOM_CHECK(t.numel() != 0, Runtime, "max(): Expected reduction dim to be specified for input.numel() == 0 (input shape ",
             shape_str(t.sizes()), "). Specify the reduction dim with the 'dim' argument.");
  return amax(t);
}
Tensor min(const Tensor& t) {
  LOOM_CHECK(t.numel() != 0, Runtime, "min(): Expected reduction dim to be specified for input.numel() == 0 (input shape ",
             shape_str(t.sizes()), "). Specify the reduction dim with the 'dim' argument.");
  return amin(t);
}
std::pair<Tensor, Tensor> max(const Tensor& t, int64_t dim, bool keepdim) {
  return arg_extreme("max_dim", "max", t, dim, keepdim);
}
std::pair<Tensor, Tensor> min(const Tensor& t, int64_t dim, bool keepdim) {
  return arg_extreme("min_dim", "min", t, dim, keepdim);
}
Tensor argmax(const Tensor& t, std::optional<int64_t> dim, bool keepdim) {
  return arg_index("max_dim", "argmax", t, dim, keepdim);
}
Tensor argmin(const Tensor& t, std::optional<int64_t> dim, bool keepdim) {
  return arg_index("min_dim", "argmin", t, dim, keepdim);
}

Tensor all(const Tensor& t, const Dims& dims, bool keepdim) {
  Dims normalized = normalize_dims(dims, t.dim(), "all");
  return dispatch1(LOOM_OP("all"), {t}, Attrs().set("dims", normalized).set("keepdim", keepdim));
}
Tensor any(const Tensor& t, const Dims& dims, bool keepdim) {
  Dims normalized = normalize_dims(dims, t.dim(), "any");
  return dispatch1(LOOM_OP("any"), {t}, Attrs().set("dims", normalized).set("keepdim", keepdim));
}

std::pair<Tensor, Tensor> var_mean(const Tensor& t, const Dims& dims, double correction, bool keepdim) {
  LOOM_CHECK(is_floating(t.dtype()), Type, "var: std and var only support floating point dtypes, got ",
             dtype_name(t.dtype()), " (shape ", shape_str(t.sizes()), ")");
  Dims normalized = normalize_dims(dims, t.dim(), "var");
  double count = reduced_count(t, normalized);
  Tensor mu = mean(t, normalized, true);
  Tensor diff = sub(t, mu);
  Tensor variance = div(sum(mul(diff, diff), normalized, keepdim), Scalar(std::max(0.0, count - correction)));
  return {variance, keepdim ? mu : reshape(mu, detail::reduced_shape(t.sizes(), normalized, false))};
}
Tensor var(const Tensor& t, const Dims& dims, double correction, bool keepdim) {
  return var_mean(t, dims, correction, keepdim).first;
}
std::pair<Tensor, Tensor> std_mean(const Tensor& t, const Dims& dims, double correction, bool keepdim) {
  auto [variance, mu] = var_mean(t, dims, correction, keepdim);
  return {sqrt(variance), mu};
}
Tensor std(const Tensor& t, const Dims& dims, double correction, bool keepdim) {
  return sqrt(var(t, dims, correction, keepdim));
}

Tensor norm(const Tensor& t, double p, const Dims& dims, bool keepdim, std::optional<DType> dtype) {
  Tensor x = dtype && *dtype != t.dtype() ? to_dtype(t, *dtype) : t;
  check_floating(x, "norm");
  Dims normalized = normalize_dims(dims, x.dim(), "norm");
  if (std::isinf(p)) {
    LOOM_CHECK(reduced_count(x, normalized) != 0, Runtime,
               "norm: the infinity norm of an empty tensor is not defined (shape ", shape_str(x.sizes()), ")");
    return p > 0 ? amax(abs(x), normalized, keepdim) : amin(abs(x), normalized, keepdim);
  }
  if (p == 0) return to_dtype(sum(ne(x, Scalar(0.0)), normalized, keepdim), x.dtype());
  if (p == 1) return sum(abs(x), normalized, keepdim);
  if (p == 2) return safe_root(sum(mul(x, x), normalized, keepdim), 0.5);
  return safe_root(sum(pow(abs(x), Scalar(p)), normalized, keepdim), 1.0 / p);
}

Tensor logsumexp(const Tensor& t, const Dims& dims, bool keepdim) {
  Tensor x = is_floating(t.dtype()) ? t : to_dtype(t, default_float_dtype());
  Dims normalized = normalize_dims(dims, x.dim(), "logsumexp");
  if (reduced_count(x, normalized) == 0) return log(sum(exp(x), normalized, keepdim));
  // Subtract the (constant) max so exp cannot overflow; infinite maxima are left alone.
  Tensor m = amax(x.detach(), normalized, true);
  m = where(isinf(m), Scalar(0.0), m);
  Tensor result = add(log(sum(exp(sub(x, m)), normalized, true)), m);
  return keepdim ? result : reshape(result, detail::reduced_shape(x.sizes(), normalized, false));
}

Tensor cumsum(const Tensor& t, int64_t dim, std::optional<DType> dtype) { return scan("cumsum", t, dim, dtype); }
Tensor cumprod(const Tensor& t, int64_t dim, std::optional<DType> dtype) { return scan("cumprod", t, dim, dtype); }

namespace {
Tensor logcumsumexp_impl(const Tensor& t, int64_t dim, bool reverse) {
  Tensor x = is_floating(t.dtype()) ? t : to_dtype(t, default_float_dtype());
  int64_t d = normalize_dim(dim, x.dim(), "logcumsumexp");
  return dispatch1(LOOM_OP("logcumsumexp"), {x},
                   Attrs().set("dim", d).set("reverse", reverse).set("op", std::string("logcumsumexp")));
}
}  // namespace

Tensor logcumsumexp(const Tensor& t, int64_t dim) { return logcumsumexp_impl(t, dim, false); }
namespace detail {
Tensor reverse_logcumsumexp(const Tensor& t, int64_t dim) { return logcumsumexp_impl(t, dim, true); }
}  // namespace detail

std::pair<Tensor, Tensor> cummax(const Tensor& t, int64_t dim) {
  std::vector<Tensor> out = dispatch(LOOM_OP("cummax"), {t}, Attrs().set("dim", normalize_dim(dim, t.dim(), "cummax")));
  return {out[0], out[1]};
}
std::pair<Tensor, Tensor> cummin(const Tensor& t, int64_t dim) {
  std::vector<Tensor> out = dispatch(LOOM_OP("cummin"), {t}, Attrs().set("dim", normalize_dim(dim, t.dim(), "cummin")));
  return {out[0], out[1]};
}

std::pair<Tensor, Tensor> aminmax(const Tensor& t, const Dims& dims, bool keepdim) {
  return {extreme("amin", t, dims, keepdim), extreme("amax", t, dims, keepdim)};
}

Tensor nansum(const Tensor& t, const Dims& dims, bool keepdim, std::optional<DType> dtype) {
  Tensor x = is_floating(t.dtype()) ? where(isnan(t), Scalar(0.0), t) : t;
  return sum(x, dims, keepdim, dtype);
}

Tensor nanmean(const Tensor& t, const Dims& dims, bool keepdim, std::optional<DType> dtype) {
  DType out = dtype.value_or(t.dtype());
  LOOM_CHECK(is_floating(out), Type, "nanmean(): expected input to have floating point dtype but got ",
             dtype_name(t.dtype()), " (shape ", shape_str(t.sizes()), ")");
  Tensor x = t.dtype() == out ? t : to_dtype(t, out);
  Tensor count = sum(logical_not(isnan(x)), dims, keepdim, out);
  return div(nansum(x, dims, keepdim), count);
}

Tensor count_nonzero(const Tensor& t, const Dims& dims) { return sum(ne(t, Scalar(int64_t(0))), dims, false, DType::Int64); }

Tensor softmax(const Tensor& t, int64_t dim, std::optional<DType> dtype) { return softmax_like("softmax", t, dim, dtype); }
Tensor log_softmax(const Tensor& t, int64_t dim, std::optional<DType> dtype) {
  return softmax_like("log_softmax", t, dim, dtype);
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
