"""Loading out-of-tree backends (src/loom/backends/loader.cpp) with the example plugin vdev (examples/backend_plugin):
what loading returns, the ABI handshake, bad libraries, loading while other threads dispatch, and that the device's
memory really is not the host's. Cases that could leave the process in a bad state run in a fresh interpreter."""
import ctypes.util
import glob
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import loom
from harness import REPO, VDEV_LIBRARY, VDEV_WRONG_ABI_LIBRARY, load_vdev

TESTS = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def vdev_device():
    return load_vdev()


def run_python(code, env=None, timeout=300):
    """Runs `code` in a fresh interpreter (tests/python on its path) and returns the CompletedProcess."""
    prelude = f"import sys; sys.path.insert(0, {TESTS!r})\n"
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, cwd=REPO)


def test_load_returns_the_device_type_and_is_idempotent(vdev_device):
    assert loom._C._load_backend(VDEV_LIBRARY) == ["vdev"]
    assert loom._C._load_backend(VDEV_LIBRARY) == ["vdev"]
    # The same library by another path is recognised as loaded (not initialised twice).
    relative = os.path.relpath(VDEV_LIBRARY)
    assert loom._C._load_backend(relative if "/" in relative else "./" + relative) == ["vdev"]
    assert "vdev" in loom._C._device_types()
    assert loom._C._is_available("vdev") and loom._C._device_count("vdev") == 2


def test_first_load_in_a_fresh_process():
    result = run_python(f"""
        import loom
        assert not loom._C._has_backend("vdev")
        assert loom._C._device_types() == ["cpu"], loom._C._device_types()
        print(loom._C._load_backend({VDEV_LIBRARY!r}), loom._C._load_backend({VDEV_LIBRARY!r}))
        x = loom.arange(6).float()
        print((x.to("vdev") * 2).cpu().tolist())
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["['vdev'] ['vdev']", "[0.0, 2.0, 4.0, 6.0, 8.0, 10.0]"], result.stdout


def test_wrong_abi_is_refused_with_both_versions():
    """A plugin built for ABI 9999 is refused before any of its code runs; the process stays usable, and the
    right plugin still loads afterwards."""
    assert os.path.exists(VDEV_WRONG_ABI_LIBRARY), f"{VDEV_WRONG_ABI_LIBRARY} is missing: run `make backend-plugin`"
    ours = loom._C._backend_abi()["abi_version"]
    assert ours != 9999
    result = run_python(f"""
        import loom
        try:
            loom._C._load_backend({VDEV_WRONG_ABI_LIBRARY!r})
        except RuntimeError as e:
            print("RuntimeError:", e)
        else:
            print("loaded")
        assert not loom._C._has_backend("vdev"), "a refused plugin registered its device type"
        print(loom._C._load_backend({VDEV_LIBRARY!r}))
    """)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("RuntimeError:"), result.stdout
    assert f"built for loom backend ABI 9999, this loom has ABI {ours}" in lines[0], lines[0]
    assert VDEV_WRONG_ABI_LIBRARY in lines[0] and "Rebuild it against this loom" in lines[0], lines[0]
    assert lines[1] == "['vdev']", result.stdout


@pytest.mark.parametrize("which", ["libloom", "libc"])
def test_a_library_that_is_not_a_plugin_is_refused(which):
    if which == "libloom":
        path = sorted(glob.glob(os.path.join(os.path.dirname(loom.__file__), "libloom.so*")))[0]
    else:
        path = ctypes.util.find_library("c")
        assert path, "no C library found"
    with pytest.raises(RuntimeError, match=r"is not a loom backend \(no loom_backend_abi/loom_backend_init") as info:
        loom._C._load_backend(path)
    assert path in str(info.value)


def test_a_missing_library_is_refused(tmp_path):
    missing = str(tmp_path / "libnothing.so")
    with pytest.raises(RuntimeError, match="cannot load") as info:
        loom._C._load_backend(missing)
    assert missing in str(info.value) and "No such file" in str(info.value)
    # A file that is not a shared library at all.
    junk = tmp_path / "libjunk.so"
    junk.write_bytes(b"not an ELF file\n" * 8)
    with pytest.raises(RuntimeError, match="cannot load"):
        loom._C._load_backend(str(junk))


def test_loading_while_other_threads_dispatch():
    """Four threads run CPU ops in a loop (checked against NumPy each time) while the main thread loads the plugin
    and starts using it; nothing crashes and every result is right."""
    result = run_python(f"""
        import threading, time
        import numpy as np
        import loom

        rng = np.random.default_rng(0)
        a, b = rng.standard_normal((32, 48)).astype(np.float32), rng.standard_normal((48, 16)).astype(np.float32)
        want_mm, want_add = a @ b, a + 1.5
        stop, errors, counts = threading.Event(), [], [0] * 4

        def work(k):
            la, lb = loom.from_numpy(a.copy()), loom.from_numpy(b.copy())
            try:
                while not stop.is_set():
                    got = loom.matmul(la, lb).numpy()
                    np.testing.assert_allclose(got, want_mm, rtol=1e-4, atol=1e-4)
                    assert np.array_equal((la + 1.5).numpy(), want_add)
                    assert float(loom.softmax(la, -1).sum()) == pytest_approx(32.0)
                    counts[k] += 1
            except BaseException as e:
                errors.append(repr(e))

        def pytest_approx(v):
            class Near(float):
                def __eq__(self, other):
                    return abs(other - v) < 1e-3
            return Near(v)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        before = sum(counts)
        names = loom._C._load_backend({VDEV_LIBRARY!r})
        x = loom.from_numpy(a.copy()).to("vdev")
        on_device = (loom.matmul(x, loom.from_numpy(b.copy()).to("vdev"))).cpu().numpy()
        np.testing.assert_allclose(on_device, want_mm, rtol=1e-4, atol=1e-4)
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
        print(names, before > 0, sum(counts) > before, errors)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['vdev'] True True []", result.stdout + result.stderr


def test_host_read_of_device_memory_dies_with_sigsegv():
    """vdev memory is a PROT_NONE mapping on the host side: reading a vdev tensor's data_ptr from the host (here with
    ctypes) must crash, which proves the tests above could not have passed by reading device memory directly."""
    result = run_python(f"""
        import ctypes
        import loom
        loom._C._load_backend({VDEV_LIBRARY!r})
        x = loom.ones(1024).to("vdev")
        loom._C._synchronize(loom.device("vdev"))
        print("host copy", x.cpu()[0].item(), flush=True)
        print("direct", ctypes.c_float.from_address(x.data_ptr()).value, flush=True)
    """)
    assert "host copy 1.0" in result.stdout, result.stdout + result.stderr
    assert "direct" not in result.stdout, result.stdout
    assert result.returncode == -signal.SIGSEGV, (result.returncode, result.stderr[-2000:])


DTYPES = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool"]


def random_bits(dtype, rng):
    """A (16, 256) loom tensor of `dtype` whose elements are random bit patterns (NaN payloads, -0.0, subnormals,
    infinities and extremes included)."""
    raw = rng.integers(0, 256, size=4096 * 8, dtype=np.uint8)
    if dtype == "bool":
        return loom.from_numpy((raw[:4096] % 2).astype(bool)).reshape(16, -1)
    if dtype == "bfloat16":  # float32 values with zero low halves convert to bfloat16 exactly
        high = raw[:8192].view(np.uint16).astype(np.uint32) << 16
        return loom.from_numpy(high.view(np.float32)).reshape(16, -1).to(loom.bfloat16)
    values = raw.view(np.dtype(dtype))[:4096]
    return loom.from_numpy(values.copy()).reshape(16, -1)


def bits(t):
    """The bytes of a host tensor's elements, in logical order (bfloat16 through its exact float32 widening)."""
    if t.dtype == loom.bfloat16:
        t = t.float()
    array = np.ascontiguousarray(t.numpy())
    return array.view(np.uint8) if array.dtype != np.bool_ else array


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_is_bit_exact(vdev_device, dtype):
    """Host -> vdev:0 -> vdev:1 -> host keeps every bit, for contiguous and strided sources."""
    t = random_bits(dtype, np.random.default_rng(3))
    for source in (t, t.t(), t[:, ::3]):
        back = source.to("vdev:0").to("vdev:1").cpu()
        assert back.device.type == "cpu" and back.dtype == source.dtype and back.shape == source.shape
        assert np.array_equal(bits(back), bits(source))
