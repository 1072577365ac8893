"""Automatic mixed precision: loom.autocast (torch.autocast / torch.amp.autocast)."""
import functools

from loom import _C

__all__ = ["autocast", "is_autocast_available"]

def is_autocast_available(device_type):
    """Whether autocast has op lists for device_type (cpu, cuda, and backends that registered theirs)."""
    return isinstance(device_type, str) and _C._autocast_supported(device_type)


class autocast:  # noqa: N801 (PyTorch's name)
    r"""Runs the ops of a region in mixed precision, as torch.autocast.

    Inside the region, matrix products and convolutions (matmul, linear, mm, bmm, addmm, conv*d,
    scaled_dot_product_attention) cast their floating inputs to ``dtype``, losses and a few fragile ops
    (cross_entropy, nll_loss, mse_loss, prod...) to float32, and cat/stack/index_copy to the widest input type;
    every other op runs on its inputs as given. The casts are recorded by autograd, so gradients of float32
    parameters come back in float32. Low-precision copies of leaf tensors that require grad are cached until the
    outermost region exits (``cache_enabled``). The state is per thread. Usable as a context manager or a
    decorator; ``enabled=False`` switches autocast off inside an enabled region.

    Args:
        device_type: ``"cpu"`` (or ``"cuda"``).
        dtype: ``loom.bfloat16`` (CPU default) or ``loom.float16``.
        enabled: whether autocast is on in the region.
        cache_enabled: whether casts of leaf weights are cached; ``None`` keeps the current setting.
    """

    def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
        if not isinstance(device_type, str):
            raise TypeError(f"autocast: expected device_type of type str, got {type(device_type).__name__}")
        if not is_autocast_available(device_type):
            raise ValueError(f"autocast: unsupported device_type '{device_type}' (autocast has op lists for cpu, "
                             "cuda and backends that registered them)")
        if not isinstance(enabled, bool):
            raise TypeError(f"autocast: expected enabled to be a bool, got {type(enabled).__name__}")
        if dtype is not None and not isinstance(dtype, _C.dtype):
            raise TypeError(f"autocast: expected dtype to be a loom.dtype, got {type(dtype).__name__}")
        if cache_enabled is not None and not isinstance(cache_enabled, bool):
            raise TypeError(f"autocast: expected cache_enabled to be a bool, got {type(cache_enabled).__name__}")
        self.device = device_type
        self.fast_dtype = _C.get_autocast_dtype(device_type) if dtype is None else dtype
        if enabled and self.fast_dtype not in (_C.bfloat16, _C.float16):
            raise TypeError(f"autocast: {device_type} autocast supports only bfloat16 and float16, got dtype "
                            f"{self.fast_dtype}")
        self._enabled = enabled
        self._cache_enabled = cache_enabled
        self._guards = []

    def __enter__(self):
        self._guards.append(_C._AutocastGuard(self.device, self.fast_dtype, self._enabled, self._cache_enabled))
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self._guards.pop().exit()
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with autocast(self.device, self.fast_dtype, self._enabled, self._cache_enabled):
                return func(*args, **kwargs)

        return wrapper

    def __repr__(self):
        return (f"loom.autocast(device_type='{self.device}', dtype={self.fast_dtype}, enabled={self._enabled}, "
                f"cache_enabled={self._cache_enabled})")
