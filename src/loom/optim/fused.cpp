// Definitions of the fused optimizer ops (validation, and composites for devices without their kernels: they have no
// outputs and no backward).
#include "loom/optim/fused.h"

#include <cmath>

#include "loom/autograd/grad_mode.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/registry.h"
#include "loom/ops/shape.h"

namespace loom {

namespace {

// Checks `lists` consecutive lists of `n` tensors each against the first list (the params).
void check_lists(const char* op, const std::vector<Tensor>& inputs, int64_t n, int64_t lists,
                 const char* const* list_names) {
  LOOM_CHECK(n >= 0 && static_cast<int64_t>(inputs.size()) == n * lists, Value, op, ": expected ", lists,
             " lists of ", n, " tensors (", n * lists, " inputs), got ", inputs.size());
  for (int64_t i = 0; i < n; ++i) {
    const Tensor& p = inputs[i];
    LOOM_CHECK(p.defined(), Value, op, ": ", list_names[0], "[", i, "] is undefined");
    LOOM_CHECK(p.dtype() == DType::Float32 || p.dtype() == DType::Float64, Type, op, ": ", list_names[0], "[", i,
               "] has dtype ", dtype_name(p.dtype()), "; only float32 and float64 are supported");
    for (int64_t l = 1; l < lists; ++l) {
      const Tensor& t = inputs[l * n + i];
      LOOM_CHECK(t.defined(), Value, op, ": ", list_names[l], "[", i, "] is undefined");
      LOOM_CHECK(t.dtype() == p.dtype(), Type, op, ": ", list_names[l], "[", i, "] has dtype ",
                 dtype_name(t.dtype()), " but ", list_names[0], "[", i, "] has dtype ", dtype_name(p.dtype()));
      LOOM_CHECK(t.sizes() == p.sizes(), Value, op, ": ", list_names[l], "[", i, "] has shape ",
                 shape_str(t.sizes()), " but ", list_names[0], "[", i, "] has shape ", shape_str(p.sizes()));
      LOOM_CHECK(t.device() == p.device(), Value, op, ": ", list_names[l], "[", i, "] is on ", t.device().str(),
                 " but ", list_names[0], "[", i, "] is on ", p.device().str());
    }
  }
}

std::vector<TensorMeta> infer_sgd(const std::vector<Tensor>& inputs, const Attrs& attrs) {
  static const char* const names[] = {"params", "grads", "momentum_buffers"};
  int64_t n = attrs.get<int64_t>("num_tensors");
  bool with_momentum = attrs.get<double>("momentum") != 0.0;
  check_lists("_fused_sgd_", inputs, n, with_momentum ? 3 : 2, names);
  if (with_momentum) {
    const auto& first = attrs.get<std::vector<int64_t>>("first_step");
    LOOM_CHECK(static_cast<int64_t>(first.size()) == n, Value, "_fused_sgd_: first_step has ", first.size(),
               " entries for ", n, " tensors");
  }
  return {};
}

template <bool Decoupled>
std::vector<TensorMeta> infer_adam(const std::vector<Tensor>& inputs, const Attrs& attrs) {
  const char* op = Decoupled ? "_fused_adamw_" : "_fused_adam_";
  static const char* const names[] = {"params", "grads", "exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs"};
  int64_t n = attrs.get<int64_t>("num_tensors");
  int64_t lists = attrs.get<bool>("amsgrad") ? 5 : 4;
  LOOM_CHECK(n >= 0 && static_cast<int64_t>(inputs.size()) == n * (lists + 1), Value, op, ": expected ", lists + 1,
             " lists of ", n, " tensors (", n * (lists + 1), " inputs), got ", inputs.size());
  std::vector<Tensor> tensors(inputs.begin(), inputs.begin() + n * lists);
  check_lists(op, tensors, n, lists, names);
  for (int64_t i = 0; i < n; ++i) {
    const Tensor& step = inputs[lists * n + i];
    LOOM_CHECK(step.defined() && step.numel() == 1 && is_floating(step.dtype()) &&
                   step.device().type == DeviceType::CPU,
               Value, op, ": state_steps[", i, "] must be a one-element floating CPU tensor, got ",
               step.defined() ? shape_str(step.sizes()) + " " + dtype_name(step.dtype()) : std::string("undefined"));
  }
  return {};
}

Attrs adam_attrs(int64_t n, const optim::FusedAdamArgs& a) {
  Attrs attrs;
  attrs.set("num_tensors", n)
      .set("lr", a.lr)
      .set("beta1", a.beta1)
      .set("beta2", a.beta2)
      .set("eps", a.eps)
      .set("weight_decay", a.weight_decay)
      .set("amsgrad", a.amsgrad)
      .set("maximize", a.maximize);
  return attrs;
}

// ---- composites (devices without the fused kernels): the same updates in ops, written into the inputs ----

void assign(Tensor dst, const Tensor& value) { copy_(dst, value); }

std::vector<Tensor> sgd_composite(const std::vector<Tensor>& in, const Attrs& a) {
  const int64_t n = a.get<int64_t>("num_tensors");
  const double lr = a.get<double>("lr"), momentum = a.get<double>("momentum");
  const double weight_decay = a.get<double>("weight_decay");
  const bool with_momentum = momentum != 0.0;
  const std::vector<int64_t> first = with_momentum ? a.get<std::vector<int64_t>>("first_step") : std::vector<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const Tensor& p = in[i];
    Tensor g = a.get<bool>("maximize") ? neg(in[n + i]) : in[n + i];
    // torch's foreach steps, each an add with alpha: g + wd p; buf m + (1 - dampening) g; p - lr g.
    if (weight_decay != 0.0) g = add(g, p, Scalar(weight_decay));
    if (with_momentum) {
      const Tensor& buf = in[2 * n + i];
      Tensor b = first[i] ? g : add(mul(buf, Scalar(momentum)), g, Scalar(1.0 - a.get<double>("dampening")));
      assign(buf, b);
      g = a.get<bool>("nesterov") ? add(g, b, Scalar(momentum)) : b;
    }
    assign(p, add(p, g, Scalar(-lr)));
  }
  return {};
}

template <bool Decoupled>
std::vector<Tensor> adam_composite(const std::vector<Tensor>& in, const Attrs& a) {
  const int64_t n = a.get<int64_t>("num_tensors");
  const double lr = a.get<double>("lr"), beta1 = a.get<double>("beta1"), beta2 = a.get<double>("beta2");
  const double eps = a.get<double>("eps"), weight_decay = a.get<double>("weight_decay");
  const bool amsgrad = a.get<bool>("amsgrad");
  const int64_t lists = amsgrad ? 5 : 4;
  for (int64_t i = 0; i < n; ++i) {
    const Tensor &p = in[i], &exp_avg = in[2 * n + i], &exp_avg_sq = in[3 * n + i];
    // step += 1 in the step tensor's own dtype (a CPU tensor, checked by infer), then the bias corrections in double.
    const Tensor& step_tensor = in[lists * n + i];
    assign(step_tensor, add(step_tensor, Scalar(1.0)));
    const double step = step_tensor.item().to_double();
    const double step_size = -lr / (1.0 - std::pow(beta1, step));
    const double bias_correction2 = std::sqrt(1.0 - std::pow(beta2, step));
    Tensor g = a.get<bool>("maximize") ? neg(in[n + i]) : in[n + i];
    Tensor param = p;
    if (weight_decay != 0.0 && Decoupled) param = mul(p, Scalar(1.0 - lr * weight_decay));
    if (weight_decay != 0.0 && !Decoupled) g = add(g, param, Scalar(weight_decay));
    Tensor m = add(exp_avg, sub(g, exp_avg), Scalar(1.0 - beta1));  // lerp(exp_avg, g, 1 - beta1)
    assign(exp_avg, m);
    Tensor v = add(mul(exp_avg_sq, Scalar(beta2)), mul(mul(g, g), Scalar(1.0 - beta2)));
    assign(exp_avg_sq, v);
    if (amsgrad) {
      v = maximum(in[4 * n + i], v);
      assign(in[4 * n + i], v);
    }
    Tensor denom = add(div(sqrt(v), Scalar(bias_correction2)), Scalar(eps));
    assign(p, add(param, div(mul(m, Scalar(step_size)), denom)));
  }
  return {};
}

}  // namespace

namespace optim {

void fused_sgd_(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                const std::vector<Tensor>& momentum_buffers, const std::vector<bool>& first_step,
                const FusedSGDArgs& args) {
  int64_t n = static_cast<int64_t>(params.size());
  LOOM_CHECK(grads.size() == params.size(), Value, "_fused_sgd_: got ", params.size(), " params but ", grads.size(),
             " grads");
  bool with_momentum = args.momentum != 0.0;
  LOOM_CHECK(!with_momentum || momentum_buffers.size() == params.size(), Value, "_fused_sgd_: got ", params.size(),
             " params but ", momentum_buffers.size(), " momentum buffers");
  LOOM_CHECK(first_step.empty() || first_step.size() == params.size(), Value, "_fused_sgd_: got ", params.size(),
             " params but ", first_step.size(), " first_step flags");
  std::vector<Tensor> inputs(params);
  inputs.insert(inputs.end(), grads.begin(), grads.end());
  if (with_momentum) inputs.insert(inputs.end(), momentum_buffers.begin(), momentum_buffers.end());
  std::vector<int64_t> first(n, 0);
  for (size_t i = 0; i < first_step.size(); ++i) first[i] = first_step[i] ? 1 : 0;
  Attrs attrs;
  attrs.set("num_tensors", n)
      .set("lr", args.lr)
      .set("momentum", args.momentum)
      .set("dampening", args.dampening)
      .set("weight_decay", args.weight_decay)
      .set("nesterov", args.nesterov)
      .set("maximize", args.maximize)
      .set("first_step", std::move(first));
  NoGradGuard no_grad;
  dispatch(LOOM_OP("_fused_sgd_"), std::move(inputs), std::move(attrs));
}

void fused_adam_(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                 const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                 const std::vector<Tensor>& max_exp_avg_sqs, const std::vector<Tensor>& state_steps,
                 const FusedAdamArgs& args, bool decoupled) {
  const char* op = decoupled ? "_fused_adamw_" : "_fused_adam_";
  size_t n = params.size();
  auto check_size = [&](const std::vector<Tensor>& list, const char* name) {
    LOOM_CHECK(list.size() == n, Value, op, ": got ", n, " params but ", list.size(), " ", name);
  };
  check_size(grads, "grads");
  check_size(exp_avgs, "exp_avgs");
  check_size(exp_avg_sqs, "exp_avg_sqs");
  if (args.amsgrad) check_size(max_exp_avg_sqs, "max_exp_avg_sqs");
  check_size(state_steps, "state_steps");
  std::vector<Tensor> inputs(params);
  for (const auto* list : {&grads, &exp_avgs, &exp_avg_sqs}) inputs.insert(inputs.end(), list->begin(), list->end());
  if (args.amsgrad) inputs.insert(inputs.end(), max_exp_avg_sqs.begin(), max_exp_avg_sqs.end());
  inputs.insert(inputs.end(), state_steps.begin(), state_steps.end());
  NoGradGuard no_grad;
  dispatch(decoupled ? LOOM_OP("_fused_adamw_") : LOOM_OP("_fused_adam_"), std::move(inputs),
           adam_attrs(static_cast<int64_t>(n), args));
}

}  // namespace optim

void define_optim_ops(Registry& r) {
  OpDef sgd;
  sgd.name = "_fused_sgd_";
  sgd.mutates_inputs = true;
  sgd.infer = infer_sgd;
  sgd.composite = sgd_composite;
  r.define(std::move(sgd));
  OpDef adam;
  adam.name = "_fused_adam_";
  adam.mutates_inputs = true;
  adam.infer = infer_adam<false>;
  adam.composite = adam_composite<false>;
  r.define(std::move(adam));
  OpDef adamw;
  adamw.name = "_fused_adamw_";
  adamw.mutates_inputs = true;
  adamw.infer = infer_adam<true>;
  adamw.composite = adam_composite<true>;
  r.define(std::move(adamw));
}

}  // namespace loom
