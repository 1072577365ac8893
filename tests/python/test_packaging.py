"""The C++ package inside the installed Python package (docs/packaging.md): loom.utils.cmake_prefix_path leads
find_package(Loom) to LoomConfig.cmake, the include directory holds the public headers and none of the internal
ones, and libloom's SONAME names a file the package holds, the one _C loads. The references are the installed
distribution's metadata (importlib.metadata) and the ELF dynamic sections as readelf prints them.
`make package-test` builds and runs a C++ project against this same package."""
import importlib.metadata
import os
import re
import shutil
import subprocess

import pytest

import loom
import loom.utils

PACKAGE_DIR = os.path.dirname(os.path.abspath(loom.__file__))
VERSION = importlib.metadata.version("loom")

pytestmark = pytest.mark.skipif(
    not os.path.isdir(os.path.join(PACKAGE_DIR, "share")),
    reason=f"loom at {PACKAGE_DIR} is not a pip-installed wheel (no C++ package)",
)


def _dynamic(path, tag):
    """The values of one tag (NEEDED, SONAME, RUNPATH) of an ELF file's dynamic section."""
    if shutil.which("readelf") is None:
        pytest.skip("readelf (binutils) is not installed")
    out = subprocess.run(["readelf", "-d", path], check=True, capture_output=True, text=True).stdout
    return re.findall(rf"\({tag}\)\s+.*?\[(.*)\]", out)


def test_cmake_prefix_path_finds_the_cmake_package():
    prefix = loom.utils.cmake_prefix_path
    assert isinstance(prefix, str)
    # find_package(Loom) searches <prefix>/Loom*/ among others (cmake's search procedure), as for torch's share/cmake.
    config_dir = os.path.join(prefix, "Loom")
    for name in ("LoomConfig.cmake", "LoomConfigVersion.cmake", "LoomTargets.cmake"):
        assert os.path.isfile(os.path.join(config_dir, name)), name
    with open(os.path.join(config_dir, "LoomConfigVersion.cmake")) as f:
        assert f'set(PACKAGE_VERSION "{VERSION}")' in f.read()
    with open(os.path.join(config_dir, "LoomConfig.cmake")) as f:
        config = f.read()
    # libloom links OpenMP and Threads publicly, so the package must find them for its users.
    assert "find_dependency(OpenMP" in config and "find_dependency(Threads)" in config


def test_include_dir_holds_public_headers_only():
    include = loom.utils.get_include()
    for header in ("loom/loom.h", "loom/core/backend.h", "loom/core/tensor.h", "loom/ops/registry.h",
                   "loom/backends/plugin.h", "loom/core/version.h"):
        assert os.path.isfile(os.path.join(include, header)), header
    assert not os.path.exists(os.path.join(include, "loom", "backends", "cpu"))
    installed = [os.path.join(root, f) for root, _, files in os.walk(include) for f in files]
    assert installed and all(f.endswith(".h") for f in installed)
    for path in installed:
        with open(path) as f:
            text = f.read()
        assert not re.search(r"#include\s*[<\"](immintrin|x86intrin|cblas|dnnl|oneapi/|nlohmann/|zlib)", text), path


def test_version_header_matches_the_distribution():
    with open(os.path.join(loom.utils.get_include(), "loom", "core", "version.h")) as f:
        text = f.read()
    parts = [re.search(rf"#define LOOM_VERSION_{name} (\d+)", text).group(1) for name in ("MAJOR", "MINOR", "PATCH")]
    assert ".".join(parts) == VERSION
    assert f'#define LOOM_VERSION "{VERSION}"' in text


def test_soname_is_a_file_of_the_package_and_what_C_loads():
    library = loom.utils.library_path
    assert library is not None and os.path.dirname(library) == PACKAGE_DIR
    (soname,) = _dynamic(library, "SONAME")
    # While the major version is 0, the minor is part of the SONAME (docs/packaging.md).
    major, minor, _ = VERSION.split(".")
    assert soname == (f"libloom.so.{major}.{minor}" if major == "0" else f"libloom.so.{major}")
    # The wheel holds one real file under the SONAME (wheels cannot hold symlinks), and no other libloom.
    path = os.path.join(PACKAGE_DIR, soname)
    assert os.path.isfile(path) and not os.path.islink(path)
    assert [f for f in os.listdir(PACKAGE_DIR) if f.startswith("libloom.so")] == [soname]
    (extension,) = [f for f in os.listdir(PACKAGE_DIR) if f.startswith("_C.") and f.endswith(".so")]
    extension = os.path.join(PACKAGE_DIR, extension)
    assert soname in _dynamic(extension, "NEEDED")
    assert _dynamic(extension, "RUNPATH") == ["$ORIGIN"]
    # The library the running interpreter mapped is this file.
    with open("/proc/self/maps") as maps:
        mapped = {line.split()[-1] for line in maps if os.path.basename(line.split()[-1]).startswith("libloom.so")}
    assert mapped == {os.path.realpath(path)}
