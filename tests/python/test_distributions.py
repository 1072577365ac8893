"""loom.distributions against torch.distributions: log_prob, entropy, moments, KL and their gradients in float64;
samples checked by their statistics (loom's and torch's random streams differ); argument errors."""
import math

import numpy as np
import pytest
import torch
import torch.distributions as TD

import loom
import loom.distributions as LD
from tolerances import GRAD, VALUE


def leaves(*arrays):
    lts = [loom.tensor(np.asarray(a, dtype=np.float64)).requires_grad_(True) for a in arrays]
    tts = [torch.tensor(np.asarray(a, dtype=np.float64)).requires_grad_(True) for a in arrays]
    return lts, tts


def assert_same(lout, tout, lparams, tparams, rtol_atol=VALUE[loom.float64]):
    assert tuple(lout.shape) == tuple(tout.shape)
    np.testing.assert_allclose(lout.detach().numpy(), tout.detach().numpy(), *rtol_atol)
    weights = np.random.default_rng(0).uniform(0.5, 1.5, size=tuple(tout.shape))
    lgrads = loom.autograd.grad((lout * loom.tensor(weights)).sum(), lparams, retain_graph=True)
    tgrads = torch.autograd.grad((tout * torch.tensor(weights)).sum(), tparams, retain_graph=True)
    for lg, tg in zip(lgrads, tgrads):
        np.testing.assert_allclose(lg.numpy(), tg.numpy(), *GRAD[loom.float64])


RNG = np.random.default_rng(42)
PROBS = RNG.uniform(0.05, 1.0, size=(3, 4))
PROBS_WITH_ZERO = np.array([[0.0, 0.5, 0.5], [0.2, 0.3, 0.5]])
LOGITS = RNG.standard_normal((2, 5)) * 3


@pytest.mark.parametrize("kind,param", [("probs", PROBS), ("logits", LOGITS), ("probs", PROBS_WITH_ZERO)],
                         ids=["probs", "logits", "probs-with-zero"])
def test_categorical_matches_torch(kind, param):
    (lp,), (tp,) = leaves(param)
    ld, td = LD.Categorical(**{kind: lp}), TD.Categorical(**{kind: tp})
    assert ld.batch_shape == tuple(td.batch_shape) and ld.event_shape == tuple(td.event_shape)
    assert ld.param_shape == tuple(td.param_shape)
    assert_same(ld.probs, td.probs, [lp], [tp])
    assert_same(ld.entropy(), td.entropy(), [lp], [tp])
    value = np.arange(param.shape[0]) % param.shape[1] + 1
    assert_same(ld.log_prob(loom.tensor(value)), td.log_prob(torch.tensor(value)), [lp], [tp])
    # A value of shape (2, batch) broadcasts against the batch.
    value2 = np.stack([value, np.zeros_like(value)])
    assert_same(ld.log_prob(loom.tensor(value2)), td.log_prob(torch.tensor(value2)), [lp], [tp])
    np.testing.assert_array_equal(ld.mode.numpy(), td.mode.numpy())
    np.testing.assert_array_equal(ld.enumerate_support().numpy(), td.enumerate_support().numpy())


def test_categorical_sampling_statistics():
    probs = np.array([[0.1, 0.6, 0.3], [0.5, 0.0, 0.5]])
    loom.manual_seed(0)
    d = LD.Categorical(probs=loom.tensor(probs))
    assert tuple(d.sample().shape) == (2,)
    draws = d.sample((20000,))
    assert tuple(draws.shape) == (20000, 2) and draws.dtype == loom.int64
    for row in range(2):
        freq = np.bincount(draws[:, row].numpy(), minlength=3) / 20000
        np.testing.assert_allclose(freq, probs[row], atol=5 * math.sqrt(0.25 / 20000))
    loom.manual_seed(7)
    a = d.sample((5,))
    loom.manual_seed(7)
    np.testing.assert_array_equal(a.numpy(), d.sample((5,)).numpy())


@pytest.mark.parametrize("loc,scale", [(0.0, 1.0), (RNG.standard_normal(4), RNG.uniform(0.5, 2, 4)),
                                       (RNG.standard_normal((2, 1)), RNG.uniform(0.5, 2, (1, 3)))],
                         ids=["scalars", "vectors", "broadcast"])
def test_normal_matches_torch(loc, scale):
    (lloc, lscale), (tloc, tscale) = leaves(loc, scale)
    ld, td = LD.Normal(lloc, lscale), TD.Normal(tloc, tscale)
    assert ld.batch_shape == tuple(td.batch_shape)
    value = RNG.standard_normal(tuple(td.batch_shape))
    for name in ["log_prob", "cdf"]:
        assert_same(getattr(ld, name)(loom.tensor(value)), getattr(td, name)(torch.tensor(value)), [lloc, lscale],
                    [tloc, tscale])
    assert_same(ld.entropy(), td.entropy(), [lscale], [tscale])
    for name in ["mean", "stddev", "variance"]:
        np.testing.assert_allclose(getattr(ld, name).detach().numpy(), getattr(td, name).detach().numpy(), 1e-12)


def test_normal_python_number_parameters():
    ld, td = LD.Normal(0.5, 2.0), TD.Normal(0.5, 2.0)
    assert ld.batch_shape == tuple(td.batch_shape) == ()
    assert ld.loc.dtype == loom.float32
    np.testing.assert_allclose(ld.log_prob(loom.tensor(1.0)).item(), td.log_prob(torch.tensor(1.0)).item(), 1e-6)


def test_normal_rsample_is_reparameterized():
    loc = loom.tensor([1.0, -2.0], dtype=loom.float64, requires_grad=True)
    scale = loom.tensor([0.5, 3.0], dtype=loom.float64, requires_grad=True)
    d = LD.Normal(loc, scale)
    loom.manual_seed(1)
    x = d.rsample((50000,))
    assert tuple(x.shape) == (50000, 2)
    x.sum().backward()
    np.testing.assert_array_equal(loc.grad.numpy(), [50000, 50000])
    # d(sum(loc + eps * scale)) / d scale = sum(eps) = sum((x - loc) / scale).
    eps = ((x.detach() - loc.detach()) / scale.detach()).sum(0)
    np.testing.assert_allclose(scale.grad.numpy(), eps.numpy(), 1e-9)
    np.testing.assert_allclose(x.detach().mean(0).numpy(), [1.0, -2.0], atol=5 * 3.0 / math.sqrt(50000))
    np.testing.assert_allclose(x.detach().std(0).numpy(), [0.5, 3.0], rtol=0.03)
    assert not d.sample((3,)).requires_grad


@pytest.mark.parametrize("kind", ["probs", "logits"])
def test_bernoulli_matches_torch(kind):
    param = RNG.uniform(0.05, 0.95, 6) if kind == "probs" else RNG.standard_normal(6) * 2
    (lp,), (tp,) = leaves(param)
    ld, td = LD.Bernoulli(**{kind: lp}), TD.Bernoulli(**{kind: tp})
    value = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    assert_same(ld.log_prob(loom.tensor(value)), td.log_prob(torch.tensor(value)), [lp], [tp])
    assert_same(ld.entropy(), td.entropy(), [lp], [tp])
    assert_same(ld.variance, td.variance, [lp], [tp])
    draws = LD.Bernoulli(probs=loom.tensor([0.2, 0.9])).sample((20000,)).numpy()
    np.testing.assert_allclose(draws.mean(0), [0.2, 0.9], atol=5 * math.sqrt(0.25 / 20000))


def test_uniform_matches_torch():
    (llow, lhigh), (tlow, thigh) = leaves([0.0, -1.0, 2.0], [1.0, 3.0, 2.5])
    ld, td = LD.Uniform(llow, lhigh), TD.Uniform(tlow, thigh)
    value = np.array([0.5, 2.9, 2.1])
    assert_same(ld.log_prob(loom.tensor(value)), td.log_prob(torch.tensor(value)), [llow, lhigh], [tlow, thigh])
    assert_same(ld.entropy(), td.entropy(), [llow, lhigh], [tlow, thigh])
    assert_same(ld.cdf(loom.tensor(value)), td.cdf(torch.tensor(value)), [llow, lhigh], [tlow, thigh])
    outside = [-0.5, 0.0, 2.5]
    unchecked = TD.Uniform(tlow, thigh, validate_args=False)
    np.testing.assert_array_equal(ld.log_prob(loom.tensor(outside, dtype=loom.float64)).detach().numpy(),
                                  unchecked.log_prob(torch.tensor(outside, dtype=torch.float64)).detach().numpy())
    x = ld.rsample((10000,)).detach().numpy()
    assert (x >= [0.0, -1.0, 2.0]).all() and (x < [1.0, 3.0, 2.5]).all()


def test_kl_divergence_matches_torch():
    (a, b, c, d), (ta, tb, tc, td_) = leaves(RNG.standard_normal(3), RNG.uniform(0.5, 2, 3), RNG.standard_normal(3),
                                            RNG.uniform(0.5, 2, 3))
    assert_same(LD.kl_divergence(LD.Normal(a, b), LD.Normal(c, d)),
                TD.kl_divergence(TD.Normal(ta, tb), TD.Normal(tc, td_)), [a, b, c, d], [ta, tb, tc, td_])
    (p, q), (tp, tq) = leaves(PROBS, RNG.uniform(0.05, 1.0, size=(3, 4)))
    assert_same(LD.kl_divergence(LD.Categorical(probs=p), LD.Categorical(probs=q)),
                TD.kl_divergence(TD.Categorical(probs=tp), TD.Categorical(probs=tq)), [p, q], [tp, tq])
    with pytest.raises(NotImplementedError, match="Normal.*Categorical"):
        LD.kl_divergence(LD.Normal(0.0, 1.0), LD.Categorical(probs=loom.tensor([1.0])))


@pytest.mark.parametrize("make", [
    lambda D, t: D.Normal(t([0.0]), t([-1.0])),
    lambda D, t: D.Categorical(probs=t([0.5, -0.1])),
    lambda D, t: D.Bernoulli(probs=t([1.5])),
    lambda D, t: D.Uniform(t([1.0]), t([0.0])),
    lambda D, t: D.Categorical(),
    lambda D, t: D.Categorical(probs=t([0.5]), logits=t([0.5])),
], ids=["normal-scale", "categorical-probs", "bernoulli-probs", "uniform-bounds", "categorical-none",
        "categorical-both"])
def test_invalid_arguments_raise_value_error(make):
    with pytest.raises(ValueError):
        make(TD, torch.tensor)
    with pytest.raises(ValueError):
        make(LD, loom.tensor)


def test_invalid_arguments_pass_without_validation():
    d = LD.Normal(loom.tensor([0.0]), loom.tensor([-1.0]), validate_args=False)
    assert d.batch_shape == (1,)
