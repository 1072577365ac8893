"""loom.backends: loading device backends (docs/backends.md).

``load(path)`` loads a backend's shared library and returns the name of the device type it registered; the device
type then has its module, ``loom.<name>`` (as ``loom.cuda``). Installed packages announce backends through the
``loom.backends`` entry-point group, loaded at ``import loom``, so ``pip install loom-<vendor>`` is enough::

    # a vendor package's pyproject.toml
    [project.entry-points."loom.backends"]
    myaccel = "loom_myaccel:library_path"     # a callable returning the library's path (or a str attribute)

Set ``LOOM_DEVICE_BACKEND_AUTOLOAD=0`` to skip that discovery.
"""
import os
import warnings

from loom import _C
from loom._device_module import device_module

__all__ = ["load", "device_types", "set_cpu_fallback", "cpu_fallback", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "loom.backends"


def load(path):
    """Loads the backend library at ``path`` and returns the device type name it registered (e.g. ``"vdev"``).

    The library is checked against this loom's ABI first (a mismatch raises naming both versions). Loading the same
    library again returns its name and changes nothing. The device module ``loom.<name>`` is created (or refreshed).
    """
    names = _C._load_backend(os.fspath(path))
    if not names:
        raise RuntimeError(f"loom.backends.load: '{path}' registered no device type")
    for name in names:
        device_module(name)
    return names[0]


def device_types():
    """Names of the device types that have a backend, "cpu" first."""
    return list(_C._device_types())


def set_cpu_fallback(device_type, enabled):
    """Runs ops that ``device_type`` has no kernel for on the CPU and copies the results back (off by default; a
    warning names each op the first time it falls back). Meant for bringing up a backend, not for speed."""
    _C._set_cpu_fallback(str(device_type), bool(enabled))


def cpu_fallback(device_type):
    """Whether the CPU fallback is on for ``device_type``."""
    return bool(_C._cpu_fallback(str(device_type)))


def _library_path(entry_point):
    target = entry_point.load()
    path = target() if callable(target) else target
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"the entry point gave {type(path).__name__}, expected the path of a backend library")
    return path


def _discover():
    """Loads every backend announced in the ``loom.backends`` entry-point group. A plugin that fails to load gives a
    RuntimeWarning naming it, never an exception: a broken package must not break ``import loom``."""
    if os.environ.get("LOOM_DEVICE_BACKEND_AUTOLOAD", "1") == "0":
        return []
    try:
        from importlib.metadata import entry_points
        found = entry_points(group=ENTRY_POINT_GROUP)
    except Exception as e:  # a broken distribution's metadata
        warnings.warn(f"loom: could not list the '{ENTRY_POINT_GROUP}' entry points: {e}", RuntimeWarning,
                      stacklevel=2)
        return []
    loaded = []
    for entry_point in found:
        try:
            loaded.append(load(_library_path(entry_point)))
        except Exception as e:
            warnings.warn(f"loom: the backend '{entry_point.name}' ({entry_point.value}) could not be loaded and "
                          f"is skipped: {type(e).__name__}: {e}", RuntimeWarning, stacklevel=2)
    return loaded
