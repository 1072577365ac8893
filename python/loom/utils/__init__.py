"""Utilities (torch.utils): data loading in loom.utils.data, and where the C++ package of this install lies.

A C++ program or an out-of-tree backend plugin builds against the installed loom with CMake (docs/packaging.md):
    cmake -DCMAKE_PREFIX_PATH="$(python -c 'import loom.utils; print(loom.utils.cmake_prefix_path)')" ...
and `find_package(Loom REQUIRED)` + `target_link_libraries(my_backend PRIVATE Loom::loom)` in its CMakeLists.txt.
"""
import glob as _glob
import os as _os

from loom.utils import data  # noqa: F401

_PACKAGE_DIR = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))

# The directory to put on CMAKE_PREFIX_PATH so find_package(Loom) finds share/cmake/Loom/LoomConfig.cmake (torch's name).
cmake_prefix_path = _os.path.join(_PACKAGE_DIR, "share", "cmake")


def get_include():
    """The directory of loom's public C++ headers (#include "loom/loom.h", "loom/backends/plugin.h")."""
    return _os.path.join(_PACKAGE_DIR, "include")


def _find_library():
    # The wheel holds one file, named by libloom's SONAME (libloom.so.0.1); a build-tree staging may hold libloom.so.
    found = sorted(_glob.glob(_os.path.join(_PACKAGE_DIR, "libloom.so*")), key=len, reverse=True)
    return found[0] if found else None


# The path of the libloom shared library that loom._C uses (for build systems other than CMake).
library_path = _find_library()
