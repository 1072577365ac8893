"""loom.save / loom.load: PyTorch's ``.pt`` format (zip + pickle) and the safetensors format.

``loom.save`` writes PyTorch's zip format (what ``torch.save`` writes, so ``torch.load`` reads it) unless the
target path ends in ``.safetensors``, ``metadata`` is given, or ``format="safetensors"`` is asked for.
``loom.load`` recognises the format from the file's first bytes. The pickle side lives in loom/_pt_format.py.

In the safetensors format, a flat ``dict[str, Tensor]`` is written as a plain safetensors file that the ``safetensors`` library and
``safetensors.torch.load_file`` read with the same names, dtypes and values. Any other object (a checkpoint holding
model, optimizer, scheduler, RNG and data-loader state) is flattened: its tensors are stored under dotted path
names and the rest of its structure as JSON in the header's ``__metadata__`` under ``"loom.structure"``. See
docs/checkpoints.md for the layout.
"""
import collections
import contextlib
import errno
import io
import json
import math
import os
import tempfile

from loom import _C
from loom import _pt_format
from loom._C import Tensor
from loom._pt_format import add_safe_globals, clear_safe_globals, get_safe_globals, safe_globals  # noqa: F401

__all__ = ["save", "load", "save_file", "load_file", "load_metadata", "STRUCTURE_KEY", "add_safe_globals",
           "safe_globals", "get_safe_globals", "clear_safe_globals"]

# Tensors pickle (multiprocessing queues, DataLoader workers, copy via pickle) as their values, dtype and shape.
Tensor.__reduce_ex__ = _pt_format._reduce_tensor

# The __metadata__ key that holds the JSON skeleton of a nested object.
STRUCTURE_KEY = "loom.structure"
_FORMAT = "loom.nested"
# How a legacy (before 1.6) torch.save file starts: protocol 2, then the pickled long 0x1950a86a20f9469cfc6c.
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_VERSION = 1
# dict subclasses that keep their class (schedulers keep milestones in a Counter, optimizers state in a defaultdict)
_DICT_CLASSES = {collections.OrderedDict: "OrderedDict", collections.Counter: "Counter",
                 collections.defaultdict: "defaultdict"}
_FACTORIES = {None: None, dict: "dict", list: "list", set: "set", int: "int", float: "float", str: "str",
              tuple: "tuple", bool: "bool"}
_FACTORY_BY_NAME = {name: factory for factory, name in _FACTORIES.items()}


def _path(f, fn):
    if isinstance(f, (str, bytes, os.PathLike)):
        path = os.fspath(f)
        return os.fsdecode(path) if isinstance(path, bytes) else path
    raise TypeError(f"{fn}: expected a file path (str or os.PathLike), got {type(f).__name__}; "
                    "file objects are not supported")


def _check_metadata(metadata, fn):
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise TypeError(f"{fn}: metadata must be a dict of str to str, got {type(metadata).__name__}")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"{fn}: metadata must be a dict of str to str, got the entry {key!r}: {value!r} "
                            f"({type(key).__name__}: {type(value).__name__})")
    if STRUCTURE_KEY in metadata:
        raise ValueError(f"{fn}: the metadata key {STRUCTURE_KEY!r} is reserved for loom's nested-object layout")
    return dict(metadata)


def _is_flat_tensor_dict(obj):
    return isinstance(obj, dict) and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())


def _path_str(path):
    return "".join(f"[{p!r}]" for p in path) or "the top level"


class _Flattener:
    """Turns a nested object into (named tensors, JSON skeleton)."""

    def __init__(self, fn):
        self.fn = fn
        self.tensors = []
        self.used = {"__metadata__"}
        self.open = set()  # ids of the containers being visited (cycle detection)

    def tensor_name(self, path):
        base = ".".join(str(p) for p in path) or "tensor"
        name, n = base, 0
        while name in self.used:  # e.g. {"a.b": t, "a": {"b": t}}; the skeleton keeps the real key anyway
            n += 1
            name = f"{base}#{n}"
        self.used.add(name)
        return name

    def encode(self, obj, path):
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            if math.isfinite(obj):
                return float(obj)
            return {"type": "float", "value": repr(float(obj))}
        if isinstance(obj, Tensor):
            name = self.tensor_name(path)
            self.tensors.append((name, obj))
            return {"type": "tensor", "name": name}
        if isinstance(obj, _C.dtype):
            return {"type": "dtype", "name": str(obj).removeprefix("loom.")}
        if isinstance(obj, (dict, list, tuple)):
            if id(obj) in self.open:
                raise ValueError(f"{self.fn}: the object contains a reference cycle at {_path_str(path)}")
            self.open.add(id(obj))
            try:
                if isinstance(obj, dict):
                    items = []
                    for key, value in obj.items():
                        if isinstance(key, bool) or not isinstance(key, (str, int)):
                            raise TypeError(f"{self.fn}: dict keys must be str or int, got {key!r} "
                                            f"({type(key).__name__}) at {_path_str(path)}")
                        key = key if isinstance(key, str) else int(key)
                        items.append([key, self.encode(value, path + [key])])
                    node = {"type": "dict", "items": items}
                    cls = _DICT_CLASSES.get(type(obj))  # other dict subclasses are saved as plain dicts
                    if cls is not None:
                        node["class"] = cls
                    if cls == "defaultdict":
                        if obj.default_factory not in _FACTORIES:
                            raise TypeError(f"{self.fn}: cannot save a defaultdict whose default_factory is "
                                            f"{obj.default_factory!r} at {_path_str(path)} (supported: "
                                            f"{', '.join(sorted(n for n in _FACTORY_BY_NAME if n))} or None)")
                        node["default_factory"] = _FACTORIES[obj.default_factory]
                    return node
                encoded = [self.encode(value, path + [i]) for i, value in enumerate(obj)]
                return encoded if isinstance(obj, list) else {"type": "tuple", "items": encoded}
            finally:
                self.open.discard(id(obj))
        if isinstance(obj, (set, frozenset)):
            items = [self.encode(value, path + [i]) for i, value in enumerate(obj)]
            return {"type": "frozenset" if isinstance(obj, frozenset) else "set", "items": items}
        # NumPy scalars (np.int64, np.float32, np.bool_) become the matching Python number.
        if type(obj).__module__ == "numpy" and hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:
            return self.encode(obj.item(), path)
        raise TypeError(f"{self.fn}: cannot save an object of type {type(obj).__name__} at {_path_str(path)} "
                        "(supported: Tensor, dict with str/int keys, list, tuple, set, int, float, bool, str, None, dtype)")


def save(obj, f, metadata=None, format=None, pickle_protocol=2, **kwargs):
    """Saves ``obj`` to ``f`` (a path or a writable binary file object), atomically when ``f`` is a path.

    ``format`` picks the file format (default ``None``: ``"safetensors"`` when the path ends in ``.safetensors``
    or ``metadata`` is given, else ``"torch"``):

    - ``"torch"``: PyTorch's zip + pickle format, what ``torch.save`` writes; ``torch.load`` reads it. Any
      picklable object (a whole module, NumPy arrays, nested containers of tensors); tensors that share memory
      stay views of one another.
    - ``"safetensors"``: a tensor, a state dict or a nested checkpoint of tensors, containers and numbers (see
      docs/checkpoints.md); a flat ``dict[str, Tensor]`` is a plain safetensors file. ``metadata`` is an optional
      ``dict[str, str]`` stored in the header.

    A path is written to a temporary name and renamed over ``f``, so an existing file survives a failed save.
    ``pickle_protocol`` and torch's other keyword arguments (``pickle_module``,
    ``_use_new_zipfile_serialization``) are accepted; loom always writes protocol 2 zip archives, as torch does.
    """
    fmt = _pick_format(f, metadata, format)
    if fmt == "safetensors":
        if isinstance(f, (str, bytes, os.PathLike)):
            return _save_safetensors_obj(obj, _path(f, "loom.save"), metadata)
        if not hasattr(f, "write"):
            _path(f, "loom.save")  # raises the TypeError
        with tempfile.TemporaryDirectory() as tmp:
            tmp_path = os.path.join(tmp, "obj.safetensors")
            _save_safetensors_obj(obj, tmp_path, metadata)
            with open(tmp_path, "rb") as src:
                f.write(src.read())
        return None
    if isinstance(f, (str, bytes, os.PathLike)):
        return _atomic_write(_path(f, "loom.save"), lambda out: _pt_format.write_zip(obj, out))
    if not hasattr(f, "write"):
        raise TypeError(f"loom.save: expected a file path (str or os.PathLike) or a writable binary file object, "
                        f"got {type(f).__name__}")
    _pt_format.write_zip(obj, f)
    return None


def _pick_format(f, metadata, format):
    if format is not None:
        if format not in ("torch", "safetensors"):
            raise ValueError(f"loom.save: format must be 'torch', 'safetensors' or None, got {format!r}")
        if format == "torch" and metadata is not None:
            raise ValueError("loom.save: metadata is only stored by the safetensors format")
        return format
    if metadata is not None:
        return "safetensors"
    if isinstance(f, (str, bytes, os.PathLike)) and os.fsdecode(os.fspath(f)).endswith(".safetensors"):
        return "safetensors"
    return "torch"


def _atomic_write(path, write):
    """Calls write(file) on a temporary file next to `path`, then renames it over `path` (fsync'ed), so `path` is
    either the old file or the complete new one (the steps of src/loom/serialize/atomic_file.cpp)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.tmp-{os.getpid()}-")
    except OSError as e:
        raise RuntimeError(f"loom.save: cannot write '{path}': could not create a temporary file in "
                           f"'{directory}' ({e.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.replace(tmp, path)
        except OSError as e:
            raise RuntimeError(f"loom.save: '{path}': rename of the temporary file failed ({e.strerror})") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # some file systems cannot fsync a directory
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _save_safetensors_obj(obj, path, metadata):
    meta = _check_metadata(metadata, "loom.save")
    if _is_flat_tensor_dict(obj):
        tensors = list(obj.items())
    else:
        flattener = _Flattener("loom.save")
        root = flattener.encode(obj, [])
        skeleton = {"format": _FORMAT, "version": _VERSION, "root": root}
        meta[STRUCTURE_KEY] = json.dumps(skeleton, separators=(",", ":"), allow_nan=False)
        tensors = flattener.tensors
    _C._save_safetensors(path, tensors, meta)


def _read(f, fn):
    path = _path(f, fn)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, f"{fn}: no such file: '{path}'", path)
    return path, _C._load_safetensors(path)


class _Decoder:
    def __init__(self, path, tensors):
        self.path = path
        self.tensors = tensors
        self.used = set()

    def bad(self, why):
        return ValueError(f"loom.load: '{self.path}': malformed {STRUCTURE_KEY!r} metadata: {why}")

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(item) for item in node]
        if not isinstance(node, dict):
            raise self.bad(f"unexpected node {node!r}")
        kind = node.get("type")
        if kind == "tensor":
            name = node.get("name")
            if not isinstance(name, str) or name not in self.tensors:
                raise self.bad(f"it refers to a tensor {name!r} that is not in the file")
            if name in self.used:
                raise self.bad(f"tensor {name!r} is referenced twice")
            self.used.add(name)
            return self.tensors[name]
        if kind == "dict":
            items = node.get("items")
            if not isinstance(items, list):
                raise self.bad("a dict node has no item list")
            cls = node.get("class")
            if cls is None:
                out = {}
            elif cls == "OrderedDict":
                out = collections.OrderedDict()
            elif cls == "Counter":
                out = collections.Counter()
            elif cls == "defaultdict" and node.get("default_factory") in _FACTORY_BY_NAME:
                out = collections.defaultdict(_FACTORY_BY_NAME[node.get("default_factory")])
            else:
                raise self.bad(f"unknown dict class {cls!r} (default_factory {node.get('default_factory')!r})")
            for item in items:
                if (not isinstance(item, list) or len(item) != 2 or isinstance(item[0], bool)
                        or not isinstance(item[0], (str, int))):
                    raise self.bad(f"a dict item must be [str or int key, value], got {item!r}")
                out[item[0]] = self.decode(item[1])
            return out
        if kind in ("tuple", "set", "frozenset"):
            items = node.get("items")
            if not isinstance(items, list):
                raise self.bad(f"a {kind} node has no item list")
            values = [self.decode(item) for item in items]
            if kind == "tuple":
                return tuple(values)
            try:
                return set(values) if kind == "set" else frozenset(values)
            except TypeError as e:
                raise self.bad(f"a {kind} holds an unhashable value ({e})") from None
        if kind == "float":
            value = node.get("value")
            if value not in ("nan", "inf", "-inf"):
                raise self.bad(f"unknown float value {value!r}")
            return float(value)
        if kind == "dtype":
            dtype = getattr(_C, str(node.get("name")), None)
            if not isinstance(dtype, _C.dtype):
                raise self.bad(f"unknown dtype {node.get('name')!r}")
            return dtype
        raise self.bad(f"unknown node type {kind!r}")


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None, **kwargs):
    """Loads what ``loom.save`` or ``torch.save`` wrote, or any safetensors file, from a path or a binary file object.

    The format is recognised from the first bytes. A PyTorch zip archive is unpickled with tensors rebuilt as loom
    tensors (views of one storage stay views); ``weights_only`` (default ``True``, as in torch) allows only tensors,
    dtypes, devices, plain containers, OrderedDict/Counter/defaultdict and what ``add_safe_globals`` /
    ``safe_globals`` registered; ``weights_only=False`` loads any pickle (only for files you trust: unpickling
    can run code). A safetensors file comes back as a ``dict[str, Tensor]``, or with the structure ``loom.save``
    gave it; it is validated before any data is read, and a truncated, corrupted or hostile file raises
    ``ValueError`` naming the file. Tensors load on the CPU, or on ``map_location`` (a device, a device name, or a
    dict such as ``{"cpu": "cuda:0"}``). Legacy (pre-1.6, non-zip) PyTorch files are not supported.
    """
    weights_only = True if weights_only is None else bool(weights_only)
    device = _map_location(map_location)
    if isinstance(f, (str, bytes, os.PathLike)):
        path = _path(f, "loom.load")
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, f"loom.load: no such file: '{path}'", path)
        magic = b""
        if os.path.isfile(path):  # other paths get the safetensors reader's errors
            with open(path, "rb") as fh:
                magic = fh.read(len(_LEGACY_MAGIC))
        if magic[:4] == _pt_format.ZIP_MAGIC:
            with open(path, "rb") as fh:
                return _objects_to_device(_pt_format.read_zip(fh, weights_only, path), device)
        if magic == _LEGACY_MAGIC:
            raise ValueError(f"loom.load: '{path}': a legacy (pre-1.6, non-zip) PyTorch file; re-save it with "
                             "torch.save in a current PyTorch")
        return _load_safetensors_obj(path, device)
    if not hasattr(f, "read"):
        raise TypeError(f"loom.load: expected a file path (str or os.PathLike) or a readable binary file object, "
                        f"got {type(f).__name__}")
    name = getattr(f, "name", None) or "<file object>"
    data = f.read()
    if data[:4] == _pt_format.ZIP_MAGIC:
        return _objects_to_device(_pt_format.read_zip(io.BytesIO(data), weights_only, name), device)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = os.path.join(tmp, "obj.safetensors")
        with open(tmp_path, "wb") as out:
            out.write(data)
        return _load_safetensors_obj(tmp_path, device)


def _objects_to_device(obj, device):
    """Moves the tensors of a loaded object (containers walked; other objects as they are) to `device`."""
    if device is None or device.type == "cpu":
        return obj
    if isinstance(obj, Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        for key in list(obj):
            obj[key] = _objects_to_device(obj[key], device)
        return obj
    if isinstance(obj, list):
        obj[:] = [_objects_to_device(v, device) for v in obj]
        return obj
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        return type(obj)(_objects_to_device(v, device) for v in obj)
    if hasattr(obj, "to") and hasattr(obj, "state_dict"):  # a whole module
        return obj.to(device)
    return obj


def _load_safetensors_obj(path, device):
    path, (tensors, metadata) = _read(path, "loom.load")
    tensors = _to_device(tensors, device)
    structure = metadata.get(STRUCTURE_KEY)
    if structure is None:
        return dict(tensors)
    decoder = _Decoder(path, dict(tensors))
    try:
        skeleton = json.loads(structure)
    except (ValueError, RecursionError) as e:
        raise decoder.bad(f"invalid JSON ({e})") from None
    if not isinstance(skeleton, dict) or skeleton.get("format") != _FORMAT or "root" not in skeleton:
        raise decoder.bad("not a loom nested-object layout")
    if skeleton.get("version") != _VERSION:
        raise decoder.bad(f"unsupported version {skeleton.get('version')!r} (this loom reads version {_VERSION})")
    try:
        return decoder.decode(skeleton["root"])
    except RecursionError:
        raise decoder.bad("nested too deeply") from None


def load_metadata(f):
    """The header's ``__metadata__`` of a safetensors file as a ``dict[str, str]`` (loom's own key included)."""
    return _read(f, "loom.load_metadata")[1][1]


def save_file(tensors, filename, metadata=None):
    """``safetensors.torch.save_file``: writes a flat ``dict[str, Tensor]`` (atomically)."""
    if not _is_flat_tensor_dict(tensors):
        raise TypeError("loom.save_file: expected a dict of str to Tensor; use loom.save for nested objects")
    _C._save_safetensors(_path(filename, "loom.save_file"), list(tensors.items()),
                         _check_metadata(metadata, "loom.save_file"))


def load_file(filename, device="cpu"):
    """``safetensors.torch.load_file``: every tensor in the file as a flat ``dict[str, Tensor]`` on ``device``
    (a device, a device name, or an int: that CUDA device, as in safetensors)."""
    device = _device_arg(device, "loom.load_file", "device")
    return dict(_to_device(_read(filename, "loom.load_file")[1][0], device))


def _device_arg(device, fn, name):
    if isinstance(device, int) and not isinstance(device, bool):
        return _C.device("cuda", device)
    if isinstance(device, (str, _C.device)):
        return _C.device(device) if isinstance(device, str) else device
    raise TypeError(f"{fn}: {name} must be a device, a device name or an int, got {type(device).__name__}")


def _map_location(map_location):
    """The device loom.load puts tensors on. Every tensor in a loom file is read as a CPU tensor, so a dict maps
    "cpu"; callables (which PyTorch passes storages) are not supported."""
    if map_location is None:
        return None
    if isinstance(map_location, dict):
        target = map_location.get("cpu")
        return None if target is None else _device_arg(target, "loom.load", "map_location['cpu']")
    if callable(map_location):
        raise NotImplementedError("loom.load: a callable map_location is not supported; pass a device or a dict")
    return _device_arg(map_location, "loom.load", "map_location")


def _to_device(named_tensors, device):
    """[(name, tensor)] moved to ``device`` (None or the CPU: as they are)."""
    if device is None or device.type == "cpu":
        return named_tensors
    return [(name, tensor.to(device)) for name, tensor in named_tensors]
