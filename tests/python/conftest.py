import os
import sys

# PyTorch's wheel ships its own libgomp.so.1; whichever of torch and loom loads first initialises the one
# OpenMP runtime both then share, so loom's PASSIVE default must be in place before torch is imported.
# Spinning OpenMP workers made a mixed loom/torch GPT step 8x slower on this busy 2-core machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # as loom/__init__.py sets it

sys.path.insert(0, os.path.dirname(__file__))
# The repository root, for bench.models (the PyTorch GPT twin shared by the tests and the benchmark suite).
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import pytest  # noqa: E402

import loom  # noqa: E402

CPU_CAPABILITIES = ["scalar", "avx2", "avx512"]


@pytest.fixture(params=CPU_CAPABILITIES)
def capability(request):
    """Runs the test once per CPU kernel path (portable loops, AVX2, AVX-512), restoring the previous one after; a
    path this CPU lacks is skipped with a message naming it."""
    before = loom._C._get_cpu_capability()
    try:
        loom._C._set_cpu_capability(request.param)
    except ValueError:
        pytest.skip(f"this CPU has no {request.param} (best: {loom._C._detected_cpu_capability()})")
    yield request.param
    loom._C._set_cpu_capability(before)
