// Elementwise op definitions: validation, dtype inference, backward formulas (in loom ops), public functions.
// CPU kernels: backends/cpu/binary.cpp and backends/cpu/unary.cpp.
#include "loom/ops/elementwise.h"

#include <cmath>
#include <numbers>

#include "loom/ops/creation.h"
#include "loom/ops/promotion.h"
#include "loom/ops/reduce.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom {

namespace {

// ---------------- inference ----------------

Shape broadcast_all(const std::vector<Tensor>& in, const char* op) {
  // Operands of one shape (the common case) need no broadcasting: skip building intermediate shapes.
  const Tensor* first = nullptr;
  bool same = true;
  for (const Tensor& t : in) {
    if (!t.defined()) continue;
    if (!first) first = &t;
    else same = same && t.sizes() == first->sizes();
  }
  if (first && same) return first->sizes();
  Shape shape;
  for (const Tensor& t : in)
    if (t.defined()) shape = broadcast_shapes(shape, t.sizes(), op);
  return shape;
}

Device first_device(const std::vector<Tensor>& in) {
  for (const Tensor& t : in)
    if (t.defined() && !(t.dim() == 0 && t.impl()->wrapped_number)) return t.device();
  return in[0].device();
}

template <const char* Name>
std::vector<TensorMeta> infer_arith(const std::vector<Tensor>& in, const Attrs&) {
  DType dtype = result_type(in);
  return {TensorMeta{broadcast_all(in, Name), dtype, first_device(in)}};
}

template <const char* Name>
std::vector<TensorMeta> infer_no_bool(const std::vector<Tensor>& in, const Attrs&) {
  DType dtype = result_type(in);
  LOOM_CHECK(dtype != DType::Bool, Type, Name, ": not supported for bool tensors (shapes ", shape_str(in[0].sizes()),
             " and ", shape_str(in[1].sizes()), "); use logical ops instead");
  return {TensorMeta{broadcast_all(in, Name), dtype, first_device(in)}};
}

constexpr char kSubName[] = "sub";
// sub: like PyTorch, refuses a bool operand even when the other promotes the result (True - x, mask - 1).
std::vector<TensorMeta> infer_sub(const std::vector<Tensor>& in, const Attrs& a) {
  for (const Tensor& t : in)
    LOOM_CHECK(!t.defined() || t.dtype() != DType::Bool, Type, "sub: subtraction with a bool operand is not "
               "supported (shapes ", shape_str(in[0].sizes()), " and ", shape_str(in[1].sizes()),
               "); use logical_not() / logical_xor() instead");
  return infer_no_bool<kSubName>(in, a);
}

template <const char* Name>
std::vector<TensorMeta> infer_float_binary(const std::vector<Tensor>& in, const Attrs&) {
  return {TensorMeta{broadcast_all(in, Name), float_result(result_type(in)), first_device(in)}};
}

template <const char* Name>
std::vector<TensorMeta> infer_predicate_binary(const std::vector<Tensor>& in, const Attrs&) {
  return {TensorMeta{broadcast_all(in, Name), DType::Bool, first_device(in)}};
}

template <const char* Name>
std::vector<TensorMeta> infer_bitwise(const std::vector<Tensor>& in, const Attrs&) {
  DType dtype = result_type(in);
  LOOM_CHECK(!is_floating(dtype), Type, Name, ": only integer and bool tensors are supported, got ",
             dtype_name(in[0].dtype()), " and ", dtype_name(in.size() > 1 ? in[1].dtype() : in[0].dtype()));
  return {TensorMeta{broadcast_all(in, Name), dtype, first_device(in)}};
}

std::vector<TensorMeta> infer_div(const std::vector<Tensor>& in, const Attrs& a) {
  const std::string& mode = a.get<std::string>("rounding_mode");
  DType dtype = result_type(in);
  if (mode.empty()) dtype = float_result(dtype);
  else LOOM_CHECK(dtype != DType::Bool, Type, "div: rounding division is not supported for bool tensors");
  return {TensorMeta{broadcast_all(in, "div"), dtype, first_device(in)}};
}

std::vector<TensorMeta> infer_pow(const std::vector<Tensor>& in, const Attrs&) {
  DType dtype = result_type(in);
  LOOM_CHECK(dtype != DType::Bool, Type, "pow: not supported for bool tensors");
  return {TensorMeta{broadcast_all(in, "pow"), dtype, first_device(in)}};
}

template <const char* Name>
std::vector<TensorMeta> infer_float_unary(const std::vector<Tensor>& in, const Attrs&) {
  return {TensorMeta{in[0].sizes(), float_result(in[0].dtype()), in[0].device()}};
}

template <const char* Name>
std::vector<TensorMeta> infer_same_numeric(const std::vector<Tensor>& in, const Attrs&) {
  LOOM_CHECK(in[0].dtype() != DType::Bool, Type, Name, ": not supported for bool tensors (shape ",
             shape_str(in[0].sizes()), ")");
  return {TensorMeta{in[0].sizes(), in[0].dtype(), in[0].device()}};
}

template <const char* Name>
std::vector<TensorMeta> infer_same(const std::vector<Tensor>& in, const Attrs&) {
  return {TensorMeta{in[0].sizes(), in[0].dtype(), in[0].device()}};
}

template <const char* Name>
std::vector<TensorMeta> infer_predicate_unary(const std::vector<Tensor>& in, const Attrs&) {
  return {TensorMeta{in[0].sizes(), DType::Bool, in[0].device()}};
}

std::vector<TensorMeta> infer_where(const std::vector<Tensor>& in, const Attrs&) {
  LOOM_CHECK(in[0].dtype() == DType::Bool, Type, "where: condition must be a bool tensor, got ", dtype_name(in[0].dtype()));
  Shape shape = broadcast_all(in, "where");
  DType dtype = result_type({in[1], in[2]});
  return {TensorMeta{shape, dtype, first_device({in[1], in[2]})}};
}

// ---------------- backward formulas ----------------

Tensor as_grad_dtype(const Tensor& t, const Tensor& g) { return t.dtype() == g.dtype() ? t : to_dtype(t, g.dtype()); }
Tensor mask_of(const Tensor& condition, const Tensor& g) { return to_dtype(condition, g.dtype()); }

std::vector<Tensor> add_backward(BackwardContext& c) {
  Tensor g = c.grad();
  Scalar alpha = c.attrs.get<Scalar>("alpha");
  return {g, alpha.to_double() == 1.0 ? g : mul(g, alpha)};
}
std::vector<Tensor> sub_backward(BackwardContext& c) {
  Tensor g = c.grad();
  return {g, mul(g, Scalar(-c.attrs.get<Scalar>("alpha").to_double()))};
}
std::vector<Tensor> mul_backward(BackwardContext& c) {
  Tensor g = c.grad();
  const Tensor &a = c.inputs[0], &b = c.inputs[1];
  return {c.needs_input_grad[0] ? mul(g, as_grad_dtype(b, g)) : Tensor(),
          c.needs_input_grad[1] ? mul(g, as_grad_dtype(a, g)) : Tensor()};
}
std::vector<Tensor> div_backward(BackwardContext& c) {
  Tensor g = c.grad();
  if (!c.attrs.get<std::string>("rounding_mode").empty())
    return {zeros(c.input_meta[0].sizes, g.dtype(), g.device()), zeros(c.input_meta[1].sizes, g.dtype(), g.device())};
  const Tensor &a = c.inputs[0], &b = c.inputs[1];
  Tensor gb;
  if (c.needs_input_grad[1]) gb = neg(div(mul(g, as_grad_dtype(a, g)), mul(b, b)));
  return {c.needs_input_grad[0] ? div(g, b) : Tensor(), gb};
}
std::vector<Tensor> remainder_backward(BackwardContext& c) {
  Tensor g = c.grad();
  Tensor gb;
  if (c.needs_input_grad[1]) gb = mul(neg(g), div(c.inputs[0], c.inputs[1], std::string("floor")));
  return {g, gb};
}
std::vector<Tensor> pow_backward(BackwardContext& c) {
  Tensor g = c.grad();
  const Tensor &a = c.inputs[0], &b = c.inputs[1];
  Tensor ga, gb;
  if (c.needs_input_grad[0]) {
    // d/da a^b = b * a^(b-1); where b == 0 the gradient is 0 even at a == 0.
    Tensor d = mul(as_grad_dtype(b, g), pow(a, sub(b, Scalar(int64_t(1)))));
    ga = mul(g, where(eq(b, Scalar(0.0)), zeros_like(d), d));
  }
  if (c.needs_input_grad[1]) {
    // d/db a^b = a^b * log(a); where a == 0 and b >= 0 the gradient is 0.
    Tensor d = mul(pow(a, b), log(a));
    gb = mul(g, where(logical_and(eq(a, Scalar(0.0)), ge(b, Scalar(0.0))), zeros_like(d), d));
  }
  return {ga, gb};
}
std::vector<Tensor> maximum_backward(BackwardContext& c) {
  Tensor g = c.grad();
  const Tensor &a = c.inputs[0], &b = c.inputs[1];
  // Ties split the gradient evenly, as PyTorch does.
  Tensor half_tie = mul(mask_of(eq(a, b), g), Scalar(0.5));
  return {mul(g, add(mask_of(gt(a, b), g), half_tie)), mul(g, add(mask_of(lt(a, b), g), half_tie))};
}
std::vector<Tensor> minimum_backward(BackwardContext& c) {
  Tensor g = c.grad();
  const Tensor &a = c.inputs[0], &b = c.inputs[1];
  Tensor half_tie = mul(mask_of(eq(a, b), g), Scalar(0.5));
  return {mul(g, add(mask_of(lt(a, b), g), half_tie)), mul(g, add(mask_of(gt(a, b), g), half_tie))};
}
std::vector<Tensor> atan2_backward(BackwardContext& c) {
  Tensor g = c.grad();
  const Tensor &a = c.inputs[0], &b = c.inputs[1];
  Tensor denom = add(mul(a, a), mul(b, b));
  return {mul(g, div(b, denom)), mul(g, div(neg(a), denom))};
}

std::vector<Tensor> zero_backward(BackwardContext& c) {
  Tensor g = c.grad();
  return {zeros(c.input_meta[0].sizes, g.dtype(), g.device())};
}
std::vector<Tensor> neg_backward(BackwardContext& c) { return {neg(c.grad())}; }
std::vector<Tensor> abs_backward(BackwardContext& c) { return {mul(c.grad(), sign(c.inputs[0]))}; }
std::vector<Tensor> exp_backward(BackwardContext& c) { return {mul(c.grad(), c.outputs[0])}; }
std::vector<Tensor> expm1_backward(BackwardContext& c) { return {mul(c.grad(), add(c.outputs[0], Scalar(int64_t(1))))}; }
std::vector<Tensor> log_backward(BackwardContext& c) { return {div(c.grad(), c.inputs[0])}; }
std::vector<Tensor> log1p_backward(BackwardContext& c) { return {div(c.grad(), add(c.inputs[0], Scalar(int64_t(1))))}; }
std::vector<Tensor> log2_backward(BackwardContext& c) {
  return {div(c.grad(), mul(c.inputs[0], Scalar(std::numbers::ln2)))};
}
std::vector<Tensor> sqrt_backward(BackwardContext& c) { return {div(c.grad(), mul(c.outputs[0], Scalar(2.0)))}; }
std::vector<Tensor> rsqrt_backward(BackwardContext& c) {
  const Tensor& y = c.outputs[0];
  return {mul(c.grad(), mul(pow(y, Scalar(int64_t(3))), Scalar(-0.5)))};
}
std::vector<Tensor> sin_backward(BackwardContext& c) { return {mul(c.grad(), cos(c.inputs[0]))}; }
std::vector<Tensor> cos_backward(BackwardContext& c) { return {mul(c.grad(), neg(sin(c.inputs[0])))}; }
std::vector<Tensor> tanh_backward(BackwardContext& c) {
  const Tensor& y = c.outputs[0];
  return {mul(c.grad(), rsub(mul(y, y), Scalar(int64_t(1))))};
}
std::vector<Tensor> sigmoid_backward(BackwardContext& c) {
  const Tensor& y = c.outputs[0];
  return {mul(c.grad(), mul(y, rsub(y, Scalar(int64_t(1)))))};
}
std::vector<Tensor> erf_backward(BackwardContext& c) {
  const Tensor& x = c.inputs[0];
  return {mul(c.grad(), mul(exp(neg(mul(x, x))), Scalar(2.0 / std::sqrt(std::numbers::pi))))};
}
std::vector<Tensor> reciprocal_backward(BackwardContext& c) {
  const Tensor& y = c.outputs[0];
  return {mul(c.grad(), neg(mul(y, y)))};
}
// relu's gradient in ops: grad where y > 0, else 0 (0 also where grad is NaN or inf, as the fused kernel).
Tensor relu_grad_ops(const Tensor& g, const Tensor& y) {
  return where(gt(y, Scalar(int64_t(0))), g, zeros({}, g.dtype(), g.device()));
}
std::vector<Tensor> relu_backward(BackwardContext& c) {
  Tensor g = c.grad();
  const Tensor& y = c.outputs[0];
  // First-order backward: one fused pass where the device has the kernel; with create_graph, differentiable ops.
  if (!grad_mode_enabled() && g.dtype() == y.dtype() && is_floating(y.dtype()) &&
      has_kernel(LOOM_OP("relu_backward"), g.device()))
    return {dispatch1(LOOM_OP("relu_backward"), {g, y})};
  return {relu_grad_ops(g, y)};
}
std::vector<Tensor> leaky_relu_backward(BackwardContext& c) {
  Tensor g = c.grad();
  double slope = c.attrs.get<double>("negative_slope");
  Tensor positive = gt(c.inputs[0], Scalar(int64_t(0)));
  return {mul(g, where(positive, ones_like(g), full_like(g, Scalar(slope))))};
}
// The exact GELU's gradient in ops: grad * (Phi(x) + x phi(x)).
Tensor gelu_grad_ops(const Tensor& g, const Tensor& x) {
  Tensor cdf = mul(add(erf(mul(x, Scalar(1.0 / std::numbers::sqrt2))), Scalar(int64_t(1))), Scalar(0.5));
  Tensor pdf = mul(exp(mul(mul(x, x), Scalar(-0.5))), Scalar(1.0 / std::sqrt(2.0 * std::numbers::pi)));
  return mul(g, add(cdf, mul(x, pdf)));
}
std::vector<Tensor> gelu_backward(BackwardContext& c) {
  const Tensor& x = c.inputs[0];
  Tensor g = c.grad();
  if (c.attrs.get<std::string>("approximate") == "tanh") {
    // y = 0.5 x (1 + tanh(u)), u = k (x + 0.044715 x^3), k = sqrt(2/pi)
    const double k = std::sqrt(2.0 / std::numbers::pi);
    Tensor x2 = mul(x, x);
    Tensor u = mul(add(x, mul(mul(x2, x), Scalar(0.044715))), Scalar(k));
    Tensor th = tanh(u);
    Tensor du = mul(add(mul(x2, Scalar(3 * 0.044715)), Scalar(int64_t(1))), Scalar(k));
    Tensor left = mul(add(th, Scalar(int64_t(1))), Scalar(0.5));
    Tensor right = mul(mul(mul(x, Scalar(0.5)), rsub(mul(th, th), Scalar(int64_t(1)))), du);
    return {mul(g, add(left, right))};
  }
  // First-order backward (the common case: grad mode is off while backward runs) is one fused pass where the
  // device has the kernel; with create_graph the formula is written in ops, so it is differentiable again.
  if (!grad_mode_enabled() && has_kernel(LOOM_OP("gelu_backward"), g.device()))
    return {dispatch1(LOOM_OP("gelu_backward"), {g, x})};
  return {gelu_grad_ops(g, x)};
}
std::vector<Tensor> silu_backward(BackwardContext& c) {
  const Tensor& x = c.inputs[0];
  Tensor s = sigmoid(x);
  return {mul(c.grad(), mul(s, add(mul(x, rsub(s, Scalar(int64_t(1)))), Scalar(int64_t(1)))))};
}
std::vector<Tensor> softplus_backward(BackwardContext& c) {
  const Tensor& x = c.inputs[0];
  double beta = c.attrs.get<double>("beta"), threshold = c.attrs.get<double>("threshold");
  Tensor bx = mul(x, Scalar(beta));
  Tensor g = c.grad();
  return {mul(g, where(gt(bx, Scalar(threshold)), ones_like(g), sigmoid(bx)))};
}
std::vector<Tensor> clamp_backward(BackwardContext& c) {
  const Tensor& x = c.inputs[0];
  Tensor g = c.grad();
  Tensor keep = ones_like(x, DType::Bool);
  if (c.attrs.has("min")) keep = logical_and(keep, ge(x, c.attrs.get<Scalar>("min")));
  if (c.attrs.has("max")) keep = logical_and(keep, le(x, c.attrs.get<Scalar>("max")));
  return {mul(g, mask_of(keep, g))};
}
std::vector<Tensor> where_backward(BackwardContext& c) {
  Tensor g = c.grad();
  const Tensor& condition = c.inputs[0];
  Tensor zero = zeros({}, g.dtype(), g.device());
  return {Tensor(), c.needs_input_grad[1] ? where(condition, g, zero) : Tensor(),
          c.needs_input_grad[2] ? where(condition, zero, g) : Tensor()};
}

// ---------------- composites of the fused ops (devices without their kernels) ----------------

// The fused backward ops' output dtype: infer_float_binary's float_result(result_type(grad, input)).
Tensor as_inferred(const Tensor& t, const std::vector<Tensor>& in) {
  DType want = float_result(result_type(in));
  return t.dtype() == want ? t : to_dtype(t, want);
}
std::vector<Tensor> relu_backward_composite(const std::vector<Tensor>& in, const Attrs&) {
  return {as_inferred(relu_grad_ops(in[0], in[1]), in)};
}
std::vector<Tensor> gelu_backward_composite(const std::vector<Tensor>& in, const Attrs&) {
  DType want = float_result(result_type(in));
  auto cast = [&](const Tensor& t) { return t.dtype() == want ? t : to_dtype(t, want); };
  return {gelu_grad_ops(cast(in[0]), cast(in[1]))};
}

// ---------------- definitions ----------------

constexpr uint64_t kNone = 0, kFirst = 1, kBoth = 3;

#define LOOM_NAME(var, text) constexpr char var[] = text
LOOM_NAME(kAdd, "add"); LOOM_NAME(kSub, "sub"); LOOM_NAME(kMul, "mul"); LOOM_NAME(kRemainder, "remainder");
LOOM_NAME(kMaximum, "maximum"); LOOM_NAME(kMinimum, "minimum"); LOOM_NAME(kAtan2, "atan2");
LOOM_NAME(kGeluBackward, "gelu_backward");
LOOM_NAME(kReluBackward, "relu_backward");
LOOM_NAME(kEq, "eq"); LOOM_NAME(kNe, "ne"); LOOM_NAME(kLt, "lt"); LOOM_NAME(kLe, "le"); LOOM_NAME(kGt, "gt");
LOOM_NAME(kGe, "ge"); LOOM_NAME(kLand, "logical_and"); LOOM_NAME(kLor, "logical_or"); LOOM_NAME(kLxor, "logical_xor");
LOOM_NAME(kBand, "bitwise_and"); LOOM_NAME(kBor, "bitwise_or"); LOOM_NAME(kBxor, "bitwise_xor");
LOOM_NAME(kBnot, "bitwise_not"); LOOM_NAME(kLnot, "logical_not");
LOOM_NAME(kNeg, "neg"); LOOM_NAME(kAbs, "abs"); LOOM_NAME(kSign, "sign"); LOOM_NAME(kFloat, "float_unary");
LOOM_NAME(kRound, "rounding"); LOOM_NAME(kRelu, "relu"); LOOM_NAME(kPred, "predicate"); LOOM_NAME(kClamp, "clamp");
#undef LOOM_NAME

}  // namespace

void define_elementwise_ops(Registry& r) {
  r.define({.name = "add", .infer = infer_arith<kAdd>, .backward = add_backward, .saved_inputs = kNone});
  r.define({.name = "sub", .infer = infer_sub, .backward = sub_backward, .saved_inputs = kNone});
  r.define({.name = "mul", .infer = infer_arith<kMul>, .backward = mul_backward, .saved_inputs = kBoth});
  r.define({.name = "div", .infer = infer_div, .backward = div_backward, .saved_inputs = kBoth});
  r.define({.name = "remainder", .infer = infer_no_bool<kRemainder>, .backward = remainder_backward});
  r.define({.name = "pow", .infer = infer_pow, .backward = pow_backward});
  r.define({.name = "maximum", .infer = infer_arith<kMaximum>, .backward = maximum_backward});
  r.define({.name = "minimum", .infer = infer_arith<kMinimum>, .backward = minimum_backward});
  r.define({.name = "atan2", .infer = infer_float_binary<kAtan2>, .backward = atan2_backward});
  // gelu_backward(grad, x) = grad * GELU'(x) (exact GELU), fused; used by gelu's backward when no graph of the
  // backward is needed, so it has no backward of its own.
  r.define({.name = "gelu_backward", .infer = infer_float_binary<kGeluBackward>, .composite = gelu_backward_composite});
  // relu_backward(grad, y) = grad where y > 0, else 0 (y = relu's output), fused like gelu_backward.
  r.define({.name = "relu_backward", .infer = infer_float_binary<kReluBackward>, .composite = relu_backward_composite});
  for (auto [name, infer] : {std::pair<const char*, InferFn>{"eq", infer_predicate_binary<kEq>}, {"ne", infer_predicate_binary<kNe>},
                             {"lt", infer_predicate_binary<kLt>}, {"le", infer_predicate_binary<kLe>},
                             {"gt", infer_predicate_binary<kGt>}, {"ge", infer_predicate_binary<kGe>},
                             {"logical_and", infer_predicate_binary<kLand>}, {"logical_or", infer_predicate_binary<kLor>},
                             {"logical_xor", infer_predicate_binary<kLxor>}})
    r.define({.name = name, .infer = infer});
  r.define({.name = "bitwise_and", .infer = infer_bitwise<kBand>});
  r.define({.name = "bitwise_or", .infer = infer_bitwise<kBor>});
  r.define({.name = "bitwise_xor", .infer = infer_bitwise<kBxor>});
  r.define({.name = "bitwise_not", .infer = infer_bitwise<kBnot>});
  r.define({.name = "logical_not", .infer = infer_predicate_unary<kLnot>});
  for (const char* name : {"isnan", "isinf", "isfinite"}) r.define({.name = name, .infer = infer_predicate_unary<kPred>});

  r.define({.name = "neg", .infer = infer_same_numeric<kNeg>, .backward = neg_backward, .saved_inputs = kNone});
  r.define({.name = "abs", .infer = infer_same_numeric<kAbs>, .backward = abs_backward, .saved_inputs = kFirst});
  r.define({.name = "sign", .infer = infer_same<kSign>, .backward = zero_backward, .saved_inputs = kNone});
  for (const char* name : {"floor", "ceil", "round", "trunc"})
    r.define({.name = name, .infer = infer_same<kRound>, .backward = zero_backward, .saved_inputs = kNone});

  struct FloatUnary { const char* name; BackwardFn backward; bool saves_output; };
  for (const FloatUnary& u : {FloatUnary{"exp", exp_backward, true}, {"expm1", expm1_backward, true},
                              {"log", log_backward, false}, {"log1p", log1p_backward, false},
                              {"log2", log2_backward, false}, {"sqrt", sqrt_backward, true},
                              {"rsqrt", rsqrt_backward, true}, {"sin", sin_backward, false},
                              {"cos", cos_backward, false}, {"tanh", tanh_backward, true},
                              {"sigmoid", sigmoid_backward, true}, {"erf", erf_backward, false},
                              {"reciprocal", reciprocal_backward, true}, {"gelu", gelu_backward, false},
                              {"silu", silu_backward, false}, {"softplus", softplus_backward, false}})
    r.define({.name = u.name, .infer = infer_float_unary<kFloat>, .backward = u.backward,
              .saved_inputs = u.saves_output ? kNone : kFirst, .saves_outputs = u.saves_output});
  r.define({.name = "relu", .infer = infer_same_numeric<kRelu>, .backward = relu_backward, .saved_inputs = kNone,
            .saves_outputs = true});
  r.define({.name = "leaky_relu", .infer = infer_float_unary<kFloat>, .backward = leaky_relu_backward});
  r.define({.name = "clamp", .infer = infer_same_numeric<kClamp>, .backward = clamp_backward});
  r.define({.name = "where", .infer = infer_where, .backward = where_backward, .saved_inputs = kFirst, .nondiff_inputs = kFirst});
}

// ---------------- public functions ----------------

namespace {

Tensor binary(const char* name, const Tensor& a, const Tensor& b, Attrs attrs = {}) {
  return dispatch1(Registry::instance().op(name), {a, b}, std::move(attrs));
}
// Python numbers stay on the host whatever the operand's device (a 0-d CPU tensor may join any device's op, and the
// device kernel reads it on the host): `x * 0.5` costs no device allocation or upload.
Tensor number(const Tensor& like, Scalar value) { return wrapped_scalar(value, Device()); }
Tensor unary(const OpDef& op, const Tensor& a, Attrs attrs = {}) { return dispatch1(op, {a}, std::move(attrs)); }

}  // namespace

Tensor add(const Tensor& a, const Tensor& b, Scalar alpha) {
  return dispatch1(LOOM_OP("add"), {a, b}, Attrs().set("alpha", alpha));
}
Tensor add(const Tensor& a, Scalar b, Scalar alpha) { return add(a, number(a, b), alpha); }
Tensor sub(const Tensor& a, const Tensor& b, Scalar alpha) {
  return dispatch1(LOOM_OP("sub"), {a, b}, Attrs().set("alpha", alpha));
}
Tensor sub(const Tensor& a, Scalar b, Scalar alpha) { return sub(a, number(a, b), alpha); }
Tensor rsub(const Tensor& a, Scalar b) { return sub(number(a, b), a); }
Tensor mul(const Tensor& a, const Tensor& b) { return dispatch1(LOOM_OP("mul"), {a, b}); }
Tensor mul(const Tensor& a, Scalar b) { return mul(a, number(a, b)); }

Tensor div(const Tensor& a, const Tensor& b, std::optional<std::string> rounding_mode) {
  std::string mode = rounding_mode.value_or("");
  LOOM_CHECK(mode.empty() || mode == "trunc" || mode == "floor", Value,
             "div: expected rounding_mode to be one of None, 'trunc', or 'floor', got '", mode, "'");
  return dispatch1(LOOM_OP("div"), {a, b}, Attrs().set("rounding_mode", mode));
}
Tensor div(const Tensor& a, Scalar b, std::optional<std::string> rounding_mode) {
  return div(a, number(a, b), std::move(rounding_mode));
}
Tensor rdiv(const Tensor& a, Scalar b) { return div(number(a, b), a); }
Tensor floor_divide(const Tensor& a, const Tensor& b) { return div(a, b, std::string("floor")); }
Tensor floor_divide(const Tensor& a, Scalar b) { return div(a, b, std::string("floor")); }
Tensor remainder(const Tensor& a, const Tensor& b) { return binary("remainder", a, b); }
Tensor remainder(const Tensor& a, Scalar b) { return remainder(a, number(a, b)); }
Tensor pow(const Tensor& a, const Tensor& b) { return binary("pow", a, b); }
Tensor pow(const Tensor& a, Scalar b) { return pow(a, number(a, b)); }
Tensor pow(Scalar a, const Tensor& b) { return pow(number(b, a), b); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary("maximum", a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary("minimum", a, b); }
Tensor atan2(const Tensor& a, const Tensor& b) { return binary("atan2", a, b); }

#define LOOM_COMPARISON(fn)                                                          \
  Tensor fn(const Tensor& a, const Tensor& b) { return dispatch1(LOOM_OP(#fn), {a, b}); } \
  Tensor fn(const Tensor& a, Scalar b) { return fn(a, number(a, b)); }
LOOM_COMPARISON(eq)
LOOM_COMPARISON(ne)
LOOM_COMPARISON(lt)
LOOM_COMPARISON(le)
LOOM_COMPARISON(gt)
LOOM_COMPARISON(ge)
#undef LOOM_COMPARISON

Tensor logical_and(const Tensor& a, const Tensor& b) { return dispatch1(LOOM_OP("logical_and"), {a, b}); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return dispatch1(LOOM_OP("logical_or"), {a, b}); }
Tensor logical_xor(const Tensor& a, const Tensor& b) { return dispatch1(LOOM_OP("logical_xor"), {a, b}); }
Tensor bitwise_and(const Tensor& a, const Tensor& b) { return dispatch1(LOOM_OP("bitwise_and"), {a, b}); }
Tensor bitwise_or(const Tensor& a, const Tensor& b) { return dispatch1(LOOM_OP("bitwise_or"), {a, b}); }
Tensor bitwise_xor(const Tensor& a, const Tensor& b) { return dispatch1(LOOM_OP("bitwise_xor"), {a, b}); }

#define LOOM_UNARY(fn) \
  Tensor fn(const Tensor& a) { return unary(LOOM_OP(#fn), a); }
LOOM_UNARY(logical_not)
LOOM_UNARY(bitwise_not)
LOOM_UNARY(isnan)
LOOM_UNARY(isinf)
LOOM_UNARY(isfinite)
LOOM_UNARY(neg)
LOOM_UNARY(abs)
LOOM_UNARY(sign)
LOOM_UNARY(exp)
LOOM_UNARY(expm1)
LOOM_UNARY(log)
LOOM_UNARY(log1p)
LOOM_UNARY(log2)
LOOM_UNARY(sqrt)
LOOM_UNARY(rsqrt)
LOOM_UNARY(sin)
LOOM_UNARY(cos)
LOOM_UNARY(tanh)
LOOM_UNARY(sigmoid)
LOOM_UNARY(erf)
LOOM_UNARY(reciprocal)
LOOM_UNARY(floor)
LOOM_UNARY(ceil)
LOOM_UNARY(round)
LOOM_UNARY(trunc)
LOOM_UNARY(relu)
LOOM_UNARY(silu)
#undef LOOM_UNARY

Tensor square(const Tensor& a) { return mul(a, a); }

Tensor leaky_relu(const Tensor& a, double negative_slope) {
  return unary(LOOM_OP("leaky_relu"), a, Attrs().set("negative_slope", negative_slope));
}
Tensor gelu(const Tensor& a, const std::string& approximate) {
  LOOM_CHECK(approximate == "none" || approximate == "tanh", Value,
             "gelu: approximate must be 'none' or 'tanh', got '", approximate, "'");
  return unary(LOOM_OP("gelu"), a, Attrs().set("approximate", approximate));
}
Tensor softplus(const Tensor& a, double beta, double threshold) {
  return unary(LOOM_OP("softplus"), a, Attrs().set("beta", beta).set("threshold", threshold));
}

Tensor clamp(const Tensor& a, std::optional<Scalar> min, std::optional<Scalar> max) {
  LOOM_CHECK(min || max, Value, "clamp: at least one of 'min' or 'max' must not be None");
  Attrs attrs;
  if (min) attrs.set("min", *min);
  if (max) attrs.set("max", *max);
  // A float bound on an integer tensor promotes, as in PyTorch.
  bool float_bound = (min && min->is_float()) || (max && max->is_float());
  Tensor input = float_bound && !is_floating(a.dtype()) ? to_dtype(a, default_float_dtype()) : a;
  return unary(LOOM_OP("clamp"), input, std::move(attrs));
}
Tensor clamp(const Tensor& a, const Tensor& min, const Tensor& max) {
  LOOM_CHECK(min.defined() || max.defined(), Value, "clamp: at least one of 'min' or 'max' must not be None");
  Tensor out = a;
  if (min.defined()) out = maximum(out, min);
  if (max.defined()) out = minimum(out, max);
  return out;
}

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  return dispatch1(LOOM_OP("where"), {condition, a, b});
}
Tensor where(const Tensor& condition, const Tensor& a, Scalar b) { return where(condition, a, number(a, b)); }
Tensor where(const Tensor& condition, Scalar a, const Tensor& b) { return where(condition, number(b, a), b); }

// In-place arithmetic: written straight into `a` when no graph is recorded and nothing aliases it
// (detail::try_inplace), else computed out of place and committed (autograd, views, dtype checks).
Tensor& add_(Tensor& a, const Tensor& b, Scalar alpha) {
  if (detail::try_inplace(a, LOOM_OP("add"), {a, b}, Attrs().set("alpha", alpha))) return a;
  return detail::commit_inplace(a, add(a, b, alpha), "add_");
}
Tensor& add_(Tensor& a, Scalar b, Scalar alpha) { return add_(a, number(a, b), alpha); }
Tensor& sub_(Tensor& a, const Tensor& b, Scalar alpha) {
  if (detail::try_inplace(a, LOOM_OP("sub"), {a, b}, Attrs().set("alpha", alpha))) return a;
  return detail::commit_inplace(a, sub(a, b, alpha), "sub_");
}
Tensor& sub_(Tensor& a, Scalar b, Scalar alpha) { return sub_(a, number(a, b), alpha); }
Tensor& mul_(Tensor& a, const Tensor& b) {
  if (detail::try_inplace(a, LOOM_OP("mul"), {a, b})) return a;
  return detail::commit_inplace(a, mul(a, b), "mul_");
}
Tensor& mul_(Tensor& a, Scalar b) { return mul_(a, number(a, b)); }
Tensor& div_(Tensor& a, const Tensor& b) {
  if (detail::try_inplace(a, LOOM_OP("div"), {a, b}, Attrs().set("rounding_mode", std::string()))) return a;
  return detail::commit_inplace(a, div(a, b), "div_");
}
Tensor& div_(Tensor& a, Scalar b) { return div_(a, number(a, b)); }

}  // namespace loom
