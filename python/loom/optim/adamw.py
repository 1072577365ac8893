"""AdamW (torch.optim.AdamW): Adam with decoupled weight decay."""
from loom.optim.adam import Adam


class AdamW(Adam):
    """AdamW (like torch.optim.AdamW): parameters shrink by lr * weight_decay each step, apart from the
    gradient. Same state and options as Adam; weight_decay defaults to 1e-2."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         foreach=foreach, maximize=maximize, capturable=capturable, differentiable=differentiable,
                         fused=fused, decoupled_weight_decay=True)
