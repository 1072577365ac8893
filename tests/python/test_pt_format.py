"""loom.save / loom.load in PyTorch's .pt zip format, against torch 2.13 in both directions."""
import collections
import io
import pickle

import numpy as np
import pytest
import torch

import loom
import loom.serialization

DTYPES = [("float32", np.float32), ("float64", np.float64), ("float16", np.float16), ("int64", np.int64),
          ("int32", np.int32), ("int16", np.int16), ("int8", np.int8), ("uint8", np.uint8), ("bool", np.bool_)]


def state(rng):
    sd = collections.OrderedDict()
    for name, np_dtype in DTYPES:
        sd[name] = (rng.standard_normal((3, 4)) * 50).astype(np_dtype)
    return sd


def to_loom(a):
    return loom.from_numpy(np.ascontiguousarray(a))


def test_loom_save_torch_load_every_dtype_views_and_nesting(tmp_path):
    rng = np.random.default_rng(0)
    arrays = state(rng)
    sd = {k: to_loom(v) for k, v in arrays.items()}
    sd["bfloat16"] = to_loom(arrays["float32"]).to(loom.bfloat16)
    base = loom.arange(24, dtype=loom.float32).reshape(4, 6)
    obj = {"sd": sd, "base": base, "row": base[1], "t": base.t(), "cols": base[:, 1::2],
           "nested": [(1, "a", base[2:]), {"x": 2.5, "dtype": loom.bfloat16}]}
    path = tmp_path / "ck.pt"
    loom.save(obj, path)
    got = torch.load(path)  # torch's own weights_only=True loader accepts it
    for name, a in arrays.items():
        assert got["sd"][name].dtype == getattr(torch, name)
        np.testing.assert_array_equal(got["sd"][name].numpy(), a)
    assert torch.equal(got["sd"]["bfloat16"], torch.from_numpy(arrays["float32"]).to(torch.bfloat16))
    assert got["t"].stride() == (1, 6) and torch.equal(got["cols"], got["base"][:, 1::2])
    got["base"][1, 1] = -7  # views of one tensor are still views of one storage
    assert got["row"][1] == -7 and got["t"][1, 1] == -7 and got["nested"][0][2][0, 0] == 12
    assert got["nested"][1] == {"x": 2.5, "dtype": torch.bfloat16} and got["nested"][0][:2] == (1, "a")


def test_torch_save_loom_load_every_dtype_views_and_nesting():
    rng = np.random.default_rng(1)
    arrays = state(rng)
    sd = collections.OrderedDict((k, torch.from_numpy(v)) for k, v in arrays.items())
    sd["bfloat16"] = torch.from_numpy(arrays["float32"]).to(torch.bfloat16)
    base = torch.arange(24.0).reshape(4, 6)
    obj = {"sd": sd, "base": base, "t": base.t(), "cols": base[:, ::2], "step": 7, "set": {1, 2},
           "p": torch.nn.Parameter(torch.ones(2)), "counter": collections.Counter({3: 1})}
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    got = loom.load(buf)
    assert isinstance(got["sd"], collections.OrderedDict)
    for name, a in arrays.items():
        assert got["sd"][name].dtype == getattr(loom, name)
        np.testing.assert_array_equal(got["sd"][name].numpy(), a)
    assert got["sd"]["bfloat16"].float().tolist() == sd["bfloat16"].float().tolist()
    assert got["t"].stride() == (1, 6) and got["cols"].tolist() == base[:, ::2].tolist()
    got["base"][0, 2] = 100.0
    assert got["t"][2, 0].item() == 100.0 and got["cols"][0, 1].item() == 100.0
    assert type(got["p"]) is loom.nn.Parameter and got["p"].requires_grad
    assert got["step"] == 7 and got["set"] == {1, 2} and got["counter"] == collections.Counter({3: 1})


def test_module_state_dict_round_trips_through_torch(tmp_path):
    model = loom.nn.Sequential(loom.nn.Linear(4, 3), loom.nn.ReLU(), loom.nn.Linear(3, 2))
    loom.save(model.state_dict(), tmp_path / "m.pth")
    ref = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    ref.load_state_dict(torch.load(tmp_path / "m.pth"))
    x = np.random.default_rng(2).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(ref(torch.from_numpy(x)).detach().numpy(), model(to_loom(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    torch.save(ref.state_dict(), tmp_path / "ref.pth")
    fresh = loom.nn.Sequential(loom.nn.Linear(4, 3), loom.nn.ReLU(), loom.nn.Linear(3, 2))
    fresh.load_state_dict(loom.load(tmp_path / "ref.pth"))
    assert fresh(to_loom(x)).tolist() == model(to_loom(x)).tolist()


def test_weights_only_and_safe_globals(tmp_path):
    model = loom.nn.Linear(2, 2)
    loom.save({"model": model, "arr": np.arange(3)}, tmp_path / "whole.pt")
    with pytest.raises(pickle.UnpicklingError, match="weights_only load failed: unsupported global"):
        loom.load(tmp_path / "whole.pt")
    got = loom.load(tmp_path / "whole.pt", weights_only=False)
    assert type(got["model"]) is loom.nn.Linear and got["model"].weight.tolist() == model.weight.tolist()
    assert got["arr"].tolist() == [0, 1, 2]

    class Point:  # a user class under weights_only: allowed only when registered, as in torch
        pass
    Point.__module__, Point.__qualname__ = __name__, "Point"
    globals()["Point"] = Point
    p = Point()
    p.x = 3
    loom.save({"p": p}, tmp_path / "p.pt")
    with pytest.raises(pickle.UnpicklingError, match="Point"):
        loom.load(tmp_path / "p.pt")
    with loom.serialization.safe_globals([Point]):
        assert loom.load(tmp_path / "p.pt")["p"].x == 3
    with pytest.raises(pickle.UnpicklingError):
        loom.load(tmp_path / "p.pt")
    loom.serialization.add_safe_globals([Point])
    try:
        assert loom.load(tmp_path / "p.pt")["p"].x == 3
    finally:
        loom.serialization.clear_safe_globals()


def test_format_choice_and_old_checkpoints_still_load(tmp_path):
    sd = {"w": loom.ones(2)}
    loom.save(sd, tmp_path / "a.safetensors")
    loom.save(sd, tmp_path / "a.pt")
    loom.save(sd, tmp_path / "b.ckpt", format="safetensors")
    assert (tmp_path / "a.pt").read_bytes()[:4] == b"PK\x03\x04"
    assert (tmp_path / "a.safetensors").read_bytes()[:4] != b"PK\x03\x04"
    for name in ["a.safetensors", "a.pt", "b.ckpt"]:
        assert loom.load(tmp_path / name)["w"].tolist() == [1.0, 1.0]
    with open(tmp_path / "b.ckpt", "rb") as f:  # a safetensors file through a file object
        assert loom.load(f)["w"].tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="format"):
        loom.save(sd, tmp_path / "c", format="npz")


def test_atomic_write_keeps_old_file(tmp_path):
    path = tmp_path / "ck.pt"
    loom.save({"w": loom.ones(2)}, path)
    before = path.read_bytes()

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("no pickling")
    with pytest.raises(RuntimeError, match="no pickling"):
        loom.save({"w": loom.zeros(2), "bad": Unpicklable()}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


def test_corrupted_archive_raises_naming_the_file(tmp_path):
    path = tmp_path / "ck.pt"
    torch.save({"w": torch.ones(1000)}, path)
    data = path.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="trunc.pt"):
        loom.load(tmp_path / "trunc.pt")
