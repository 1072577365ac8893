"""The Optimizer base class: param groups with defaults, per-parameter state, state_dict, zero_grad."""
from collections import defaultdict
from itertools import chain

import loom


class _RequiredParameter:
    """Singleton marking a hyperparameter with no default."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


def _as_float(value, name, optimizer):
    if isinstance(value, loom.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{optimizer}: Tensor {name} must be 1-element, got shape {tuple(value.shape)}")
        return float(value.item())
    return value


class Optimizer:
    """Base class for all optimizers (like torch.optim.Optimizer).

    Args:
        params: an iterable of Tensors, or of dicts defining parameter groups (each with a 'params' key).
        defaults: a dict of default hyperparameters, used by groups that do not set them.
    """

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.state = defaultdict(dict)
        self.param_groups = []
        if isinstance(params, loom.Tensor):
            raise TypeError(
                f"{type(self).__name__}: params argument given to the optimizer should be an iterable of Tensors "
                f"or dicts, but got a Tensor of shape {tuple(params.shape)}")
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError(f"{type(self).__name__}: optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group.keys()):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    def add_param_group(self, param_group):
        """Adds a param group (a dict with 'params' and optional hyperparameters) to the optimizer."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}.add_param_group: param_group must be a dict, got {type(param_group).__name__}")
        param_group = dict(param_group)
        params = param_group["params"]
        if isinstance(params, loom.Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError(f"{name}: optimizer parameters need to be organized in ordered collections, but the "
                            "ordering of tensors in sets will change between runs. Please use a list instead.")
        else:
            param_group["params"] = list(params)
        for i, param in enumerate(param_group["params"]):
            if not isinstance(param, loom.Tensor):
                raise TypeError(f"{name}: optimizer can only optimize Tensors, but parameter {i} is a "
                                f"{type(param).__name__}")
            if not param.is_leaf:
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor (parameter {i} of shape "
                                 f"{tuple(param.shape)})")
        for key, default in self.defaults.items():
            if default is required and key not in param_group:
                raise ValueError(f"{name}: parameter group didn't specify a value of required optimization "
                                 f"parameter {key}")
            param_group.setdefault(key, default)
        self._check_group(param_group)
        seen = set()
        for group in self.param_groups:
            seen.update(id(p) for p in group["params"])
        if any(id(p) in seen for p in param_group["params"]) or \
                len({id(p) for p in param_group["params"]}) != len(param_group["params"]):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    def _check_group(self, group):
        """Validates a group's hyperparameters (subclasses raise ValueError like torch)."""

    def zero_grad(self, set_to_none=True):
        """Resets the gradients of all optimized tensors: to None (default) or to zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    grad = p.grad
                    if grad.grad_fn is not None:
                        grad = grad.detach()
                        p.grad = grad
                    with loom.no_grad():
                        grad.zero_()

    def step(self, closure=None):
        """Performs one optimization step; `closure` re-evaluates the model and returns the loss."""
        loss = None
        if closure is not None:
            with loom.enable_grad():
                loss = closure()
        with loom.no_grad():
            for group in self.param_groups:
                self._update_group(group)
        return loss

    def _update_group(self, group):
        raise NotImplementedError(f"{type(self).__name__}: step() is not implemented")

    # ---- state_dict ----

    def state_dict(self):
        """Returns the state as a dict in torch's format: {'state': {index: {...}}, 'param_groups': [...]}.

        Parameters are replaced by their index across all groups; the state tensors are the optimizer's own
        (not copies), as in PyTorch.
        """
        param_mappings = {}
        start_index = 0

        def pack_group(group):
            nonlocal start_index
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start_index):
                param_mappings.setdefault(id(p), i)
            packed["params"] = [param_mappings[id(p)] for p in group["params"]]
            start_index += len(packed["params"])
            return packed

        param_groups = [pack_group(g) for g in self.param_groups]
        packed_state = {}
        for p, s in self.state.items():
            key = param_mappings[id(p)] if isinstance(p, loom.Tensor) and id(p) in param_mappings else p
            packed_state[key] = s
        return {"state": packed_state, "param_groups": param_groups}

    def load_state_dict(self, state_dict):
        """Loads a state from state_dict() (ours or torch's structure with tensors converted to loom)."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError(f"{name}.load_state_dict: expected a dict with keys 'state' and 'param_groups'")
        groups = self.param_groups
        saved_groups = [dict(g) for g in state_dict["param_groups"]]
        if len(groups) != len(saved_groups):
            raise ValueError(f"{name}.load_state_dict: loaded state dict has a different number of parameter "
                             f"groups ({len(saved_groups)}) than the optimizer ({len(groups)})")
        for i, (g, s) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"{name}.load_state_dict: loaded state dict contains a parameter group that "
                                 f"doesn't match the size of optimizer's group (group {i}: {len(s['params'])} "
                                 f"saved parameters, {len(g['params'])} in the optimizer)")
        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))

        def cast(param, value, key=None):
            # PyTorch's policy: state follows its parameter's device (and floating dtype); "step" stays where it is.
            if isinstance(value, loom.Tensor):
                if key == "step":
                    return value.clone()
                if param.is_floating_point():
                    return value.to(param.device, param.dtype, copy=True)
                return value.to(param.device, copy=True)
            if isinstance(value, dict):
                return {k: cast(param, v, k) for k, v in value.items()}
            return value

        state = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                param = id_map[k]
                state[param] = cast(param, v)
                self._check_loaded_state(param, state[param], k)
            else:
                state[k] = v
        new_groups = []
        for group, saved in zip(groups, saved_groups):
            saved["params"] = group["params"]
            new_groups.append(saved)
        for group in new_groups:
            self._check_group(group)
        self.state = state
        self.param_groups = new_groups

    def _check_loaded_state(self, param, state, index):
        """Raises ValueError when a loaded state tensor does not fit its parameter."""
        for key, value in state.items():
            if isinstance(value, loom.Tensor) and key != "step" and tuple(value.shape) != tuple(param.shape):
                raise ValueError(f"{type(self).__name__}.load_state_dict: state '{key}' of parameter {index} has "
                                 f"shape {tuple(value.shape)} but the parameter has shape {tuple(param.shape)}")
