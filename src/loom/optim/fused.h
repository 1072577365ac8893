// Fused multi-tensor optimizer updates: one op call updates every parameter of a group in place.
//
// The ops live in the registry (`_fused_sgd_`, `_fused_adam_`, `_fused_adamw_`) so other devices can register
// kernels; the CPU kernel runs one parallel_for over chunks of all tensors. They have no backward and are never
// recorded by autograd; they bump the version counter of every tensor they write (as PyTorch's in-place ops do),
// so a graph that saved a parameter before the step raises if it is used for backward afterwards.
//
// Update math follows torch.optim's foreach (multi-tensor) implementations, in the parameter's dtype, with the
// per-tensor scalars (bias corrections) computed in double as torch does.
#pragma once
#include <cstdint>
#include <vector>

#include "loom/core/tensor.h"

namespace loom {

class Registry;

namespace optim {

struct FusedSGDArgs {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool maximize = false;
};

// SGD with momentum (torch.optim.SGD):
//   g = ±grad (+ weight_decay * p);  buf = first ? g : momentum * buf + (1 - dampening) * g;
//   g = nesterov ? g + momentum * buf : buf;  p -= lr * g.
// `momentum_buffers` is empty when momentum == 0, else one buffer per param. `first_step[i]` (empty = all false)
// marks buffers that are not initialised yet: they are set to g, as torch does on the first step.
// Params, grads and buffers of index i share dtype (float32/float64), shape and device.
void fused_sgd_(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                const std::vector<Tensor>& momentum_buffers, const std::vector<bool>& first_step,
                const FusedSGDArgs& args);

struct FusedAdamArgs {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
  bool maximize = false;
};

// Adam (weight decay added to the gradient) when `decoupled` is false, AdamW (p *= 1 - lr * weight_decay)
// when true. Each `state_steps[i]` is a one-element float tensor (torch's 'step' state) incremented by one
// before its bias corrections 1 - beta^step are computed. `max_exp_avg_sqs` is used only when amsgrad.
void fused_adam_(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                 const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                 const std::vector<Tensor>& max_exp_avg_sqs, const std::vector<Tensor>& state_steps,
                 const FusedAdamArgs& args, bool decoupled);

}  // namespace optim

void define_optim_ops(Registry& r);

}  // namespace loom
