"""Adam (torch.optim.Adam): L2 weight decay (or decoupled, as AdamW), amsgrad, maximize."""
import loom
from loom._C import _optim
from loom.optim.optimizer import Optimizer, _as_float


class Adam(Optimizer):
    """Adam (like torch.optim.Adam).

    Every step is one fused multi-tensor update per param group (loom._C._optim._fused_adam_ /
    _fused_adamw_); `foreach` and `fused` are accepted for compatibility, the CPU path is always the fused
    kernel. State per parameter, as in torch: 'step' (a 0-d float tensor), 'exp_avg', 'exp_avg_sq' and, with
    amsgrad, 'max_exp_avg_sq'.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                        foreach=foreach, capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group):
        name = type(self).__name__
        lr = _as_float(group["lr"], "lr", name)
        if not 0.0 <= lr:
            raise ValueError(f"{name}: Invalid learning rate: {lr}")
        if not 0.0 <= group["eps"]:
            raise ValueError(f"{name}: Invalid epsilon value: {group['eps']}")
        betas = group["betas"]
        if len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas}")
        for i in range(2):
            beta = _as_float(betas[i], "beta", name)
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name}: Invalid beta parameter at index {i}: {beta}")
        if not 0.0 <= group["weight_decay"]:
            raise ValueError(f"{name}: Invalid weight_decay value: {group['weight_decay']}")
        if group.get("differentiable", False):
            raise NotImplementedError(f"{name}: differentiable=True is not supported")

    def _update_group(self, group):
        amsgrad = group["amsgrad"]
        params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps = [], [], [], [], [], []
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            state = self.state[p]
            if len(state) == 0:
                state["step"] = loom.zeros((), dtype=_scalar_dtype())
                state["exp_avg"] = loom.zeros_like(p)
                state["exp_avg_sq"] = loom.zeros_like(p)
                if amsgrad:
                    state["max_exp_avg_sq"] = loom.zeros_like(p)
            step = state["step"]
            if not isinstance(step, loom.Tensor):  # a plain number from an old-style state dict
                step = state["step"] = loom.tensor(float(step), dtype=_scalar_dtype())
            if amsgrad:
                if "max_exp_avg_sq" not in state:
                    state["max_exp_avg_sq"] = loom.zeros_like(p)
                max_exp_avg_sqs.append(state["max_exp_avg_sq"])
            params.append(p)
            grads.append(grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(step)
        if not params:
            return
        name = type(self).__name__
        beta1, beta2 = (_as_float(b, "beta", name) for b in group["betas"])
        update = _optim._fused_adamw_ if group.get("decoupled_weight_decay", False) else _optim._fused_adam_
        update(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr=_as_float(group["lr"], "lr", name),
               beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"], amsgrad=amsgrad,
               maximize=group.get("maximize", False))


def _scalar_dtype():
    """The dtype of the 'step' state: float64 under a float64 default dtype, else float32 (as torch)."""
    return loom.float64 if loom.get_default_dtype() == loom.float64 else loom.float32
