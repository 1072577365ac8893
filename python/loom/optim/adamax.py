"""Adamax (torch.optim.Adamax): Adam with the infinity norm of past gradients in place of the second moment."""
import loom
from loom.optim._elementwise import ElementwiseOptimizer, decay
from loom.optim.optimizer import _as_float


class Adamax(ElementwiseOptimizer):
    """State per parameter: 'step', 'exp_avg', 'exp_inf'."""

    _checks = (("lr", 0.0, "learning rate"), ("eps", 0.0, "epsilon value"), ("betas", 0.0, "beta parameter"),
               ("weight_decay", 0.0, "weight_decay value"))

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, capturable=capturable)
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _new_state(self, param, group):
        return {"exp_avg": loom.zeros_like(param), "exp_inf": loom.zeros_like(param)}

    def _update(self, param, grad, state, step, group):
        grad = decay(grad, param, group)
        beta1, beta2 = group["betas"]
        exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
        exp_avg.add_(grad - exp_avg, alpha=1 - beta1)
        exp_inf.copy_(loom.maximum(exp_inf.mul_(beta2), grad.abs().add_(group["eps"])))
        clr = _as_float(group["lr"], "lr", "Adamax") / (1 - beta1**step)
        param.sub_(exp_avg / exp_inf * clr)
