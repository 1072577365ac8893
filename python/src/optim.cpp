// Fused optimizer ops and gradient clipping, bound in loom._C._optim; loom.optim and loom.nn.utils wrap them.
#include <nanobind/stl/vector.h>

#include "convert.h"

namespace loom::python {

void bind_optim(nb::module_& m) {
  nb::module_ o = m.def_submodule("_optim", "Fused multi-tensor optimizer updates; use loom.optim.");
  o.def("_fused_sgd_", [](const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                          const std::vector<Tensor>& momentum_buffers, const std::vector<bool>& first_step, double lr,
                          double momentum, double dampening, double weight_decay, bool nesterov, bool maximize) {
    optim::fused_sgd_(params, grads, momentum_buffers, first_step,
                      optim::FusedSGDArgs{lr, momentum, dampening, weight_decay, nesterov, maximize});
  }, nb::arg("params"), nb::arg("grads"), nb::arg("momentum_buffers"), nb::arg("first_step"), nb::kw_only(),
     nb::arg("lr"), nb::arg("momentum") = 0.0, nb::arg("dampening") = 0.0, nb::arg("weight_decay") = 0.0,
     nb::arg("nesterov") = false, nb::arg("maximize") = false,
     "In-place SGD step over lists of tensors (torch.optim.SGD's math); buffers flagged in first_step are set "
     "from the gradient.");
  auto adam = [](bool decoupled) {
    return [decoupled](const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                       const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                       const std::vector<Tensor>& max_exp_avg_sqs, const std::vector<Tensor>& state_steps, double lr,
                       double beta1, double beta2, double eps, double weight_decay, bool amsgrad, bool maximize) {
      optim::fused_adam_(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps,
                         optim::FusedAdamArgs{lr, beta1, beta2, eps, weight_decay, amsgrad, maximize}, decoupled);
    };
  };
  for (bool decoupled : {false, true}) {
    o.def(decoupled ? "_fused_adamw_" : "_fused_adam_", adam(decoupled), nb::arg("params"), nb::arg("grads"),
          nb::arg("exp_avgs"), nb::arg("exp_avg_sqs"), nb::arg("max_exp_avg_sqs"), nb::arg("state_steps"),
          nb::kw_only(), nb::arg("lr"), nb::arg("beta1"), nb::arg("beta2"), nb::arg("eps"), nb::arg("weight_decay"),
          nb::arg("amsgrad"), nb::arg("maximize"),
          decoupled ? "In-place AdamW step over lists of tensors (decoupled weight decay); increments state_steps."
                    : "In-place Adam step over lists of tensors (L2 weight decay); increments state_steps.");
  }
  o.def("clip_grad_norm_", &optim::clip_grad_norm_, nb::arg("params"), nb::arg("max_norm"),
        nb::arg("norm_type") = 2.0, nb::arg("error_if_nonfinite") = false,
        "Scales the gradients of params so their total norm is at most max_norm; returns the total norm.");
  o.def("clip_grad_value_", &optim::clip_grad_value_, nb::arg("params"), nb::arg("clip_value"),
        "Clamps the gradients of params to [-clip_value, clip_value] in place.");
}

}  // namespace loom::python
