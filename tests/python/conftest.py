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


# ---- the vdev example backend (examples/backend_plugin), for device tests ----

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VDEV_LIBRARY = os.path.join(ROOT, "build", "vdev", "libloom_vdev.so")


def _run(command, what):
    import subprocess
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"vdev fixture: {what} failed ({' '.join(command)}):\n{result.stdout[-3000:]}{result.stderr[-3000:]}",
                    pytrace=False)


def build_vdev_plugin():
    """Builds build/vdev/libloom_vdev.so (against `make cpp-build`'s libloom installed into build/install, or the
    installed package's CMake files) when it is missing or older than the installed loom; returns its path. The
    plugin must come from the same headers as the package it is loaded into (the ABI check refuses others)."""
    installed = os.path.join(os.path.dirname(loom.__file__), "libloom.so")
    if not os.path.exists(installed):
        installed = loom._C.__file__
    if os.path.exists(VDEV_LIBRARY) and os.path.getmtime(VDEV_LIBRARY) >= os.path.getmtime(installed):
        return VDEV_LIBRARY
    cmake_build = os.path.join(ROOT, "build", "cmake")
    if os.path.exists(os.path.join(cmake_build, "cmake_install.cmake")):
        prefix = os.path.join(ROOT, "build", "install")
        _run(["cmake", "--install", cmake_build, "--prefix", prefix], "installing libloom into build/install")
    else:
        prefix = getattr(loom.utils, "cmake_prefix_path", None)
        if prefix is None:
            pytest.fail("vdev fixture: cannot build the vdev plugin: run `make cpp-build` first (build/cmake is "
                        "missing and the installed loom has no cmake_prefix_path)", pytrace=False)
    vdev_build = os.path.join(ROOT, "build", "vdev")
    _run(["cmake", "-S", os.path.join(ROOT, "examples", "backend_plugin"), "-B", vdev_build, "-G", "Ninja",
          f"-DCMAKE_PREFIX_PATH={prefix}"], "configuring examples/backend_plugin")
    _run(["cmake", "--build", vdev_build, "-j", "2"], "building examples/backend_plugin")
    return VDEV_LIBRARY


@pytest.fixture(scope="session")
def vdev_device():
    """The device type name "vdev", with the example backend built (if needed) and loaded into this process.
    A plugin that cannot be built or loaded fails the test: device tests never skip silently."""
    name = loom.backends.load(build_vdev_plugin())
    assert name == "vdev", f"the example plugin registered '{name}', expected 'vdev'"
    return name


# ---- `make test-fast`: the suite without the tests marked slow ----

# Modules whose tests start processes (interpreters, MPI ranks, compilers, cmake) or train models; `make test-fast`
# (pytest -m "not slow") leaves them out, `make test` runs them. A single slow test elsewhere takes
# @pytest.mark.slow (docs/testing.md, "The inner loop").
SLOW_MODULES = {
    "test_bench_smoke.py",  # runs the benchmark suite in subprocesses
    "test_cpp_gpt.py",  # builds and runs the C++ GPT example
    "test_device_training.py",  # trains models on the example device
    "test_distributed.py",  # MPI and multi-process runs
    "test_dropin_scripts.py",  # PyTorch scripts run as subprocesses
    "test_packaging.py",  # builds and installs packages
    "test_robustness_training.py",  # kills and resumes training processes
    "test_train.py",  # the trainer end to end
    "test_training_equivalence.py",  # training runs against PyTorch
}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: left out by `make test-fast` (starts processes, builds or trains)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if os.path.basename(str(item.fspath)) in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
