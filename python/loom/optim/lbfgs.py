"""L-BFGS (torch.optim.LBFGS): limited-memory BFGS over all parameters as one flat vector, with torch's defaults,
stopping rules and state. The scalar coefficients (dot products, step sizes) are Python floats."""
import loom
from loom.optim.optimizer import Optimizer, _as_float


class LBFGS(Optimizer):
    """step(closure) runs up to max_iter L-BFGS iterations; closure re-evaluates the model and returns the loss.
    One parameter group only, as in torch. line_search_fn: None (fixed step lr) only for now."""

    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
                 history_size=100, line_search_fn=None):
        lr = _as_float(lr, "lr", "LBFGS")
        if not 0.0 <= lr:
            raise ValueError(f"LBFGS: Invalid learning rate: {lr}")
        if line_search_fn not in (None, "strong_wolfe"):
            raise RuntimeError("LBFGS: only 'strong_wolfe' is supported")
        if line_search_fn is not None:
            raise NotImplementedError("LBFGS: line_search_fn='strong_wolfe' is not supported yet (use None)")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, history_size=history_size, line_search_fn=line_search_fn)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def add_param_group(self, param_group):
        if self.param_groups:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        super().add_param_group(param_group)

    def _check_loaded_state(self, param, state, index):
        """The state is flat vectors and history lists, not shaped like a parameter."""

    def _gather_flat_grad(self):
        views = [loom.zeros(p.numel(), dtype=p.dtype) if p.grad is None else p.grad.reshape(-1) for p in self._params]
        return loom.cat(views, 0)

    def _add_grad(self, step_size, update):
        offset = 0
        for p in self._params:
            numel = p.numel()
            p.add_(update[offset:offset + numel].reshape(p.shape), alpha=step_size)
            offset += numel

    def step(self, closure):
        if closure is None:
            raise RuntimeError("LBFGS: step() requires a closure that re-evaluates the model and returns the loss")
        with loom.no_grad():
            return self._step(closure)

    def _evaluate(self, closure):
        with loom.enable_grad():
            return closure()

    def _step(self, closure):
        group = self.param_groups[0]
        lr = _as_float(group["lr"], "lr", "LBFGS")
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        history_size = group["history_size"]

        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        orig_loss = self._evaluate(closure)
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._gather_flat_grad()
        if flat_grad.abs().max().item() <= tolerance_grad:
            return orig_loss

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        h_diag = state.get("H_diag")
        prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = flat_grad.neg()
                old_dirs, old_stps, ro = [], [], []
                h_diag = 1.0
            else:
                # Update the curvature history with the last step s and gradient change y (skipped unless y.s > 0).
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = loom.dot(y, s).item()
                if ys > 1e-10:
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    h_diag = ys / loom.dot(y, y).item()
                # Two-loop recursion: d = -H g.
                al = [0.0] * len(old_dirs)
                q = flat_grad.neg()
                for i in range(len(old_dirs) - 1, -1, -1):
                    al[i] = loom.dot(old_stps[i], q).item() * ro[i]
                    q.add_(old_dirs[i], alpha=-al[i])
                d = r = q * h_diag
                for i in range(len(old_dirs)):
                    be_i = loom.dot(old_dirs[i], r).item() * ro[i]
                    r.add_(old_stps[i], alpha=al[i] - be_i)
            prev_flat_grad = flat_grad.clone()
            prev_loss = loss
            t = min(1.0, 1.0 / flat_grad.abs().sum().item()) * lr if state["n_iter"] == 1 else lr
            gtd = loom.dot(flat_grad, d).item()
            if gtd > -tolerance_change:  # not a descent direction
                break
            ls_func_evals = 0
            self._add_grad(t, d)
            if n_iter != max_iter:
                loss = float(self._evaluate(closure))
                flat_grad = self._gather_flat_grad()
                opt_cond = flat_grad.abs().max().item() <= tolerance_grad
                ls_func_evals = 1
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if (d * t).abs().max().item() <= tolerance_change or abs(loss - prev_loss) < tolerance_change:
                break

        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=h_diag,
                     prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss
