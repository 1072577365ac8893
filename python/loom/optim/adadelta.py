"""Adadelta (torch.optim.Adadelta): steps scaled by running averages of squared gradients and squared updates."""
import loom
from loom.optim._elementwise import ElementwiseOptimizer, decay
from loom.optim.optimizer import _as_float


class Adadelta(ElementwiseOptimizer):
    """State per parameter: 'step', 'square_avg', 'acc_delta'."""

    _checks = (("lr", 0.0, "learning rate"), ("eps", 0.0, "epsilon value"),
               ("weight_decay", 0.0, "weight_decay value"))

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize=False, differentiable=False):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize, capturable=capturable,
                        foreach=foreach, differentiable=differentiable)
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group):
        if not 0.0 <= group["rho"] <= 1.0:
            raise ValueError(f"Adadelta: Invalid rho value: {group['rho']}")
        super()._check_group(group)

    def _new_state(self, param, group):
        return {"square_avg": loom.zeros_like(param), "acc_delta": loom.zeros_like(param)}

    def _update(self, param, grad, state, step, group):
        grad = decay(grad, param, group)
        rho, eps = group["rho"], group["eps"]
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg.mul_(rho).add_(grad * grad, alpha=1 - rho)
        std = square_avg.add(eps).sqrt()
        delta = acc_delta.add(eps).sqrt().div_(std).mul_(grad)
        acc_delta.mul_(rho).add_(delta * delta, alpha=1 - rho)
        param.add_(delta, alpha=-_as_float(group["lr"], "lr", "Adadelta"))
