"""loom: a deep-learning framework with a C++20 core and a PyTorch-like Python API.

`import loom as torch` runs the common subset of PyTorch code: tensors, autograd, and (later) nn/optim.
"""
import os as _os

# OpenMP workers that spin while idle starve each other (and the process) as soon as anything else runs on
# the machine: measured 40x slower small-op training steps on a busy 2-core machine. Sleep instead; users
# who own the machine can export OMP_WAIT_POLICY=ACTIVE. Must be set before libgomp loads with _C — and
# PyTorch ships a libgomp.so.1 of its own that loom then shares, so importing torch first loses this default
# (scripts that use both set the variable themselves, as tests/python/conftest.py does).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# OpenBLAS's workers spin on sched_yield for 2^28 cycles after each matrix product (its default
# OPENBLAS_THREAD_TIMEOUT=28), taking the cores loom's own loops need between products: on the trainer's GPT
# step that was a third of all CPU time, in the kernel. 2^4 cycles makes them sleep almost at once; measured
# 294 -> 256 ms per step, system time 8.5 s -> 1.2 s. Read when libopenblas loads, so it too goes before _C.
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

from loom import _C  # noqa: E402
from loom._C import Tensor, device, dtype  # noqa: F401,E402
from loom._C import *  # noqa: F401,F403  (ops, creation functions, dtypes)
from loom import autograd  # noqa: F401
from loom.autograd import no_grad, enable_grad, set_grad_enabled, is_grad_enabled  # noqa: F401
from loom.serialization import save, load, save_file, load_file  # noqa: F401,E402
from loom.amp import autocast  # noqa: F401,E402

__version__ = "0.1.0"

# dtype aliases PyTorch users expect.
float = _C.float32  # noqa: A001
double = _C.float64
half = _C.float16
long = _C.int64
int = _C.int32  # noqa: A001
short = _C.int16
bool = _C.bool  # noqa: A001

# Subpackages available after a plain `import loom`, as torch.nn and torch.optim are after `import torch`.
from loom import nn, optim, utils, datasets, tokenizers  # noqa: E402,F401
from loom import amp, cpu  # noqa: E402,F401

# PyTorch surface composed in Python (Tensor.__format__, new_*, unique, diag, FloatTensor, ...).
from loom._surface import *  # noqa: E402,F401,F403
from loom import distributions  # noqa: E402,F401
from loom import onnx  # noqa: E402,F401
from loom import distributed  # noqa: E402,F401  (torch.distributed is there after import torch; MPI starts on init)
from loom._compile import compile  # noqa: E402,F401,A004

# The CUDA backend (docs/cuda.md) is a plugin library, libloom_cuda.so, installed next to _C when loom was built with
# CUDA. It is loaded here only when the NVIDIA driver reports a GPU, so machines without one never touch it and
# loom.cuda.is_available() stays False. LOOM_CUDA=0 skips it; LOOM_CUDA=1 loads it even without a GPU (its
# backend then reports no devices), which is how CI checks that the library loads. A failure to load is a warning.
def _cuda_driver_device_count():
    import ctypes

    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def _load_cuda_backend():
    path = _os.path.join(_os.path.dirname(__file__), "libloom_cuda.so")
    mode = _os.environ.get("LOOM_CUDA", "")
    if mode == "0" or not _os.path.exists(path):
        return
    if mode != "1" and _cuda_driver_device_count() == 0:
        return
    try:
        backends.load(path)
    except Exception as error:  # noqa: BLE001  (a broken CUDA install must not break import loom)
        import warnings

        warnings.warn(f"loom: the CUDA backend {path} could not be loaded: {error}", RuntimeWarning, stacklevel=2)


# Devices: loom.cuda always exists (is_available() is False without a CUDA backend); every loaded backend gets its
# module loom.<name> from the same implementation. Backends that installed packages announce (the "loom.backends"
# entry points) load last, once the package is complete; a broken one warns and is skipped.
from loom import backends  # noqa: E402
from loom._device_module import device_module as _device_module  # noqa: E402

cuda = _device_module("cuda")
for _name in _C._device_types()[1:]:
    _device_module(_name)
_load_cuda_backend()
backends._discover()
