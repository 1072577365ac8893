"""Adagrad (torch.optim.Adagrad): per-element learning rates from the running sum of squared gradients."""
import loom
from loom.optim._elementwise import ElementwiseOptimizer, decay
from loom.optim.optimizer import _as_float


class Adagrad(ElementwiseOptimizer):
    """State per parameter: 'step', 'sum' (created with the optimizer, as torch does)."""

    _checks = (("lr", 0.0, "learning rate"), ("lr_decay", 0.0, "lr_decay value"),
               ("weight_decay", 0.0, "weight_decay value"),
               ("initial_accumulator_value", 0.0, "initial_accumulator_value value"), ("eps", 0.0, "epsilon value"))

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach, maximize=maximize,
                        differentiable=differentiable, fused=fused)
        self._check_group(defaults)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._state_of(p, group)

    def _new_state(self, param, group):
        return {"sum": loom.full_like(param, group["initial_accumulator_value"])}

    def _update(self, param, grad, state, step, group):
        grad = decay(grad, param, group)
        clr = _as_float(group["lr"], "lr", "Adagrad") / (1 + (step - 1) * group["lr_decay"])
        state["sum"].add_(grad * grad)
        std = state["sum"].sqrt().add_(group["eps"])
        param.sub_(grad / std * clr)
