"""RAdam (torch.optim.RAdam): Adam with the variance of the adaptive learning rate rectified in early steps."""
import math

import loom
from loom.optim._elementwise import ElementwiseOptimizer, decay_or_shrink
from loom.optim.optimizer import _as_float


class RAdam(ElementwiseOptimizer):
    """State per parameter: 'step', 'exp_avg', 'exp_avg_sq'."""

    _checks = (("lr", 0.0, "learning rate"), ("eps", 0.0, "epsilon value"), ("betas", 0.0, "beta parameter"),
               ("weight_decay", 0.0, "weight_decay value"))

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False,
                 *, foreach=None, maximize=False, capturable=False, differentiable=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, decoupled_weight_decay=decoupled_weight_decay,
                        differentiable=differentiable)
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _new_state(self, param, group):
        return {"exp_avg": loom.zeros_like(param), "exp_avg_sq": loom.zeros_like(param)}

    def _update(self, param, grad, state, step, group):
        lr = _as_float(group["lr"], "lr", "RAdam")
        beta1, beta2 = group["betas"]
        grad = decay_or_shrink(grad, param, group, lr)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.add_(grad - exp_avg, alpha=1 - beta1)
        exp_avg_sq.mul_(beta2).add_(grad * grad, alpha=1 - beta2)
        bias_correction2 = 1 - beta2**step
        corrected = exp_avg / (1 - beta1**step)
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
        if rho_t > 5.0:  # the variance is tractable: rectified adaptive step
            rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            adaptive_lr = math.sqrt(bias_correction2) / exp_avg_sq.sqrt().add_(group["eps"])
            param.sub_(corrected * lr * adaptive_lr * rect)
        else:
            param.sub_(corrected * lr)
