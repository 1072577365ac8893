// Loss functions (see ops/loss.h): composites of elementwise, reduction and softmax ops. The target class is
// picked with a one-hot mask eq(target, arange(C)) instead of a gather, so every step is an existing op.
#include "loom/ops/loss.h"

#include <cmath>
#include <numbers>

#include "loom/ops/composite_hook.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/reduce.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom {

namespace {

void check_reduction(const std::string& reduction, const char* op, bool allow_batchmean = false) {
  LOOM_CHECK(reduction == "mean" || reduction == "sum" || reduction == "none" ||
                 (allow_batchmean && reduction == "batchmean"),
             Value, op, ": reduction must be one of 'none', 'mean', 'sum'", allow_batchmean ? ", 'batchmean'" : "",
             ", got '", reduction, "'");
}

Tensor reduce_loss(const Tensor& loss, const std::string& reduction) {
  if (reduction == "none") return loss;
  if (reduction == "sum") return sum(loss);
  return mean(loss);
}

void check_floating(const Tensor& t, const char* op, const char* what) {
  LOOM_CHECK(is_floating(t.dtype()), Type, op, ": expected a floating point ", what, ", got ", dtype_name(t.dtype()),
             " (shape ", shape_str(t.sizes()), ")");
}

// Shapes of input and target that broadcast; both floating.
void check_pair(const Tensor& input, const Tensor& target, const char* op) {
  check_floating(input, op, "input");
  check_floating(target, op, "target");
  broadcast_shapes(input.sizes(), target.sizes(), op);
}

void check_weight_like_input(const Tensor& weight, const Tensor& input, const char* op) {
  if (!weight.defined()) return;
  LOOM_CHECK(weight.sizes() == input.sizes(), Value, op, ": weight shape ", shape_str(weight.sizes()),
             " must match the input shape ", shape_str(input.sizes()));
}

// Elementwise loss times weight, then reduced; "mean" divides by sum(weight) when weight_normalized.
Tensor weighted_reduce(const Tensor& loss, const Tensor& weight, const std::string& reduction, bool weight_normalized) {
  if (!weight.defined()) return reduce_loss(loss, reduction);
  Tensor weighted = mul(loss, weight);
  if (reduction == "mean" && weight_normalized) return div(sum(weighted), sum(weight));
  return reduce_loss(weighted, reduction);
}

// The class dim of nll/cross-entropy inputs: 1, or 0 for an unbatched (C) input.
int64_t class_dim(const Tensor& input) { return input.dim() == 1 ? 0 : 1; }

// Validates class-index targets against input (N, C, d1...) / (C) and returns C.
int64_t check_class_target(const Tensor& input, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                           const char* op, bool check_bounds = true) {
  check_floating(input, op, "input");
  LOOM_CHECK(input.dim() >= 1, Value, op, ": input must have at least 1 dim (C) or (N, C, ...), got shape ",
             shape_str(input.sizes()));
  LOOM_CHECK(is_integral(target.dtype()), Type, op, ": expected class-index targets of an integer dtype (int64), got ",
             dtype_name(target.dtype()), " (input shape ", shape_str(input.sizes()), ", target shape ",
             shape_str(target.sizes()), ")");
  const int64_t C = input.sizes()[class_dim(input)];
  Shape expected = input.sizes();
  expected.erase(expected.begin() + class_dim(input));
  if (input.dim() >= 2 && target.dim() >= 1 && target.sizes()[0] != input.sizes()[0])
    fail(ErrorKind::Value, op, ": Expected input batch_size (", input.sizes()[0], ") to match target batch_size (",
         target.sizes()[0], ") (input shape ", shape_str(input.sizes()), ", target shape ", shape_str(target.sizes()), ")");
  LOOM_CHECK(target.sizes() == expected, Value, op, ": target shape ", shape_str(target.sizes()),
             " does not match input shape ", shape_str(input.sizes()), " (expected target shape ", shape_str(expected), ")");
  if (weight.defined()) {
    check_floating(weight, op, "weight");
    LOOM_CHECK(weight.dim() == 1 && weight.sizes()[0] == C, Value, op, ": weight must have shape (", C,
               ") for ", C, " classes, got ", shape_str(weight.sizes()));
  }
  if (check_bounds && target.numel() > 0) {
    Tensor counted = ne(target, Scalar(ignore_index));
    Tensor bad = logical_and(counted, logical_or(lt(target, Scalar(int64_t(0))), ge(target, Scalar(C))));
    if (any(bad).item().to_bool()) {
      Tensor first = argmax(to_dtype(bad, DType::Int64));
      Tensor flat = to_dtype(reshape(target, {-1}), DType::Int64);
      int64_t at = first.item().to_int();
      fail(ErrorKind::Index, op, ": Target ", select(flat, 0, at).item().to_int(), " is out of bounds for ", C,
           " classes (input shape ", shape_str(input.sizes()), ")");
    }
  }
  return C;
}

// Moves the class dim last: (N, C, d1...) -> (N, d1..., C); (C) stays.
Tensor classes_last(const Tensor& t) { return t.dim() <= 2 ? t : movedim(t, 1, -1); }

// One-hot (N, d1..., C) bool mask of the target classes; ignored targets give all-false rows.
Tensor one_hot_mask(const Tensor& target, int64_t C, int64_t ignore_index, Device device) {
  Tensor classes = arange(Scalar(int64_t(0)), Scalar(C), Scalar(int64_t(1)), DType::Int64, device);
  Tensor hit = eq(unsqueeze(target, -1), classes);
  if (ignore_index < 0 || ignore_index >= C) return hit;
  return logical_and(hit, unsqueeze(ne(target, Scalar(ignore_index)), -1));
}

// nll_loss, with errors naming `op` (cross_entropy reaches it with log-probabilities).
Tensor nll_impl(const char* op, const Tensor& input, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                const std::string& reduction) {
  check_reduction(reduction, op);
  int64_t C = check_class_target(input, target, weight, ignore_index, op);
  Tensor x = classes_last(input);
  Tensor hit = one_hot_mask(target, C, ignore_index, input.device());
  Tensor zero = zeros({}, x.dtype(), x.device());
  Tensor picked = sum(where(hit, x, zero), {-1});
  // Per-target weight: weight[target], 0 where ignored.
  Tensor w = weight.defined() ? sum(where(hit, to_dtype(weight, x.dtype()), zero), {-1}) : to_dtype(any(hit, {-1}), x.dtype());
  Tensor loss = neg(mul(picked, w));
  if (reduction == "none") return loss;
  if (reduction == "sum") return sum(loss);
  return div(sum(loss), sum(w));
}

// ---- the fused cross-entropy with class-index targets: input (N, C), target (N) int64, optional weight (C) ----
// Per counted row i (target t_i != ignore_index), with lse_i = log(sum_c exp(x_ic)), w_t = weight[t_i] (1 without
// weight), W = sum_c weight_c (C without weight) and s = label_smoothing:
//   loss_i = (1 - s) w_t (lse_i - x_it) + (s / C) sum_c w_c (lse_i - x_ic)
// "mean" divides the sum by D = sum_i w_t over counted rows. The gradient of a row is
//   g_i ((1 - s) w_t (p_ic - [c == t_i]) + (s / C) (W p_ic - w_c)),  p_ic = exp(x_ic - lse_i),
// with g_i the incoming gradient (divided by D for "mean"); ignored rows get zero.

std::vector<TensorMeta> infer_cross_entropy_loss(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor &x = in[0], &t = in[1];
  LOOM_CHECK(x.dim() == 2 && (x.dtype() == DType::Float32 || x.dtype() == DType::Float64) && t.dtype() == DType::Int64 &&
                 t.dim() == 1 && t.sizes()[0] == x.sizes()[0],
             Value, "cross_entropy_loss: expected float32/float64 input (N, C) and int64 target (N), got input ",
             shape_str(x.sizes()), " ", dtype_name(x.dtype()), " and target ", shape_str(t.sizes()), " ",
             dtype_name(t.dtype()));
  if (a.get<bool>("has_weight"))
    LOOM_CHECK(in.size() == 3 && in[2].sizes() == Shape{x.sizes()[1]} && in[2].dtype() == x.dtype(), Value,
               "cross_entropy_loss: weight must have shape (", x.sizes()[1], ") and dtype ", dtype_name(x.dtype()));
  Shape loss_shape = a.get<std::string>("reduction") == "none" ? Shape{x.sizes()[0]} : Shape{};
  return {TensorMeta{loss_shape, x.dtype(), x.device()}, TensorMeta{Shape{x.sizes()[0]}, x.dtype(), x.device()},
          TensorMeta{Shape{}, x.dtype(), x.device()}};
}

// inputs: grad (of the loss), input, target, lse, denominator, [weight] -> grad of input.
std::vector<TensorMeta> infer_cross_entropy_backward(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor &g = in[0], &x = in[1];
  LOOM_CHECK(g.dtype() == x.dtype() && in[3].dtype() == x.dtype() && in[4].dtype() == x.dtype() && x.dim() == 2,
             Value, "cross_entropy_backward: grad ", dtype_name(g.dtype()), " and lse/denominator must have the input's dtype ",
             dtype_name(x.dtype()), " (input shape ", shape_str(x.sizes()), ")");
  const bool none = a.get<std::string>("reduction") == "none";
  LOOM_CHECK(none ? g.sizes() == Shape{x.sizes()[0]} : g.dim() == 0, Value, "cross_entropy_backward: grad of shape ",
             shape_str(g.sizes()), " does not fit reduction '", a.get<std::string>("reduction"), "'");
  return {TensorMeta{x.sizes(), x.dtype(), x.device()}};
}

// The gradient of cross_entropy_loss's loss w.r.t. its input, in ops, given p = softmax(x) (see the formula
// above): cross_entropy_backward's composite (p from the saved lse) and the create_graph backward (p = softmax(x),
// differentiable). inputs: grad, input, target, denominator, weight (undefined without).
Tensor cross_entropy_grad_ops(const Tensor& g, const Tensor& x, const Tensor& target, const Tensor& denominator,
                              const Tensor& weight, const Tensor& p, const Attrs& a) {
  const int64_t C = x.sizes()[1];
  const int64_t ignore_index = a.get<int64_t>("ignore_index");
  const double s = a.get<double>("label_smoothing");
  const std::string& reduction = a.get<std::string>("reduction");
  Tensor hit = to_dtype(one_hot_mask(target, C, ignore_index, x.device()), x.dtype());
  Tensor counted = unsqueeze(to_dtype(ne(target, Scalar(ignore_index)), x.dtype()), 1);
  Tensor class_w = weight.defined() ? unsqueeze(weight, 0) : ones({1, C}, x.dtype(), x.device());
  Tensor w_t = sum(mul(hit, class_w), {1}, true);  // 0 on ignored rows
  Tensor total_w = sum(class_w, {1}, true);
  Tensor dx = mul(mul(w_t, sub(p, hit)), Scalar(1.0 - s));
  if (s > 0) dx = add(dx, mul(mul(counted, sub(mul(total_w, p), class_w)), Scalar(s / C)));
  Tensor scale = reduction == "none" ? unsqueeze(g, 1) : reduction == "sum" ? g : div(g, denominator);
  return mul(dx, scale);
}

// softmax of x from its row logsumexp lse (N).
Tensor probabilities(const Tensor& x, const Tensor& lse) { return exp(sub(x, unsqueeze(lse, 1))); }

std::vector<Tensor> cross_entropy_loss_backward(BackwardContext& c) {
  const Tensor &x = c.inputs[0], &target = c.inputs[1];
  const bool has_weight = c.attrs.get<bool>("has_weight");
  const Tensor weight = has_weight ? c.inputs[2] : Tensor();
  const Tensor &lse = c.outputs[1], &denominator = c.outputs[2];
  Tensor g = c.grad(0);
  std::vector<Tensor> grads(c.input_meta.size());
  if (!grad_mode_enabled() && g.dtype() == x.dtype()) {
    // First order: the fused op where the device has it, else the same formula from the saved lse.
    if (!has_kernel(LOOM_OP("cross_entropy_backward"), x.device())) {
      grads[0] = cross_entropy_grad_ops(g, x, target, denominator, weight, probabilities(x, lse), c.attrs);
      return grads;
    }
    std::vector<Tensor> inputs{g, x, target, lse, denominator};
    if (has_weight) inputs.push_back(weight);
    grads[0] = dispatch1(LOOM_OP("cross_entropy_backward"), inputs, c.attrs);
    return grads;
  }
  // With create_graph: the same formula in differentiable ops (through softmax of the input).
  grads[0] = cross_entropy_grad_ops(g, x, target, denominator, weight, softmax(x, 1), c.attrs);
  return grads;
}

// ---- composites of the fused cross-entropy ops (devices without their kernels): the kernels' outputs, in ops ----

// (loss, lse (N), denominator ()): out-of-range targets raise IndexError, as in the kernel.
std::vector<Tensor> cross_entropy_loss_composite(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor &x = in[0], &target = in[1];
  const Tensor weight = a.get<bool>("has_weight") ? in[2] : Tensor();
  const int64_t ignore_index = a.get<int64_t>("ignore_index");
  const double s = a.get<double>("label_smoothing");
  const std::string& reduction = a.get<std::string>("reduction");
  const int64_t C = check_class_target(x, target, weight, ignore_index, "cross_entropy");
  Tensor lse = logsumexp(x, {1});
  Tensor logp = sub(x, unsqueeze(lse, 1));
  Tensor hit = one_hot_mask(target, C, ignore_index, x.device());  // all false on ignored rows
  Tensor zero = zeros({}, x.dtype(), x.device());
  Tensor class_w = weight.defined() ? unsqueeze(weight, 0) : ones({1, C}, x.dtype(), x.device());
  Tensor w_t = sum(where(hit, class_w, zero), {1});  // weight[target], 0 where ignored
  Tensor row = mul(mul(neg(sum(where(hit, logp, zero), {1})), w_t), Scalar(1.0 - s));
  if (s > 0) {
    Tensor smooth = neg(sum(mul(logp, class_w), {1}));
    row = add(row, mul(where(ne(target, Scalar(ignore_index)), smooth, zero), Scalar(s / C)));
  }
  Tensor denominator = sum(w_t);
  Tensor loss = reduction == "none" ? row : reduction == "sum" ? sum(row) : div(sum(row), denominator);
  return {loss, lse, denominator};
}

// Inputs (grad, input, target, lse, denominator[, weight]).
std::vector<Tensor> cross_entropy_backward_composite(const std::vector<Tensor>& in, const Attrs& a) {
  const Tensor weight = a.get<bool>("has_weight") ? in[5] : Tensor();
  return {cross_entropy_grad_ops(in[0], in[1], in[2], in[4], weight, probabilities(in[1], in[3]), a)};
}

// Whether cross_entropy takes the fused op: class-index targets on an (N, C) float32/float64 input.
bool fusable_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight) {
  return input.dim() == 2 && (input.dtype() == DType::Float32 || input.dtype() == DType::Float64) &&
         is_integral(target.dtype()) && target.dtype() != DType::Bool && (!weight.defined() || weight.dim() == 1);
}

Tensor fused_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                           const std::string& reduction, double label_smoothing) {
  check_class_target(input, target, weight, ignore_index, "cross_entropy", /*check_bounds=*/false);
  std::vector<Tensor> inputs{input, target.dtype() == DType::Int64 ? target : to_dtype(target, DType::Int64)};
  if (weight.defined()) inputs.push_back(weight.dtype() == input.dtype() ? weight : to_dtype(weight, input.dtype()));
  return dispatch(LOOM_OP("cross_entropy_loss"), inputs,
                  Attrs()
                      .set("ignore_index", ignore_index)
                      .set("reduction", reduction)
                      .set("label_smoothing", label_smoothing)
                      .set("has_weight", weight.defined()))[0];
}

// log clamped at -100 as PyTorch does, so a 0 or 1 input gives a finite loss.
Tensor clamped_log(const Tensor& x) { return clamp(log(x), Scalar(-100.0), std::nullopt); }

std::vector<TensorMeta> infer_binary_cross_entropy(const std::vector<Tensor>& in, const Attrs&) {
  LOOM_CHECK(in.size() == 2 && in[0].sizes() == in[1].sizes() && in[0].dtype() == in[1].dtype(), Value,
             "binary_cross_entropy: expected input and target of the same shape and dtype");
  return {TensorMeta{in[0].sizes(), in[0].dtype(), in[0].device()}};
}

// A device-independent kernel written in loom ops (grad mode is off here): the op exists for its backward.
std::vector<Tensor> binary_cross_entropy_kernel(const KernelContext& c) {
  const Tensor &x = c.inputs[0], &t = c.inputs[1];
  return {neg(add(mul(t, clamped_log(x)), mul(rsub(t, Scalar(1.0)), clamped_log(rsub(x, Scalar(1.0))))))};
}

// PyTorch's formulas. d/dx = (x - t) / max(x (1 - x), 1e-12): the eps keeps the gradient finite where x is exactly
// 0 or 1 (differentiating through the clamped logs would give 0 * inf = NaN there). d/dt = log(1 - x) - log(x).
std::vector<Tensor> binary_cross_entropy_backward(BackwardContext& c) {
  const Tensor &x = c.inputs[0], &t = c.inputs[1];
  Tensor g = c.grad(0), dx, dt;
  if (c.needs_input_grad[0]) {
    Tensor denominator = clamp(mul(x, rsub(x, Scalar(1.0))), Scalar(1e-12), std::nullopt);
    dx = mul(g, div(sub(x, t), denominator));
  }
  if (c.needs_input_grad[1]) dt = mul(g, sub(clamped_log(rsub(x, Scalar(1.0))), clamped_log(x)));
  return {dx, dt};
}

}  // namespace

void define_loss_ops(Registry& r) {
  // binary_cross_entropy(input, target): the unreduced loss, input in [0, 1] (checked by the caller), both of one
  // shape and floating dtype. Weight and reduction are applied outside.
  r.define({.name = "binary_cross_entropy", .infer = infer_binary_cross_entropy,
            .backward = binary_cross_entropy_backward});
  r.set_kernel("binary_cross_entropy", DeviceType::Any, binary_cross_entropy_kernel);
  // cross_entropy_loss(input (N, C), target (N) int64, [weight (C)]): attrs ignore_index, reduction,
  // label_smoothing, has_weight. Outputs (loss, lse (N), mean denominator ()); only the loss carries a gradient.
  // Targets out of range (and not ignore_index) raise IndexError from the kernel.
  r.define({.name = "cross_entropy_loss", .infer = infer_cross_entropy_loss, .backward = cross_entropy_loss_backward,
            .composite = cross_entropy_loss_composite, .saves_outputs = true, .nondiff_inputs = 0b110});
  // cross_entropy_backward(grad, input, target, lse, denominator, [weight]): attrs as cross_entropy_loss; the fused
  // first-order gradient of the input.
  r.define({.name = "cross_entropy_backward", .infer = infer_cross_entropy_backward,
            .composite = cross_entropy_backward_composite});
}

Tensor nll_loss(const Tensor& input, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                const std::string& reduction) {
  LOOM_AUTOCAST_COMPOSITE("nll_loss", nll_loss, input, target, weight, ignore_index, reduction);
  return nll_impl("nll_loss", input, target, weight, ignore_index, reduction);
}

Tensor cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight, int64_t ignore_index,
                     const std::string& reduction, double label_smoothing) {
  LOOM_AUTOCAST_COMPOSITE("cross_entropy", cross_entropy, input, target, weight, ignore_index, reduction,
                          label_smoothing);
  const char* op = "cross_entropy";
  check_reduction(reduction, op);
  check_floating(input, op, "input");
  LOOM_CHECK(input.dim() >= 1, Value, op, ": input must have at least 1 dim (C) or (N, C, ...), got shape ",
             shape_str(input.sizes()));
  LOOM_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, Value, op,
             ": label_smoothing must be between 0.0 and 1.0, got ", label_smoothing);
  if (fusable_cross_entropy(input, target, weight) && has_kernel(LOOM_OP("cross_entropy_loss"), input.device()))
    return fused_cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing);
  const int64_t cdim = class_dim(input);
  const int64_t C = input.sizes()[cdim];
  Tensor logp = log_softmax(input, cdim);
  // weight (C) shaped to broadcast along the class dim of the input.
  Tensor class_weight;
  if (weight.defined()) {
    check_floating(weight, op, "weight");
    LOOM_CHECK(weight.dim() == 1 && weight.sizes()[0] == C, Value, op, ": weight must have shape (", C, ") for ", C,
               " classes, got ", shape_str(weight.sizes()));
    Shape shape(input.dim(), 1);
    shape[cdim] = C;
    class_weight = reshape(to_dtype(weight, input.dtype()), shape);
  }

  if (is_floating(target.dtype())) {
    LOOM_CHECK(target.sizes() == input.sizes(), Value, op, ": probability target shape ", shape_str(target.sizes()),
               " must match the input shape ", shape_str(input.sizes()), " (class-index targets need an integer dtype)");
    LOOM_CHECK(ignore_index == -100, Value, op, ": ignore_index is not supported for floating point (probability) targets");
    Tensor t = label_smoothing > 0 ? add(mul(target, Scalar(1.0 - label_smoothing)), Scalar(label_smoothing / C)) : target;
    Tensor terms = mul(logp, t);
    if (class_weight.defined()) terms = mul(terms, class_weight);
    if (reduction == "none") return neg(sum(terms, {cdim}));
    if (reduction == "sum") return neg(sum(terms));
    return div(neg(sum(terms)), Scalar(static_cast<double>(input.numel() / std::max<int64_t>(C, 1))));
  }

  Tensor nll = nll_impl(op, logp, target, weight, ignore_index, reduction);
  if (label_smoothing == 0.0) return nll;
  // Smoothing term: -sum_c w_c logp_c per target (0 where ignored), reduced like nll_loss.
  Tensor smooth = neg(sum(class_weight.defined() ? mul(logp, class_weight) : logp, {cdim}));
  Tensor counted = ne(target, Scalar(ignore_index));
  smooth = where(counted, smooth, zeros({}, smooth.dtype(), smooth.device()));
  Tensor smooth_reduced;
  if (reduction == "none") smooth_reduced = smooth;
  else if (reduction == "sum") smooth_reduced = sum(smooth);
  else {
    Tensor denominator;
    if (weight.defined()) {
      Tensor hit = one_hot_mask(target, C, ignore_index, input.device());
      denominator = sum(where(hit, to_dtype(weight, input.dtype()), zeros({}, input.dtype(), input.device())));
    } else {
      denominator = sum(counted, {}, false, input.dtype());
    }
    smooth_reduced = div(sum(smooth), denominator);
  }
  return add(mul(nll, Scalar(1.0 - label_smoothing)), mul(smooth_reduced, Scalar(label_smoothing / C)));
}

Tensor mse_loss(const Tensor& input, const Tensor& target, const std::string& reduction, const Tensor& weight) {
  LOOM_AUTOCAST_COMPOSITE("mse_loss", mse_loss, input, target, reduction, weight);
  check_reduction(reduction, "mse_loss");
  check_pair(input, target, "mse_loss");
  check_weight_like_input(weight, input, "mse_loss");
  Tensor diff = sub(input, target);
  return weighted_reduce(mul(diff, diff), weight, reduction, true);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, const std::string& reduction, const Tensor& weight) {
  LOOM_AUTOCAST_COMPOSITE("l1_loss", l1_loss, input, target, reduction, weight);
  check_reduction(reduction, "l1_loss");
  check_pair(input, target, "l1_loss");
  check_weight_like_input(weight, input, "l1_loss");
  return weighted_reduce(abs(sub(input, target)), weight, reduction, true);
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const std::string& reduction, double beta) {
  LOOM_AUTOCAST_COMPOSITE("smooth_l1_loss", smooth_l1_loss, input, target, reduction, beta);
  check_reduction(reduction, "smooth_l1_loss");
  check_pair(input, target, "smooth_l1_loss");
  LOOM_CHECK(beta >= 0, Value, "smooth_l1_loss: beta must be non-negative, got ", beta);
  if (beta == 0.0) return l1_loss(input, target, reduction);
  Tensor diff = sub(input, target);
  Tensor z = abs(diff);
  Tensor loss = where(lt(z, Scalar(beta)), mul(mul(diff, diff), Scalar(0.5 / beta)), sub(z, Scalar(0.5 * beta)));
  return reduce_loss(loss, reduction);
}

Tensor huber_loss(const Tensor& input, const Tensor& target, const std::string& reduction, double delta,
                  const Tensor& weight) {
  LOOM_AUTOCAST_COMPOSITE("huber_loss", huber_loss, input, target, reduction, delta, weight);
  check_reduction(reduction, "huber_loss");
  check_pair(input, target, "huber_loss");
  check_weight_like_input(weight, input, "huber_loss");
  LOOM_CHECK(delta > 0, Value, "huber_loss: delta must be positive, got ", delta);
  Tensor diff = sub(input, target);
  Tensor z = abs(diff);
  Tensor loss = where(lt(z, Scalar(delta)), mul(mul(diff, diff), Scalar(0.5)), mul(sub(z, Scalar(0.5 * delta)), Scalar(delta)));
  return weighted_reduce(loss, weight, reduction, false);
}

Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight,
                            const std::string& reduction) {
  LOOM_AUTOCAST_COMPOSITE("binary_cross_entropy", binary_cross_entropy, input, target, weight, reduction);
  const char* op = "binary_cross_entropy";
  check_reduction(reduction, op);
  check_floating(input, op, "input");
  check_floating(target, op, "target");
  LOOM_CHECK(target.sizes() == input.sizes(), Value, op, ": target shape ", shape_str(target.sizes()),
             " must match the input shape ", shape_str(input.sizes()));
  if (input.numel() > 0)
    LOOM_CHECK(all(logical_and(ge(input, Scalar(0.0)), le(input, Scalar(1.0)))).item().to_bool(), Runtime, op,
               ": all elements of input should be between 0 and 1");
  if (weight.defined()) broadcast_shapes(weight.sizes(), input.sizes(), op);
  // 16-bit inputs are computed in float32: the backward's 1e-12 clamp underflows in float16.
  DType dtype = promote_types(input.dtype(), target.dtype());
  DType compute = dtype == DType::Float16 || dtype == DType::BFloat16 ? DType::Float32 : dtype;
  auto as = [](const Tensor& x, DType d) { return x.dtype() == d ? x : to_dtype(x, d); };
  Tensor loss = as(dispatch1(LOOM_OP("binary_cross_entropy"), {as(input, compute), as(target, compute)}), dtype);
  if (weight.defined()) loss = mul(loss, weight);
  return reduce_loss(loss, reduction);
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const Tensor& weight,
                                        const std::string& reduction, const Tensor& pos_weight) {
  LOOM_AUTOCAST_COMPOSITE("binary_cross_entropy_with_logits", binary_cross_entropy_with_logits, input, target,
                          weight, reduction, pos_weight);
  const char* op = "binary_cross_entropy_with_logits";
  check_reduction(reduction, op);
  check_floating(input, op, "input");
  check_floating(target, op, "target");
  LOOM_CHECK(target.sizes() == input.sizes(), Value, op, ": Target size ", shape_str(target.sizes()),
             " must be the same as input size ", shape_str(input.sizes()));
  if (weight.defined()) broadcast_shapes(weight.sizes(), input.sizes(), op);
  if (pos_weight.defined()) broadcast_shapes(pos_weight.sizes(), input.sizes(), op);
  // softplus(-x) = log(1 + exp(-x)) without overflow; its gradient is -sigmoid(-x) everywhere.
  Tensor log_sigmoid_neg = softplus(neg(input));
  Tensor scale = pos_weight.defined() ? add(mul(sub(pos_weight, Scalar(1.0)), target), Scalar(1.0)) : Tensor();
  Tensor loss = add(mul(rsub(target, Scalar(1.0)), input), scale.defined() ? mul(scale, log_sigmoid_neg) : log_sigmoid_neg);
  if (weight.defined()) loss = mul(loss, weight);
  return reduce_loss(loss, reduction);
}

Tensor kl_div(const Tensor& input, const Tensor& target, const std::string& reduction, bool log_target) {
  LOOM_AUTOCAST_COMPOSITE("kl_div", kl_div, input, target, reduction, log_target);
  const char* op = "kl_div";
  check_reduction(reduction, op, true);
  check_pair(input, target, op);
  Tensor loss;
  if (log_target) {
    loss = mul(exp(target), sub(target, input));
  } else {
    // xlogy(t, t) - t * input, with 0 log 0 = 0.
    Tensor safe = where(eq(target, Scalar(0.0)), Scalar(1.0), target);
    loss = sub(mul(target, log(safe)), mul(target, input));
  }
  if (reduction == "batchmean") {
    Tensor total = sum(loss);
    return input.dim() == 0 ? total : div(total, Scalar(static_cast<double>(input.sizes()[0])));
  }
  return reduce_loss(loss, reduction);
}

Tensor poisson_nll_loss(const Tensor& input, const Tensor& target, bool log_input, bool full, double eps,
                        const std::string& reduction) {
  LOOM_AUTOCAST_COMPOSITE("poisson_nll_loss", poisson_nll_loss, input, target, log_input, full, eps, reduction);
  const char* op = "poisson_nll_loss";
  check_reduction(reduction, op);
  check_pair(input, target, op);
  Tensor loss = log_input ? sub(exp(input), mul(target, input)) : sub(input, mul(target, log(add(input, Scalar(eps)))));
  if (full) {
    // Stirling's approximation of log(target!), counted where target > 1.
    Tensor safe = where(gt(target, Scalar(1.0)), target, Scalar(1.0));
    Tensor stirling = add(sub(mul(safe, log(safe)), safe), mul(log(mul(safe, Scalar(2 * std::numbers::pi))), Scalar(0.5)));
    loss = add(loss, where(gt(target, Scalar(1.0)), stirling, Scalar(0.0)));
  }
  return reduce_loss(loss, reduction);
}

Tensor gaussian_nll_loss(const Tensor& input, const Tensor& target, const Tensor& var, bool full, double eps,
                         const std::string& reduction) {
  const char* op = "gaussian_nll_loss";
  check_reduction(reduction, op);
  check_pair(input, target, op);
  check_floating(var, op, "var");
  Tensor v = var;
  if (var.sizes() != input.sizes()) {
    Shape leading(input.sizes().begin(), input.sizes().end() - (input.dim() > 0 ? 1 : 0));
    int64_t mismatched = 0;
    if (input.dim() > 0 && var.sizes() == leading) {
      v = unsqueeze(var, -1);
    } else {
      if (var.dim() == input.dim())
        for (int64_t d = 0; d < input.dim(); ++d)
          // PyTorch sums in Python ints: a sum past int64 is simply not 1.
          if (var.sizes()[d] != input.sizes()[d] && __builtin_add_overflow(mismatched, var.sizes()[d], &mismatched))
            mismatched = 2;
      LOOM_CHECK(var.dim() == input.dim() && mismatched == 1, Value, op, ": var is of incorrect size: var shape ",
                 shape_str(var.sizes()), " for input shape ", shape_str(input.sizes()));
    }
  }
  LOOM_CHECK(!any(lt(v, Scalar(0.0))).item().to_bool(), Value, op, ": var has negative entry/entries");
  // Clamped at eps for stability; the clamp itself passes the gradient through unchanged (as torch's no_grad clamp).
  Tensor clamped = add(v, sub(clamp(v.detach(), Scalar(eps), std::nullopt), v.detach()));
  Tensor diff = sub(input, target);
  Tensor loss = mul(add(log(clamped), div(mul(diff, diff), clamped)), Scalar(0.5));
  if (full) loss = add(loss, Scalar(0.5 * std::log(2 * std::numbers::pi)));
  return reduce_loss(loss, reduction);
}

Tensor margin_ranking_loss(const Tensor& input1, const Tensor& input2, const Tensor& target, double margin,
                           const std::string& reduction) {
  LOOM_AUTOCAST_COMPOSITE("margin_ranking_loss", margin_ranking_loss, input1, input2, target, margin, reduction);
  const char* op = "margin_ranking_loss";
  check_reduction(reduction, op);
  check_pair(input1, input2, op);
  broadcast_shapes(broadcast_shapes(input1.sizes(), input2.sizes(), op), target.sizes(), op);
  Tensor loss = relu(add(mul(neg(target), sub(input1, input2)), Scalar(margin)));
  return reduce_loss(loss, reduction);
}

Tensor hinge_embedding_loss(const Tensor& input, const Tensor& target, double margin, const std::string& reduction) {
  LOOM_AUTOCAST_COMPOSITE("hinge_embedding_loss", hinge_embedding_loss, input, target, margin, reduction);
  const char* op = "hinge_embedding_loss";
  check_reduction(reduction, op);
  check_floating(input, op, "input");
  broadcast_shapes(input.sizes(), target.sizes(), op);
  Tensor zero = zeros({}, input.dtype(), input.device());
  Tensor margin_part = where(ne(target, Scalar(1.0)), relu(rsub(input, Scalar(margin))), zero);
  Tensor self_part = where(ne(target, Scalar(-1.0)), input, zero);
  return reduce_loss(add(margin_part, self_part), reduction);
}

Tensor soft_margin_loss(const Tensor& input, const Tensor& target, const std::string& reduction) {
  LOOM_AUTOCAST_COMPOSITE("soft_margin_loss", soft_margin_loss, input, target, reduction);
  const char* op = "soft_margin_loss";
  check_reduction(reduction, op);
  check_pair(input, target, op);
  return reduce_loss(softplus(neg(mul(target, input))), reduction);
}

Tensor multilabel_soft_margin_loss(const Tensor& input, const Tensor& target, const Tensor& weight,
                                   const std::string& reduction) {
  const char* op = "multilabel_soft_margin_loss";
  check_reduction(reduction, op);
  check_pair(input, target, op);
  LOOM_CHECK(input.dim() >= 1 && target.sizes() == input.sizes(), Value, op, ": target shape ",
             shape_str(target.sizes()), " must match the input shape ", shape_str(input.sizes()), " (N, C)");
  // -log sigmoid(x) = softplus(-x); -log sigmoid(-x) = softplus(x).
  Tensor loss = add(mul(target, softplus(neg(input))), mul(rsub(target, Scalar(1.0)), softplus(input)));
  if (weight.defined()) loss = mul(loss, weight);
  int64_t class_dim = input.dim() - 1;
  loss = div(sum(loss, {class_dim}), Scalar(static_cast<double>(input.sizes()[class_dim])));
  return reduce_loss(loss, reduction);
}

Tensor cosine_embedding_loss(const Tensor& input1, const Tensor& input2, const Tensor& target, double margin,
                             const std::string& reduction) {
  LOOM_AUTOCAST_COMPOSITE("cosine_embedding_loss", cosine_embedding_loss, input1, input2, target, margin, reduction);
  const char* op = "cosine_embedding_loss";
  check_reduction(reduction, op);
  check_pair(input1, input2, op);
  LOOM_CHECK(input1.dim() >= 1 && input1.dim() <= 2 && input1.sizes() == input2.sizes(), Value, op,
             ": expected 1-D or 2-D inputs of the same shape, got ", shape_str(input1.sizes()), " and ",
             shape_str(input2.sizes()));
  Shape expected(input1.sizes().begin(), input1.sizes().end() - 1);
  LOOM_CHECK(target.sizes() == expected, Value, op, ": target shape ", shape_str(target.sizes()), " must be ",
             shape_str(expected), " for inputs of shape ", shape_str(input1.sizes()));
  const double epsilon = 1e-12;
  int64_t d = input1.dim() - 1;
  Tensor dot = sum(mul(input1, input2), {d});
  Tensor norms = mul(add(sum(mul(input1, input1), {d}), Scalar(epsilon)), add(sum(mul(input2, input2), {d}), Scalar(epsilon)));
  Tensor cosine = div(dot, sqrt(norms));
  Tensor zero = zeros({}, cosine.dtype(), cosine.device());
  Tensor positive = where(eq(target, Scalar(1.0)), rsub(cosine, Scalar(1.0)), zero);
  Tensor negative = where(eq(target, Scalar(-1.0)), relu(sub(cosine, Scalar(margin))), zero);
  return reduce_loss(add(positive, negative), reduction);
}

Tensor triplet_margin_loss(const Tensor& anchor, const Tensor& positive, const Tensor& negative, double margin,
                           double p, double eps, bool swap, const std::string& reduction) {
  LOOM_AUTOCAST_COMPOSITE("triplet_margin_loss", triplet_margin_loss, anchor, positive, negative, margin, p, eps,
                          swap, reduction);
  const char* op = "triplet_margin_loss";
  check_reduction(reduction, op);
  for (const Tensor* t : {&anchor, &positive, &negative}) check_floating(*t, op, "input");
  LOOM_CHECK(anchor.dim() == positive.dim() && anchor.dim() == negative.dim() && anchor.dim() >= 1 && anchor.dim() <= 2,
             Value, op, ": expected anchor, positive and negative of 1 or 2 dims with equal dims, got ",
             shape_str(anchor.sizes()), ", ", shape_str(positive.sizes()), " and ", shape_str(negative.sizes()));
  auto distance = [&](const Tensor& a, const Tensor& b) { return norm(add(sub(a, b), Scalar(eps)), p, {-1}); };
  Tensor d_ap = distance(anchor, positive), d_an = distance(anchor, negative);
  if (swap) d_an = minimum(d_an, distance(positive, negative));
  return reduce_loss(relu(add(sub(d_ap, d_an), Scalar(margin))), reduction);
}

}  // namespace loom
