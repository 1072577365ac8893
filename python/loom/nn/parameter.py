"""nn.Parameter and nn.Buffer: tensors that a Module registers as learnable weights or as state."""
from loom import _C

__all__ = ["Parameter", "Buffer"]


class Parameter(_C.Tensor):
    """A tensor that is a module parameter: assigning it to a Module attribute registers it.

    ``Parameter(data, requires_grad=True)`` shares ``data``'s memory and is a new autograd leaf, as in torch.
    """

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = _C.empty(0)
        if not isinstance(data, _C.Tensor):
            raise TypeError(f"Parameter: expected a loom.Tensor for data, got {type(data).__name__}")
        super().__init__(data)
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        result = Parameter(self.detach().clone(), self.requires_grad)
        if self.grad is not None:
            result.grad = self.grad.detach().clone()
        memo[id(self)] = result
        return result

    def __reduce_ex__(self, proto):
        # The values go through the host; the device is recorded and restored, as PyTorch's pickles do.
        return (_rebuild_parameter, (self.detach().cpu().numpy().copy(), self.requires_grad, str(self.device)))


def _rebuild_parameter(array, requires_grad, device="cpu"):
    data = _C.from_numpy(array)
    return Parameter(data if device == "cpu" else data.to(device), requires_grad)


class Buffer(_C.Tensor):
    """Marks a tensor to be registered as a buffer when assigned to a Module attribute (torch.nn.Buffer).

    ``Buffer(data, persistent=True)``; the module stores a plain tensor sharing ``data``'s memory.
    """

    def __init__(self, data=None, *, persistent=True):
        if data is None:
            data = _C.empty(0)
        super().__init__(data)
        self.persistent = persistent
