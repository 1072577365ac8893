"""Every loom.nn layer against the torch.nn layer built with the same arguments: weights copied by state_dict name,
then forward outputs and gradients (input and every parameter) compared in float32; state_dict keys/shapes and
repr equal; BatchNorm running statistics over several steps; default initialisation statistics."""
import math
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

import loom
import loom.nn as lnn
import torch.nn as tnn
from tolerances import GRAD, MODULE
from torch_reference_models import copy_loom_to_torch, small_cnn


def rand(*shape, low=-2.0, high=2.0):
    return ("float", shape, low, high)


def ints(*shape, high):
    return ("int", shape, high)


@dataclass
class Case:
    id: str
    make: callable  # nn namespace -> layer (same constructor call for loom.nn and torch.nn)
    inputs: list  # specs: rand(...) (differentiable float32) or ints(...) (int64), or np arrays (constant)
    kwargs: callable = None  # converter (np -> tensor) -> forward kwargs
    modes: tuple = ("train", "eval")
    grads: bool = True
    extra: dict = field(default_factory=dict)


def causal_bool(L):
    return np.triu(np.ones((L, L), dtype=bool), 1)


CASES = [
    # linear
    Case("Identity", lambda nn: nn.Identity(3, foo=1), [rand(2, 3)]),
    Case("Linear", lambda nn: nn.Linear(5, 7), [rand(3, 4, 5)]),
    Case("Linear-nobias", lambda nn: nn.Linear(5, 7, bias=False), [rand(4, 5)]),
    Case("Bilinear", lambda nn: nn.Bilinear(4, 5, 3), [rand(6, 4), rand(6, 5)]),
    # convolution
    Case("Conv1d", lambda nn: nn.Conv1d(4, 6, 3, stride=2, padding=1), [rand(2, 4, 11)]),
    Case("Conv1d-dil-groups", lambda nn: nn.Conv1d(4, 6, 3, dilation=2, groups=2, bias=False), [rand(2, 4, 11)]),
    Case("Conv1d-same", lambda nn: nn.Conv1d(3, 5, 4, padding="same"), [rand(2, 3, 9)]),
    Case("Conv1d-reflect", lambda nn: nn.Conv1d(3, 5, 3, padding=2, padding_mode="reflect"), [rand(2, 3, 9)]),
    Case("Conv1d-circular", lambda nn: nn.Conv1d(3, 5, 3, padding=1, padding_mode="circular"), [rand(2, 3, 9)]),
    Case("Conv2d", lambda nn: nn.Conv2d(4, 6, 3), [rand(2, 4, 7, 8)]),
    Case("Conv2d-stride-pad", lambda nn: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2)), [rand(2, 4, 7, 8)]),
    Case("Conv2d-same-dil", lambda nn: nn.Conv2d(4, 6, 3, padding="same", dilation=2), [rand(2, 4, 7, 8)]),
    Case("Conv2d-valid", lambda nn: nn.Conv2d(4, 6, 3, padding="valid"), [rand(1, 4, 6, 6)]),
    Case("Conv2d-groups", lambda nn: nn.Conv2d(4, 8, 3, groups=4, bias=False), [rand(2, 4, 6, 6)]),
    Case("Conv2d-replicate", lambda nn: nn.Conv2d(2, 3, 3, padding=1, padding_mode="replicate"), [rand(2, 2, 5, 6)]),
    Case("Conv2d-unbatched", lambda nn: nn.Conv2d(2, 3, 3), [rand(2, 5, 6)]),
    Case("ConvTranspose1d", lambda nn: nn.ConvTranspose1d(4, 6, 3, stride=2, padding=1, output_padding=1),
         [rand(2, 4, 7)]),
    Case("ConvTranspose2d", lambda nn: nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2), [rand(2, 4, 5, 5)]),
    # normalisation
    Case("BatchNorm1d-2d", lambda nn: nn.BatchNorm1d(5), [rand(8, 5)]),
    Case("BatchNorm1d-3d", lambda nn: nn.BatchNorm1d(5, momentum=None), [rand(4, 5, 6)]),
    Case("BatchNorm2d", lambda nn: nn.BatchNorm2d(4), [rand(3, 4, 5, 5)]),
    Case("BatchNorm2d-noaffine", lambda nn: nn.BatchNorm2d(4, affine=False), [rand(3, 4, 5, 5)]),
    Case("BatchNorm2d-nobias", lambda nn: nn.BatchNorm2d(4, bias=False), [rand(3, 4, 5, 5)]),
    Case("BatchNorm2d-notrack", lambda nn: nn.BatchNorm2d(4, track_running_stats=False), [rand(3, 4, 5, 5)]),
    Case("InstanceNorm1d", lambda nn: nn.InstanceNorm1d(4), [rand(3, 4, 6)]),
    Case("InstanceNorm2d-affine-track", lambda nn: nn.InstanceNorm2d(4, affine=True, track_running_stats=True),
         [rand(3, 4, 5, 5)]),
    Case("InstanceNorm2d-unbatched", lambda nn: nn.InstanceNorm2d(4, affine=True), [rand(4, 5, 5)]),
    Case("LayerNorm", lambda nn: nn.LayerNorm(6), [rand(3, 4, 6)]),
    Case("LayerNorm-2d", lambda nn: nn.LayerNorm([4, 6], eps=1e-3), [rand(3, 4, 6)]),
    Case("LayerNorm-nobias", lambda nn: nn.LayerNorm(6, bias=False), [rand(3, 6)]),
    Case("LayerNorm-noaffine", lambda nn: nn.LayerNorm(6, elementwise_affine=False), [rand(3, 6)]),
    Case("GroupNorm", lambda nn: nn.GroupNorm(2, 6), [rand(3, 6, 4, 5)]),
    Case("GroupNorm-noaffine", lambda nn: nn.GroupNorm(3, 6, affine=False), [rand(3, 6, 7)]),
    Case("RMSNorm", lambda nn: nn.RMSNorm(6), [rand(3, 4, 6)]),
    Case("RMSNorm-eps", lambda nn: nn.RMSNorm([4, 6], eps=1e-3), [rand(3, 4, 6)]),
    # embedding
    Case("Embedding", lambda nn: nn.Embedding(10, 6), [ints(3, 5, high=10)]),
    Case("Embedding-padding", lambda nn: nn.Embedding(10, 6, padding_idx=-2), [ints(4, 7, high=10)]),
    # dropout (eval: identity; p=0 in train)
    Case("Dropout-eval", lambda nn: nn.Dropout(0.5), [rand(4, 6)], modes=("eval",)),
    Case("Dropout-p0", lambda nn: nn.Dropout(0.0), [rand(4, 6)]),
    Case("Dropout2d-eval", lambda nn: nn.Dropout2d(0.3), [rand(2, 3, 4, 4)], modes=("eval",)),
    # activations
    Case("ReLU", lambda nn: nn.ReLU(), [rand(4, 6)]),
    Case("ReLU6", lambda nn: nn.ReLU6(), [rand(4, 6, low=-8, high=8)]),
    Case("LeakyReLU", lambda nn: nn.LeakyReLU(0.2), [rand(4, 6)]),
    Case("ELU", lambda nn: nn.ELU(alpha=0.7), [rand(4, 6)]),
    Case("GELU", lambda nn: nn.GELU(), [rand(4, 6)]),
    Case("GELU-tanh", lambda nn: nn.GELU(approximate="tanh"), [rand(4, 6)]),
    Case("SiLU", lambda nn: nn.SiLU(), [rand(4, 6)]),
    Case("Mish", lambda nn: nn.Mish(), [rand(4, 6)]),
    Case("Sigmoid", lambda nn: nn.Sigmoid(), [rand(4, 6)]),
    Case("Tanh", lambda nn: nn.Tanh(), [rand(4, 6)]),
    Case("Softplus", lambda nn: nn.Softplus(beta=2.0, threshold=3.0), [rand(4, 6)]),
    Case("Softsign", lambda nn: nn.Softsign(), [rand(4, 6)]),
    Case("Hardtanh", lambda nn: nn.Hardtanh(-0.5, 1.5), [rand(4, 6)]),
    Case("Hardsigmoid", lambda nn: nn.Hardsigmoid(), [rand(4, 6, low=-5, high=5)]),
    Case("Hardswish", lambda nn: nn.Hardswish(), [rand(4, 6, low=-5, high=5)]),
    Case("LogSigmoid", lambda nn: nn.LogSigmoid(), [rand(4, 6)]),
    Case("PReLU", lambda nn: nn.PReLU(), [rand(4, 6)]),
    Case("PReLU-channels", lambda nn: nn.PReLU(3, init=0.1), [rand(2, 3, 4)]),
    Case("Softmax", lambda nn: nn.Softmax(dim=1), [rand(3, 4, 5)]),
    Case("LogSoftmax", lambda nn: nn.LogSoftmax(dim=-1), [rand(3, 4, 5)]),
    Case("Softmin", lambda nn: nn.Softmin(dim=0), [rand(3, 4)]),
    # pooling, reshaping
    Case("MaxPool1d", lambda nn: nn.MaxPool1d(3, stride=2, padding=1), [rand(2, 3, 9)]),
    Case("MaxPool2d", lambda nn: nn.MaxPool2d(2), [rand(2, 3, 6, 7)]),
    Case("MaxPool2d-ceil", lambda nn: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), [rand(2, 3, 6, 7)]),
    Case("AvgPool1d", lambda nn: nn.AvgPool1d(3, stride=2), [rand(2, 3, 9)]),
    Case("AvgPool2d", lambda nn: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), [rand(2, 3, 7, 7)]),
    Case("AdaptiveAvgPool1d", lambda nn: nn.AdaptiveAvgPool1d(4), [rand(2, 3, 10)]),
    Case("AdaptiveAvgPool2d", lambda nn: nn.AdaptiveAvgPool2d((1, 1)), [rand(2, 3, 5, 6)]),
    Case("AdaptiveAvgPool2d-3", lambda nn: nn.AdaptiveAvgPool2d(3), [rand(2, 3, 7, 8)]),
    Case("Flatten", lambda nn: nn.Flatten(), [rand(2, 3, 4, 5)]),
    Case("Flatten-range", lambda nn: nn.Flatten(0, 1), [rand(2, 3, 4)]),
    Case("Unflatten", lambda nn: nn.Unflatten(1, (3, 4)), [rand(2, 12, 5)]),
    # containers
    Case("Sequential", lambda nn: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                                nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 5)),
         [rand(2, 3, 4, 4)]),
    # attention
    Case("MHA-self", lambda nn: nn.MultiheadAttention(8, 2), [np.float32(0)], modes=("eval",)),
    Case("MHA-batch-first", lambda nn: nn.MultiheadAttention(8, 4, batch_first=True), [rand(2, 5, 8)] * 3,
         kwargs=lambda T: {"need_weights": False}),
    Case("MHA-cross-weights", lambda nn: nn.MultiheadAttention(8, 2, kdim=6, vdim=4),
         [rand(5, 3, 8), rand(7, 3, 6), rand(7, 3, 4)],
         kwargs=lambda T: {"average_attn_weights": False}),
    Case("MHA-masks", lambda nn: nn.MultiheadAttention(8, 2, batch_first=True), [rand(2, 5, 8), rand(2, 6, 8),
                                                                               rand(2, 6, 8)],
         kwargs=lambda T: {"attn_mask": T(np.random.default_rng(3).normal(size=(5, 6)).astype(np.float32)),
                           "key_padding_mask": T(np.array([[0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 1]], dtype=bool))}),
    Case("MHA-causal", lambda nn: nn.MultiheadAttention(8, 2, batch_first=True, bias=False), [rand(2, 5, 8)] * 3,
         kwargs=lambda T: {"attn_mask": T(causal_bool(5)), "is_causal": True, "need_weights": False}),
    Case("MHA-unbatched", lambda nn: nn.MultiheadAttention(8, 2), [rand(5, 8)] * 3),
    Case("TransformerEncoderLayer", lambda nn: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), [rand(5, 2, 8)]),
    Case("TransformerEncoderLayer-prenorm-gelu",
         lambda nn: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation="gelu", norm_first=True,
                                               batch_first=True),
         [rand(2, 5, 8)], kwargs=lambda T: {"src_mask": T(causal_bool(5)), "is_causal": True}),
    Case("TransformerEncoder", lambda nn: nn.TransformerEncoder(
        nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True), 2, enable_nested_tensor=False),
         [rand(2, 4, 8)], kwargs=lambda T: {"src_key_padding_mask": T(np.array([[0, 0, 0, 1], [0, 0, 0, 0]],
                                                                                 dtype=bool))}),
    # losses
    Case("CrossEntropyLoss", lambda nn: nn.CrossEntropyLoss(), [rand(6, 5), ints(6, high=5)]),
    Case("CrossEntropyLoss-opts", lambda nn: nn.CrossEntropyLoss(
        weight=(loom if nn is lnn else torch).tensor([1.0, 2.0, 0.5, 1.0, 3.0]), ignore_index=1,
        label_smoothing=0.1), [rand(6, 5, 3), ints(6, 3, high=5)]),
    Case("NLLLoss", lambda nn: nn.NLLLoss(reduction="sum"), [rand(6, 5), ints(6, high=5)]),
    Case("MSELoss", lambda nn: nn.MSELoss(), [rand(4, 5), rand(4, 5)]),
    Case("L1Loss", lambda nn: nn.L1Loss(reduction="none"), [rand(4, 5), rand(4, 5)]),
    Case("SmoothL1Loss", lambda nn: nn.SmoothL1Loss(beta=0.5), [rand(4, 5), rand(4, 5)]),
    Case("HuberLoss", lambda nn: nn.HuberLoss(delta=0.7), [rand(4, 5), rand(4, 5)]),
    Case("BCELoss", lambda nn: nn.BCELoss(), [rand(4, 5, low=0.05, high=0.95), rand(4, 5, low=0, high=1)]),
    Case("BCEWithLogitsLoss", lambda nn: nn.BCEWithLogitsLoss(
        pos_weight=(loom if nn is lnn else torch).tensor([1.0, 2.0, 0.5, 1.0, 3.0])),
         [rand(4, 5), rand(4, 5, low=0, high=1)]),
    Case("KLDivLoss", lambda nn: nn.KLDivLoss(reduction="batchmean", log_target=True), [rand(4, 5), rand(4, 5)]),
]
# MHA-self: self-attention with the same tensor as query, key and value (the packed projection path).
CASES[[c.id for c in CASES].index("MHA-self")].inputs = "self"


def make_inputs(case, rng):
    specs = [rand(4, 3, 8)] * 3 if case.inputs == "self" else case.inputs
    arrays, grads = [], []
    cache = {}
    for spec in specs:
        if id(spec) in cache:  # the same spec object repeated: the same tensor (self-attention)
            arrays.append(cache[id(spec)])
            grads.append(None)
            continue
        if spec[0] == "float":
            _, shape, low, high = spec
            value = rng.uniform(low, high, size=shape).astype(np.float32)
            grads.append(True)
        else:
            _, shape, high = spec
            value = rng.integers(0, high, size=shape).astype(np.int64)
            grads.append(False)
        cache[id(spec)] = value
        arrays.append(value)
    return arrays, grads


def build_inputs(arrays, grads, lib):
    out = []
    for a, g in zip(arrays, grads):
        if g is None:  # repeat of the previous tensor
            out.append(out[-1])
        elif lib == "loom":
            t = loom.from_numpy(a.copy())
            out.append(t.requires_grad_(True) if g else t)
        else:
            out.append(torch.from_numpy(a.copy()).requires_grad_(g))
    return out


def flat_outputs(out):
    if isinstance(out, (tuple, list)):
        return [o for o in out if o is not None]
    return [out]


def assert_close(ours, theirs, tol, msg):
    rtol, atol = tol
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=msg)


def make_pair(case):
    loom.manual_seed(0)
    torch.manual_seed(0)
    ours = case.make(lnn)
    theirs = case.make(tnn)
    copy_loom_to_torch(ours, theirs)
    return ours, theirs


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_layer_matches_torch(case):
    ours, theirs = make_pair(case)
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert repr(ours) == repr(theirs)
    rng = np.random.default_rng(0)
    for mode in case.modes:
        ours.train(mode == "train")
        theirs.train(mode == "train")
        arrays, grads = make_inputs(case, rng)
        l_in = build_inputs(arrays, grads, "loom")
        t_in = build_inputs(arrays, grads, "torch")
        l_kwargs = case.kwargs(lambda a: loom.from_numpy(a.copy())) if case.kwargs else {}
        t_kwargs = case.kwargs(lambda a: torch.from_numpy(a.copy())) if case.kwargs else {}
        l_out = flat_outputs(ours(*l_in, **l_kwargs))
        t_out = flat_outputs(theirs(*t_in, **t_kwargs))
        assert len(l_out) == len(t_out)
        for i, (lo, to) in enumerate(zip(l_out, t_out)):
            assert tuple(lo.shape) == tuple(to.shape), (mode, i)
            assert_close(lo.detach().numpy(), to.detach().numpy(), MODULE[loom.float32], f"{mode} output {i}")
        # Buffers (BatchNorm running statistics) after the forward.
        l_sd, t_sd = ours.state_dict(), theirs.state_dict()
        for name in t_sd:
            assert_close(l_sd[name].numpy(), t_sd[name].numpy(), MODULE[loom.float32], f"{mode} state {name}")
        if not case.grads:
            continue
        # Backward with the same random output gradients.
        l_loss, t_loss = 0, 0
        for lo, to in zip(l_out, t_out):
            if not to.requires_grad:
                continue
            g = rng.normal(size=tuple(to.shape)).astype(np.float32)
            l_loss = l_loss + (lo * loom.from_numpy(g.copy())).sum()
            t_loss = t_loss + (to * torch.from_numpy(g)).sum()
        if isinstance(t_loss, int):
            continue
        ours.zero_grad()
        theirs.zero_grad()
        l_loss.backward()
        t_loss.backward()
        for i, (li, ti) in enumerate(zip(l_in, t_in)):
            if ti.requires_grad and ti.grad is not None:
                assert li.grad is not None, f"{mode} input {i}"
                assert_close(li.grad.numpy(), ti.grad.numpy(), GRAD[loom.float32], f"{mode} input grad {i}")
        t_params = dict(theirs.named_parameters())
        for name, p in ours.named_parameters():
            tp = t_params[name]
            if tp.grad is None:
                assert p.grad is None or not np.any(p.grad.numpy()), f"{mode} {name}"
                continue
            assert p.grad is not None, f"{mode} grad of {name}"
            assert_close(p.grad.numpy(), tp.grad.numpy(), GRAD[loom.float32], f"{mode} grad of {name}")


@pytest.mark.parametrize("make", [
    lambda nn: nn.BatchNorm1d(5),
    lambda nn: nn.BatchNorm1d(5, momentum=None),
    lambda nn: nn.BatchNorm2d(3, momentum=0.3, eps=1e-3),
], ids=["bn1d", "bn1d-cumulative", "bn2d"])
def test_batchnorm_running_stats_over_steps_then_eval(make):
    ours, theirs = make(lnn), make(tnn)
    copy_loom_to_torch(ours, theirs)
    rng = np.random.default_rng(1)
    shape = (6, 5, 4) if isinstance(ours, lnn.BatchNorm1d) else (4, 3, 5, 5)
    for step in range(4):
        x = (rng.normal(size=shape) * (step + 1) + step).astype(np.float32)
        ours(loom.from_numpy(x))
        theirs(torch.from_numpy(x))
    for name, value in theirs.state_dict().items():
        assert_close(ours.state_dict()[name].numpy(), value.numpy(), MODULE[loom.float32], name)
    assert int(ours.num_batches_tracked) == 4 and ours.num_batches_tracked.dtype == loom.int64
    ours.eval()
    theirs.eval()
    x = rng.normal(size=shape).astype(np.float32)
    assert_close(ours(loom.from_numpy(x)).detach().numpy(), theirs(torch.from_numpy(x)).detach().numpy(),
                 MODULE[loom.float32], "eval output")
    # Eval mode leaves the statistics alone.
    assert int(ours.num_batches_tracked) == 4


def test_cnn_training_steps_track_torch():
    # SGD with momentum written out; BatchNorm statistics, losses and eval outputs stay with torch's.
    loom.manual_seed(0)
    ours, theirs = small_cnn(lnn), small_cnn(tnn)
    copy_loom_to_torch(ours, theirs)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, size=16)
    l_buf, t_buf = {}, {}
    losses, t_losses = [], []
    for _ in range(5):
        loss = lnn.functional.cross_entropy(ours(loom.from_numpy(x)), loom.from_numpy(y))
        t_loss = torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y))
        ours.zero_grad()
        theirs.zero_grad()
        loss.backward()
        t_loss.backward()
        with loom.no_grad():
            for name, p in ours.named_parameters():
                l_buf[name] = p.grad.clone() if name not in l_buf else l_buf[name] * 0.9 + p.grad
                p.sub_(l_buf[name] * 0.01)
        with torch.no_grad():
            for name, p in theirs.named_parameters():
                t_buf[name] = p.grad.clone() if name not in t_buf else t_buf[name] * 0.9 + p.grad
                p.sub_(t_buf[name] * 0.01)
        losses.append(loss.item())
        t_losses.append(t_loss.item())
    np.testing.assert_allclose(losses, t_losses, rtol=1e-4)
    assert losses[-1] < losses[0]
    for name, value in theirs.state_dict().items():
        assert_close(ours.state_dict()[name].numpy(), value.numpy(), GRAD[loom.float32], name)
    ours.eval()
    theirs.eval()
    assert_close(ours(loom.from_numpy(x)).detach().numpy(), theirs(torch.from_numpy(x)).detach().numpy(),
                 GRAD[loom.float32], "eval logits")


def test_layer_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected 4D input \(got 3D"):
        lnn.BatchNorm2d(3)(loom.randn(2, 3, 4))
    with pytest.raises(ValueError, match="divisible by groups"):
        lnn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="GroupNorm: num_channels"):
        lnn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match="MultiheadAttention: embed_dim"):
        lnn.MultiheadAttention(10, 3)
    with pytest.raises(ValueError, match="dropout probability"):
        lnn.Dropout(1.5)
    with pytest.raises(RuntimeError, match="Need attn_mask"):
        lnn.MultiheadAttention(8, 2)(*[loom.randn(3, 1, 8)] * 3, is_causal=True)


def test_dropout_layers_in_training_mode():
    loom.manual_seed(0)
    x = loom.ones(200, 300)
    out = lnn.Dropout(0.25)(x).numpy()
    assert np.all((out == 0) | np.isclose(out, 1 / 0.75))
    assert abs((out == 0).mean() - 0.25) < 0.01
    out = lnn.Dropout2d(0.5)(loom.ones(50, 40, 3, 3)).numpy()
    per_channel = out.reshape(50, 40, 9)
    assert np.all(per_channel.min(-1) == per_channel.max(-1))  # whole channels kept or dropped
    assert abs((per_channel[..., 0] == 0).mean() - 0.5) < 0.05


def test_embedding_padding_row_is_zero_and_gets_no_grad():
    emb = lnn.Embedding(6, 4, padding_idx=2)
    assert np.all(emb.weight.detach().numpy()[2] == 0)
    emb(loom.tensor([[2, 1, 2]])).sum().backward()
    assert np.all(emb.weight.grad.numpy()[2] == 0) and np.all(emb.weight.grad.numpy()[1] == 1)
    frozen = lnn.Embedding.from_pretrained(loom.randn(5, 3))
    assert not frozen.weight.requires_grad


# Default initialisation: the same distributions as torch's reset_parameters (values cannot match: RNGs differ).
def _bound_stats(t):
    v = t.detach().numpy().ravel()
    return v.min(), v.max(), v.std()


@pytest.mark.parametrize("name, make, param, bound", [
    ("Linear.weight", lambda nn: nn.Linear(400, 300), "weight", 1 / math.sqrt(400)),
    ("Linear.bias", lambda nn: nn.Linear(400, 3000), "bias", 1 / math.sqrt(400)),
    ("Conv2d.weight", lambda nn: nn.Conv2d(16, 64, 5), "weight", 1 / math.sqrt(16 * 25)),
    ("Conv2d.bias", lambda nn: nn.Conv2d(4, 4000, 3), "bias", 1 / math.sqrt(4 * 9)),
    ("Conv1d-groups.weight", lambda nn: nn.Conv1d(32, 256, 3, groups=4), "weight", 1 / math.sqrt(8 * 3)),
    ("MHA.in_proj_weight", lambda nn: nn.MultiheadAttention(256, 4), "in_proj_weight",
     math.sqrt(6 / (256 + 3 * 256))),
    ("Bilinear.weight", lambda nn: nn.Bilinear(20, 30, 200), "weight", 1 / math.sqrt(20)),
])
def test_default_init_uniform_bounds(name, make, param, bound):
    loom.manual_seed(0)
    ours = getattr(make(lnn), param)
    theirs = getattr(make(tnn), param)
    lo, hi, std = _bound_stats(ours)
    t_lo, t_hi, t_std = _bound_stats(theirs)
    assert -bound <= lo < -0.97 * bound and 0.97 * bound < hi <= bound, (lo, hi, bound)
    assert abs(std - bound / math.sqrt(3)) < 0.03 * bound, (std, t_std)
    assert abs(std - t_std) < 0.03 * bound


def test_default_init_constants_and_normal():
    loom.manual_seed(0)
    emb = lnn.Embedding(1000, 64).weight.detach().numpy()
    assert abs(emb.mean()) < 0.02 and abs(emb.std() - 1) < 0.02
    for layer in (lnn.LayerNorm(7), lnn.BatchNorm2d(7), lnn.GroupNorm(7, 7)):
        assert np.all(layer.weight.detach().numpy() == 1) and np.all(layer.bias.detach().numpy() == 0)
    assert np.all(lnn.RMSNorm(7).weight.detach().numpy() == 1)
    mha = lnn.MultiheadAttention(16, 2)
    assert np.all(mha.in_proj_bias.detach().numpy() == 0) and np.all(mha.out_proj.bias.detach().numpy() == 0)
    assert np.all(lnn.PReLU().weight.detach().numpy() == 0.25)


# loom.nn.init functions against torch.nn.init.
@pytest.mark.parametrize("args", [("linear",), ("conv2d",), ("sigmoid",), ("tanh",), ("relu",), ("leaky_relu",),
                                  ("leaky_relu", 0.2), ("selu",)])
def test_calculate_gain(args):
    assert lnn.init.calculate_gain(*args) == pytest.approx(tnn.init.calculate_gain(*args))


@pytest.mark.parametrize("shape", [(3, 4), (5, 4, 3), (6, 2, 3, 3)])
def test_fan_in_and_fan_out(shape):
    assert lnn.init._calculate_fan_in_and_fan_out(loom.empty(*shape)) == \
        tnn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        lnn.init._calculate_fan_in_and_fan_out(loom.empty(3))


@pytest.mark.parametrize("fn, kwargs, std", [
    ("xavier_uniform_", {"gain": 2.0}, 2.0 * math.sqrt(2 / (300 + 200))),
    ("xavier_normal_", {}, math.sqrt(2 / (300 + 200))),
    ("kaiming_uniform_", {"mode": "fan_out", "nonlinearity": "relu"}, math.sqrt(2 / 300)),
    ("kaiming_normal_", {"a": 0.1}, math.sqrt(2 / (1 + 0.01)) / math.sqrt(200)),
    ("normal_", {"mean": 0.0, "std": 0.3}, 0.3),
    ("trunc_normal_", {"std": 1.0, "a": -1.0, "b": 1.5}, None),
])
def test_init_distributions(fn, kwargs, std):
    t = lnn.Parameter(loom.empty(300, 200))
    out = getattr(lnn.init, fn)(t, **kwargs, generator=loom.Generator().manual_seed(3))
    assert out is t and t.requires_grad and t.grad_fn is None
    ours = t.detach().numpy().ravel()
    theirs = getattr(tnn.init, fn)(torch.empty(300, 200), **kwargs).numpy().ravel()
    if std is not None:
        assert abs(ours.std() - std) < 0.02 * std
    assert abs(ours.std() - theirs.std()) < 0.02 * theirs.std()
    assert abs(ours.mean() - theirs.mean()) < 0.02 * theirs.std() + 0.01
    if "uniform" in fn:
        bound = math.sqrt(3) * std
        assert ours.min() >= -bound and ours.max() <= bound and ours.max() > 0.99 * bound
    if fn == "trunc_normal_":
        assert ours.min() >= -1.0 and ours.max() <= 1.5 and ours.min() < -0.99 and ours.max() > 1.49
    again = getattr(lnn.init, fn)(loom.empty(300, 200), **kwargs, generator=loom.Generator().manual_seed(3))
    np.testing.assert_array_equal(again.numpy().ravel(), ours)


@pytest.mark.parametrize("fn, args, shape", [
    ("constant_", (0.3,), (3, 4)), ("zeros_", (), (3, 4)), ("ones_", (), (2, 5)), ("eye_", (), (3, 5)),
    ("dirac_", (), (4, 3, 3, 3)), ("dirac_", (2,), (4, 2, 5)),
])
def test_deterministic_inits_match_torch(fn, args, shape):
    ours = getattr(lnn.init, fn)(lnn.Parameter(loom.empty(*shape)), *args)
    theirs = getattr(tnn.init, fn)(torch.empty(*shape), *args)
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.numpy())


def test_orthogonal_init():
    w = lnn.init.orthogonal_(loom.empty(20, 50), gain=2.0).numpy()
    np.testing.assert_allclose(w @ w.T, 4 * np.eye(20), atol=1e-5)
