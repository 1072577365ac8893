"""loom.compile: until loom's compiler is built, an identity wrapper (with torch.compile's signature) that warns
once, so scripts that call torch.compile at module level run eagerly and unchanged."""
import warnings

__all__ = ["compile"]

_warned = False


def compile(model=None, *, fullgraph=False, dynamic=None, backend="inductor", mode=None, options=None,  # noqa: A001
            disable=False):
    """Returns `model` (a Module or function) unchanged; usable as @compile and @compile(mode=...)."""
    if model is None:
        return lambda fn: compile(fn, fullgraph=fullgraph, dynamic=dynamic, backend=backend, mode=mode,
                                  options=options, disable=disable)
    if not callable(model):
        raise TypeError(f"compile: expected a Module or a function, got {type(model).__name__}")
    global _warned
    if not _warned and not disable:
        _warned = True
        warnings.warn("loom.compile: loom's compiler is not built yet; the model runs eagerly, unchanged",
                      UserWarning, stacklevel=2)
    return model
