"""PyTorch surface that ordinary training scripts use, against PyTorch: Tensor.__format__, Tensor.new_*, the keyword
forms of the factories, unique, diag, the legacy typed constructors, multinomial (distribution checks, since the
streams differ), F.elu/selu/celu, F.pad's non-constant modes and the padding layers, F.interpolate, PixelShuffle.
Values and gradients are compared in float64 unless a test says otherwise."""
import math

import numpy as np
import pytest
import torch

import loom
import loom.nn as lnn
import loom.nn.functional as LF
import torch.nn as tnn
import torch.nn.functional as TF
from tolerances import GRAD, VALUE


def pair(shape, seed=0, low=-2.0, high=2.0):
    """The same float64 values as a loom and a torch leaf requiring grad."""
    array = np.random.default_rng(seed).uniform(low, high, size=shape)
    lt, tt = loom.tensor(array).requires_grad_(True), torch.tensor(array).requires_grad_(True)
    return lt, tt


def check_forward_backward(loom_fn, torch_fn, shape, seed=0, low=-2.0, high=2.0):
    lx, tx = pair(shape, seed, low, high)
    lout, tout = loom_fn(lx), torch_fn(tx)
    assert tuple(lout.shape) == tuple(tout.shape)
    np.testing.assert_allclose(lout.detach().numpy(), tout.detach().numpy(), *VALUE[loom.float64])
    weights = np.random.default_rng(seed + 1).uniform(-1, 1, size=tuple(tout.shape))
    (lout * loom.tensor(weights)).sum().backward()
    (tout * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), *GRAD[loom.float64])


# --- Tensor.__format__ ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,spec", [(1.23456, ".4f"), (1.5, ""), (3, "5d"), (2.0, "e"), (True, "")])
def test_format_of_0d_tensor_matches_torch(value, spec):
    assert format(loom.tensor(value), spec) == format(torch.tensor(value), spec)
    assert f"{loom.tensor(value)}" == f"{torch.tensor(value)}"


def test_format_of_nd_tensor():
    assert format(loom.tensor([1.0, 2.0]), "") == str(loom.tensor([1.0, 2.0]))
    with pytest.raises(TypeError):
        format(torch.tensor([1.0, 2.0]), ".2f")
    with pytest.raises(TypeError, match="unsupported format string"):
        format(loom.tensor([1.0, 2.0]), ".2f")


# --- new_* and keyword factories -----------------------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda m, x: x.new_zeros(2, 3), lambda m, x: x.new_zeros((2, 3)), lambda m, x: x.new_ones([4]),
    lambda m, x: x.new_full((2, 2), 7), lambda m, x: x.new_empty(3, 1).shape and x.new_zeros(3, 1),
    lambda m, x: x.new_tensor([1, 2, 3]), lambda m, x: x.new_zeros(2, dtype=m.int64),
    lambda m, x: x.new_tensor([[1.5]], dtype=m.float32), lambda m, x: x.new_full((3,), 2.5, dtype=m.float64),
    lambda m, x: m.zeros(size=(2, 3)), lambda m, x: m.ones(size=[4], dtype=m.int32),
    lambda m, x: m.empty(size=(2, 0)), lambda m, x: m.zeros(size=(3,), requires_grad=True),
], ids=["new_zeros-args", "new_zeros-tuple", "new_ones", "new_full", "new_empty", "new_tensor", "new_zeros-dtype",
        "new_tensor-dtype", "new_full-dtype", "zeros-size", "ones-size", "empty-size", "zeros-requires_grad"])
def test_new_factories_and_keyword_sizes_match_torch(call):
    lx, tx = loom.tensor([1.0, 2.0], dtype=loom.float64), torch.tensor([1.0, 2.0], dtype=torch.float64)
    lout, tout = call(loom, lx), call(torch, tx)
    assert tuple(lout.shape) == tuple(tout.shape)
    assert str(lout.dtype).split(".")[-1] == str(tout.dtype).split(".")[-1]
    assert lout.requires_grad == tout.requires_grad
    if lout.numel() and tout.numel():
        np.testing.assert_array_equal(lout.detach().numpy(), tout.detach().numpy())


def test_new_tensor_from_tensor_copies_and_detaches():
    x = loom.tensor([1.0, 2.0], requires_grad=True)
    y = x.new_tensor(x)
    assert not y.requires_grad
    y[0] = 5.0
    assert x[0].item() == 1.0


def test_random_factories_take_size_by_keyword():
    loom.manual_seed(3)
    a = loom.rand(size=(2, 3))
    loom.manual_seed(3)
    b = loom.rand(2, 3)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert tuple(loom.randn(size=[4]).shape) == (4,)
    with pytest.raises(TypeError):
        loom.zeros(size=(2, 3.5))


# --- unique and diag -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [[3, 1, 3, 2, 1, 1], [[2.5, -1.0], [2.5, 0.0]], [7], []],
                         ids=["ints", "floats-2d", "one", "empty"])
@pytest.mark.parametrize("flags", [(False, False), (True, False), (False, True), (True, True)])
def test_unique_matches_torch(data, flags):
    return_inverse, return_counts = flags
    dtype = torch.float32 if any(isinstance(v, float) for v in np.ravel(data)) else torch.int64
    tx = torch.tensor(data, dtype=dtype)
    lx = loom.tensor(tx.numpy())
    lout = loom.unique(lx, return_inverse=return_inverse, return_counts=return_counts)
    tout = torch.unique(tx, return_inverse=return_inverse, return_counts=return_counts)
    lout, tout = (lout, tout) if isinstance(tout, tuple) else ((lout,), (tout,))
    assert len(lout) == len(tout)
    for a, b in zip(lout, tout):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(lx.unique().numpy(), tx.unique().numpy())


def test_unique_with_dim_is_not_supported():
    with pytest.raises(NotImplementedError, match="unique: dim"):
        loom.unique(loom.tensor([[1, 2]]), dim=0)


@pytest.mark.parametrize("shape,offset", [((4,), 0), ((3,), 2), ((3,), -1), ((4, 4), 0), ((3, 5), 1), ((5, 3), -2),
                                          ((3, 4), 7), ((2, 3), -4)])
def test_diag_matches_torch_values_and_grads(shape, offset):
    check_forward_backward(lambda x: loom.diag(x, offset), lambda x: torch.diag(x, offset), shape)
    check_forward_backward(lambda x: x.diag(offset), lambda x: x.diag(offset), shape)


def test_diag_rejects_3d():
    with pytest.raises(RuntimeError):
        torch.diag(torch.zeros(2, 2, 2))
    with pytest.raises(ValueError, match=r"diag: expected a 1-D or 2-D tensor, got shape \(2, 2, 2\)"):
        loom.diag(loom.zeros(2, 2, 2))


# --- legacy constructors -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["FloatTensor", "DoubleTensor", "LongTensor", "IntTensor", "BoolTensor",
                                  "ByteTensor"])
def test_legacy_constructors_match_torch(name):
    lcls, tcls = getattr(loom, name), getattr(torch, name)
    data = [[1, 0, 2], [0, 3, 1]]
    a, b = lcls(data), tcls(data)
    assert str(a.dtype).split(".")[-1] == str(b.dtype).split(".")[-1]
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert tuple(lcls(2, 3).shape) == tuple(tcls(2, 3).shape) == (2, 3)
    assert tuple(lcls().shape) == tuple(tcls().shape) == (0,)
    assert isinstance(a, lcls) and isinstance(b, tcls)
    assert isinstance(a, loom.Tensor)
    other = loom.DoubleTensor if name != "DoubleTensor" else loom.FloatTensor
    assert not isinstance(a, other)


def test_legacy_constructor_rejects_other_dtype_tensor():
    with pytest.raises(TypeError):
        torch.FloatTensor(torch.tensor([1, 2]))
    with pytest.raises(TypeError, match="FloatTensor"):
        loom.FloatTensor(loom.tensor([1, 2]))


# --- multinomial ---------------------------------------------------------------------------------------------------

def test_multinomial_shapes_dtype_and_reproducibility():
    probs = loom.tensor([[0.2, 0.0, 0.8], [1.0, 1.0, 1.0]])
    loom.manual_seed(11)
    a = loom.multinomial(probs, 2)
    loom.manual_seed(11)
    b = probs.multinomial(2)
    assert a.dtype == loom.int64 and tuple(a.shape) == (2, 2)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    g = loom.Generator().manual_seed(5)
    c = loom.multinomial(loom.tensor([1.0, 2.0]), 4, replacement=True, generator=g)
    g.manual_seed(5)
    d = loom.multinomial(loom.tensor([1.0, 2.0]), 4, True, generator=g)
    assert tuple(c.shape) == (4,)
    np.testing.assert_array_equal(c.numpy(), d.numpy())


def test_multinomial_with_replacement_frequencies():
    weights = np.array([0.1, 0.0, 0.3, 0.6])
    g = loom.Generator().manual_seed(0)
    n = 40000
    draws = loom.multinomial(loom.tensor(weights * 5), n, replacement=True, generator=g).numpy()
    freq = np.bincount(draws, minlength=4) / n
    assert freq[1] == 0.0
    # 5 standard errors of a binomial proportion.
    np.testing.assert_allclose(freq, weights, atol=5 * math.sqrt(0.25 / n))


def test_multinomial_without_replacement_is_a_sequential_draw():
    weights = np.array([0.5, 0.3, 0.2, 0.0])
    n = 20000
    draws = loom.multinomial(loom.tensor(np.tile(weights, (n, 1))), 2, generator=loom.Generator().manual_seed(1))
    draws = draws.numpy()
    assert (draws[:, 0] != draws[:, 1]).all() and (draws != 3).all()
    # P(first = i, second = j) = w_i * w_j / (1 - w_i), as torch documents for replacement=False.
    for i in range(3):
        for j in range(3):
            if i == j:
                continue
            expected = weights[i] * weights[j] / (1 - weights[i])
            observed = np.mean((draws[:, 0] == i) & (draws[:, 1] == j))
            assert abs(observed - expected) < 5 * math.sqrt(0.25 / n), (i, j, observed, expected)


def test_multinomial_without_replacement_takes_every_category():
    out = loom.multinomial(loom.tensor([3.0, 1.0, 2.0, 5.0]), 4).numpy()
    assert sorted(out.tolist()) == [0, 1, 2, 3]
    # Zero weights fill the places left after the non-zero ones, in index order, as in torch.
    probs = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]
    np.testing.assert_array_equal(loom.multinomial(loom.tensor(probs), 3).numpy(),
                                  torch.multinomial(torch.tensor(probs), 3).numpy())


@pytest.mark.parametrize("probs,n,replacement,error,match", [
    ([1.0, -0.5], 1, True, ValueError, "element < 0"),
    ([1.0, float("nan")], 1, True, ValueError, "inf, nan"),
    ([0.0, 0.0], 1, True, ValueError, "sums to 0"),
    ([1.0, 1.0], 3, False, ValueError, "without replacement"),
    ([1.0, 1.0], 0, True, ValueError, "num_samples <= 0"),
    ([[[1.0]]], 1, True, ValueError, "1 or 2 dim"),
    ([1, 2], 1, True, TypeError, "floating point"),
])
def test_multinomial_errors(probs, n, replacement, error, match):
    with pytest.raises(RuntimeError):  # torch raises RuntimeError for all of these
        torch.multinomial(torch.tensor(probs), n, replacement)
    with pytest.raises(error, match=match):
        loom.multinomial(loom.tensor(probs), n, replacement)


# --- activations ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,kwargs", [("elu", {}), ("elu", {"alpha": 0.5}), ("selu", {}), ("celu", {}),
                                         ("celu", {"alpha": 2.0})])
def test_elu_family_matches_torch(name, kwargs):
    check_forward_backward(lambda x: getattr(LF, name)(x, **kwargs), lambda x: getattr(TF, name)(x, **kwargs),
                           (5, 7), low=-30.0, high=3.0)


@pytest.mark.parametrize("name", ["ELU", "SELU", "CELU"])
def test_elu_family_modules(name):
    check_forward_backward(getattr(lnn, name)(), getattr(tnn, name)(), (4, 3))
    x = loom.tensor([-1.0, 2.0])
    getattr(lnn, name)(inplace=True)(x)
    np.testing.assert_allclose(x.numpy(), getattr(TF, name.lower())(torch.tensor([-1.0, 2.0])).numpy(), rtol=1e-6)


# --- padding -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape,pad", [((2, 3, 5), (2, 1)), ((1, 2, 4, 5), (1, 2, 3, 0)), ((3, 4, 4), (0, 3, 2, 1)),
                                       ((2, 4, 4), (3, 3))])
def test_pad_modes_match_torch(mode, shape, pad):
    check_forward_backward(lambda x: LF.pad(x, pad, mode=mode), lambda x: TF.pad(x, pad, mode=mode), shape)


def test_pad_reflect_too_large_raises():
    with pytest.raises(RuntimeError):
        TF.pad(torch.zeros(1, 2, 3), (3, 0), mode="reflect")
    with pytest.raises(ValueError, match="reflect"):
        LF.pad(loom.zeros(1, 2, 3), (3, 0), mode="reflect")


def test_pad_constant_still_works():
    check_forward_backward(lambda x: LF.pad(x, (1, 2), value=3.0), lambda x: TF.pad(x, (1, 2), value=3.0), (2, 3))


@pytest.mark.parametrize("name,args,shape", [
    ("ZeroPad1d", (2,), (1, 2, 4)), ("ZeroPad2d", ((1, 0, 2, 1),), (1, 2, 3, 3)), ("ZeroPad2d", (1,), (2, 3, 3)),
    ("ConstantPad1d", ((1, 3), 2.5), (2, 4)), ("ConstantPad2d", (1, -1.0), (1, 1, 2, 3)),
    ("ReflectionPad1d", (2,), (1, 2, 5)), ("ReflectionPad2d", ((1, 2, 0, 1),), (1, 2, 4, 4)),
    ("ReplicationPad1d", ((3, 1),), (2, 2, 3)), ("ReplicationPad2d", (2,), (1, 1, 3, 4)),
    ("CircularPad1d", (1,), (1, 2, 3)), ("CircularPad2d", ((1, 1, 2, 0),), (1, 1, 3, 3)),
])
def test_padding_layers_match_torch(name, args, shape):
    lm, tm = getattr(lnn, name)(*args), getattr(tnn, name)(*args)
    check_forward_backward(lm, tm, shape)
    assert repr(lm) == repr(tm)


# --- interpolate and pixel shuffle ---------------------------------------------------------------------------------

@pytest.mark.parametrize("mode,align_corners", [("nearest", None), ("nearest-exact", None), ("linear", False),
                                                ("linear", True)])
@pytest.mark.parametrize("kwargs", [{"size": 9}, {"size": 3}, {"scale_factor": 2}, {"scale_factor": 1.7},
                                    {"scale_factor": 0.5}, {"size": 1}])
def test_interpolate_1d_matches_torch(mode, align_corners, kwargs):
    check_forward_backward(lambda x: LF.interpolate(x, mode=mode, align_corners=align_corners, **kwargs),
                           lambda x: TF.interpolate(x, mode=mode, align_corners=align_corners, **kwargs), (2, 3, 5))


@pytest.mark.parametrize("mode,align_corners", [("nearest", None), ("bilinear", False), ("bilinear", True)])
@pytest.mark.parametrize("kwargs", [{"size": (7, 4)}, {"scale_factor": 2}, {"scale_factor": (1.5, 0.75)},
                                    {"size": 6}, {"scale_factor": 3, "recompute_scale_factor": True}])
def test_interpolate_2d_matches_torch(mode, align_corners, kwargs):
    check_forward_backward(lambda x: LF.interpolate(x, mode=mode, align_corners=align_corners, **kwargs),
                           lambda x: TF.interpolate(x, mode=mode, align_corners=align_corners, **kwargs), (2, 2, 4, 5))


def test_interpolate_float32_matches_torch():
    x = np.random.default_rng(0).standard_normal((1, 3, 7, 9)).astype(np.float32)
    for kwargs in [{"size": (13, 5), "mode": "bilinear"}, {"scale_factor": 1.3, "mode": "nearest"},
                   {"size": (10, 12), "mode": "bilinear", "align_corners": True}]:
        np.testing.assert_allclose(LF.interpolate(loom.tensor(x), **kwargs).numpy(),
                                   TF.interpolate(torch.tensor(x), **kwargs).numpy(), *VALUE[loom.float32])


def test_interpolate_errors():
    x = loom.zeros(1, 1, 4)
    with pytest.raises(ValueError, match="exactly one of size or scale_factor"):
        LF.interpolate(x)
    with pytest.raises(ValueError, match="align_corners"):
        LF.interpolate(x, size=3, align_corners=True)
    with pytest.raises(ValueError, match="bilinear"):
        LF.interpolate(x, size=3, mode="bilinear")
    with pytest.raises(NotImplementedError, match="bicubic"):
        LF.interpolate(loom.zeros(1, 1, 4, 4), size=3, mode="bicubic")


@pytest.mark.parametrize("layer", [lambda nn: nn.Upsample(scale_factor=2, mode="nearest"),
                                   lambda nn: nn.Upsample(size=(5, 3), mode="bilinear", align_corners=False),
                                   lambda nn: nn.UpsamplingBilinear2d(scale_factor=2),
                                   lambda nn: nn.UpsamplingNearest2d(size=6)])
def test_upsample_layers_match_torch(layer):
    check_forward_backward(layer(lnn), layer(tnn), (1, 2, 3, 4))


@pytest.mark.parametrize("shape,factor", [((1, 8, 3, 2), 2), ((2, 3, 9, 2, 2), 3), ((4, 1, 1), 2)])
def test_pixel_shuffle_matches_torch(shape, factor):
    check_forward_backward(lnn.PixelShuffle(factor), tnn.PixelShuffle(factor), shape)
    out = TF.pixel_shuffle(torch.zeros(shape), factor)
    check_forward_backward(lnn.PixelUnshuffle(factor), tnn.PixelUnshuffle(factor), tuple(out.shape))


def test_pixel_shuffle_errors():
    with pytest.raises(ValueError, match="divisible"):
        LF.pixel_shuffle(loom.zeros(1, 3, 2, 2), 2)
    with pytest.raises(ValueError, match="divisible"):
        LF.pixel_unshuffle(loom.zeros(1, 1, 3, 2), 2)
