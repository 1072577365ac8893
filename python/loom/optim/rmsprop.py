"""RMSprop (torch.optim.RMSprop): gradients scaled by a running root mean square, optional momentum/centering."""
import loom
from loom.optim._elementwise import ElementwiseOptimizer, decay
from loom.optim.optimizer import _as_float


class RMSprop(ElementwiseOptimizer):
    """State per parameter: 'step', 'square_avg', 'momentum_buffer' (momentum > 0), 'grad_avg' (centered)."""

    _checks = (("lr", 0.0, "learning rate"), ("eps", 0.0, "epsilon value"), ("momentum", 0.0, "momentum value"),
               ("weight_decay", 0.0, "weight_decay value"), ("alpha", 0.0, "alpha value"))

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered, weight_decay=weight_decay,
                        capturable=capturable, foreach=foreach, maximize=maximize, differentiable=differentiable)
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _new_state(self, param, group):
        state = {"square_avg": loom.zeros_like(param)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = loom.zeros_like(param)
        if group["centered"]:
            state["grad_avg"] = loom.zeros_like(param)
        return state

    def _update(self, param, grad, state, step, group):
        grad = decay(grad, param, group)
        alpha, lr = group["alpha"], _as_float(group["lr"], "lr", "RMSprop")
        square_avg = state["square_avg"]
        square_avg.mul_(alpha).add_(grad * grad, alpha=1 - alpha)
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg.add_(grad - grad_avg, alpha=1 - alpha)
            avg = (square_avg - grad_avg * grad_avg).sqrt()
        else:
            avg = square_avg.sqrt()
        avg = avg.add_(group["eps"])
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf.mul_(group["momentum"]).add_(grad / avg)
            param.add_(buf, alpha=-lr)
        else:
            param.sub_(grad / avg * lr)
