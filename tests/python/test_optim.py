"""loom.optim against torch.optim: same initial params and gradient sequence -> same params and state."""
import numpy as np
import pytest
import torch

import loom
import loom.optim
from tolerances import OPTIMIZER

SHAPES = [(4, 5), (7,), (3, 2, 2)]
DTYPES = {"float32": (loom.float32, torch.float32, np.float32), "float64": (loom.float64, torch.float64, np.float64)}
OPTIMIZERS = {"SGD": (loom.optim.SGD, torch.optim.SGD), "Adam": (loom.optim.Adam, torch.optim.Adam),
              "AdamW": (loom.optim.AdamW, torch.optim.AdamW)}

SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, momentum=0.8, weight_decay=0.01),
    dict(lr=0.1, weight_decay=0.1, maximize=True),
    dict(lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.01, maximize=True),
]
ADAM_CONFIGS = [
    dict(lr=0.01),
    dict(lr=0.01, amsgrad=True),
    dict(lr=0.02, weight_decay=0.1),
    dict(lr=0.02, weight_decay=0.1, amsgrad=True, maximize=True),
    dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
]
CASES = ([("SGD", c) for c in SGD_CONFIGS] + [("Adam", c) for c in ADAM_CONFIGS] +
         [("AdamW", c) for c in ADAM_CONFIGS])


def to_loom(t):
    return loom.from_numpy(t.detach().numpy().copy())


def to_torch(t):
    return torch.from_numpy(t.numpy().copy())


def assert_close(actual, expected, dtype, what):
    rtol, atol = OPTIMIZER[dtype]
    np.testing.assert_allclose(actual.detach().numpy(), expected.detach().numpy(), rtol=rtol, atol=atol, err_msg=what)


def make_params(rng, np_dtype):
    arrays = [rng.standard_normal(s).astype(np_dtype) for s in SHAPES]
    lp = [loom.from_numpy(a.copy()).requires_grad_(True) for a in arrays]
    tp = [torch.from_numpy(a.copy()).requires_grad_(True) for a in arrays]
    return lp, tp


def groups(params, lrs):
    """One group per lr: the params split as [0, 1] and [2] when there are two."""
    if len(lrs) == 1:
        return [{"params": params, "lr": lrs[0]}]
    return [{"params": params[:2], "lr": lrs[0]}, {"params": params[2:], "lr": lrs[1]}]


def feed_grads(rng, lp, tp, step, np_dtype, skip=None):
    """The same random gradients to both; param `skip` gets no gradient on odd steps."""
    for i, (a, b) in enumerate(zip(lp, tp)):
        if skip == i and step % 2 == 1:
            a.grad, b.grad = None, None
            continue
        g = rng.standard_normal(a.shape).astype(np_dtype)
        a.grad = loom.from_numpy(g.copy())
        b.grad = torch.from_numpy(g.copy())


def compare(lopt, topt, lp, tp, dtype):
    for i, (a, b) in enumerate(zip(lp, tp)):
        assert_close(a, b, dtype, f"param {i}")
        lstate, tstate = lopt.state.get(a, {}), topt.state.get(b, {})
        assert set(lstate) == set(tstate), (i, set(lstate), set(tstate))
        for key, value in tstate.items():
            if key == "step":
                assert lstate[key].item() == value.item()
                assert lstate[key].dim() == 0
            else:
                assert_close(lstate[key], value, dtype, f"state {key} of param {i}")


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("lrs", [(None,), (None, 0.003)], ids=["one_group", "two_groups"])
@pytest.mark.parametrize("name,config", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_matches_torch(name, config, lrs, dtype_name):
    dtype, _, np_dtype = DTYPES[dtype_name]
    rng = np.random.default_rng(0)
    lp, tp = make_params(rng, np_dtype)
    lrs = [config["lr"] if lr is None else lr for lr in lrs]
    config = {k: v for k, v in config.items() if k != "lr"}
    lcls, tcls = OPTIMIZERS[name]
    lopt = lcls(groups(lp, lrs), **config)
    topt = tcls(groups(tp, lrs), foreach=True, **config)
    for step in range(20):
        feed_grads(rng, lp, tp, step, np_dtype, skip=1)
        lopt.step()
        topt.step()
    compare(lopt, topt, lp, tp, dtype)


def test_mixed_dtypes_in_one_group():
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(5)]
    lp = [loom.from_numpy(a.copy()).requires_grad_(True) for a in arrays]
    tp = [torch.from_numpy(a.copy()).requires_grad_(True) for a in arrays]
    lopt, topt = loom.optim.AdamW(lp, lr=0.01), torch.optim.AdamW(tp, lr=0.01, foreach=True)
    for _ in range(5):
        for a, b in zip(lp, tp):
            g = rng.standard_normal(a.shape).astype(a.detach().numpy().dtype)
            a.grad, b.grad = loom.from_numpy(g.copy()), torch.from_numpy(g.copy())
        lopt.step()
        topt.step()
    assert_close(lp[0], tp[0], loom.float32, "float32 param")
    assert_close(lp[1], tp[1], loom.float64, "float64 param")


def clone_state_dict(sd):
    def clone(v):
        if isinstance(v, loom.Tensor):
            return v.clone()
        if isinstance(v, dict):
            return {k: clone(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clone(x) for x in v]
        return v
    return clone(sd)


@pytest.mark.parametrize("name,config", [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                         ("Adam", dict(lr=0.01, amsgrad=True)),
                                         ("AdamW", dict(lr=0.01, weight_decay=0.1))])
def test_state_dict_round_trip(name, config):
    lcls, _ = OPTIMIZERS[name]
    rng = np.random.default_rng(2)
    grads = [[rng.standard_normal(s).astype(np.float32) for s in SHAPES] for _ in range(20)]
    init = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]

    def run(params, opt, steps):
        for gs in steps:
            for p, g in zip(params, gs):
                p.grad = loom.from_numpy(g.copy())
            opt.step()

    full = [loom.from_numpy(a.copy()).requires_grad_(True) for a in init]
    full_opt = lcls(groups(full, [config["lr"], config["lr"] / 2]), **config)
    run(full, full_opt, grads)

    first = [loom.from_numpy(a.copy()).requires_grad_(True) for a in init]
    first_opt = lcls(groups(first, [config["lr"], config["lr"] / 2]), **config)
    run(first, first_opt, grads[:10])
    saved = clone_state_dict(first_opt.state_dict())
    assert sorted(saved["state"]) == [0, 1, 2]
    assert [g["params"] for g in saved["param_groups"]] == [[0, 1], [2]]
    resumed = [loom.from_numpy(p.detach().numpy().copy()).requires_grad_(True) for p in first]
    resumed_opt = lcls(groups(resumed, [1.0, 1.0]), **config)  # lrs come back from the state dict
    resumed_opt.load_state_dict(saved)
    assert [g["lr"] for g in resumed_opt.param_groups] == [config["lr"], config["lr"] / 2]
    run(resumed, resumed_opt, grads[10:])
    for a, b in zip(full, resumed):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


@pytest.mark.parametrize("name,config", [("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1)),
                                         ("Adam", dict(lr=0.01, weight_decay=0.01)),
                                         ("AdamW", dict(lr=0.01, amsgrad=True))])
def test_load_torch_state_dict(name, config):
    lcls, tcls = OPTIMIZERS[name]
    rng = np.random.default_rng(3)
    lp, tp = make_params(rng, np.float32)
    topt = tcls(groups(tp, [config["lr"], 0.002]), **config)
    for step in range(8):
        feed_grads(rng, lp, tp, step, np.float32)
        topt.step()
    sd = topt.state_dict()
    converted = {"state": {k: {n: to_loom(v) if isinstance(v, torch.Tensor) else v for n, v in s.items()}
                           for k, s in sd["state"].items()},
                 "param_groups": [dict(g) for g in sd["param_groups"]]}
    lp = [to_loom(p).requires_grad_(True) for p in tp]
    lopt = lcls(groups(lp, [1.0, 1.0]), **config)
    lopt.load_state_dict(converted)
    for step in range(8):
        feed_grads(rng, lp, tp, step, np.float32)
        lopt.step()
        topt.step()
    compare(lopt, topt, lp, tp, loom.float32)
    # and back: our state dict has torch's structure and keys
    ours = lopt.state_dict()
    assert set(ours) == {"state", "param_groups"}
    assert [set(g) for g in ours["param_groups"]] == [set(g) for g in topt.state_dict()["param_groups"]]
    assert {k: set(v) for k, v in ours["state"].items()} == {k: set(v) for k, v in topt.state_dict()["state"].items()}


def test_load_state_dict_errors():
    p = [loom.zeros(2, requires_grad=True), loom.zeros(3, requires_grad=True)]
    opt = loom.optim.AdamW([{"params": [p[0]]}, {"params": [p[1]]}])
    other = loom.optim.AdamW(p)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt.load_state_dict(other.state_dict())
    sizes = loom.optim.AdamW([{"params": p}, {"params": [loom.zeros(1, requires_grad=True)]}])
    with pytest.raises(ValueError, match="doesn't match the size"):
        opt.load_state_dict(sizes.state_dict())
    bad = opt.state_dict()
    bad["state"] = {0: {"step": loom.tensor(1.0), "exp_avg": loom.zeros(5), "exp_avg_sq": loom.zeros(2)}}
    with pytest.raises(ValueError, match="exp_avg"):
        opt.load_state_dict(bad)
    with pytest.raises(ValueError):
        opt.load_state_dict({"state": {}})


@pytest.mark.parametrize("name,kwargs", [
    ("SGD", dict(lr=-0.1)), ("SGD", dict(lr=0.1, momentum=-1.0)), ("SGD", dict(lr=0.1, weight_decay=-1.0)),
    ("SGD", dict(lr=0.1, nesterov=True)), ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)),
    ("Adam", dict(lr=-1.0)), ("Adam", dict(betas=(1.0, 0.999))), ("Adam", dict(betas=(0.9, -0.1))),
    ("Adam", dict(eps=-1.0)), ("AdamW", dict(weight_decay=-0.1)), ("AdamW", dict(betas=(0.9, 1.5))),
])
def test_invalid_hyperparameters_raise_like_torch(name, kwargs):
    lcls, tcls = OPTIMIZERS[name]
    with pytest.raises(ValueError):
        tcls([torch.zeros(2, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError, match=name):
        lcls([loom.zeros(2, requires_grad=True)], **kwargs)


def test_param_list_errors():
    with pytest.raises(ValueError, match="empty parameter list"):
        loom.optim.SGD([], lr=0.1)
    p = loom.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="more than one parameter group"):
        loom.optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        loom.optim.SGD([p * 2], lr=0.1)
    with pytest.raises(TypeError):
        loom.optim.SGD(p, lr=0.1)
    opt = loom.optim.SGD([p], lr=0.1)
    q = loom.zeros(3, requires_grad=True)
    opt.add_param_group({"params": q, "momentum": 0.9})
    assert opt.param_groups[1]["lr"] == 0.1 and opt.param_groups[1]["momentum"] == 0.9
    assert opt.param_groups[1]["params"][0] is q


@pytest.mark.parametrize("name,config", [("SGD", dict(lr=0.1, momentum=0.9)), ("AdamW", dict(lr=0.01))])
def test_gradient_accumulation(name, config):
    """Two backward passes (micro-batches) before each step, through autograd, like torch."""
    lcls, tcls = OPTIMIZERS[name]
    rng = np.random.default_rng(4)
    w0 = rng.standard_normal((5, 3)).astype(np.float32)
    lw, tw = loom.from_numpy(w0.copy()).requires_grad_(True), torch.from_numpy(w0.copy()).requires_grad_(True)
    lopt, topt = lcls([lw], **config), tcls([tw], **config)
    for _ in range(6):
        lopt.zero_grad()
        topt.zero_grad()
        for _ in range(2):
            x = rng.standard_normal((4, 5)).astype(np.float32)
            y = rng.standard_normal((4, 3)).astype(np.float32)
            lloss = ((loom.from_numpy(x) @ lw - loom.from_numpy(y)) ** 2).mean() / 2
            tloss = ((torch.from_numpy(x) @ tw - torch.from_numpy(y)) ** 2).mean() / 2
            lloss.backward()
            tloss.backward()
        np.testing.assert_allclose(lw.grad.numpy(), tw.grad.numpy(), rtol=1e-5, atol=1e-6)
        lopt.step()
        topt.step()
    np.testing.assert_allclose(lw.detach().numpy(), tw.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_zero_grad_set_to_none_semantics():
    lp, tp = make_params(np.random.default_rng(5), np.float32)
    lopt, topt = loom.optim.AdamW(lp, lr=0.1), torch.optim.AdamW(tp, lr=0.1)
    feed_grads(np.random.default_rng(6), lp, tp, 0, np.float32)
    lopt.step()
    topt.step()
    lopt.zero_grad()  # default: None -> the next step skips every param (no state change, no decay)
    topt.zero_grad()
    assert all(p.grad is None for p in lp)
    lopt.step()
    topt.step()
    assert lopt.state[lp[0]]["step"].item() == 1.0
    compare(lopt, topt, lp, tp, loom.float32)
    feed_grads(np.random.default_rng(7), lp, tp, 0, np.float32)
    lopt.zero_grad(set_to_none=False)  # zeros: the params still step (weight decay, moments decay)
    topt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in lp)
    lopt.step()
    topt.step()
    assert lopt.state[lp[0]]["step"].item() == 2.0
    compare(lopt, topt, lp, tp, loom.float32)


def test_step_is_not_recorded_and_bumps_versions():
    p = loom.randn(4, requires_grad=True)
    opt = loom.optim.AdamW([p], lr=0.1)
    y = (p * p).sum()  # saves p
    p.grad = loom.ones(4)
    version = p._version
    opt.step()
    assert p._version > version
    assert p.is_leaf and p.grad_fn is None and p.requires_grad
    assert opt.state[p]["exp_avg"].grad_fn is None
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()


def test_closure():
    p = loom.tensor([1.0, 2.0], requires_grad=True)
    opt = loom.optim.SGD([p], lr=0.5)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 5.0
    np.testing.assert_allclose(p.detach().numpy(), [0.0, 0.0])


def test_fused_op_errors_name_the_op_and_index():
    from loom._C import _optim
    p = [loom.zeros(3), loom.zeros(2)]
    g = [loom.zeros(3), loom.zeros(4)]
    states = [[loom.zeros(3), loom.zeros(2)] for _ in range(2)]
    steps = [loom.zeros(()), loom.zeros(())]
    kwargs = dict(lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False, maximize=False)
    with pytest.raises(ValueError, match=r"_fused_adamw_: grads\[1\] has shape \(4,\) but params\[1\]"):
        _optim._fused_adamw_(p, g, states[0], states[1], [], steps, **kwargs)
    with pytest.raises(TypeError, match=r"_fused_adam_: grads\[0\] has dtype float64"):
        _optim._fused_adam_(p, [loom.zeros(3, dtype=loom.float64), loom.zeros(2)], states[0], states[1], [], steps,
                            **kwargs)
    with pytest.raises(TypeError, match=r"_fused_sgd_: params\[0\] has dtype int64"):
        _optim._fused_sgd_([loom.zeros(3, dtype=loom.int64)], [loom.zeros(3, dtype=loom.int64)], [], [], lr=0.1)
    with pytest.raises(ValueError, match="_fused_adamw_: got 2 params but 1 state_steps"):
        _optim._fused_adamw_(p, [loom.zeros(3), loom.zeros(2)], states[0], states[1], [], steps[:1], **kwargs)
    with pytest.raises(ValueError, match=r"state_steps\[0\] must be a one-element"):
        _optim._fused_adamw_(p, [loom.zeros(3), loom.zeros(2)], states[0], states[1], [], [loom.zeros(2)] * 2,
                             **kwargs)


def test_fused_op_on_non_contiguous_tensors():
    """Transposed params/states and an expanded (stride-0) gradient are updated like torch."""
    from loom._C import _optim
    rng = np.random.default_rng(8)
    base = rng.standard_normal((6, 4)).astype(np.float32)
    lp, tp = loom.from_numpy(base.copy()).t(), torch.from_numpy(base.copy()).t()
    row = rng.standard_normal((1, 6)).astype(np.float32)
    lg, tg = loom.from_numpy(row).expand(4, 6), torch.from_numpy(row).expand(4, 6)
    lm, lv = loom.zeros(6, 4).t(), loom.zeros(6, 4).t()
    lstep = loom.zeros(())
    tparam = tp.clone().requires_grad_(True)
    topt = torch.optim.AdamW([tparam], lr=0.1, weight_decay=0.1, foreach=True)
    for _ in range(3):
        _optim._fused_adamw_([lp], [lg], [lm], [lv], [], [lstep], lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8,
                             weight_decay=0.1, amsgrad=False, maximize=False)
        tparam.grad = tg.contiguous()
        topt.step()
    assert_close(lp, tparam, loom.float32, "transposed param")
    assert_close(lm, topt.state[tparam]["exp_avg"], loom.float32, "transposed exp_avg")
    assert lstep.item() == 3.0


# ---- loom.nn.utils.clip_grad_norm_ / clip_grad_value_ ----

def grads_pair(rng, scale=1.0, with_none=True):
    lp, tp = make_params(rng, np.float32)
    for i, (a, b) in enumerate(zip(lp, tp)):
        if with_none and i == 1:
            continue  # a parameter without a gradient is skipped
        g = (rng.standard_normal(a.shape) * scale).astype(np.float32)
        a.grad, b.grad = loom.from_numpy(g.copy()), torch.from_numpy(g.copy())
    return lp, tp


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    import loom.nn.utils
    lp, tp = grads_pair(np.random.default_rng(9))
    total = loom.nn.utils.clip_grad_norm_(lp, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(tp, max_norm, norm_type=norm_type)
    assert total.dim() == 0
    np.testing.assert_allclose(total.item(), expected.item(), rtol=1e-6)
    for a, b in zip(lp, tp):
        if b.grad is None:
            assert a.grad is None
        else:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_clip_grad_norm_single_tensor_nonfinite_and_empty():
    import loom.nn.utils
    p = loom.ones(3, requires_grad=True)
    p.grad = loom.tensor([3.0, 4.0, 0.0])
    assert math_isclose(loom.nn.utils.clip_grad_norm_(p, 1.0).item(), 5.0)
    np.testing.assert_allclose(p.grad.numpy(), np.array([3.0, 4.0, 0.0]) / (5.0 + 1e-6), rtol=1e-6)
    p.grad = loom.tensor([1.0, float("inf"), 0.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        loom.nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    q = loom.ones(2, requires_grad=True)
    assert loom.nn.utils.clip_grad_norm_([q], 1.0).item() == 0.0  # no gradients at all


def math_isclose(a, b):
    return abs(a - b) <= 1e-6 * abs(b)


def test_clip_grad_value_matches_torch():
    import loom.nn.utils
    lp, tp = grads_pair(np.random.default_rng(10), scale=2.0)
    loom.nn.utils.clip_grad_value_(lp, 0.7)
    torch.nn.utils.clip_grad_value_(tp, 0.7)
    for a, b in zip(lp, tp):
        if b.grad is not None:
            np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())


def test_float64_default_dtype_step_state():
    previous = loom.get_default_dtype()
    loom.set_default_dtype(loom.float64)
    try:
        p = loom.zeros(2, dtype=loom.float64, requires_grad=True)
        opt = loom.optim.Adam([p])
        p.grad = loom.ones(2, dtype=loom.float64)
        opt.step()
        assert opt.state[p]["step"].dtype == loom.float64  # like torch's _get_scalar_dtype()
    finally:
        loom.set_default_dtype(previous)


def test_failed_step_leaves_no_uninitialised_momentum_buffer():
    p = loom.ones(3, requires_grad=True)
    half = loom.ones(2, dtype=loom.float16).requires_grad_(True)  # the fused op supports float32/float64 only
    opt = loom.optim.SGD([p, half], lr=0.1, momentum=0.9)
    p.grad = loom.ones(3)
    half.grad = loom.ones(2, dtype=loom.float16)
    with pytest.raises(TypeError, match=r"_fused_sgd_: params\[1\] has dtype float16"):
        opt.step()
    assert "momentum_buffer" not in opt.state.get(p, {})
    np.testing.assert_array_equal(p.detach().numpy(), np.ones(3))  # validation runs before any write
