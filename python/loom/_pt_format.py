"""PyTorch's ``.pt`` checkpoint format (what ``torch.save`` writes since 1.6), read and written without torch.

A ``.pt`` file is a zip archive (entries stored uncompressed):

    archive/data.pkl        the object, pickled (protocol 2) with tensors as calls of
                            torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)
    archive/data/<key>      the raw bytes of one storage (little-endian), one entry per distinct storage
    archive/byteorder       "little"
    archive/version         "3"

Storages are pickled as persistent ids ``("storage", torch.FloatStorage, key, location, numel)``; tensors that
share a storage (views) refer to the same key, so they load as views of one another again. The writer names
torch's globals without importing torch (a pure-Python pickler that emits the GLOBAL opcode for stand-ins); the
reader maps them to loom. ``weights_only=True`` restricts the globals a pickle may name to an allow-list (tensor
rebuild functions, storage types, dtypes, plain containers) plus what ``add_safe_globals`` registered.
"""
import _compat_pickle
import builtins
import collections
import contextlib
import io
import pickle
import struct
import threading
import zipfile

import numpy as np

from loom import _C
from loom._C import Tensor

ZIP_MAGIC = b"PK\x03\x04"
_PROTOCOL = 2

# loom dtype name <-> (torch storage class name, NumPy dtype used for the bytes)
_STORAGES = {"float64": ("DoubleStorage", "<f8"), "float32": ("FloatStorage", "<f4"), "float16": ("HalfStorage", "<f2"),
             "bfloat16": ("BFloat16Storage", "<u2"), "int64": ("LongStorage", "<i8"), "int32": ("IntStorage", "<i4"),
             "int16": ("ShortStorage", "<i2"), "int8": ("CharStorage", "i1"), "uint8": ("ByteStorage", "u1"),
             "bool": ("BoolStorage", "?")}
_DTYPE_BY_STORAGE = {storage: name for name, (storage, _) in _STORAGES.items()}
# torch dtype names that name a loom dtype (torch.float is float32, torch.long int64, ...)
_DTYPE_ALIASES = {"float": "float32", "double": "float64", "half": "float16", "long": "int64", "int": "int32",
                  "short": "int16"}


def _dtype_name(dtype):
    return str(dtype).removeprefix("loom.")


# ---------------------------------------------------------------------------------------------------------------
# raw bytes <-> loom tensors (also used to pickle tensors, e.g. from DataLoader workers)

def tensor_bytes(t):
    """The bytes of a contiguous CPU tensor, little-endian (bfloat16 through float32: NumPy has no bfloat16)."""
    if t.dtype == _C.bfloat16:
        bits = t.float().numpy().view(np.uint32) >> 16  # bf16 -> f32 is exact, so the top half is the bf16 bits
        return bits.astype("<u2").tobytes()
    return np.ascontiguousarray(t.numpy()).astype(_STORAGES[_dtype_name(t.dtype)][1], copy=False).tobytes()


def tensor_from_bytes(data, dtype_name, numel, byteorder="little"):
    """A new 1-D CPU tensor of `numel` elements of loom dtype `dtype_name` read from `data`."""
    np_dtype = np.dtype(_STORAGES[dtype_name][1])
    if byteorder == "big":
        np_dtype = np_dtype.newbyteorder(">")
    need = numel * np_dtype.itemsize
    if len(data) < need:
        raise ValueError(f"loom.load: a {dtype_name} storage of {numel} elements needs {need} bytes, the file "
                         f"has {len(data)} (truncated or corrupted file)")
    array = np.frombuffer(data, dtype=np_dtype, count=numel)
    if dtype_name == "bfloat16":
        as_f32 = (array.astype(np.uint32) << 16).view(np.float32)
        return _C.from_numpy(np.ascontiguousarray(as_f32)).to(_C.bfloat16)
    return _C.from_numpy(array.astype(np_dtype.newbyteorder("="), copy=True))


def _rebuild_pickled(cls, data, dtype_name, shape, requires_grad):
    """Unpickles a tensor pickled by Tensor.__reduce_ex__ (a plain Tensor or a subclass such as Parameter)."""
    numel = 1
    for s in shape:
        numel *= s
    t = tensor_from_bytes(data, dtype_name, numel).reshape(list(shape))
    if cls is not Tensor:
        return cls(t, requires_grad)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _reduce_tensor(t, protocol=2):
    """Tensor.__reduce_ex__: the values, dtype, shape and requires_grad of a (CPU copy of the) tensor."""
    host = t.detach().cpu().contiguous()
    return (_rebuild_pickled, (type(t), tensor_bytes(host), _dtype_name(t.dtype), tuple(t.shape), t.requires_grad))


# ---------------------------------------------------------------------------------------------------------------
# writing

class _TorchGlobal:
    """A stand-in for a torch global (torch._utils._rebuild_tensor_v2, torch.FloatStorage, torch.float32):
    pickled as a GLOBAL opcode naming it, so torch resolves it on load."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # never called: pickle only checks that a reduce function is callable
        raise RuntimeError(f"{self.module}.{self.name} is a stand-in for pickling")


_GLOBALS = {}


def _torch_name(module, name):
    """The (cached) stand-in for torch global module.name."""
    return _GLOBALS.setdefault((module, name), _TorchGlobal(module, name))


_REBUILD_V2 = _TorchGlobal("torch._utils", "_rebuild_tensor_v2")
_REBUILD_PARAMETER = _TorchGlobal("torch._utils", "_rebuild_parameter")
_TORCH_DEVICE = _TorchGlobal("torch", "device")


class _StorageRef:
    def __init__(self, key, dtype_name, numel):
        self.key, self.dtype_name, self.numel = key, dtype_name, numel


class _Pickler(pickle._Pickler):
    """Pickles loom tensors, dtypes and devices as torch's; everything else as usual."""

    def __init__(self, file, storages):
        super().__init__(file, protocol=_PROTOCOL)
        self.storages = storages  # storage identity -> (_StorageRef, 1-D tensor of the whole storage)

    def save_global(self, obj, name=None):
        if isinstance(obj, _TorchGlobal):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
            self.memoize(obj)
            return
        super().save_global(obj, name)

    def persistent_id(self, obj):
        if isinstance(obj, _StorageRef):
            return ("storage", _torch_name("torch", _STORAGES[obj.dtype_name][0]), str(obj.key), "cpu", obj.numel)
        return None

    def reducer_override(self, obj):
        if isinstance(obj, Tensor):
            from loom.nn.parameter import Parameter
            t = obj.detach()
            ref = self.storage_of(t)
            args = (ref, t.storage_offset(), tuple(t.shape), tuple(t.stride()), bool(obj.requires_grad),
                    collections.OrderedDict())
            if isinstance(obj, Parameter):
                plain = _RebuiltTensor(args)
                return (_REBUILD_PARAMETER, (plain, bool(obj.requires_grad), collections.OrderedDict()))
            return (_REBUILD_V2, args)
        if isinstance(obj, _RebuiltTensor):
            return (_REBUILD_V2, obj.args[:4] + (False, obj.args[5]))
        if isinstance(obj, _C.device):
            return (_TORCH_DEVICE, (str(obj),))
        return NotImplemented

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, _C.dtype):  # a dtype is a bare GLOBAL (torch.float32), as torch pickles it
            obj = _torch_name("torch", _dtype_name(obj))
        if isinstance(obj, _TorchGlobal):
            memo = self.memo.get(id(obj))
            if memo is not None:
                return self.write(self.get(memo[0]))
            return self.save_global(obj)
        return super().save(obj, save_persistent_id)

    def storage_of(self, t):
        """The _StorageRef of t's storage: tensors that share memory get the same one (so views stay views)."""
        if t.numel() == 0:
            key = ("empty", id(t))
        else:
            base = t.data_ptr() - t.storage_offset() * t.element_size()
            key = (base, _dtype_name(t.dtype), str(t.device))
        extent = t.storage_offset() + 1 + sum((s - 1) * st for s, st in zip(t.shape, t.stride())) if t.numel() else 0
        entry = self.storages.get(key)
        if entry is None:
            entry = [_StorageRef(len(self.storages), _dtype_name(t.dtype), 0), t]
            self.storages[key] = entry
        if extent > entry[0].numel:
            entry[0].numel, entry[1] = extent, t
        return entry[0]


class _RebuiltTensor:
    """The plain tensor inside a pickled Parameter (torch._utils._rebuild_parameter(tensor, requires_grad, hooks))."""

    def __init__(self, args):
        self.args = args


def _storage_data(ref, t):
    """The bytes of the first ref.numel elements of t's storage."""
    whole = t.as_strided((ref.numel,), (1,), 0) if ref.numel else t.reshape(-1)
    return tensor_bytes(whole.cpu().contiguous())


def _aligned_extra(fp_pos, name):
    """A zip extra field that pads the local header so the entry's data starts at a multiple of 64 (as torch's
    writer does, so readers can map the data in place)."""
    header = 30 + len(name.encode("utf-8")) + 4
    pad = -(fp_pos + header) % 64
    return struct.pack("<HH", 0x4246, pad) + b"Z" * pad  # 'FB', the id torch's writer uses


def write_zip(obj, fileobj):
    """Writes `obj` in PyTorch's zip format to the binary file object `fileobj`."""
    storages = {}
    pickled = io.BytesIO()
    _Pickler(pickled, storages).dump(obj)
    records = [("archive/data.pkl", pickled.getvalue()), ("archive/byteorder", b"little")]
    for ref, t in storages.values():
        records.append((f"archive/data/{ref.key}", _storage_data(ref, t)))
    records += [("archive/version", b"3\n"), ("archive/.data/version", b"3\n")]
    with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in records:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            try:
                info.extra = _aligned_extra(zf.fp.tell(), name)
            except (AttributeError, OSError):  # an unseekable file: no alignment
                pass
            zf.writestr(info, data)


# ---------------------------------------------------------------------------------------------------------------
# reading

class _Storage:
    def __init__(self, data, location):
        self.data, self.location = data, location


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    size, stride = list(size), list(stride)
    if any(s == 0 for s in size):
        t = _C.empty(size, dtype=storage.data.dtype)
    else:
        t = storage.data.as_strided(size, stride, storage_offset)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _rebuild_tensor_v2(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    from loom.nn.parameter import Parameter
    return Parameter(data, requires_grad)


def _rebuild_from_type_v2(func, new_type, args, state):
    result = func(*args)
    if new_type is not Tensor and isinstance(new_type, type) and issubclass(new_type, Tensor):
        result = new_type(result)
    if state:
        result.__dict__.update(state if isinstance(state, dict) else state[0] or {})
    return result


class _StorageType:
    def __init__(self, dtype_name):
        self.dtype_name = dtype_name


def _torch_global(module, name):
    """loom's counterpart of a torch global that tensors, storages, dtypes and devices pickle as (or None)."""
    if module == "torch._utils":
        return {"_rebuild_tensor_v2": _rebuild_tensor_v2, "_rebuild_tensor": _rebuild_tensor,
                "_rebuild_parameter": _rebuild_parameter, "_rebuild_parameter_with_state": _rebuild_parameter}.get(name)
    if module == "torch._tensor" and name == "_rebuild_from_type_v2":
        return _rebuild_from_type_v2
    if module == "torch.nn.parameter" and name == "Parameter":
        from loom.nn.parameter import Parameter
        return Parameter
    if module == "torch._tensor" and name == "Tensor" or module == "torch" and name == "Tensor":
        return Tensor
    if module == "torch":
        if name in _DTYPE_BY_STORAGE:
            return _StorageType(_DTYPE_BY_STORAGE[name])
        dtype = getattr(_C, _DTYPE_ALIASES.get(name, name), None)
        if isinstance(dtype, _C.dtype):
            return dtype
        if name == "device":
            return _C.device
        if name == "Size":
            return tuple
    return None


# What weights_only=True lets a pickle name besides torch's tensor globals: plain containers (torch's list too).
_SAFE_BUILTINS = {("collections", "OrderedDict"): collections.OrderedDict,
                  ("collections", "Counter"): collections.Counter,
                  ("collections", "defaultdict"): collections.defaultdict}
for _name in ("set", "frozenset", "bytearray", "complex", "slice", "list", "dict", "tuple", "int", "float", "str",
              "bool", "bytes"):
    _SAFE_BUILTINS[("builtins", _name)] = getattr(builtins, _name)

_user_safe_globals = {}  # (module, name) -> object, from add_safe_globals
_scoped = threading.local()


def _global_key(entry):
    if isinstance(entry, tuple):
        obj, full = entry
        module, _, name = full.rpartition(".")
        return (module, name), obj
    return (getattr(entry, "__module__", None), getattr(entry, "__qualname__", getattr(entry, "__name__", None))), entry


def add_safe_globals(safe_globals):
    """Lets weights_only loads name these globals (classes or functions, or (object, "module.name") pairs)."""
    for entry in safe_globals:
        key, obj = _global_key(entry)
        _user_safe_globals[key] = obj


def get_safe_globals():
    return list(_user_safe_globals.values())


def clear_safe_globals():
    _user_safe_globals.clear()


@contextlib.contextmanager
def safe_globals(safe_globals):
    """Within the block (this thread), weights_only loads may also name these globals."""
    previous = getattr(_scoped, "globals", {})
    scoped = dict(previous)
    for entry in safe_globals:
        key, obj = _global_key(entry)
        scoped[key] = obj
    _scoped.globals = scoped
    try:
        yield
    finally:
        _scoped.globals = previous


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, zf, prefix, byteorder, weights_only, path):
        super().__init__(file, encoding="utf-8")
        self.zf, self.prefix, self.byteorder = zf, prefix, byteorder
        self.weights_only, self.path = weights_only, path
        self.loaded = {}

    def find_class(self, module, name):
        if (module, name) in _compat_pickle.NAME_MAPPING:  # protocol 2 names Python 2's modules (__builtin__)
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        torch_obj = _torch_global(module, name)
        if torch_obj is not None:
            return torch_obj
        key = (module, name)
        if key in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[key]
        scoped = getattr(_scoped, "globals", {})
        if key in scoped:
            return scoped[key]
        if key in _user_safe_globals:
            return _user_safe_globals[key]
        if self.weights_only:
            raise pickle.UnpicklingError(
                f"loom.load: '{self.path}': weights_only load failed: unsupported global {module}.{name}. Load "
                f"with weights_only=False only if you trust the file (it can run arbitrary code), or allow it with "
                f"loom.serialization.add_safe_globals([{name}]) or the loom.serialization.safe_globals([{name}]) "
                "context manager.")
        return super().find_class(module, name)

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage":
            raise pickle.UnpicklingError(f"loom.load: '{self.path}': unsupported persistent id {pid!r}")
        _, storage_type, key, location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"loom.load: '{self.path}': unsupported storage type {storage_type!r} "
                                         f"(loom reads {', '.join(sorted(_DTYPE_BY_STORAGE))})")
        if key not in self.loaded:
            name = f"{self.prefix}data/{key}"
            try:
                data = self.zf.read(name)
            except KeyError:
                raise ValueError(f"loom.load: '{self.path}': the archive has no record {name!r}") from None
            if numel < 0:
                raise ValueError(f"loom.load: '{self.path}': storage {key} has a negative size {numel}")
            self.loaded[key] = _Storage(tensor_from_bytes(data, storage_type.dtype_name, int(numel),
                                                          self.byteorder), location)
        return self.loaded[key]


def read_zip(fileobj, weights_only, path):
    """The object pickled in a PyTorch zip archive."""
    try:
        zf = zipfile.ZipFile(fileobj)
    except zipfile.BadZipFile as e:
        raise ValueError(f"loom.load: '{path}': not a valid PyTorch zip archive ({e})") from None
    with zf:
        pkl = [n for n in zf.namelist() if n.endswith("data.pkl") and n.count("/") == 1]
        if not pkl:
            raise ValueError(f"loom.load: '{path}': the archive has no <name>/data.pkl record (not a PyTorch "
                             "checkpoint)")
        prefix = pkl[0][: -len("data.pkl")]
        byteorder = "little"
        if f"{prefix}byteorder" in zf.namelist():
            byteorder = zf.read(f"{prefix}byteorder").decode("ascii", "replace").strip()
        unpickler = _Unpickler(io.BytesIO(zf.read(pkl[0])), zf, prefix, byteorder, weights_only, path)
        try:
            return unpickler.load()
        except (pickle.UnpicklingError, ValueError, TypeError, AttributeError, ImportError):
            raise
        except Exception as e:  # truncated pickles raise EOFError, IndexError, ...
            raise ValueError(f"loom.load: '{path}': malformed data.pkl ({type(e).__name__}: {e})") from None
