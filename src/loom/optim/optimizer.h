// Stateful optimizers for C++ training loops, mirroring torch.optim: Optimizer (param groups, step, zero_grad),
// SGD, Adam and AdamW. Each step is one fused multi-tensor op per param group (see loom/optim/fused.h).
//
//   loom::optim::AdamW opt(model_parameters, loom::optim::AdamWOptions{.lr = 3e-4});
//   for (...) { opt.zero_grad(); loss.backward(); opt.step(); }
#pragma once
#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

#include "loom/core/tensor.h"

namespace loom::optim {

// The base of every optimizer: a list of param groups and per-parameter state.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update of every parameter that has a gradient (parameters whose grad is undefined are skipped).
  virtual void step() = 0;
  // Clears the gradients: undefined (set_to_none, the default as in PyTorch) or filled with zeros.
  void zero_grad(bool set_to_none = true);

  virtual size_t num_param_groups() const = 0;
  virtual const std::vector<Tensor>& group_params(size_t group) const = 0;
  // The learning rate of a group; set_lr is how schedulers drive a C++ optimizer.
  virtual double lr(size_t group) const = 0;
  virtual void set_lr(size_t group, double lr) = 0;
  // Every parameter of every group, in order.
  std::vector<Tensor> parameters() const;
};

// An optimizer whose groups each carry a copy of `Options` (the defaults unless a group overrides them).
template <class Options>
class OptimizerWithOptions : public Optimizer {
 public:
  struct ParamGroup {
    std::vector<Tensor> params;
    Options options;
  };

  size_t num_param_groups() const override { return groups_.size(); }
  const std::vector<Tensor>& group_params(size_t group) const override { return groups_.at(group).params; }
  double lr(size_t group) const override { return groups_.at(group).options.lr; }
  void set_lr(size_t group, double lr) override { groups_.at(group).options.lr = lr; }

  const Options& defaults() const { return defaults_; }
  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  // Adds a group with the given options (the optimizer's defaults when omitted). Raises ValueError when a
  // parameter already belongs to a group, is not floating or is not a leaf.
  void add_param_group(std::vector<Tensor> params) { add_param_group(std::move(params), defaults_); }
  virtual void add_param_group(std::vector<Tensor> params, const Options& options) = 0;

 protected:
  explicit OptimizerWithOptions(const Options& defaults) : defaults_(defaults) {}
  Options defaults_;
  std::vector<ParamGroup> groups_;
};

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool maximize = false;
};

// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and L2 weight decay
// (torch.optim.SGD). State per parameter: the momentum buffer (created from the first gradient).
class SGD : public OptimizerWithOptions<SGDOptions> {
 public:
  explicit SGD(std::vector<Tensor> params, const SGDOptions& options = {});
  using OptimizerWithOptions<SGDOptions>::add_param_group;
  void add_param_group(std::vector<Tensor> params, const SGDOptions& options) override;
  void step() override;
  // The momentum buffer of `param`, undefined before its first step or when momentum is 0.
  Tensor momentum_buffer(const Tensor& param) const;
  // Restores a momentum buffer (resuming from a checkpoint); raises ValueError when `param` is not optimized
  // here or the buffer's shape/dtype differ from the parameter's. The optimizer keeps its own copy.
  void set_momentum_buffer(const Tensor& param, const Tensor& buffer);

 private:
  std::unordered_map<const TensorImpl*, Tensor> momentum_buffers_;
};

struct AdamOptions {
  double lr = 1e-3;
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
  bool maximize = false;
};

// AdamW's defaults differ from Adam's only in weight_decay (1e-2, as in torch.optim.AdamW).
struct AdamWOptions {
  double lr = 1e-3;
  std::pair<double, double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
  bool maximize = false;
};

// Adam's per-parameter state, the same tensors as torch's: 'step' (a 0-d float32 tensor), 'exp_avg',
// 'exp_avg_sq' and, with amsgrad, 'max_exp_avg_sq'.
struct AdamState {
  Tensor step;
  Tensor exp_avg;
  Tensor exp_avg_sq;
  Tensor max_exp_avg_sq;
};

namespace detail {
// The shared implementation of Adam (decoupled = false: weight decay added to the gradient) and AdamW
// (decoupled = true: parameters shrink by lr * weight_decay each step).
template <class Options, bool Decoupled>
class AdamBase : public OptimizerWithOptions<Options> {
 public:
  explicit AdamBase(std::vector<Tensor> params, const Options& options);
  using OptimizerWithOptions<Options>::add_param_group;
  void add_param_group(std::vector<Tensor> params, const Options& options) override;
  void step() override;
  // The state of `param`; null before its first step.
  const AdamState* state(const Tensor& param) const;
  // Restores the state of `param` (resuming from a checkpoint): `step` is a one-element tensor, the others
  // match the parameter's shape (max_exp_avg_sq may be undefined without amsgrad). The optimizer keeps copies.
  // Raises ValueError when `param` is not optimized here or a shape differs.
  void set_state(const Tensor& param, const AdamState& state);

 private:
  std::unordered_map<const TensorImpl*, AdamState> state_;
};
}  // namespace detail

// Adam (torch.optim.Adam): L2 weight decay added to the gradient, optional amsgrad and maximize.
using Adam = detail::AdamBase<AdamOptions, false>;
// AdamW (torch.optim.AdamW): decoupled weight decay, optional amsgrad and maximize.
using AdamW = detail::AdamBase<AdamWOptions, true>;

// Scales the gradients of `params` in place so that their total norm (the `norm_type`-norm of the per-tensor
// norms; inf allowed) is at most `max_norm`, as torch.nn.utils.clip_grad_norm_ does (coefficient
// max_norm / (total + 1e-6), clamped to 1). Returns the total norm before clipping as a 0-d tensor. With
// error_if_nonfinite, a NaN/inf total raises RuntimeError. Parameters without a gradient are skipped.
Tensor clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);
// Clamps every gradient of `params` in place to [-clip_value, clip_value].
void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);

}  // namespace loom::optim
