// Optimizer, SGD, Adam/AdamW and gradient clipping for C++ training loops; the math lives in the fused ops.
#include "loom/optim/optimizer.h"

#include <cmath>
#include <unordered_set>

#include "loom/autograd/grad_mode.h"
#include "loom/ops/creation.h"
#include "loom/ops/elementwise.h"
#include "loom/ops/index.h"
#include "loom/ops/reduce.h"
#include "loom/ops/shape.h"
#include "loom/optim/fused.h"

namespace loom::optim {

// ---- Optimizer ----

void Optimizer::zero_grad(bool set_to_none) {
  NoGradGuard no_grad;
  for (size_t g = 0; g < num_param_groups(); ++g)
    for (const Tensor& p : group_params(g)) {
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      if (set_to_none) {
        p.set_grad(Tensor());
      } else {
        zero_(grad);
      }
    }
}

std::vector<Tensor> Optimizer::parameters() const {
  std::vector<Tensor> all;
  for (size_t g = 0; g < num_param_groups(); ++g) {
    const auto& params = group_params(g);
    all.insert(all.end(), params.begin(), params.end());
  }
  return all;
}

namespace {

void check_params(const char* name, const std::vector<Tensor>& params, const Optimizer& optimizer) {
  std::unordered_set<const TensorImpl*> seen;
  for (size_t g = 0; g < optimizer.num_param_groups(); ++g)
    for (const Tensor& p : optimizer.group_params(g)) seen.insert(p.impl().get());
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    LOOM_CHECK(p.defined(), Value, name, ": parameter ", i, " is undefined");
    LOOM_CHECK(p.dtype() == DType::Float32 || p.dtype() == DType::Float64, Type, name, ": parameter ", i,
               " has dtype ", dtype_name(p.dtype()), "; only float32 and float64 parameters can be optimized");
    LOOM_CHECK(p.is_leaf(), Value, name, ": can't optimize a non-leaf Tensor (parameter ", i, ")");
    LOOM_CHECK(seen.insert(p.impl().get()).second, Value, name,
               ": some parameters appear in more than one parameter group (parameter ", i, ")");
  }
}

void check_owned(const char* name, const Optimizer& optimizer, const Tensor& param) {
  for (size_t g = 0; g < optimizer.num_param_groups(); ++g)
    for (const Tensor& p : optimizer.group_params(g))
      if (p.is_same(param)) return;
  fail(ErrorKind::Value, name, ": the tensor of shape ", shape_str(param.sizes()), " is not one of its parameters");
}

// A private copy of a state tensor restored for `param`, checked against it.
Tensor restored(const char* name, const char* what, const Tensor& value, const Tensor& param) {
  LOOM_CHECK(value.defined() && value.sizes() == param.sizes(), Value, name, ": restored ", what, " has shape ",
             value.defined() ? shape_str(value.sizes()) : std::string("undefined"), " but the parameter has shape ",
             shape_str(param.sizes()));
  return contiguous(clone(to_dtype(value, param.dtype())));
}

void check_lr(const char* name, double lr) {
  LOOM_CHECK(lr >= 0.0, Value, name, ": Invalid learning rate: ", lr);
}

void check_sgd(const SGDOptions& o) {
  check_lr("SGD", o.lr);
  LOOM_CHECK(o.momentum >= 0.0, Value, "SGD: Invalid momentum value: ", o.momentum);
  LOOM_CHECK(o.weight_decay >= 0.0, Value, "SGD: Invalid weight_decay value: ", o.weight_decay);
  LOOM_CHECK(!o.nesterov || (o.momentum > 0.0 && o.dampening == 0.0), Value,
             "SGD: Nesterov momentum requires a momentum and zero dampening");
}

template <class Options>
void check_adam(const char* name, const Options& o) {
  check_lr(name, o.lr);
  LOOM_CHECK(o.eps >= 0.0, Value, name, ": Invalid epsilon value: ", o.eps);
  LOOM_CHECK(o.betas.first >= 0.0 && o.betas.first < 1.0, Value, name, ": Invalid beta parameter at index 0: ",
             o.betas.first);
  LOOM_CHECK(o.betas.second >= 0.0 && o.betas.second < 1.0, Value, name, ": Invalid beta parameter at index 1: ",
             o.betas.second);
  LOOM_CHECK(o.weight_decay >= 0.0, Value, name, ": Invalid weight_decay value: ", o.weight_decay);
}

}  // namespace

// ---- SGD ----

SGD::SGD(std::vector<Tensor> params, const SGDOptions& options) : OptimizerWithOptions<SGDOptions>(options) {
  check_sgd(options);
  add_param_group(std::move(params), options);
}

void SGD::add_param_group(std::vector<Tensor> params, const SGDOptions& options) {
  check_sgd(options);
  check_params("SGD", params, *this);
  groups_.push_back({std::move(params), options});
}

void SGD::step() {
  NoGradGuard no_grad;
  for (ParamGroup& group : groups_) {
    const SGDOptions& o = group.options;
    std::vector<Tensor> params, grads, buffers;
    std::vector<bool> first;
    for (const Tensor& p : group.params) {
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      params.push_back(p);
      grads.push_back(grad);
      if (o.momentum != 0.0) {
        Tensor buffer = momentum_buffer(p);
        first.push_back(!buffer.defined());
        buffers.push_back(buffer.defined() ? buffer : empty_like(p));  // filled from the gradient by the op
      }
    }
    if (params.empty()) continue;
    fused_sgd_(params, grads, buffers, first,
               FusedSGDArgs{o.lr, o.momentum, o.dampening, o.weight_decay, o.nesterov, o.maximize});
    // New buffers enter the state only once the step has succeeded.
    for (size_t i = 0; i < first.size(); ++i)
      if (first[i]) momentum_buffers_[params[i].impl().get()] = buffers[i];
  }
}

Tensor SGD::momentum_buffer(const Tensor& param) const {
  auto it = momentum_buffers_.find(param.impl().get());
  return it == momentum_buffers_.end() ? Tensor() : it->second;
}

void SGD::set_momentum_buffer(const Tensor& param, const Tensor& buffer) {
  check_owned("SGD", *this, param);
  NoGradGuard no_grad;
  momentum_buffers_[param.impl().get()] = restored("SGD", "momentum_buffer", buffer, param);
}

// ---- Adam / AdamW ----

namespace detail {

template <class Options, bool Decoupled>
AdamBase<Options, Decoupled>::AdamBase(std::vector<Tensor> params, const Options& options)
    : OptimizerWithOptions<Options>(options) {
  check_adam(Decoupled ? "AdamW" : "Adam", options);
  add_param_group(std::move(params), options);
}

template <class Options, bool Decoupled>
void AdamBase<Options, Decoupled>::add_param_group(std::vector<Tensor> params, const Options& options) {
  const char* name = Decoupled ? "AdamW" : "Adam";
  check_adam(name, options);
  check_params(name, params, *this);
  this->groups_.push_back({std::move(params), options});
}

template <class Options, bool Decoupled>
void AdamBase<Options, Decoupled>::step() {
  NoGradGuard no_grad;
  for (auto& group : this->groups_) {
    const Options& o = group.options;
    std::vector<Tensor> params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps;
    for (const Tensor& p : group.params) {
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      AdamState& s = state_[p.impl().get()];
      if (!s.step.defined()) {
        s.step = zeros({}, DType::Float32);
        s.exp_avg = zeros_like(p);
        s.exp_avg_sq = zeros_like(p);
      }
      if (o.amsgrad && !s.max_exp_avg_sq.defined()) s.max_exp_avg_sq = zeros_like(p);
      params.push_back(p);
      grads.push_back(grad);
      exp_avgs.push_back(s.exp_avg);
      exp_avg_sqs.push_back(s.exp_avg_sq);
      if (o.amsgrad) max_exp_avg_sqs.push_back(s.max_exp_avg_sq);
      steps.push_back(s.step);
    }
    if (params.empty()) continue;
    fused_adam_(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps,
                FusedAdamArgs{o.lr, o.betas.first, o.betas.second, o.eps, o.weight_decay, o.amsgrad, o.maximize},
                Decoupled);
  }
}

template <class Options, bool Decoupled>
const AdamState* AdamBase<Options, Decoupled>::state(const Tensor& param) const {
  auto it = state_.find(param.impl().get());
  return it == state_.end() ? nullptr : &it->second;
}

template <class Options, bool Decoupled>
void AdamBase<Options, Decoupled>::set_state(const Tensor& param, const AdamState& state) {
  const char* name = Decoupled ? "AdamW" : "Adam";
  check_owned(name, *this, param);
  LOOM_CHECK(state.step.defined() && state.step.numel() == 1 && is_floating(state.step.dtype()), Value, name,
             ": restored step must be a one-element floating tensor");
  NoGradGuard no_grad;
  AdamState copy;
  copy.step = clone(reshape(state.step, {}));
  copy.exp_avg = restored(name, "exp_avg", state.exp_avg, param);
  copy.exp_avg_sq = restored(name, "exp_avg_sq", state.exp_avg_sq, param);
  if (state.max_exp_avg_sq.defined())
    copy.max_exp_avg_sq = restored(name, "max_exp_avg_sq", state.max_exp_avg_sq, param);
  state_[param.impl().get()] = std::move(copy);
}

template class AdamBase<AdamOptions, false>;
template class AdamBase<AdamWOptions, true>;

}  // namespace detail

// ---- gradient clipping ----

Tensor clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type, bool error_if_nonfinite) {
  NoGradGuard no_grad;
  std::vector<Tensor> grads;
  for (const Tensor& p : params)
    if (Tensor g = p.grad(); g.defined()) grads.push_back(g);
  if (grads.empty()) return zeros({}, DType::Float32);
  std::vector<Tensor> norms;
  norms.reserve(grads.size());
  for (const Tensor& g : grads) norms.push_back(norm(g, norm_type));
  Tensor total = norm(stack(norms), norm_type);
  if (error_if_nonfinite) {
    double value = total.item().to_double();
    LOOM_CHECK(std::isfinite(value), Runtime, "clip_grad_norm_: the total norm of order ", norm_type,
               " for gradients from `parameters` is non-finite, so it cannot be clipped. To disable this error and "
               "scale the gradients by the non-finite norm anyway, set `error_if_nonfinite=False`");
  }
  Tensor coef = clamp(div(full_like(total, max_norm), add(total, Scalar(1e-6))), std::nullopt, Scalar(1.0));
  for (Tensor& g : grads) mul_(g, coef);
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  NoGradGuard no_grad;
  for (const Tensor& p : params)
    if (Tensor g = p.grad(); g.defined())
      loom::detail::commit_inplace(g, clamp(g, Scalar(-clip_value), Scalar(clip_value)), "clip_grad_value_");
}

}  // namespace loom::optim
