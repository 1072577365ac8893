"""loom.nn.Module and Parameter against torch.nn for the same model definitions: registration, the order and names of
named_parameters/buffers/modules, state_dict/load_state_dict (messages compared with torch's), hooks, modes, dtype
conversion, zero_grad, apply, containers and repr."""
import copy
import pickle

import numpy as np
import pytest
import torch

import loom
import loom.nn as lnn
import torch.nn as tnn
from torch_reference_models import copy_loom_to_torch

LIBS = {"loom": (loom, lnn), "torch": (torch, tnn)}


def build(which):
    """The same nested model in loom or torch: shared submodule, shared parameter, None parameter, buffers of both
    kinds, containers."""
    lib, nn = LIBS[which]

    class Inner(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)
            self.register_buffer("steps", lib.zeros(2))
            self.register_buffer("scratch", lib.ones(1), persistent=False)
            self.scale = nn.Parameter(lib.ones(4))
            self.register_parameter("unused", None)

        def forward(self, x):
            return self.fc(x) * self.scale

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = Inner()
            self.seq = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.BatchNorm1d(4))
            self.b = self.a  # the same module under two names
            self.heads = nn.ModuleList([nn.Linear(4, 2), nn.Linear(4, 2)])
            self.heads[1].weight = self.heads[0].weight  # a shared parameter
            self.table = nn.ModuleDict({"emb": nn.Embedding(5, 4), "none": None})
            self.temperature = 0.5  # plain attribute

        def forward(self, x):
            h = self.seq(self.a(x))
            return self.heads[0](h) + self.heads[1](h)

    return Outer()


def pair():
    loom.manual_seed(0)
    ours, theirs = build("loom"), build("torch")
    copy_loom_to_torch(ours, theirs)
    return ours, theirs


@pytest.mark.parametrize("method, kwargs", [
    ("named_parameters", {}),
    ("named_parameters", {"prefix": "model"}),
    ("named_parameters", {"recurse": False}),
    ("named_parameters", {"remove_duplicate": False}),
    ("named_buffers", {}),
    ("named_buffers", {"remove_duplicate": False}),
    ("named_modules", {}),
    ("named_modules", {"prefix": "m", "remove_duplicate": False}),
    ("named_children", {}),
])
def test_named_members_match_torch(method, kwargs):
    ours, theirs = pair()
    names = [n for n, _ in getattr(ours, method)(**kwargs)]
    assert names == [n for n, _ in getattr(theirs, method)(**kwargs)]
    assert len(names) > 0 or kwargs.get("recurse") is False


def test_iterators_and_shapes_match_torch():
    ours, theirs = pair()
    assert [tuple(p.shape) for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    assert [tuple(b.shape) for b in ours.buffers()] == [tuple(b.shape) for b in theirs.buffers()]
    assert [type(m).__name__ for m in ours.modules()] == [type(m).__name__ for m in theirs.modules()]
    assert [type(m).__name__ for m in ours.children()] == [type(m).__name__ for m in theirs.children()]
    assert all(isinstance(p, lnn.Parameter) and p.requires_grad for p in ours.parameters())


def test_state_dict_matches_torch_and_is_detached():
    ours, theirs = pair()
    sd, tsd = ours.state_dict(), theirs.state_dict()
    assert list(sd.keys()) == list(tsd.keys())  # ordering: own params, own buffers, then children, like torch
    assert "a.scratch" not in sd and "a.unused" not in sd
    for key in tsd:
        np.testing.assert_array_equal(sd[key].numpy(), tsd[key].numpy())
        assert sd[key].requires_grad is False
    assert sd["a.fc.weight"].data_ptr() == ours.a.fc.weight.data_ptr()  # shares memory, like torch
    kept = ours.state_dict(keep_vars=True)
    assert kept["a.fc.weight"] is ours.a.fc.weight
    prefixed = ours.state_dict(prefix="model.")
    assert list(prefixed.keys()) == list(theirs.state_dict(prefix="model.").keys())


def test_load_state_dict_round_trip_and_from_torch():
    ours, theirs = pair()
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(1.0)
    result = ours.load_state_dict(theirs.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == repr(theirs.load_state_dict(theirs.state_dict()))
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(ours.state_dict()[key].numpy(), value.numpy())
    # loom -> loom keeps the Parameter objects (copy in place).
    weight = ours.a.fc.weight
    fresh = build("loom")
    fresh.load_state_dict(ours.state_dict())
    assert ours.a.fc.weight is weight
    np.testing.assert_array_equal(fresh.a.fc.weight.detach().numpy(), weight.detach().numpy())


def test_load_state_dict_strict_errors_match_torch():
    ours, theirs = pair()
    sd, tsd = ours.state_dict(), theirs.state_dict()
    for d in (sd, tsd):
        del d["a.fc.weight"]
        del d["seq.2.running_var"]
        d["extra"] = d["a.steps"]
        d["seq.9.weight"] = d["a.steps"]
    with pytest.raises(RuntimeError) as ours_error:
        ours.load_state_dict(sd)
    with pytest.raises(RuntimeError) as torch_error:
        theirs.load_state_dict(tsd)
    assert str(ours_error.value) == str(torch_error.value)
    assert '"a.fc.weight"' in str(ours_error.value) and '"extra"' in str(ours_error.value)
    # Non-strict: the same named tuple as torch.
    result = ours.load_state_dict(sd, strict=False)
    t_result = theirs.load_state_dict(tsd, strict=False)
    assert result.missing_keys == t_result.missing_keys and result.unexpected_keys == t_result.unexpected_keys
    assert repr(result) == repr(t_result)


def test_load_state_dict_shape_mismatch_raises_even_when_not_strict():
    ours, _ = pair()
    sd = ours.state_dict()
    sd["a.fc.weight"] = loom.zeros(5, 3)
    for strict in (True, False):
        with pytest.raises(RuntimeError, match=r"size mismatch for a\.fc\.weight: copying a param with shape "
                                               r"\(5, 3\) from checkpoint, the shape in current model is \(4, 3\)"):
            ours.load_state_dict(sd, strict=strict)
    with pytest.raises(TypeError, match="dict"):
        ours.load_state_dict([1, 2])


def test_registration_rules_and_errors():
    m = lnn.Module()
    m.w = lnn.Parameter(loom.ones(2))
    assert "w" in m._parameters
    with pytest.raises(TypeError, match="cannot assign 'loom.Tensor' as parameter 'w'"):
        m.w = loom.ones(2)
    m.w = None  # allowed: becomes a None parameter
    assert m._parameters["w"] is None and m.w is None
    with pytest.raises(KeyError, match="contain"):
        m.register_parameter("a.b", lnn.Parameter(loom.ones(1)))
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("training", loom.ones(1))
    with pytest.raises(TypeError, match="not a Module subclass"):
        m.add_module("x", 3)
    with pytest.raises(TypeError, match="cannot assign 'loom.Tensor' object to parameter 'q'"):
        m.register_parameter("q", loom.ones(2))
    m.buf = lnn.Buffer(loom.zeros(3), persistent=False)
    assert "buf" in m._buffers and "buf" in m._non_persistent_buffers_set
    m.buf = loom.ones(3)  # reassigning a buffer name keeps it a (non-persistent) buffer
    assert m.buf.numpy().tolist() == [1, 1, 1] and "buf" not in m.state_dict()
    with pytest.raises(TypeError, match="as buffer 'buf'"):
        m.buf = 3
    m.sub = lnn.Linear(2, 2)
    with pytest.raises(TypeError, match="as child module 'sub'"):
        m.sub = 5
    m.sub = lnn.Parameter(loom.ones(1))  # a parameter replaces the module of the same name
    assert "sub" not in m._modules and "sub" in m._parameters
    del m.sub
    assert not hasattr(m, "sub")
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'nothing'"):
        m.nothing  # noqa: B018

    class Early(lnn.Module):
        def __init__(self):
            self.w = lnn.Parameter(loom.ones(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()
    with pytest.raises(NotImplementedError, match="forward"):
        lnn.Module()(1)
    assert {"w", "buf"} <= set(dir(m))


def test_get_submodule_parameter_buffer():
    ours, _ = pair()
    assert ours.get_submodule("seq.2") is ours.seq[2]
    assert ours.get_parameter("a.fc.bias") is ours.a.fc.bias
    assert ours.get_buffer("seq.2.running_mean") is ours.seq[2].running_mean
    with pytest.raises(AttributeError, match="no attribute `nope`"):
        ours.get_submodule("seq.nope")


def test_forward_hooks_and_removal():
    ours, theirs = pair()
    calls = []
    for model, lib in ((ours, loom), (theirs, torch)):
        log = []

        def pre(module, args):
            log.append("pre")
            return (args[0] * 2,)

        def pre_kw(module, args, kwargs):
            log.append("pre_kw")

        def post(module, args, output):
            log.append("post")
            return output + 1

        def first(module, args, output):
            log.append("first")

        h1 = model.seq.register_forward_pre_hook(pre)
        h2 = model.seq.register_forward_pre_hook(pre_kw, with_kwargs=True)
        h3 = model.seq.register_forward_hook(post)
        h4 = model.seq.register_forward_hook(first, prepend=True)
        model.eval()
        x = lib.ones(3, 3)
        out = model(x)
        calls.append((log[:], out.detach().numpy()))
        for h in (h1, h2, h3, h4):
            h.remove()
        h1.remove()  # removing twice is fine
        log.clear()
        model(x)
        assert log == []
        with model.register_forward_hook(post):
            model(x)
        assert log == ["post"]
        log.clear()
        model(x)
        assert log == []
    assert calls[0][0] == calls[1][0] == ["pre", "pre_kw", "first", "post"]
    np.testing.assert_allclose(calls[0][1], calls[1][1], rtol=1e-5, atol=1e-6)


def test_train_eval_propagate():
    ours, theirs = pair()
    assert ours.training and all(m.training for m in ours.modules())
    assert ours.eval() is ours
    assert not any(m.training for m in ours.modules())
    ours.seq.train()
    theirs.eval()
    theirs.seq.train()
    assert [m.training for m in ours.modules()] == [m.training for m in theirs.modules()]
    with pytest.raises(ValueError, match="boolean"):
        ours.train("yes")


def test_to_dtype_keeps_parameters_and_converts_floats_only():
    ours, _ = pair()
    weight = ours.a.fc.weight
    ours(loom.ones(2, 3)).sum().backward()
    assert ours.double() is ours
    assert ours.a.fc.weight is weight and weight.dtype == loom.float64 and weight.requires_grad
    assert weight.grad.dtype == loom.float64
    assert ours.seq[2].running_mean.dtype == loom.float64
    assert ours.seq[2].num_batches_tracked.dtype == loom.int64
    assert ours.a.scratch.dtype == loom.float64
    ours.to(loom.float32)
    assert all(p.dtype == loom.float32 for p in ours.parameters())
    ours.to("cpu", dtype=loom.float64)
    assert all(p.dtype == loom.float64 for p in ours.parameters())
    ours.to(loom.zeros(1, dtype=loom.float32))
    assert ours(loom.ones(2, 3)).dtype == loom.float32
    assert ours.float() is ours
    with pytest.raises(TypeError, match="floating point"):
        ours.to(loom.int64)


def test_zero_grad_requires_grad_and_apply():
    ours, theirs = pair()
    ours(loom.ones(2, 3)).sum().backward()
    used = [p for name, p in ours.named_parameters() if not name.startswith("table.")]
    assert all(p.grad is not None for p in used) and ours.table.emb.weight.grad is None
    ours.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not np.any(p.grad.numpy()) for p in used)
    ours.zero_grad()
    assert all(p.grad is None for p in ours.parameters())
    ours.requires_grad_(False)
    assert not any(p.requires_grad for p in ours.parameters())
    visited, t_visited = [], []
    assert ours.apply(lambda m: visited.append(type(m).__name__)) is ours
    theirs.apply(lambda m: t_visited.append(type(m).__name__))
    assert visited == t_visited


def test_repr_matches_torch():
    ours, theirs = pair()
    assert repr(ours) == repr(theirs)
    stack = lambda nn: nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),  # noqa: E731
                                     nn.BatchNorm2d(8, momentum=None), nn.ReLU(inplace=True),
                                     nn.ModuleList([nn.Linear(2, 2)] * 3 + [nn.GELU("tanh")]),
                                     nn.MultiheadAttention(8, 2, batch_first=True), nn.Dropout(0.1),
                                     nn.LeakyReLU(0.1), nn.Softmax(dim=-1), nn.LayerNorm((4, 5)),
                                     nn.Embedding(10, 3, padding_idx=0), nn.ModuleDict())
    assert repr(stack(lnn)) == repr(stack(tnn))

    class WithExtra(lnn.Module):
        def extra_repr(self):
            return "line one\nline two"

    assert repr(WithExtra()) == "WithExtra(\n  line one\n  line two\n)"


def test_parameter_behaves_like_torch():
    data = loom.tensor([[1.0, 2.0], [3.0, 4.0]])
    p = lnn.Parameter(data)
    assert isinstance(p, lnn.Parameter) and isinstance(p, loom.Tensor)
    assert p.requires_grad and p.is_leaf
    assert repr(p) == repr(tnn.Parameter(torch.tensor([[1.0, 2.0], [3.0, 4.0]])))
    assert repr(lnn.Parameter(loom.ones(2), requires_grad=False)) == \
        repr(tnn.Parameter(torch.ones(2), requires_grad=False))
    assert p.data_ptr() == data.data_ptr()  # aliases its data, like torch
    out = p * 2
    assert type(out) is loom.Tensor and out.grad_fn is not None
    (p * p).sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), 2 * data.numpy())
    with pytest.raises(RuntimeError, match="leaf"):
        p.normal_()
    with loom.no_grad():
        assert p.normal_() is p and p.copy_(loom.zeros(2, 2)) is p
    assert not np.any(data.numpy())  # in-place writes reach the wrapped data
    assert p.requires_grad_(False) is p and not p.requires_grad
    clone = copy.deepcopy(p)
    assert isinstance(clone, lnn.Parameter) and clone.data_ptr() != p.data_ptr()
    restored = pickle.loads(pickle.dumps(lnn.Parameter(loom.ones(2, 3))))
    assert isinstance(restored, lnn.Parameter) and restored.requires_grad and restored.shape == (2, 3)
    assert lnn.Parameter().shape == (0,)
    with pytest.raises(TypeError, match="Parameter"):
        lnn.Parameter([1.0])


def test_deepcopy_module():
    ours, _ = pair()
    clone = copy.deepcopy(ours)
    assert clone.b is clone.a and clone.heads[1].weight is clone.heads[0].weight
    assert clone.a.fc.weight is not ours.a.fc.weight
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(clone.state_dict()[key].numpy(), value.numpy())


def test_sequential_and_module_containers():
    seq = lnn.Sequential(lnn.Linear(2, 3), lnn.ReLU(), lnn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], lnn.Linear)
    sliced = seq[1:]
    assert isinstance(sliced, lnn.Sequential) and len(sliced) == 2 and sliced[0] is seq[1]
    assert [n for n, _ in sliced.named_children()] == ["1", "2"]
    seq.append(lnn.Sigmoid())
    assert len(seq) == 4 and tuple(seq(loom.ones(5, 2)).shape) == (5, 1)
    del seq[1]
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2"]
    with pytest.raises(IndexError, match="out of range"):
        seq[7]
    from collections import OrderedDict

    named = lnn.Sequential(OrderedDict([("fc", lnn.Linear(2, 2)), ("act", lnn.Tanh())]))
    assert list(named.state_dict().keys()) == ["fc.weight", "fc.bias"] and named.act is named[1]

    ml = lnn.ModuleList([lnn.Linear(1, 1)])
    ml += [lnn.Linear(1, 2)]
    ml.append(lnn.Linear(2, 2)).extend([lnn.ReLU()])
    assert len(ml) == 4 and [n for n, _ in ml.named_children()] == ["0", "1", "2", "3"]
    ml.insert(0, lnn.Tanh())
    assert isinstance(ml[0], lnn.Tanh) and isinstance(ml[1], lnn.Linear) and len(ml) == 5
    assert len(ml[1:3]) == 2
    del ml[0]
    assert isinstance(ml[0], lnn.Linear)

    md = lnn.ModuleDict({"a": lnn.Linear(1, 1)})
    md["b"] = lnn.ReLU()
    assert list(md.keys()) == ["a", "b"] and "a" in md and len(md) == 2
    assert md.pop("a") is not None and list(md) == ["b"]

    pl = lnn.ParameterList([loom.ones(2), lnn.Parameter(loom.zeros(3))])
    assert [n for n, _ in pl.named_parameters()] == ["0", "1"] and isinstance(pl[0], lnn.Parameter)
    pd = lnn.ParameterDict({"x": loom.ones(1)})
    assert list(pd.state_dict().keys()) == ["x"]


def test_user_subclass_trains():
    class Net(lnn.Module):
        def __init__(self):
            super().__init__()
            self.body = lnn.Sequential(lnn.Linear(2, 16), lnn.Tanh(), lnn.Linear(16, 1))

        def forward(self, x):
            return self.body(x)

    loom.manual_seed(0)
    net = Net()
    x = loom.randn(64, 2)
    y = (x[:, :1] * x[:, 1:]).detach()
    losses = []
    for _ in range(100):
        loss = lnn.functional.mse_loss(net(x), y)
        net.zero_grad()
        loss.backward()
        with loom.no_grad():
            for p in net.parameters():
                p.sub_(p.grad * 0.2)
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_load_state_dict_assign_takes_the_tensors():
    ours, _ = pair()
    source = build("loom")
    sd = source.state_dict()
    ours.load_state_dict(sd, assign=True)
    assert ours.a.fc.weight.data_ptr() == source.a.fc.weight.data_ptr()
    assert isinstance(ours.a.fc.weight, lnn.Parameter) and ours.a.fc.weight.requires_grad
    assert ours.seq[2].running_mean.data_ptr() == source.seq[2].running_mean.data_ptr()
