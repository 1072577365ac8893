"""Adagrad, RMSprop, Adadelta, Adamax, NAdam, RAdam and LBFGS against torch.optim in float64: the same initial
parameters and the same loss give the same parameters and state after every step, over two param groups; state_dict
round trips (loom -> loom and torch -> loom mid-run); torch's hyperparameter errors."""
import numpy as np
import pytest
import torch

import loom
from tolerances import OPTIMIZER

CONFIGS = {
    "Adagrad": [{}, {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1, "initial_accumulator_value": 0.5},
                {"lr": 0.05, "maximize": True}],
    "RMSprop": [{}, {"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.05},
                {"alpha": 0.9, "momentum": 0.5}, {"centered": True, "maximize": True}],
    "Adadelta": [{}, {"lr": 0.5, "rho": 0.8, "weight_decay": 0.1}, {"maximize": True}],
    "Adamax": [{}, {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1}, {"maximize": True}],
    "NAdam": [{}, {"lr": 0.01, "weight_decay": 0.1, "momentum_decay": 0.01},
              {"weight_decay": 0.1, "decoupled_weight_decay": True}],
    "RAdam": [{}, {"lr": 0.01, "weight_decay": 0.1}, {"weight_decay": 0.1, "decoupled_weight_decay": True},
              {"betas": (0.5, 0.6)}],
}
CASES = [(name, i) for name, configs in CONFIGS.items() for i in range(len(configs))]
SHAPES = [(3, 4), (4,), (2, 2)]


def make_problem(framework):
    """Three float64 parameters in two groups and a loss: a least-squares fit plus a quartic term."""
    rng = np.random.default_rng(0)
    params = [framework.tensor(rng.standard_normal(s)).requires_grad_(True) for s in SHAPES]
    target = framework.tensor(rng.standard_normal((3,)))

    def loss_fn():
        w, b, c = params
        out = w.matmul(b) + c.sum()
        return ((out - target) ** 2).sum() + (w**4).sum() * 0.01 + (c * b[:2]).sum()

    return params, loss_fn


def run(framework, optimizer_cls, config, steps, on_step=None, state_dict=None):
    params, loss_fn = make_problem(framework)
    groups = [{"params": params[:2]}, {"params": params[2:], "lr": 0.003 if "lr" not in config else config["lr"] / 3}]
    opt = optimizer_cls(groups, **config)
    if state_dict is not None:
        opt.load_state_dict(state_dict)
    for step in range(steps):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
        if on_step:
            on_step(step, params, opt)
    return params, opt


def assert_state_equal(lopt, topt, lparams, tparams):
    rtol, atol = OPTIMIZER[loom.float64]
    for lp, tp in zip(lparams, tparams):
        np.testing.assert_allclose(lp.detach().numpy(), tp.detach().numpy(), rtol, atol)
        lstate, tstate = lopt.state[lp], topt.state[tp]
        assert sorted(lstate) == sorted(tstate)
        for key, tvalue in tstate.items():
            lvalue = lstate[key]
            if isinstance(tvalue, torch.Tensor):
                assert lvalue.dtype.__repr__().split(".")[-1] == repr(tvalue.dtype).split(".")[-1], key
                np.testing.assert_allclose(lvalue.numpy(), tvalue.numpy(), rtol, atol, err_msg=key)


@pytest.mark.parametrize("name,config_index", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_trajectory_matches_torch(name, config_index):
    config = CONFIGS[name][config_index]
    trajectory = []
    run(torch, getattr(torch.optim, name), config, 10,
        on_step=lambda s, p, o: trajectory.append([x.detach().clone() for x in p]))

    def check(step, params, opt):
        rtol, atol = OPTIMIZER[loom.float64]
        for lp, tp in zip(params, trajectory[step]):
            np.testing.assert_allclose(lp.detach().numpy(), tp.numpy(), rtol, atol, err_msg=f"step {step}")

    lparams, lopt = run(loom, getattr(loom.optim, name), config, 10, on_step=check)
    tparams, topt = run(torch, getattr(torch.optim, name), config, 10)
    assert_state_equal(lopt, topt, lparams, tparams)
    assert lopt.defaults == topt.defaults


@pytest.mark.parametrize("name", list(CONFIGS))
def test_state_dict_round_trip_and_from_torch(name):
    config = CONFIGS[name][1]
    _, lopt = run(loom, getattr(loom.optim, name), config, 4)
    _, topt = run(torch, getattr(torch.optim, name), config, 4)
    # Resuming from loom's own state dict or from torch's (tensors converted) continues torch's trajectory.
    lsaved = lopt.state_dict()
    tsaved = topt.state_dict()
    converted = {"state": {k: {n: loom.tensor(v.numpy()) if isinstance(v, torch.Tensor) else v for n, v in s.items()}
                           for k, s in tsaved["state"].items()},
                 "param_groups": tsaved["param_groups"]}
    assert sorted(lsaved["state"]) == sorted(tsaved["state"])
    assert [sorted(g) for g in lsaved["param_groups"]] == [sorted(g) for g in tsaved["param_groups"]]
    tparams, topt2 = run(torch, getattr(torch.optim, name), config, 3, state_dict=tsaved)
    for saved in (lsaved, converted):
        lparams, lopt2 = run(loom, getattr(loom.optim, name), config, 3, state_dict=saved)
        assert_state_equal(lopt2, topt2, lparams, tparams)


@pytest.mark.parametrize("name,kwargs", [
    ("Adagrad", {"lr": -1.0}), ("Adagrad", {"lr_decay": -0.1}), ("Adagrad", {"eps": -1.0}),
    ("RMSprop", {"alpha": -0.5}), ("RMSprop", {"momentum": -0.1}), ("Adadelta", {"rho": 1.5}),
    ("Adamax", {"betas": (1.0, 0.9)}), ("NAdam", {"momentum_decay": -1.0}), ("RAdam", {"betas": (0.9, -0.1)}),
    ("RAdam", {"weight_decay": -1.0}), ("LBFGS", {"lr": -1.0}),
])
def test_invalid_hyperparameters_raise_like_torch(name, kwargs):
    with pytest.raises(ValueError):
        getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **kwargs)
    with pytest.raises(ValueError, match=f"{name}: Invalid"):
        getattr(loom.optim, name)([loom.zeros(2, requires_grad=True)], **kwargs)


def lbfgs_run(framework, config, steps):
    rng = np.random.default_rng(1)
    x = framework.tensor(rng.standard_normal(6)).requires_grad_(True)
    y = framework.tensor(rng.standard_normal((2, 2))).requires_grad_(True)
    opt = framework.optim.LBFGS([x, y], **config)

    def closure():
        opt.zero_grad()
        # A Rosenbrock valley in x plus a coupling with y: curved enough that the history matters.
        loss = (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum() + ((y.sum() - x[0]) ** 2)
        loss.backward()
        return loss

    losses = [float(opt.step(closure).detach()) for _ in range(steps)]
    return [x, y], losses, opt


@pytest.mark.parametrize("config", [{}, {"lr": 0.05, "max_iter": 7, "history_size": 3}, {"lr": 0.01, "max_iter": 1},
                                    {"lr": 0.1, "max_eval": 4}], ids=["defaults", "history3", "one-iter", "max-eval"])
def test_lbfgs_matches_torch(config):
    lparams, llosses, lopt = lbfgs_run(loom, config, 10)
    tparams, tlosses, topt = lbfgs_run(torch, config, 10)
    np.testing.assert_allclose(llosses, tlosses, rtol=1e-9)
    for lp, tp in zip(lparams, tparams):
        np.testing.assert_allclose(lp.detach().numpy(), tp.detach().numpy(), rtol=1e-9, atol=1e-12)
    lstate, tstate = lopt.state[lparams[0]], topt.state[tparams[0]]
    assert lstate["func_evals"] == tstate["func_evals"] and lstate["n_iter"] == tstate["n_iter"]
    assert len(lstate["old_dirs"]) == len(tstate["old_dirs"])
    np.testing.assert_allclose(lstate["d"].numpy(), tstate["d"].numpy(), rtol=1e-8, atol=1e-12)


def test_lbfgs_state_dict_round_trip():
    lparams, _, lopt = lbfgs_run(loom, {"lr": 0.05, "history_size": 4}, 3)
    saved = lopt.state_dict()
    assert saved["param_groups"][0]["history_size"] == 4 and saved["state"][0]["n_iter"] == lopt.state[lparams[0]][
        "n_iter"]
    again = loom.optim.LBFGS(lparams, lr=0.05, history_size=4)
    again.load_state_dict(saved)
    assert again.state[lparams[0]]["n_iter"] == saved["state"][0]["n_iter"]


def test_lbfgs_errors():
    p = [loom.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError, match="parameter groups"):
        loom.optim.LBFGS([{"params": p}, {"params": [loom.zeros(1, requires_grad=True)]}])
    with pytest.raises(RuntimeError, match="strong_wolfe"):
        loom.optim.LBFGS(p, line_search_fn="armijo")
    with pytest.raises(NotImplementedError, match="strong_wolfe"):
        loom.optim.LBFGS(p, line_search_fn="strong_wolfe")
    with pytest.raises(RuntimeError, match="closure"):
        loom.optim.LBFGS(p).step(None)
