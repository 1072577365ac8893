"""Autograd: no_grad/enable_grad contexts, backward() and grad(), as in torch.autograd."""
import functools

from loom import _C


class _GradModeContext:
    """Base for grad-mode contexts; also usable as a decorator, like torch.no_grad."""

    _enabled = True

    def __enter__(self):
        self._previous = _C.is_grad_enabled()
        _C.set_grad_enabled(self._enabled)
        return self

    def __exit__(self, *exc):
        _C.set_grad_enabled(self._previous)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):  # noqa: N801 (PyTorch's name)
    """Ops inside record no autograd graph."""

    _enabled = False


class enable_grad(_GradModeContext):  # noqa: N801
    """Re-enables graph recording inside a no_grad region."""

    _enabled = True


class set_grad_enabled(_GradModeContext):  # noqa: N801
    """Sets grad mode on (True) or off (False); works as a function or a context manager."""

    def __init__(self, mode):
        if not isinstance(mode, (bool, int)):
            raise TypeError(f"set_grad_enabled: expected a bool, got {type(mode).__name__}")
        self._enabled = bool(mode)
        self._previous = _C.is_grad_enabled()
        _C.set_grad_enabled(self._enabled)

    def __enter__(self):
        return self

    def __call__(self, fn):
        raise TypeError("set_grad_enabled cannot be used as a decorator")


is_grad_enabled = _C.is_grad_enabled


def _as_list(x):
    if x is None:
        return None
    if isinstance(x, _C.Tensor):
        return [x]
    return list(x)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False):
    """Accumulates d(tensors)/d(leaves) into the leaves' .grad."""
    tensors = _as_list(tensors)
    grads = _as_list(grad_tensors) or [None] * len(tensors)
    if retain_graph is None:
        retain_graph = create_graph
    _C._backward(tensors, grads, retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Returns d(outputs)/d(inputs) as a tuple, without touching .grad."""
    outputs = _as_list(outputs)
    inputs = _as_list(inputs)
    grads = _as_list(grad_outputs) or [None] * len(outputs)
    if retain_graph is None:
        retain_graph = create_graph
    return _C._grad(outputs, inputs, grads, retain_graph, create_graph, allow_unused)


class RemovableHandle:
    """Returned by Tensor.register_hook: ``handle.remove()`` unregisters the hook (also a context manager)."""

    def __init__(self, tensor, hook_id):
        self._tensor = tensor
        self.id = hook_id

    def remove(self):
        if self._tensor is not None:
            self._tensor._remove_hook(self.id)
            self._tensor = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


_register_hook_id = _C.Tensor.register_hook


def _register_hook(self, hook):
    """Registers a backward hook: hook(grad) may return a replacement gradient. Returns a RemovableHandle."""
    if not callable(hook):
        raise TypeError(f"register_hook: expected a callable, got {type(hook).__name__}")
    return RemovableHandle(self, _register_hook_id(self, hook))


_C.Tensor.register_hook = _register_hook


def _register_post_accumulate_grad_hook(self, hook):
    """Registers hook(tensor), run after backward has accumulated into this leaf's .grad. Returns a RemovableHandle."""
    if not callable(hook):
        raise TypeError(f"register_post_accumulate_grad_hook: expected a callable, got {type(hook).__name__}")
    return RemovableHandle(self, self._register_post_accumulate_grad_hook(hook))


_C.Tensor.register_post_accumulate_grad_hook = _register_post_accumulate_grad_hook
