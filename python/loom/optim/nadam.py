"""NAdam (torch.optim.NAdam): Adam with Nesterov momentum and a momentum-decay schedule."""
import loom
from loom.optim._elementwise import ElementwiseOptimizer, decay_or_shrink
from loom.optim.adam import _scalar_dtype
from loom.optim.optimizer import _as_float


class NAdam(ElementwiseOptimizer):
    """State per parameter: 'step', 'mu_product' (a 0-d tensor, as torch), 'exp_avg', 'exp_avg_sq'."""

    _checks = (("lr", 0.0, "learning rate"), ("eps", 0.0, "epsilon value"), ("betas", 0.0, "beta parameter"),
               ("weight_decay", 0.0, "weight_decay value"), ("momentum_decay", 0.0, "momentum_decay value"))
    _scalar_state = ("step", "mu_product")

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable)
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _new_state(self, param, group):
        return {"mu_product": loom.ones((), dtype=_scalar_dtype()), "exp_avg": loom.zeros_like(param),
                "exp_avg_sq": loom.zeros_like(param)}

    def _update(self, param, grad, state, step, group):
        lr = _as_float(group["lr"], "lr", "NAdam")
        beta1, beta2 = group["betas"]
        grad = decay_or_shrink(grad, param, group, lr)
        momentum_decay = group["momentum_decay"]
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
        state["mu_product"] *= mu
        mu_product = state["mu_product"].item()
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.add_(grad - exp_avg, alpha=1 - beta1)
        exp_avg_sq.mul_(beta2).add_(grad * grad, alpha=1 - beta2)
        denom = exp_avg_sq.div(1 - beta2**step).sqrt().add_(group["eps"])
        param.add_(grad / denom, alpha=-lr * (1.0 - mu) / (1.0 - mu_product))
        param.add_(exp_avg / denom, alpha=-lr * mu_next / (1.0 - mu_product * mu_next))
