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
from loom._compile import compile  # noqa: E402,F401,A004
