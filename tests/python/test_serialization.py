"""loom.save / loom.load against the reference `safetensors` library and PyTorch 2.13: both directions, the byte
layout, nested checkpoints, atomic writes, and hostile or corrupted files."""
import collections
import json
import math
import os
import pathlib
import random
import struct
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import safetensors
import safetensors.numpy
import safetensors.torch
import torch

import loom

# (loom dtype, torch dtype, numpy dtype or None when NumPy has no equivalent)
DTYPES = [
    (loom.float32, torch.float32, np.float32),
    (loom.float64, torch.float64, np.float64),
    (loom.float16, torch.float16, np.float16),
    (loom.bfloat16, torch.bfloat16, None),
    (loom.int64, torch.int64, np.int64),
    (loom.int32, torch.int32, np.int32),
    (loom.int16, torch.int16, np.int16),
    (loom.int8, torch.int8, np.int8),
    (loom.uint8, torch.uint8, np.uint8),
    (loom.bool, torch.bool, np.bool_),
]
TORCH_OF = {str(ld): td for ld, td, _ in DTYPES}


def make(shape, dtype, seed=0):
    """A loom tensor of `shape` with varied values of `dtype` (built through NumPy)."""
    rng = np.random.default_rng(seed)
    if dtype == loom.bool:
        return loom.from_numpy(np.array(rng.random(shape) > 0.5))
    if dtype in (loom.float32, loom.float64, loom.float16, loom.bfloat16):
        t = loom.from_numpy(np.array(rng.standard_normal(shape), dtype=np.float32))
        return t.to(dtype)
    info = np.iinfo(np.dtype(str(dtype).removeprefix("loom.")))
    return loom.from_numpy(np.array(rng.integers(info.min, info.max, size=shape, endpoint=True), dtype=info.dtype))


def to_torch(t):
    if t.dtype == loom.bfloat16:
        return torch.from_numpy(t.float().numpy().copy()).to(torch.bfloat16)
    return torch.from_numpy(np.array(t.numpy()))


def from_torch(t):
    if t.dtype == torch.bfloat16:
        return loom.from_numpy(t.float().numpy().copy()).to(loom.bfloat16)
    return loom.from_numpy(t.numpy().copy())


def assert_same(loom_tensor, torch_tensor, name=""):
    assert TORCH_OF[str(loom_tensor.dtype)] == torch_tensor.dtype, name
    assert tuple(loom_tensor.shape) == tuple(torch_tensor.shape), name
    assert torch.equal(to_torch(loom_tensor), torch_tensor), name


def sample_dict():
    """Every dtype, 0-d, zero-size, non-contiguous views, views sharing storage, a large-ish tensor."""
    d = {}
    for i, (ld, _, _) in enumerate(DTYPES):
        name = str(ld).removeprefix("loom.")
        d[f"layers.{i}.{name}"] = make((3, 5), ld, seed=i)
        d[f"scalar.{name}"] = make((), ld, seed=10 + i)
        d[f"empty.{name}"] = make((0, 4), ld, seed=20 + i)
    base = make((6, 8), loom.float32, seed=99)
    d["base"] = base
    d["base.transposed"] = base.t()  # non-contiguous view sharing base's storage
    d["base.strided"] = base[1:5, ::3]  # non-contiguous, offset into the storage
    d["big"] = make((256, 1031), loom.float32, seed=7)  # ~1 MB
    d["B_upper"] = make((2,), loom.int64, seed=5)  # name ordering: bytewise, uppercase before lowercase
    d["é.unicode"] = make((2,), loom.int64, seed=6)
    return d


# ------------------------------------------------------------------ interoperability with the reference


def test_loom_file_read_by_safetensors_torch(tmp_path):
    d = sample_dict()
    path = tmp_path / "a.safetensors"
    loom.save(d, path)
    loaded = safetensors.torch.load_file(str(path))
    assert set(loaded) == set(d)
    for name, t in d.items():
        assert_same(t, loaded[name], name)
    assert not loaded["base.transposed"].is_contiguous() or loaded["base.transposed"].shape == (8, 6)


def test_loom_file_read_by_safetensors_numpy(tmp_path):
    d = {k: v for k, v in sample_dict().items() if v.dtype != loom.bfloat16}
    path = tmp_path / "a.safetensors"
    loom.save(d, path, metadata={"framework": "loom"})
    loaded = safetensors.numpy.load_file(str(path))
    assert set(loaded) == set(d)
    for name, t in d.items():
        expected = np.array(t.numpy())
        assert loaded[name].dtype == expected.dtype, name
        assert loaded[name].shape == expected.shape, name
        np.testing.assert_array_equal(loaded[name], expected, err_msg=name)
    with safetensors.safe_open(str(path), framework="np") as f:
        assert f.metadata() == {"framework": "loom"}


def test_reference_files_load_in_loom(tmp_path):
    d = sample_dict()
    reference = {name: to_torch(t).contiguous() for name, t in d.items()}
    safetensors.torch.save_file(reference, str(tmp_path / "t.safetensors"), metadata={"format": "pt"})
    loaded = loom.load(tmp_path / "t.safetensors")
    assert isinstance(loaded, dict) and set(loaded) == set(reference)
    for name, t in reference.items():
        assert_same(loaded[name], t, name)
        assert loaded[name].is_contiguous()

    # C order explicitly: the reference writes a Fortran-ordered array's memory as if it were C-ordered.
    arrays = {name: np.array(t.numpy(), order="C") for name, t in d.items() if t.dtype != loom.bfloat16}
    safetensors.numpy.save_file(arrays, str(tmp_path / "n.safetensors"))
    loaded = loom.load(str(tmp_path / "n.safetensors"))
    assert set(loaded) == set(arrays)
    for name, a in arrays.items():
        np.testing.assert_array_equal(np.array(loaded[name].numpy()), a, err_msg=name)
        assert np.array(loaded[name].numpy()).dtype == a.dtype


def read_header(path):
    raw = pathlib.Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return n, raw[8:8 + n], raw[8 + n:]


def test_bytes_identical_to_reference(tmp_path):
    d = sample_dict()
    reference = {name: to_torch(t).contiguous() for name, t in d.items()}
    for metadata in (None, {"format": "pt"}):
        loom.save(d, tmp_path / "loom.safetensors", metadata=metadata)
        safetensors.torch.save_file(reference, str(tmp_path / "ref.safetensors"), metadata=metadata)
        assert (tmp_path / "loom.safetensors").read_bytes() == (tmp_path / "ref.safetensors").read_bytes()
    # The reference orders several metadata keys by hash (a different order per process), so with more than
    # one key only the parsed headers and the data can be compared.
    metadata = {f"key{i}": f"value {i}" for i in range(8)}
    loom.save(d, tmp_path / "loom.safetensors", metadata=metadata)
    safetensors.torch.save_file(reference, str(tmp_path / "ref.safetensors"), metadata=metadata)
    n_loom, header_loom, data_loom = read_header(tmp_path / "loom.safetensors")
    n_ref, header_ref, data_ref = read_header(tmp_path / "ref.safetensors")
    assert n_loom == n_ref and n_loom % 8 == 0
    assert json.loads(header_loom) == json.loads(header_ref)
    assert data_loom == data_ref


def test_empty_dict(tmp_path):
    loom.save({}, tmp_path / "e.safetensors")
    assert (tmp_path / "e.safetensors").read_bytes() == b"\x08" + b"\x00" * 7 + b"{}      "
    assert safetensors.torch.load_file(str(tmp_path / "e.safetensors")) == {}
    assert loom.load(tmp_path / "e.safetensors") == {}


def test_requires_grad_is_saved_detached(tmp_path):
    w = loom.randn(3, 4, requires_grad=True)
    y = w * 2  # a non-leaf with history
    loom.save({"w": w, "y": y}, tmp_path / "g.safetensors")
    loaded = loom.load(tmp_path / "g.safetensors")
    assert not loaded["w"].requires_grad and not loaded["y"].requires_grad
    assert_same(loaded["y"], to_torch(w.detach()) * 2)


def test_aliases_and_path_types(tmp_path):
    d = {"a": make((2, 3), loom.float32)}
    loom.save_file(d, str(tmp_path / "s.safetensors"), metadata={"k": "v"})
    assert loom.serialization.load_metadata(tmp_path / "s.safetensors") == {"k": "v"}
    assert_same(loom.load_file(pathlib.Path(tmp_path / "s.safetensors"))["a"], to_torch(d["a"]))
    loom.save(d, os.fsencode(str(tmp_path / "b.safetensors")))
    assert_same(loom.load(tmp_path / "b.safetensors")["a"], to_torch(d["a"]))
    with pytest.raises(TypeError, match="loom.save_file: expected a dict of str to Tensor"):
        loom.save_file({"a": [1]}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="file path"):
        loom.save(d, 3)


# ------------------------------------------------------------------ nested checkpoints


def nested_state():
    params = [make((4, 3), loom.float32, seed=1), make((3,), loom.float32, seed=2)]
    return {
        "model": {"fc.weight": params[0], "fc.bias": params[1], "bn.num_batches_tracked": loom.tensor(7)},
        "optimizer": {  # the layout torch.optim.AdamW.state_dict() uses: int keys for the state
            "state": {
                0: {"step": loom.tensor(12.0), "exp_avg": make((4, 3), loom.float32, 3),
                    "exp_avg_sq": make((4, 3), loom.float32, 4)},
                1: {"step": loom.tensor(12.0), "exp_avg": make((3,), loom.float32, 5),
                    "exp_avg_sq": make((3,), loom.float32, 6)},
            },
            "param_groups": [{"lr": 3e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1,
                              "amsgrad": False, "maximize": False, "foreach": None, "params": [0, 1]}],
        },
        "scheduler": {"last_epoch": 12, "base_lrs": [3e-4], "_last_lr": [2.5e-4], "lr_lambdas": [None]},
        "rng": {"loom": loom.get_rng_state(), "python": random.getstate(), "big": 2**100 + 1},
        "data": {"epoch": 2, "position": 640, "order": make((10,), loom.int64, 8), "name": "fortunes ✓"},
        "numbers": [0.0, -0.0, 1.5, float("nan"), float("inf"), -float("inf"), -7, True, None, "", []],
        "dtype": loom.bfloat16,
        "mixed keys": {1: "int", "1": "str", -3: {}, "a.b": loom.zeros(1)},
        "a.b": loom.zeros(1),
        "a": {"b": loom.ones(1)},  # its tensor path "a.b" collides with the key above
        "empty": {},
        "t": (),
        "classes": {"milestones": collections.Counter({30: 1, 80: 2}), "ordered": collections.OrderedDict(b=1, a=2),
                    "state": collections.defaultdict(dict, {0: {"momentum_buffer": loom.ones(2)}}),
                    "lists": collections.defaultdict(list), "set": {1, "x", (2, 3)}, "frozen": frozenset([4.5])},
    }


def assert_nested_equal(a, b, where="root"):
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, loom.Tensor):
        assert a.dtype == b.dtype and tuple(a.shape) == tuple(b.shape), where
        assert torch.equal(to_torch(a), to_torch(b)), where
    elif isinstance(a, dict):
        assert list(a.keys()) == list(b.keys()), where
        assert getattr(a, "default_factory", None) == getattr(b, "default_factory", None), where
        for k in a:
            assert_nested_equal(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (set, frozenset)):
        assert a == b, where
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_nested_equal(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    elif isinstance(a, float):
        assert a == b and math.copysign(1, a) == math.copysign(1, b), where
    else:
        assert a == b, where


def test_nested_round_trip(tmp_path):
    state = nested_state()
    loom.save(state, tmp_path / "ckpt.safetensors", metadata={"run": "test"})
    loaded = loom.load(tmp_path / "ckpt.safetensors")
    assert_nested_equal(state, loaded)
    assert list(loaded["optimizer"]["state"].keys()) == [0, 1]  # int keys stay ints
    random.setstate(loaded["rng"]["python"])  # Python's RNG state comes back usable
    assert loaded["classes"]["milestones"][7] == 0  # still a Counter (MultiStepLR relies on it)
    loaded["classes"]["lists"]["new"].append(1)  # still a defaultdict(list)
    metadata = loom.serialization.load_metadata(tmp_path / "ckpt.safetensors")
    assert metadata["run"] == "test" and loom.serialization.STRUCTURE_KEY in metadata


def count_tensors(obj):
    if isinstance(obj, loom.Tensor):
        return 1
    if isinstance(obj, dict):
        return sum(count_tensors(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(count_tensors(v) for v in obj)
    return 0


def test_nested_file_is_plain_safetensors(tmp_path):
    state = nested_state()
    loom.save(state, tmp_path / "ckpt.safetensors")
    loaded = safetensors.torch.load_file(str(tmp_path / "ckpt.safetensors"))
    assert_same(state["model"]["fc.weight"], loaded["model.fc.weight"])
    assert_same(state["optimizer"]["state"][1]["exp_avg_sq"], loaded["optimizer.state.1.exp_avg_sq"])
    assert_same(state["a"]["b"], loaded["a.b#1"])  # the colliding path got a suffix
    assert len(loaded) == count_tensors(state) == 14


def test_single_tensor_and_torch_optimizer_state(tmp_path):
    t = make((3, 2), loom.int32)
    loom.save(t, tmp_path / "t.safetensors")
    assert_nested_equal(t, loom.load(tmp_path / "t.safetensors"))
    # A real torch optimizer state dict, converted to loom tensors, round-trips with its int keys.
    p = torch.nn.Parameter(torch.randn(3))
    opt = torch.optim.AdamW([p], lr=0.01)
    p.sum().backward()
    opt.step()
    sd = opt.state_dict()
    converted = {"state": {k: {n: from_torch(v) for n, v in s.items()} for k, s in sd["state"].items()},
                 "param_groups": sd["param_groups"]}
    loom.save(converted, tmp_path / "opt.safetensors")
    loaded = loom.load(tmp_path / "opt.safetensors")
    assert_nested_equal(converted, loaded)
    back = {"state": {k: {n: to_torch(v) for n, v in s.items()} for k, s in loaded["state"].items()},
            "param_groups": loaded["param_groups"]}
    opt.load_state_dict(back)  # PyTorch accepts the loaded structure as is
    assert opt.state_dict()["param_groups"][0]["betas"] == sd["param_groups"][0]["betas"]


def test_unsupported_objects_raise_naming_the_path(tmp_path):
    with pytest.raises(TypeError, match=r"cannot save an object of type ndarray at \['model'\]\[0\]"):
        loom.save({"model": [np.zeros(2)]}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match=r"defaultdict whose default_factory is <function"):
        loom.save({"d": collections.defaultdict(lambda: 0)}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match=r"dict keys must be str or int, got 1.5"):
        loom.save({"model": {1.5: 1}}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="dict keys must be str or int, got True"):
        loom.save({True: 1}, tmp_path / "x.safetensors")
    cycle = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="reference cycle"):
        loom.save({"c": cycle}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="metadata must be a dict of str to str"):
        loom.save({}, tmp_path / "x.safetensors", metadata={"a": 1})
    with pytest.raises(ValueError, match="reserved"):
        loom.save({}, tmp_path / "x.safetensors", metadata={"loom.structure": "{}"})
    with pytest.raises(ValueError, match=r"\"__metadata__\" is reserved"):
        loom.save({"__metadata__": loom.zeros(1)}, tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match="the header would be 1000000.. bytes, more than the 100000000"):
        loom.save({"w": loom.zeros(1)}, tmp_path / "x.safetensors", metadata={"big": "x" * 100_000_000})
    assert os.listdir(tmp_path) == []
    with pytest.raises(FileNotFoundError, match="no such file"):
        loom.load(tmp_path / "missing.safetensors")


def test_malformed_structure_metadata(tmp_path):
    path = tmp_path / "m.safetensors"
    for structure, message in [
        ("{", "invalid JSON"),
        ('{"format":"other","version":1,"root":null}', "not a loom nested-object layout"),
        ('{"format":"loom.nested","version":99,"root":null}', "unsupported version 99"),
        ('{"format":"loom.nested","version":1,"root":{"type":"tensor","name":"nope"}}', "not in the file"),
        ('{"format":"loom.nested","version":1,"root":{"type":"pickle"}}', "unknown node type 'pickle'"),
        ('{"format":"loom.nested","version":1,"root":{"type":"dict","items":[[[1],2]]}}', "dict item"),
        ('{"format":"loom.nested","version":1,"root":{"type":"dict","items":[],"class":"X"}}', "unknown dict class"),
        ('{"format":"loom.nested","version":1,"root":{"type":"set","items":[[1]]}}', "unhashable"),
        ('{"format":"loom.nested","version":1,"root":' + "[" * 5000 + "]" * 5000 + "}", "too deeply|invalid JSON"),
    ]:
        safetensors.numpy.save_file({}, str(path), metadata={"loom.structure": structure})
        with pytest.raises(ValueError, match=f"loom.load: '{path}': malformed 'loom.structure' metadata: .*({message})"):
            loom.load(path)


# ------------------------------------------------------------------ atomic writes


def leftovers(directory):
    return sorted(name for name in os.listdir(directory) if ".tmp-" in name)


def test_failed_save_keeps_old_checkpoint(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    loom.save({"w": make((3,), loom.float32)}, path)
    before = path.read_bytes()

    class Exploding:
        pass

    with pytest.raises(TypeError):
        loom.save({"model": {"w": loom.zeros(3)}, "bad": Exploding()}, path)
    with pytest.raises(RuntimeError, match=r"save_safetensors: cannot write '.*missing/ckpt.safetensors': could not create"):
        loom.save({"w": loom.zeros(3)}, tmp_path / "missing" / "ckpt.safetensors")
    # The target is a directory: the data is written to a temporary file, then the rename fails.
    (tmp_path / "adir" / "inner").mkdir(parents=True)
    with pytest.raises(RuntimeError, match=r"'.*adir': rename of the temporary file failed"):
        loom.save({"w": loom.zeros(3)}, tmp_path / "adir")
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []
    assert sorted(os.listdir(tmp_path)) == ["adir", "ckpt.safetensors"]


def test_disk_full_keeps_old_checkpoint(tmp_path):
    """A file-size limit makes write() fail with EFBIG half-way through, like a full disk."""
    path = tmp_path / "ckpt.safetensors"
    loom.save({"w": make((3,), loom.float32)}, path)
    before = path.read_bytes()
    script = textwrap.dedent("""
        import resource, signal, sys
        import loom
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
        try:
            loom.save({"big": loom.zeros(1_000_000)}, sys.argv[1])
        except RuntimeError as e:
            print(e)
            sys.exit(0)
        sys.exit(3)
    """)
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert str(path) in result.stdout and "write failed: File too large" in result.stdout
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_concurrent_readers_see_whole_files(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    versions = [{"x": loom.zeros(300_000)}, {"x": loom.ones(500_000), "y": loom.ones(3)}]
    loom.save(versions[0], path)
    stop = threading.Event()
    errors, seen = [], set()

    def reader():
        while not stop.is_set():
            try:
                d = loom.load(path)
                kind = len(d) - 1
                assert set(d) == set(versions[kind]) and d["x"].shape == versions[kind]["x"].shape
                assert float(d["x"].sum()) == float(versions[kind]["x"].sum())
                seen.add(kind)
            except Exception as e:  # noqa: BLE001
                errors.append(e)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for i in range(30):
            loom.save(versions[(i + 1) % 2], path)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert seen  # the readers did read
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------ hostile and corrupted files


def st_bytes(header, data=b"", length=None):
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def info(dtype, shape, offsets):
    return {"dtype": dtype, "shape": shape, "data_offsets": offsets}


HOSTILE = [
    ("too_small", b"\x01\x02\x03", "too few for the 8-byte header length"),
    ("huge_header_length", struct.pack("<Q", 2**63 + 5) + b"{}", "larger than the 100000000-byte limit"),
    ("header_length_past_eof", st_bytes(b'{"a":1}', length=1000), "runs past the end of the file"),
    ("truncated_buffer", st_bytes({"x": info("F32", [2, 3], [0, 24])}, b"\0" * 20), "out of range"),
    ("invalid_json", st_bytes(b'{"x": {"dtype": "F32",'), "not valid JSON"),
    ("invalid_utf8", st_bytes(b'{"\xff\xfe": 1}'), "not valid UTF-8"),
    ("non_dict_header", st_bytes(b"[1, 2, 3]"), "not a JSON object"),
    ("non_dict_entry", st_bytes({"x": [1, 2]}), "tensor 'x': expected an object"),
    ("unknown_dtype", st_bytes({"x": info("F128", [2], [0, 32])}, b"\0" * 32), 'unknown or unsupported dtype "F128"'),
    ("unsupported_dtype", st_bytes({"x": info("U16", [2], [0, 4])}, b"\0" * 4), 'unknown or unsupported dtype "U16"'),
    ("dtype_not_string", st_bytes({"x": info(7, [2], [0, 8])}, b"\0" * 8), '"dtype" must be a string'),
    ("missing_offsets", st_bytes({"x": {"dtype": "F32", "shape": [2]}}, b"\0" * 8), 'missing "data_offsets"'),
    ("offsets_out_of_range", st_bytes({"x": info("F32", [250], [0, 1000])}, b"\0" * 8), "out of range"),
    ("end_before_begin", st_bytes({"x": info("F32", [2], [8, 0])}, b"\0" * 8), "end before they begin"),
    ("offsets_not_pair", st_bytes({"x": info("F32", [2], [0])}, b"\0" * 8), "must be \\[begin, end\\]"),
    ("negative_offset", st_bytes({"x": info("F32", [2], [-8, 0])}, b"\0" * 8), "begin is negative"),
    ("overlapping", st_bytes({"x": info("F32", [2], [0, 8]), "y": info("F32", [2], [4, 12])}, b"\0" * 12),
     "overlap in the data buffer"),
    ("gap", st_bytes({"x": info("F32", [2], [0, 8]), "y": info("F32", [2], [12, 20])}, b"\0" * 20),
     "gap in the data buffer"),
    ("not_starting_at_zero", st_bytes({"x": info("F32", [2], [4, 12])}, b"\0" * 12), "gap in the data buffer"),
    ("trailing_bytes", st_bytes({"x": info("F32", [2], [0, 8])}, b"\0" * 16), "trailing bytes"),
    ("shape_mismatch", st_bytes({"x": info("F32", [2, 3], [0, 20])}, b"\0" * 20), "need 24 bytes"),
    ("negative_dim", st_bytes({"x": info("F32", [2, -3], [0, 8])}, b"\0" * 8), "negative dimension -3"),
    ("overflowing_dims", st_bytes({"x": info("F64", [2**32, 2**32], [0, 8])}, b"\0" * 8), "overflows"),
    ("overflowing_bytes", st_bytes({"x": info("F64", [2**61], [0, 8])}, b"\0" * 8), "overflows"),
    ("dim_beyond_u64", st_bytes(b'{"x":{"dtype":"U8","shape":[36893488147419103232],"data_offsets":[0,1]}}', b"\0"),
     "non-negative integer that fits in 64 bits"),
    ("float_dim", st_bytes({"x": info("U8", [1.5], [0, 1])}, b"\0"), "non-negative integer"),
    ("duplicate_keys", st_bytes(b'{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                                b'"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\0"), "duplicate key 'x'"),
    ("metadata_not_strings", st_bytes({"__metadata__": {"a": 1}}), "must be a string"),
    ("deep_nesting", st_bytes(b'{"z":' + b"[" * 1000 + b"]" * 1000 + b"}"), "deeper than 64 levels"),
]
# Files the reference library accepts although loom rejects them: duplicate keys (the reference silently keeps
# one; loom is stricter) and dtypes loom has no equivalent for (U16, U32, U64, F8_*).
REFERENCE_ACCEPTS = {"duplicate_keys", "unsupported_dtype"}


@pytest.mark.parametrize("name,raw,message", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_file_raises_naming_the_file(tmp_path, name, raw, message):
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=f"load_safetensors: '{path}': .*{message}"):
        loom.load(path)
    if name not in REFERENCE_ACCEPTS:  # the reference agrees the file is invalid
        with pytest.raises(Exception):
            safetensors.numpy.load_file(str(path))


def test_not_a_regular_file(tmp_path):
    with pytest.raises(ValueError, match=f"load_safetensors: '{tmp_path}': not a regular file"):
        loom.load(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ValueError, match="not a regular file"):  # without blocking on the open
        loom.load(tmp_path / "fifo")


def test_bool_bytes_are_normalised(tmp_path):
    path = tmp_path / "b.safetensors"
    path.write_bytes(st_bytes({"m": info("BOOL", [3], [0, 3])}, b"\x00\x07\x01"))
    assert loom.load(path)["m"].numpy().tolist() == [False, True, True]


FUZZ = textwrap.dedent("""
    import random, sys
    import loom
    source, target, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    good = open(source, "rb").read()
    header_end = 8 + int.from_bytes(good[:8], "little")
    rng = random.Random(1234)
    loaded = rejected = 0
    for i in range(count):
        raw = bytearray(good)
        kind = rng.random()
        if kind < 0.15:
            raw = raw[:rng.randrange(len(raw))]
        elif kind < 0.25:
            raw[:8] = rng.randrange(2**64).to_bytes(8, "little") if rng.random() < 0.5 else \\
                (int.from_bytes(raw[:8], "little") + rng.randint(-9, 9)).to_bytes(8, "little", signed=True)
        elif kind < 0.5:  # keeps the JSON valid: exercises the offset, shape and structure checks
            digits = [i for i in range(8, header_end) if 48 <= raw[i] <= 57]
            for _ in range(rng.randint(1, 3)):
                raw[rng.choice(digits)] = rng.choice(b"0123456789")
        else:
            for _ in range(rng.randint(1, 4)):
                at = rng.randrange(header_end) if rng.random() < 0.8 else rng.randrange(len(raw))
                raw[at] = rng.randrange(256) if rng.random() < 0.5 else raw[at] ^ (1 << rng.randrange(8))
        open(target, "wb").write(bytes(raw))
        try:
            loom.load(target)
            loaded += 1
        except (ValueError, RuntimeError) as e:
            assert target in str(e), e
            rejected += 1
    print(loaded, rejected)
""")


def test_random_corruption_fuzz(tmp_path):
    """500 flipped/truncated variants of a valid checkpoint: each loads or raises a loom error, never crashes."""
    source = tmp_path / "good.safetensors"
    state = nested_state()
    state["extra"] = {k: v for k, v in sample_dict().items() if not k.startswith("big")}
    loom.save(state, source, metadata={"note": "fuzz"})
    result = subprocess.run([sys.executable, "-c", FUZZ, str(source), str(tmp_path / "bad.safetensors"), "500"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    loaded, rejected = map(int, result.stdout.split())
    assert loaded + rejected == 500 and rejected > 250


# ------------------------------------------------------------------ with loom.nn / loom.optim / loom.utils.data


def test_training_checkpoint_round_trip_and_resume(tmp_path):
    """Model + optimizer + scheduler + data loader + RNG through loom.save/load: every load_state_dict accepts
    what loom.load returns, and the resumed run's losses equal the uninterrupted run's, step for step."""
    nn = pytest.importorskip("loom.nn")
    optim = pytest.importorskip("loom.optim")
    data = pytest.importorskip("loom.utils.data")
    if not hasattr(nn, "Linear") or not hasattr(optim, "AdamW") or not hasattr(data, "DataLoader"):
        pytest.skip("needs loom.nn, loom.optim and loom.utils.data")

    def build():
        loom.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        opt = optim.AdamW(model.parameters(), lr=1e-2)
        sched = optim.lr_scheduler.MultiStepLR(opt, milestones=[3, 6], gamma=0.5)
        x = loom.from_numpy(np.array(np.random.default_rng(0).standard_normal((64, 4)), dtype=np.float32))
        generator = loom.Generator()
        generator.manual_seed(1)
        loader = data.DataLoader(data.TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8, shuffle=True,
                                 generator=generator)
        return model, opt, sched, loader

    def train(objects, batches, steps):
        model, opt, sched, _ = objects
        losses = []
        for _ in range(steps):
            x, y = next(batches)
            loss = ((model(x) - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss))
        return losses

    objects = build()
    batches = iter(objects[3])
    train(objects, batches, 5)
    model, opt, sched, loader = objects
    ckpt = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "loader": loader.state_dict(), "rng": loom.get_rng_state(), "step": 5}
    loom.save(ckpt, tmp_path / "ckpt.safetensors")
    loaded = loom.load(tmp_path / "ckpt.safetensors")
    assert_nested_equal(ckpt, loaded)  # before training on: state_dict() tensors are the live parameters
    expected = train(objects, batches, 3)

    resumed = build()
    resumed[0].load_state_dict(loaded["model"])
    resumed[1].load_state_dict(loaded["optimizer"])
    resumed[2].load_state_dict(loaded["scheduler"])
    resumed[3].load_state_dict(loaded["loader"])
    loom.set_rng_state(loaded["rng"])
    assert train(resumed, iter(resumed[3]), 3) == expected


# ------------------------------------------------------------------ many tensors (header parse is linear)


def many_tensor_file(path, count):
    """A valid file of `count` one-element float32 tensors, written byte by byte (as the reference lays it out)."""
    header = {f"t{i:07d}": {"dtype": "F32", "shape": [1], "data_offsets": [4 * i, 4 * i + 4]} for i in range(count)}
    text = json.dumps(header, separators=(",", ":")).encode()
    data = np.arange(count, dtype=np.float32).tobytes()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


def test_many_tensors_load_in_linear_time(tmp_path):
    """100k tensors: loom.load takes time comparable to the safetensors library (the old duplicate-key check was
    quadratic: ~50 s here). The bound is loose (20x the reference, measured in this test) so a busy machine passes
    and a quadratic parse fails."""
    import time
    path = tmp_path / "many.safetensors"
    count = 100_000
    many_tensor_file(path, count)
    start = time.perf_counter()
    reference = safetensors.numpy.load_file(str(path))
    reference_seconds = time.perf_counter() - start
    start = time.perf_counter()
    loaded = loom.load(path)
    loom_seconds = time.perf_counter() - start
    assert len(loaded) == len(reference) == count
    for name in ("t0000000", "t0054321", f"t{count - 1:07d}"):
        np.testing.assert_array_equal(loaded[name].numpy(), reference[name])
    assert loom_seconds < 20 * reference_seconds + 0.5, (loom_seconds, reference_seconds)


def test_duplicate_keys_rejected_at_any_depth(tmp_path):
    """The linear duplicate-key check still sees duplicates among tensors, inside a tensor's entry and in the
    metadata, and keys repeated in different objects are fine."""
    entry = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}'
    cases = {
        "tensors": '{"a":' + entry + ',"b":' + entry.replace("0,4", "4,8") + ',"a":' + entry + '}',
        "fields": '{"a":{"dtype":"F32","shape":[1],"dtype":"F32","data_offsets":[0,4]}}',
        "metadata": '{"__metadata__":{"k":"1","k":"2"},"a":' + entry + '}',
    }
    for what, text in cases.items():
        path = tmp_path / f"{what}.safetensors"
        path.write_bytes(struct.pack("<Q", len(text)) + text.encode() + bytes(8))
        key = {"tensors": "a", "fields": "dtype", "metadata": "k"}[what]
        with pytest.raises(ValueError, match=f"load_safetensors: '.*{what}.safetensors': duplicate key '{key}'"):
            loom.load(path)
    # The same field names in two tensors, and metadata keys equal to tensor names, are not duplicates.
    text = '{"__metadata__":{"a":"x"},"a":' + entry + ',"b":' + entry.replace("0,4", "4,8") + '}'
    path = tmp_path / "fine.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text.encode() + np.array([1, 2], np.float32).tobytes())
    assert {k: v.tolist() for k, v in loom.load(path).items()} == {"a": [1.0], "b": [2.0]}


# ------------------------------------------------------------------ stale temporaries of killed writers


def dead_pid():
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def age(path, seconds):
    then = os.stat(path).st_mtime - seconds
    os.utime(path, (then, then))


def test_save_removes_temporaries_of_killed_writers(tmp_path):
    """A writer SIGKILLed mid-save leaves its temporary file; the next save to that target removes it once it is a
    minute old, and the new checkpoint is intact (read with the safetensors library)."""
    import signal
    import time
    path = tmp_path / "ckpt.safetensors"
    script = textwrap.dedent("""
        import sys
        import loom
        state = {f"w{i}": loom.full((1_000_000,), float(i)) for i in range(16)}
        print("ready", flush=True)
        while True:
            loom.save(state, sys.argv[1])
    """)
    for _attempt in range(3):  # the kill may land between two saves (no temporary file then): try again
        child = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ready"
            deadline = time.monotonic() + 60
            while not leftovers(tmp_path) and time.monotonic() < deadline:
                time.sleep(0.005)
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait()
            child.stdout.close()
        stale = leftovers(tmp_path)
        if stale:
            break
    assert len(stale) == 1 and stale[0].startswith(f".ckpt.safetensors.tmp-{child.pid}-"), stale
    # A fresh leftover may belong to a live writer on another host sharing the directory: it is kept.
    loom.save({"x": loom.arange(3.0)}, path)
    assert leftovers(tmp_path) == stale
    age(tmp_path / stale[0], 120)
    loom.save({"x": loom.arange(4.0)}, path)
    assert leftovers(tmp_path) == []
    np.testing.assert_array_equal(safetensors.numpy.load_file(str(path))["x"], np.arange(4.0, dtype=np.float32))


def test_stale_temporary_cleanup_is_conservative(tmp_path):
    """Only exact temporary names of the same target, a minute old, whose writer is gone, are removed. Kept: a live
    writer's file (pid 1 started long before), similar names, a dead writer's file touched just now. Removed: a
    dead writer's file, and one with this process's pid written before it started (pid reuse, as in a restarted
    container)."""
    me, dead = os.getpid(), dead_pid()
    stale = [f".ckpt.safetensors.tmp-{dead}-0123456789abcdef0", f".ckpt.safetensors.tmp-{me}-fedcba98765432107"]
    kept = [
        ".ckpt.safetensors.tmp-1-0123456789abcdef1",                # a live writer
        f".other.safetensors.tmp-{dead}-0123456789abcdef2",        # another target
        f".ckpt.safetensors.tmp-{dead}-0123456789abcdef",          # no counter: not our pattern
        f".ckpt.safetensors.tmp-{dead}-0123456789abcdeg3",         # not hex
        f".ckpt.safetensors.tmp-{dead}-0123456789abcdef3.bak",     # a suffix
        f"ckpt.safetensors.tmp-{dead}-0123456789abcdef4",          # not hidden
    ]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"partial")
        age(tmp_path / name, 3600 * 24 * 365 * 40 if name == stale[1] else 120)  # stale[1]: before our start
    young = f".ckpt.safetensors.tmp-{dead}-0123456789abcdef5"
    (tmp_path / young).write_bytes(b"partial")
    loom.save({"x": loom.ones(2)}, tmp_path / "ckpt.safetensors")
    assert leftovers(tmp_path) == sorted(kept + [young])
    assert safetensors.numpy.load_file(str(tmp_path / "ckpt.safetensors"))["x"].tolist() == [1.0, 1.0]
