"""Tensors across devices with PyTorch's semantics, on the vdev example backend (examples/backend_plugin): moves and
round trips, factories, printing, NumPy/DLPack, safetensors, pinned memory, modules, the per-backend Python module
(streams, events, memory statistics), loom.cuda without CUDA, and backend discovery through entry points.

Values are checked against PyTorch on the CPU (or the safetensors library); device semantics follow PyTorch's
documented behaviour. The op-by-op sweep on devices is tests/python/test_device_conformance.py.
"""
import importlib
import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch

import loom
import loom.nn as lnn
from conftest import VDEV_LIBRARY

ALL_DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]


def torch_values(dtype, shape, seed=0):
    """A torch CPU tensor of `dtype` with edge values (signed zeros, infinities, subnormals, extremes) mixed in."""
    g = torch.Generator().manual_seed(seed)
    t = getattr(torch, dtype)
    if dtype == "bool":
        return torch.rand(shape, generator=g) > 0.5
    if t.is_floating_point:
        x = torch.randn(shape, generator=g, dtype=torch.float64) * 1e3
        flat = x.view(-1)
        info = torch.finfo(t)
        edges = [0.0, -0.0, float("inf"), float("-inf"), info.max, info.min, info.tiny / 4, -info.tiny]
        flat[: min(len(edges), flat.numel())] = torch.tensor(edges[: flat.numel()], dtype=torch.float64)
        return x.to(t)
    info = torch.iinfo(t)
    x = torch.randint(info.min, info.max, shape, generator=g, dtype=torch.int64).to(t)
    flat = x.view(-1)
    flat[: min(2, flat.numel())] = torch.tensor([info.min, info.max][: flat.numel()], dtype=t)
    return x


def to_loom(t):
    """A loom CPU tensor with exactly t's bits (bfloat16 goes through float32, which holds every bfloat16 exactly)."""
    if t.dtype == torch.bfloat16:
        return loom.from_numpy(t.float().numpy().copy()).to(loom.bfloat16)
    return loom.from_numpy(t.numpy().copy())


def bits(x):
    """The bytes of a tensor's values in row-major order (loom or torch, any device for loom)."""
    if isinstance(x, torch.Tensor):
        x = x.float() if x.dtype == torch.bfloat16 else x
        return x.contiguous().numpy().tobytes()
    x = x.cpu()
    x = x.float() if x.dtype == loom.bfloat16 else x
    return x.contiguous().numpy().tobytes()


# ---- moving tensors ----


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_round_trip_is_bit_exact_for_every_dtype_and_layout(vdev_device, dtype):
    ref = torch_values(dtype, (5, 6))
    views = {
        "contiguous": (lambda t: t),
        "transposed": (lambda t: t.t()),
        "strided slice": (lambda t: t[1:, ::2]),
        "0-d": (lambda t: t[2, 3]),
        "empty": (lambda t: t[:0]),
        "expanded": (lambda t: t[:1].expand(4, 6)),
    }
    x = to_loom(ref)
    assert bits(x) == bits(ref)
    for name, view in views.items():
        expected, source = view(ref), view(x)
        on_device = source.to(vdev_device)
        assert on_device.device == loom.device("vdev:0"), name
        assert on_device.dtype == source.dtype and tuple(on_device.shape) == tuple(expected.shape), name
        back = on_device.cpu()
        assert back.device == loom.device("cpu") and bits(back) == bits(expected), name
        # device to device (another vdev device), and back through .to("cpu")
        other = on_device.to("vdev:1")
        assert other.device == loom.device("vdev:1")
        assert bits(other.to("cpu")) == bits(expected), name


def test_to_returns_self_when_already_there_and_copies_when_asked(vdev_device):
    x = loom.arange(6.0).to(vdev_device)
    assert x.to("vdev:0").data_ptr() == x.data_ptr()  # PyTorch: same tensor when nothing changes
    assert x.to("vdev").data_ptr() == x.data_ptr()  # "vdev" alone is the current device (0)
    copy = x.to("vdev", copy=True)
    assert copy.data_ptr() != x.data_ptr() and copy.tolist() == x.tolist()
    cpu = loom.arange(3)
    assert cpu.cpu().data_ptr() == cpu.data_ptr()
    # to(tensor) takes the other tensor's device and dtype; to(device, dtype) both
    like = loom.zeros(1, dtype=loom.float64, device="vdev:1")
    moved = cpu.to(like)
    assert moved.device == loom.device("vdev:1") and moved.dtype == loom.float64
    both = cpu.to("vdev", loom.float16)
    assert both.device == loom.device("vdev:0") and both.dtype == loom.float16 and both.tolist() == [0.0, 1.0, 2.0]


def test_non_blocking_moves_then_use(vdev_device):
    ref = torch.randn(64, 33, generator=torch.Generator().manual_seed(1))
    x = to_loom(ref)
    for source in (x, x.pin_memory()):
        y = source.to(vdev_device, non_blocking=True)
        z = (y * 2 + 1).sum(0)  # queued after the copy on the same stream
        np.testing.assert_allclose(z.cpu().numpy(), (ref * 2 + 1).sum(0).numpy(), rtol=1e-5)
        back = y.to("cpu", non_blocking=True)
        loom.vdev.synchronize()  # a non-blocking copy to the host is complete only after a synchronize
        assert bits(back) == bits(ref)


def test_gradients_flow_back_across_devices(vdev_device):
    ref = torch.randn(3, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64, requires_grad=True)
    (ref * ref).sum().backward()
    x = to_loom(ref.detach()).requires_grad_()
    y = x.to(vdev_device)
    assert y.grad_fn is not None and not y.is_leaf
    (y * y).sum().backward()
    assert x.grad.device == loom.device("cpu")
    assert np.array_equal(x.grad.numpy(), ref.grad.numpy())


def test_ops_on_two_devices_raise_naming_both(vdev_device):
    cpu = loom.ones(3)
    dev0 = cpu.to("vdev:0")
    dev1 = cpu.to("vdev:1")
    with pytest.raises((RuntimeError, ValueError)) as info:
        cpu + dev0
    assert "cpu" in str(info.value) and "vdev:0" in str(info.value)
    with pytest.raises((RuntimeError, ValueError)) as info:
        dev0 * dev1
    assert "vdev:0" in str(info.value) and "vdev:1" in str(info.value)
    # PyTorch's exception: a 0-d CPU tensor is a scalar and may join a device op
    out = dev0 * loom.tensor(2.0)
    assert out.device == loom.device("vdev:0") and out.tolist() == [2.0, 2.0, 2.0]


def test_repr_item_tolist_and_python_conversions(vdev_device):
    ref = torch.tensor([[1.5, -2.0], [0.25, 3.0]])
    x = loom.tensor(ref.tolist())
    y = x.to(vdev_device)
    assert repr(y) == repr(ref).replace(")", ", device='vdev:0')")
    assert repr(loom.ones(2, device="vdev:1", requires_grad=True)) == \
        "tensor([1., 1.], device='vdev:1', requires_grad=True)"
    assert repr(loom.zeros(0, device=vdev_device)) == "tensor([], device='vdev:0')"
    assert y.tolist() == ref.tolist()
    assert y[1, 0].item() == 0.25 and float(y[0, 1]) == -2.0
    assert int(loom.tensor(7, device=vdev_device)) == 7 and bool(loom.tensor(True, device=vdev_device))
    assert [1, 2, 3][loom.tensor(1, device=vdev_device)] == 2  # __index__
    assert loom.tensor(3.0).to(vdev_device).tolist() == 3.0


def test_tensor_device_attributes(vdev_device):
    cpu = loom.ones(2)
    dev = cpu.to("vdev:1")
    assert (cpu.is_cpu, cpu.is_cuda, cpu.get_device()) == (True, False, -1)
    assert (dev.is_cpu, dev.is_cuda, dev.get_device()) == (False, False, 1)
    assert dev.device.type == "vdev" and dev.device.index == 1 and str(dev.device) == "vdev:1"


# ---- creation on a device ----


def test_factories_create_on_the_device(vdev_device):
    d = loom.device("vdev:0")
    checks = {
        "zeros": (loom.zeros(2, 3, device=vdev_device), torch.zeros(2, 3)),
        "ones": (loom.ones(2, 3, dtype=loom.int32, device=vdev_device), torch.ones(2, 3, dtype=torch.int32)),
        "full": (loom.full((2,), 7, device=vdev_device), torch.full((2,), 7)),
        "arange": (loom.arange(1, 10, 3, device=vdev_device), torch.arange(1, 10, 3)),
        "linspace": (loom.linspace(0, 1, 5, device=vdev_device), torch.linspace(0, 1, 5)),
        "eye": (loom.eye(3, 2, device=vdev_device), torch.eye(3, 2)),
        "tensor": (loom.tensor([[1, 2], [3, 4]], device=vdev_device), torch.tensor([[1, 2], [3, 4]])),
        "tensor dtype": (loom.tensor([1, 2], dtype=loom.float64, device=vdev_device),
                         torch.tensor([1, 2], dtype=torch.float64)),
        "tensor ndarray": (loom.tensor(np.arange(4, dtype=np.int16), device=vdev_device),
                           torch.arange(4, dtype=torch.int16)),
        "scalar_tensor": (loom.scalar_tensor(2.5, device=vdev_device), torch.scalar_tensor(2.5)),
    }
    for name, (got, expected) in checks.items():
        assert got.device == d, name
        assert str(got.dtype).removeprefix("loom.") == str(expected.dtype).removeprefix("torch."), name
        assert got.tolist() == expected.tolist(), name
    assert loom.empty(4, device="vdev:1").device == loom.device("vdev:1")


def test_random_factories_on_the_device_draw_the_cpu_stream(vdev_device):
    # loom's generator is counter-based and shared: the same seed gives the same values on every device
    samplers = {
        "rand": lambda **kw: loom.rand(3, 4, **kw),
        "randn": lambda **kw: loom.randn(5, **kw),
        "randint": lambda **kw: loom.randint(0, 10, (6,), **kw),
        "randint(high)": lambda **kw: loom.randint(10, (6,), **kw),
        "randperm": lambda **kw: loom.randperm(7, **kw),
        "normal": lambda **kw: loom.normal(1.0, 2.0, (4,), **kw),
    }
    for name, sample in samplers.items():
        loom.manual_seed(5)
        cpu = sample()
        loom.manual_seed(5)
        dev = sample(device=vdev_device)
        assert dev.device == loom.device("vdev:0"), name
        assert bits(dev) == bits(cpu), name
    assert sorted(loom.randperm(9, device=vdev_device).tolist()) == list(range(9))


def test_like_functions_keep_or_change_the_device(vdev_device):
    x = loom.ones(2, 3, dtype=loom.float64, device="vdev:1")
    for fn in (loom.zeros_like, loom.ones_like, loom.empty_like, loom.rand_like, loom.randn_like):
        out = fn(x)
        assert out.device == x.device and out.dtype == x.dtype and tuple(out.shape) == (2, 3), fn.__name__
        assert fn(x, device="cpu").device == loom.device("cpu"), fn.__name__
        assert fn(loom.ones(2), device=vdev_device).device == loom.device("vdev:0"), fn.__name__
    assert loom.full_like(x, 4).tolist() == torch.full((2, 3), 4.0, dtype=torch.float64).tolist()
    assert loom.full_like(x, 4).device == x.device
    assert loom.zeros_like(x, dtype=loom.int8).tolist() == [[0] * 3] * 2


def test_tensor_of_a_device_tensor(vdev_device):
    x = loom.arange(4.0, device="vdev:1")
    same = loom.tensor(x)  # a copy that stays on the source device, as torch.tensor(t)
    assert same.device == x.device and same.data_ptr() != x.data_ptr() and same.tolist() == x.tolist()
    moved = loom.tensor(x, device="cpu", dtype=loom.int64)
    assert moved.device == loom.device("cpu") and moved.tolist() == [0, 1, 2, 3]
    nested = loom.tensor([x[0], x[3]])  # 0-d device tensors as elements: read back to the host
    assert nested.tolist() == [0.0, 3.0]
    assert loom.tensor([1.0], device=vdev_device, requires_grad=True).is_leaf


# ---- NumPy, DLPack ----


def test_numpy_refuses_device_tensors_with_pytorchs_message_and_dlpack_hands_out_device_memory(vdev_device):
    x = loom.arange(3.0, device=vdev_device)
    with pytest.raises(TypeError, match=r"can't convert vdev:0 device type tensor to numpy. Use Tensor.cpu\(\)"):
        x.numpy()
    with pytest.raises(TypeError, match="vdev:0"):
        np.asarray(x)
    with pytest.raises((BufferError, RuntimeError), match="device|Device"):
        np.from_dlpack(x)  # NumPy takes host memory only, and says so
    assert x.__dlpack_device__() == (12, 0)  # kDLExtDev: a device DLPack has no name for
    assert loom.ones(1, device="vdev:1").__dlpack_device__() == (12, 1)
    assert loom.ones(1).__dlpack_device__() == (1, 0)
    assert np.array_equal(x.numpy(force=True), np.arange(3.0))
    assert np.array_equal(x.cpu().numpy(), np.arange(3.0))


def test_dlpack_exchanges_device_memory_without_copies(vdev_device):
    x = loom.arange(12.0, device=f"{vdev_device}:1").reshape(3, 4)[:, 1:]  # strided, on the second device
    y = loom.from_dlpack(x)  # a DLPack consumer of device 12 (kDLExtDev): the one loaded plugin device
    assert y.device == loom.device("vdev:1") and y.shape == (3, 3) and y.stride() == x.stride()
    assert y.data_ptr() == x.data_ptr()  # the same device memory
    y.mul_(10)  # writes through to x
    np.testing.assert_array_equal(x.cpu().numpy(), np.arange(12.0).reshape(3, 4)[:, 1:] * 10)
    # __array__ on the CPU: a view, and the asked dtype
    cpu = loom.arange(4)
    assert np.asarray(cpu).dtype == np.int64 and np.array_equal(np.asarray(cpu, dtype=np.float32), np.arange(4.0))


# ---- files ----


def test_safetensors_save_from_and_load_to_a_device(vdev_device, tmp_path):
    import safetensors.numpy
    a = torch_values("float32", (4, 5), seed=3)
    b = torch_values("int16", (3,), seed=4)
    tensors = {"a.t": to_loom(a).to("vdev:1").t(), "b": to_loom(b).to(vdev_device), "h": to_loom(a[0])}
    path = tmp_path / "device.safetensors"
    loom.save_file(tensors, path)
    read = safetensors.numpy.load_file(str(path))  # the reference reader
    assert read["a.t"].tobytes() == a.t().contiguous().numpy().tobytes()
    assert read["b"].tobytes() == b.numpy().tobytes() and read["h"].tobytes() == a[0].numpy().tobytes()
    for device in ("vdev", "vdev:1", loom.device("vdev:1")):
        loaded = loom.load_file(path, device=device)
        expected = loom.device(device) if isinstance(device, str) else device
        expected = loom.device("vdev:0") if str(expected) == "vdev" else expected
        assert all(t.device == expected for t in loaded.values())
        assert bits(loaded["a.t"]) == bits(a.t()) and bits(loaded["b"]) == bits(b)
    assert all(t.device == loom.device("cpu") for t in loom.load_file(path).values())


def test_checkpoints_save_from_a_device_and_map_location(vdev_device, tmp_path):
    model = lnn.Linear(3, 2).to(vdev_device)
    checkpoint = {"model": model.state_dict(), "step": 4, "extra": [loom.ones(2, device="vdev:1")]}
    path = tmp_path / "ckpt.safetensors"
    loom.save(checkpoint, path)
    on_cpu = loom.load(path)
    assert on_cpu["model"]["weight"].device == loom.device("cpu")
    assert bits(on_cpu["model"]["weight"]) == bits(model.weight.detach())
    on_dev = loom.load(path, map_location="vdev:1")
    assert on_dev["model"]["bias"].device == loom.device("vdev:1") and on_dev["step"] == 4
    mapped = loom.load(path, map_location={"cpu": vdev_device})
    assert mapped["extra"][0].device == loom.device("vdev:0") and mapped["extra"][0].tolist() == [1.0, 1.0]
    with pytest.raises(NotImplementedError, match="callable"):
        loom.load(path, map_location=lambda storage, location: storage)
    # a CPU state dict loads into a model on the device (copy_ across devices)
    fresh = lnn.Linear(3, 2).to(vdev_device)
    fresh.load_state_dict(on_cpu["model"])
    assert fresh.weight.device == loom.device("vdev:0") and bits(fresh.weight.detach()) == bits(model.weight.detach())


def test_parameter_pickle_keeps_the_device(vdev_device):
    p = lnn.Parameter(loom.arange(3.0, device="vdev:1"))
    q = pickle.loads(pickle.dumps(p))
    assert isinstance(q, lnn.Parameter) and q.device == loom.device("vdev:1") and q.tolist() == [0.0, 1.0, 2.0]
    assert q.requires_grad


# ---- pinned memory ----


def test_pin_memory(vdev_device):
    x = loom.arange(12.0).reshape(3, 4).t()
    assert not x.is_pinned()
    pinned = x.pin_memory()
    assert pinned.is_pinned() and pinned.device == loom.device("cpu")
    assert pinned.tolist() == x.tolist() and pinned.is_contiguous()
    assert pinned.pin_memory().data_ptr() == pinned.data_ptr()  # already pinned: itself
    assert pinned.is_pinned(vdev_device) and x.pin_memory(vdev_device).is_pinned()
    assert not pinned.clone().is_pinned()  # ordinary host memory again
    assert not loom.ones(2, device=vdev_device).is_pinned()
    with pytest.raises(RuntimeError, match="only CPU tensors can be pinned"):
        loom.ones(2, device=vdev_device).pin_memory()
    w = loom.ones(3, requires_grad=True)
    pw = (w * 3).pin_memory()  # differentiable, as PyTorch's
    assert pw.is_pinned() and pw.grad_fn is not None
    (pw * 2).sum().backward()
    assert w.grad.tolist() == [6.0, 6.0, 6.0]


def test_dataloader_pin_memory(vdev_device):
    from loom.utils.data import DataLoader, TensorDataset
    features = loom.arange(20.0).reshape(10, 2)
    labels = loom.arange(10)
    plain = list(DataLoader(TensorDataset(features, labels), batch_size=4))
    for prefetch in (True, False):
        pinned = list(DataLoader(TensorDataset(features, labels), batch_size=4, pin_memory=True, prefetch=prefetch))
        assert len(pinned) == len(plain) == 3
        for (px, py), (x, y) in zip(pinned, plain):
            assert px.is_pinned() and py.is_pinned() and px.tolist() == x.tolist() and py.tolist() == y.tolist()
    # dict samples keep their structure
    dicts = [{"x": loom.ones(2) * i, "name": str(i)} for i in range(3)]
    batch = next(iter(DataLoader(dicts, batch_size=3, pin_memory=True, pin_memory_device=vdev_device)))
    assert batch["x"].is_pinned() and batch["name"] == ["0", "1", "2"]
    moved = batch["x"].to(vdev_device, non_blocking=True)
    assert moved.sum().item() == 6.0
    with pytest.raises(ValueError, match="pinned"):
        DataLoader(dicts, pin_memory=True, pin_memory_device="cpu")


# ---- modules ----


def _mlp():
    loom.manual_seed(0)
    return lnn.Sequential(lnn.Linear(6, 8), lnn.Tanh(), lnn.Linear(8, 3))


def test_module_to_device_matches_the_cpu_and_keeps_parameter_identity(vdev_device):
    cpu_model, dev_model = _mlp(), _mlp()
    params = list(dev_model.parameters())
    x = loom.randn(5, 6, generator=loom.Generator().manual_seed(3))
    assert dev_model.to(vdev_device) is dev_model
    assert all(a is b for a, b in zip(params, dev_model.parameters()))  # .data moved, Parameters kept
    assert all(p.device == loom.device("vdev:0") and isinstance(p, lnn.Parameter) for p in dev_model.parameters())
    out = dev_model(x.to(vdev_device))
    assert out.device == loom.device("vdev:0")
    np.testing.assert_allclose(out.cpu().detach().numpy(), cpu_model(x).detach().numpy(), rtol=1e-6, atol=1e-6)
    # gradients move with their parameters, keeping their identity too
    out.sum().backward()
    grad = params[0].grad  # a handle on the gradient tensor: moving the module moves this very tensor
    dev_model.to("vdev:1")
    assert grad.device == loom.device("vdev:1") and params[0].grad.data_ptr() == grad.data_ptr()
    dev_model.cpu()
    assert params[0].device == loom.device("cpu") and grad.device == loom.device("cpu")
    cpu_model(x).sum().backward()
    np.testing.assert_allclose(grad.numpy(), cpu_model[0].weight.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_module_to_moves_buffers_and_converts_dtype(vdev_device):
    bn = lnn.BatchNorm1d(4)
    bn.to(vdev_device, loom.float64)
    assert bn.running_mean.device == loom.device("vdev:0") and bn.running_mean.dtype == loom.float64
    assert bn.num_batches_tracked.device == loom.device("vdev:0") and bn.num_batches_tracked.dtype == loom.int64
    x = torch.randn(8, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    ref = torch.nn.BatchNorm1d(4, dtype=torch.float64)
    out = bn(loom.from_numpy(x.numpy().copy()).to(vdev_device))
    np.testing.assert_allclose(out.detach().cpu().numpy(), ref(x).detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bn.running_var.cpu().numpy(), ref.running_var.numpy(), rtol=1e-12)
    assert bn.num_batches_tracked.item() == 1
    created = lnn.BatchNorm1d(2, device=vdev_device)
    assert all(t.device == loom.device("vdev:0") for t in created.state_dict().values())


def test_optimizer_made_before_module_to_still_trains(vdev_device):
    """Parameters keep their identity through module.to, so an optimizer built before the move keeps working and
    matches the same training on the CPU; its state is created on the device."""
    x = loom.randn(16, 6, generator=loom.Generator().manual_seed(7))
    target = loom.randn(16, 3, generator=loom.Generator().manual_seed(8))
    losses = {}
    for device in ("cpu", vdev_device):
        model = _mlp()
        optimizer = loom.optim.AdamW(model.parameters(), lr=0.05)
        model.to(device)
        xs, ts = x.to(device), target.to(device)
        history = []
        for _ in range(3):
            loss = ((model(xs) - ts) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history.append(loss.item())
        losses[device] = history
        state = optimizer.state[model[0].weight]
        assert state["exp_avg"].device == model[0].weight.device
        # optimizer state loaded from the CPU follows its parameter to the device (PyTorch's policy)
        saved = optimizer.state_dict()
        cpu_state = {"state": {k: {n: v.cpu() for n, v in s.items()} for k, s in saved["state"].items()},
                     "param_groups": saved["param_groups"]}
        optimizer.load_state_dict(cpu_state)
        assert optimizer.state[model[0].weight]["exp_avg"].device == model[0].weight.device
    np.testing.assert_allclose(losses[vdev_device], losses["cpu"], rtol=1e-5)


def test_layers_that_make_tensors_make_them_on_the_input_device(vdev_device):
    x = loom.randn(4, 6, generator=loom.Generator().manual_seed(9)).to(vdev_device)
    dropout = lnn.Dropout(0.5)
    out = dropout(x)  # the mask is drawn on the input's device
    kept = (out.cpu() != 0).numpy()
    np.testing.assert_allclose(out.cpu().numpy()[kept], (x.cpu() * 2).numpy()[kept], rtol=1e-6)
    mha = lnn.MultiheadAttention(6, 2, batch_first=True).to(vdev_device)
    mask = loom.ones(4, 4, dtype=loom.bool, device=vdev_device).triu(1)
    y, _ = mha(x[None], x[None], x[None], attn_mask=mask)
    mha.cpu()
    y_cpu, _ = mha(x.cpu()[None], x.cpu()[None], x.cpu()[None], attn_mask=mask.cpu())
    np.testing.assert_allclose(y.detach().cpu().numpy(), y_cpu.detach().numpy(), rtol=1e-5, atol=1e-6)
    for init in (lnn.init.trunc_normal_, lnn.init.eye_, lnn.init.orthogonal_, lnn.init.kaiming_uniform_):
        w = loom.empty(3, 3, device=vdev_device)
        assert init(w) is w and w.device == loom.device("vdev:0"), init.__name__
    assert lnn.init.eye_(loom.empty(2, 3, device=vdev_device)).tolist() == torch.eye(2, 3).tolist()
    values = lnn.init.trunc_normal_(loom.empty(200, device=vdev_device), a=-0.5, b=0.5).cpu().numpy()
    assert values.min() >= -0.5 and values.max() <= 0.5


def test_padded_conv_on_the_device_with_the_cpu_fallback(vdev_device):
    conv = lnn.Conv1d(2, 3, 3, padding=2, padding_mode="reflect")
    x = loom.randn(1, 2, 5, generator=loom.Generator().manual_seed(10))
    expected = conv(x).detach().numpy()
    conv.to(vdev_device)
    loom.backends.set_cpu_fallback(vdev_device, True)
    try:
        assert loom.backends.cpu_fallback(vdev_device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = conv(x.to(vdev_device))
    finally:
        loom.backends.set_cpu_fallback(vdev_device, False)
    assert out.device == loom.device("vdev:0")
    np.testing.assert_allclose(out.detach().cpu().numpy(), expected, rtol=1e-5, atol=1e-6)


# ---- the device module ----


def test_device_module_devices(vdev_device):
    v = loom.vdev
    assert v is sys.modules["loom.vdev"] and v.is_available() and v.device_count() == 2
    assert v.current_device() == 0 and v.is_bf16_supported()
    with v.device(1):
        assert v.current_device() == 1
        assert loom.ones(1, device="vdev").device == loom.device("vdev:1")  # "vdev" is the current device
    assert v.current_device() == 0
    with v.device_of(loom.ones(1, device="vdev:1")):
        assert v.current_device() == 1
    v.set_device("vdev:1")
    try:
        assert v.current_device() == 1
    finally:
        v.set_device(0)
    with pytest.raises(ValueError, match="vdev"):
        v.set_device(5)
    with pytest.raises(ValueError, match="expected a 'vdev' device"):
        v.synchronize("cpu")
    v.synchronize()
    v.synchronize(1)
    assert set(loom.cuda.__all__) == set(v.__all__)  # one implementation for every device type


def test_streams_order_work_and_events_time_it(vdev_device):
    v = loom.vdev
    default = v.current_stream()
    assert default == v.default_stream() and default.stream_id == 0 and default.device == loom.device("vdev:0")
    side = v.Stream()
    assert side != default and side.device == loom.device("vdev:0")
    x = loom.randn(128, 128, device=vdev_device)
    start, end = v.Event(enable_timing=True), v.Event(enable_timing=True)
    assert start.query()  # never recorded: done
    side.wait_stream(default)  # x was made on the default stream
    with v.stream(side):
        assert v.current_stream() == side
        start.record()
        y = x @ x
        for _ in range(3):
            y = y + 1
        end.record()
    assert v.current_stream() == default
    default.wait_stream(side)
    expected = x.cpu() @ x.cpu() + 3
    np.testing.assert_allclose(y.cpu().numpy(), expected.numpy(), rtol=1e-4, atol=1e-3)
    end.synchronize()
    assert end.query()
    side.synchronize()
    assert side.query()
    assert start.elapsed_time(end) >= 0.0
    with pytest.raises(RuntimeError, match="enable_timing"):
        v.Event().elapsed_time(end)
    # an event recorded on one stream and waited on by another
    done = side.record_event()
    default.wait_event(done)
    done.synchronize()
    side.synchronize()
    assert done.query()
    # streams of the other device, and a stream context switches the current device too
    other = v.Stream(device=1)
    with v.stream(other):
        assert v.current_device() == 1 and v.current_stream() == other
        assert loom.zeros(2, device="vdev").device == loom.device("vdev:1")
    assert v.current_device() == 0 and v.current_stream(1).stream_id == 0
    with v.stream(None):
        assert v.current_stream() == default


def test_memory_statistics_follow_allocations(vdev_device):
    v = loom.vdev
    v.synchronize()
    v.empty_cache()
    before = v.memory_allocated()
    other_before = v.memory_allocated(1)
    nbytes = 1 << 20
    t = loom.empty(nbytes // 4, device=vdev_device)
    assert v.memory_allocated() >= before + nbytes
    assert v.memory_allocated("vdev:0") == v.memory_allocated(loom.device("vdev:0")) == v.memory_allocated()
    assert v.max_memory_allocated() >= v.memory_allocated()
    assert v.memory_reserved() >= v.memory_allocated() and v.max_memory_reserved() >= v.memory_reserved()
    assert v.memory_allocated(1) == other_before  # another device is not touched
    stats = v.memory_stats()
    assert stats["allocated_bytes.all.current"] == v.memory_allocated()
    assert stats["allocation.all.current"] == stats["allocation.all.allocated"] - stats["allocation.all.freed"]
    peak = v.max_memory_allocated()
    del t
    v.synchronize()
    assert v.memory_allocated() == before and v.max_memory_allocated() == peak
    v.reset_peak_memory_stats()
    assert v.max_memory_allocated() == v.memory_allocated()
    v.empty_cache()
    assert v.memory_allocated() <= v.memory_reserved() <= v.max_memory_reserved()


def test_device_module_seeding(vdev_device):
    loom.vdev.manual_seed(11)
    a = loom.rand(4, device=vdev_device)
    loom.vdev.manual_seed_all(11)
    assert bits(loom.rand(4, device=vdev_device)) == bits(a)


# ---- loom.cuda without CUDA ----


def test_cuda_module_is_truthful_without_cuda():
    if loom._C._has_backend("cuda"):
        pytest.skip("a CUDA backend is loaded")
    assert loom.cuda is sys.modules["loom.cuda"] is importlib.import_module("loom.cuda")
    assert loom.cuda.is_available() is False and loom.cuda.device_count() == 0  # as torch.cuda without CUDA
    assert loom.cuda.is_bf16_supported() is False
    assert loom.cuda.memory_allocated() == 0 and loom.cuda.max_memory_reserved() == 0
    assert loom.cuda.memory_stats() == {}
    loom.cuda.empty_cache()  # nothing to do, as in PyTorch
    loom.cuda.reset_peak_memory_stats()
    loom.manual_seed(3)
    a = loom.rand(3)
    loom.manual_seed(3)
    loom.cuda.manual_seed(99)  # no CUDA: leaves the CPU generator alone
    assert bits(loom.rand(3)) == bits(a)
    for call in (loom.cuda.current_device, loom.cuda.synchronize, loom.cuda.Stream, lambda: loom.cuda.set_device(0)):
        with pytest.raises(RuntimeError, match="no 'cuda' backend is loaded"):
            call()
    x = loom.ones(2)
    assert not x.is_cuda
    with pytest.raises(NotImplementedError, match="cuda"):
        x.cuda()
    with pytest.raises(NotImplementedError, match="cuda"):
        lnn.Linear(2, 2).cuda()


# ---- subprocesses: a fresh interpreter per case ----


def _python(code, *, extra_path=None, env=None):
    environment = dict(os.environ)
    environment.pop("LOOM_DEVICE_BACKEND_AUTOLOAD", None)
    environment.update(env or {})
    if extra_path:
        environment["PYTHONPATH"] = os.pathsep.join([str(extra_path), environment.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=environment, timeout=300)


def test_asynchronous_device_with_delays_gives_right_values(vdev_device):
    """With every vdev task delayed (LOOM_VDEV_DELAY_US), results read before their work ran would be wrong."""
    result = _python(f"""
        import loom, numpy as np
        loom.backends.load({VDEV_LIBRARY!r})
        v = loom.vdev
        x = loom.arange(4096.0).reshape(64, 64)
        y = x.pin_memory().to("vdev", non_blocking=True)
        z = (y * 2 + 1).sum(1)
        assert z.tolist() == (x * 2 + 1).sum(1).tolist()
        side = v.Stream()
        side.wait_stream(v.current_stream())
        with v.stream(side):
            w = y * 3
        v.current_stream().wait_stream(side)
        assert (w + 1).cpu().tolist() == (x * 3 + 1).tolist()
        h = w.to("cpu", non_blocking=True)
        v.synchronize()
        assert h.tolist() == (x * 3).tolist()
        # device to device: the copy on vdev:1 must wait for vdev:0's queued work, and vdev:0 for the copy
        u = (y * 5).to("vdev:1")
        assert u.cpu().tolist() == (x * 5).tolist()
        e = v.Event()
        e.record()
        e.synchronize()
        assert e.query()
        print("ok")
    """, env={"LOOM_VDEV_DELAY_US": "2000"})
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


def test_pinning_without_a_backend_warns_or_raises():
    result = _python("""
        import warnings, loom
        from loom.utils.data import DataLoader
        assert loom.backends.device_types() == ["cpu"]
        try:
            loom.ones(2).pin_memory()
            raise SystemExit("pin_memory did not raise")
        except RuntimeError as e:
            assert "no loaded device backend has pinned host memory" in str(e), e
        assert not loom.ones(2).is_pinned()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            batches = list(DataLoader([loom.ones(2)] * 3, batch_size=2, pin_memory=True))
        assert any("pin_memory" in str(w.message) for w in caught), [str(w.message) for w in caught]
        assert len(batches) == 2 and not batches[0].is_pinned()
        print("ok")
    """, env={"LOOM_DEVICE_BACKEND_AUTOLOAD": "0"})
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


def _fake_distribution(root, entry_points):
    """A package `fake_vdev_backend` and its installed metadata (a dist-info with entry points) under root."""
    (root / "fake_vdev_backend.py").write_text(
        f"LIBRARY = {VDEV_LIBRARY!r}\n\ndef library_path():\n    return LIBRARY\n\n"
        "def broken():\n    raise OSError('the vendor driver is missing')\n")
    info = root / "loom_fake_vdev-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: loom-fake-vdev\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[loom.backends]\n" + entry_points)


@pytest.mark.parametrize("target", ["fake_vdev_backend:library_path", "fake_vdev_backend:LIBRARY"])
def test_backends_are_discovered_through_entry_points(vdev_device, tmp_path, target):
    _fake_distribution(tmp_path, f"vdev = {target}\n")
    code = """
        import loom
        print(loom.backends.device_types(), loom.vdev.device_count(), loom.ones(1, device="vdev").device)
    """
    result = _python(code, extra_path=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["['cpu',", "'vdev']", "2", "vdev:0"]
    disabled = _python(code.replace("loom.vdev.device_count()", "hasattr(loom, 'vdev')").replace(
        ', loom.ones(1, device="vdev").device', ""), extra_path=tmp_path, env={"LOOM_DEVICE_BACKEND_AUTOLOAD": "0"})
    assert disabled.returncode == 0 and disabled.stdout.split() == ["['cpu']", "False"], disabled.stderr[-3000:]


def test_a_broken_backend_package_warns_and_import_still_works(vdev_device, tmp_path):
    _fake_distribution(tmp_path, "broken = fake_vdev_backend:broken\nmissing = fake_vdev_backend:nothing_here\n"
                                 "vdev = fake_vdev_backend:library_path\n")
    result = _python("""
        import loom
        print(loom.backends.device_types(), float(loom.ones(2).sum()))
    """, extra_path=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["['cpu',", "'vdev']", "2.0"]  # the good one still loads
    assert "RuntimeWarning" in result.stderr
    assert "'broken'" in result.stderr and "the vendor driver is missing" in result.stderr
    assert "'missing'" in result.stderr


def test_load_reports_and_reloads(vdev_device):
    assert loom.backends.load(VDEV_LIBRARY) == "vdev"  # a second load changes nothing
    assert "vdev" in loom.backends.device_types()
    with pytest.raises(Exception, match="no_such_plugin"):
        loom.backends.load("/nonexistent/libno_such_plugin.so")


# ---- per-device random generators ----

def test_each_device_has_its_own_generator(vdev_device):
    """Same seed, same draws: the same values on every device (one counter-based stream); draws on one device do not
    shift another device's stream."""
    loom.manual_seed(5)
    on_device = loom.rand(6, device=vdev_device).cpu()
    on_host = loom.rand(6)
    assert torch.equal(torch.from_numpy(on_device.numpy()), torch.from_numpy(on_host.numpy()))
    loom.manual_seed(5)
    loom.rand(100)  # CPU draws in between
    again = loom.rand(6, device=vdev_device).cpu()
    np.testing.assert_array_equal(again.numpy(), on_device.numpy())


def test_device_module_seeds_its_devices(vdev_device):
    module = getattr(loom, vdev_device)
    loom.manual_seed(1)
    first_on_1 = loom.rand(4, device=f"{vdev_device}:1").cpu().numpy()
    loom.manual_seed(1)
    with module.device(0):
        module.manual_seed(99)  # the current device (0) only
        assert module.initial_seed() == 99
    np.testing.assert_array_equal(loom.rand(4, device=f"{vdev_device}:1").cpu().numpy(), first_on_1)
    module.manual_seed_all(3)
    a = loom.rand(4, device=f"{vdev_device}:0").cpu().numpy()
    b = loom.rand(4, device=f"{vdev_device}:1").cpu().numpy()
    np.testing.assert_array_equal(a, b)
    state = module.get_rng_state(0)
    x = loom.randn(5, device=f"{vdev_device}:0").cpu().numpy()
    module.set_rng_state(state, 0)
    np.testing.assert_array_equal(loom.randn(5, device=f"{vdev_device}:0").cpu().numpy(), x)
