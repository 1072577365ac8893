"""A base for the optimizers whose update is elementwise per parameter (Adagrad, RMSprop, Adadelta, Adamax, NAdam,
RAdam), written with loom's in-place tensor ops, with torch's hyperparameter checks and state layout."""
import loom
from loom.optim.adam import _scalar_dtype
from loom.optim.optimizer import Optimizer, _as_float


class ElementwiseOptimizer(Optimizer):
    """Subclasses give `_new_state(param, group)` (the state besides 'step') and `_update(param, grad, state,
    step, group)`; the base handles maximize, the 'step' counter (a 0-d float tensor, as torch) and validation."""

    # (hyperparameter, lower bound, message name): torch's "Invalid ... value" checks, value < bound raises.
    _checks = ()

    def _check_group(self, group):
        name = type(self).__name__
        for key, bound, label in self._checks:
            value = group[key]
            values = value if isinstance(value, (tuple, list)) else (value,)
            for i, v in enumerate(values):
                v = _as_float(v, key, name)
                if not (bound <= v if key != "betas" else 0.0 <= v < 1.0):
                    index = f" at index {i}" if isinstance(value, (tuple, list)) else ""
                    raise ValueError(f"{name}: Invalid {label}{index}: {v}")
        for flag in ("differentiable", "capturable"):
            if group.get(flag, False):
                raise NotImplementedError(f"{name}: {flag}=True is not supported")

    # State entries that are 0-d tensors rather than shaped like the parameter.
    _scalar_state = ("step",)

    def _check_loaded_state(self, param, state, index):
        super()._check_loaded_state(param, {k: v for k, v in state.items() if k not in self._scalar_state}, index)

    def _new_state(self, param, group):
        raise NotImplementedError

    def _update(self, param, grad, state, step, group):
        raise NotImplementedError

    def _state_of(self, param, group):
        state = self.state[param]
        if not state:
            state["step"] = loom.zeros((), dtype=_scalar_dtype())
            state.update(self._new_state(param, group))
        elif not isinstance(state["step"], loom.Tensor):  # a plain number from an old-style state dict
            state["step"] = loom.tensor(float(state["step"]), dtype=_scalar_dtype())
        return state

    def _update_group(self, group):
        for param in group["params"]:
            if param.grad is None:
                continue
            grad = -param.grad if group.get("maximize", False) else param.grad
            state = self._state_of(param, group)
            state["step"] += 1
            self._update(param, grad, state, state["step"].item(), group)


def decay(grad, param, group):
    """L2 weight decay folded into the gradient (torch's coupled form)."""
    weight_decay = group["weight_decay"]
    return grad.add(param, alpha=weight_decay) if weight_decay != 0 else grad


def decay_or_shrink(grad, param, group, lr):
    """NAdam's and RAdam's two forms: with decoupled_weight_decay, shrink the parameter by lr * weight_decay (AdamW's
    form) and keep the gradient; otherwise fold the decay into the gradient."""
    if group["decoupled_weight_decay"]:
        param.mul_(1 - lr * group["weight_decay"])
        return grad
    return decay(grad, param, group)
