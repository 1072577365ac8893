"""SGD with momentum, dampening, Nesterov momentum, weight decay and maximize (torch.optim.SGD)."""
import loom
from loom._C import _optim
from loom.optim.optimizer import Optimizer, _as_float


class SGD(Optimizer):
    """Stochastic gradient descent (like torch.optim.SGD).

    Every step is one fused multi-tensor update per param group (loom._C._optim._fused_sgd_).
    State per parameter: 'momentum_buffer' (when momentum != 0).
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *, maximize=False,
                 foreach=None, differentiable=False, fused=None):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                        maximize=maximize, foreach=foreach, differentiable=differentiable, fused=fused)
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group):
        lr = _as_float(group["lr"], "lr", "SGD")
        if lr < 0.0:
            raise ValueError(f"SGD: Invalid learning rate: {lr}")
        if group["momentum"] < 0.0:
            raise ValueError(f"SGD: Invalid momentum value: {group['momentum']}")
        if group["weight_decay"] < 0.0:
            raise ValueError(f"SGD: Invalid weight_decay value: {group['weight_decay']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        if group.get("differentiable", False):
            raise NotImplementedError("SGD: differentiable=True is not supported")

    def _update_group(self, group):
        momentum = group["momentum"]
        params, grads, buffers, first = [], [], [], []
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            params.append(p)
            grads.append(grad)
            if momentum != 0:
                buf = self.state[p].get("momentum_buffer") if p in self.state else None
                first.append(buf is None)
                buffers.append(loom.empty_like(p) if buf is None else buf)  # filled from the gradient by the op
        if not params:
            return
        _optim._fused_sgd_(params, grads, buffers, first, lr=_as_float(group["lr"], "lr", "SGD"),
                           momentum=momentum, dampening=group["dampening"], weight_decay=group["weight_decay"],
                           nesterov=group["nesterov"], maximize=group.get("maximize", False))
        if momentum != 0:  # new buffers enter the state only once the step has succeeded
            for p, buf, is_new in zip(params, buffers, first):
                if is_new:
                    self.state[p]["momentum_buffer"] = buf
