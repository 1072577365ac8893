"""loom.optim.lr_scheduler against torch.optim.lr_scheduler: the same lr sequence, value for value."""
import math

import pytest
import torch

import loom
import loom.optim
from loom.optim import lr_scheduler as lsched
from torch.optim import lr_scheduler as tsched

STEPS = 50


def make_optimizers(name="SGD", lrs=(0.1, 0.01)):
    lgroups = [{"params": [loom.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs]
    tgroups = [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs]
    if name == "SGD":
        return loom.optim.SGD(lgroups, momentum=0.9), torch.optim.SGD(tgroups, momentum=0.9)
    return loom.optim.AdamW(lgroups), torch.optim.AdamW(tgroups)


def warmup_cosine(mod):
    def build(opt):
        return mod.SequentialLR(opt, [mod.LinearLR(opt, start_factor=0.01, total_iters=10),
                                      mod.CosineAnnealingLR(opt, T_max=STEPS - 10, eta_min=1e-4)], milestones=[10])
    return build


def warmup_lambda(step):
    return min(1.0, (step + 1) / 5) * 0.95 ** step


class Scale:
    """A callable object (its __dict__ goes into LambdaLR's state dict)."""

    def __init__(self, factor):
        self.factor = factor

    def __call__(self, step):
        return self.factor ** step


SCHEDULERS = {
    "StepLR": lambda m: lambda opt: m.StepLR(opt, step_size=7, gamma=0.5),
    "MultiStepLR": lambda m: lambda opt: m.MultiStepLR(opt, milestones=[5, 12, 12, 30], gamma=0.3),
    "ExponentialLR": lambda m: lambda opt: m.ExponentialLR(opt, gamma=0.93),
    "CosineAnnealingLR": lambda m: lambda opt: m.CosineAnnealingLR(opt, T_max=20, eta_min=0.001),
    "CosineAnnealingLR_long": lambda m: lambda opt: m.CosineAnnealingLR(opt, T_max=STEPS),
    "LambdaLR": lambda m: lambda opt: m.LambdaLR(opt, warmup_lambda),
    "LambdaLR_per_group": lambda m: lambda opt: m.LambdaLR(opt, [warmup_lambda, Scale(0.9)]),
    "MultiplicativeLR": lambda m: lambda opt: m.MultiplicativeLR(opt, lambda step: 0.97),
    "ConstantLR": lambda m: lambda opt: m.ConstantLR(opt, factor=0.25, total_iters=8),
    "LinearLR": lambda m: lambda opt: m.LinearLR(opt, start_factor=0.1, end_factor=0.8, total_iters=15),
    "SequentialLR_warmup_cosine": warmup_cosine,
    "SequentialLR_three": lambda m: lambda opt: m.SequentialLR(
        opt, [m.ConstantLR(opt, factor=0.5, total_iters=4), m.ExponentialLR(opt, gamma=0.9),
              m.StepLR(opt, step_size=5, gamma=0.5)], milestones=[6, 20]),
    "PolynomialLR": lambda m: lambda opt: m.PolynomialLR(opt, total_iters=30, power=2.0),
    "CosineAnnealingWarmRestarts": lambda m: lambda opt: m.CosineAnnealingWarmRestarts(opt, T_0=7, eta_min=0.001),
    "CosineAnnealingWarmRestarts_mult": lambda m: lambda opt: m.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2),
    "SequentialLR_warmup_poly": lambda m: lambda opt: m.SequentialLR(
        opt, [m.LinearLR(opt, start_factor=0.1, total_iters=5), m.PolynomialLR(opt, total_iters=40)],
        milestones=[5]),
    "OneCycleLR_sgd": lambda m: lambda opt: m.OneCycleLR(opt, max_lr=[0.5, 0.05], total_steps=STEPS + 1),
    "OneCycleLR_linear_three_phase": lambda m: lambda opt: m.OneCycleLR(
        opt, max_lr=0.3, total_steps=STEPS + 1, anneal_strategy="linear", three_phase=True),
}


def run(opt, sched, steps):
    lrs = [sched.get_last_lr()]
    for _ in range(steps):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr())
    return lrs


@pytest.mark.parametrize("optimizer", ["SGD", "AdamW"])
@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_lr_sequence_matches_torch(name, optimizer):
    lopt, topt = make_optimizers(optimizer)
    lsch, tsch = SCHEDULERS[name](lsched)(lopt), SCHEDULERS[name](tsched)(topt)
    lrs, expected = run(lopt, lsch, STEPS), run(topt, tsch, STEPS)
    assert lrs == expected  # exactly: the same float formulas in the same order
    assert [g["lr"] for g in lopt.param_groups] == [g["lr"] for g in topt.param_groups]
    if name.startswith("OneCycleLR"):
        key = "momentum" if optimizer == "SGD" else "betas"
        assert [g[key] for g in lopt.param_groups] == [g[key] for g in topt.param_groups]


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_state_dict_round_trip(name):
    """Save the scheduler (and optimizer) mid-way, rebuild both, load, continue: the same lrs as uninterrupted."""
    opt, _ = make_optimizers()
    sched = SCHEDULERS[name](lsched)(opt)
    full = run(opt, sched, STEPS)

    opt, _ = make_optimizers()
    sched = SCHEDULERS[name](lsched)(opt)
    first = run(opt, sched, 20)
    sched_state, opt_state = sched.state_dict(), opt.state_dict()
    assert "optimizer" not in sched_state

    opt, _ = make_optimizers()
    sched = SCHEDULERS[name](lsched)(opt)
    opt.load_state_dict(opt_state)
    sched.load_state_dict(sched_state)
    rest = run(opt, sched, STEPS - 20)
    assert first + rest[1:] == full


def test_torch_state_dict_keys_match():
    lopt, topt = make_optimizers()
    lsch, tsch = warmup_cosine(lsched)(lopt), warmup_cosine(tsched)(topt)
    run(lopt, lsch, 3)
    run(topt, tsch, 3)
    lsd, tsd = lsch.state_dict(), tsch.state_dict()
    assert lsd["last_epoch"] == tsd["last_epoch"] and lsd["_milestones"] == tsd["_milestones"]
    assert [s["last_epoch"] for s in lsd["_schedulers"]] == [s["last_epoch"] for s in tsd["_schedulers"]]
    assert [s["base_lrs"] for s in lsd["_schedulers"]] == [s["base_lrs"] for s in tsd["_schedulers"]]


def test_scheduler_drives_the_update():
    """The optimizer really uses the scheduled lr: SGD without momentum moves by lr * grad."""
    p = loom.zeros(1, requires_grad=True)
    opt = loom.optim.SGD([p], lr=1.0)
    sched = lsched.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        p.grad = loom.ones(1)
        opt.step()
        sched.step()
    assert math.isclose(p.item(), -(1.0 + 0.5 + 0.25))


@pytest.mark.parametrize("kwargs", [dict(), dict(mode="max", factor=0.5, patience=2, cooldown=3, min_lr=[0.02, 0.0]),
                                    dict(threshold_mode="abs", threshold=0.05, patience=1)])
def test_reduce_lr_on_plateau_matches_torch(kwargs):
    lopt, topt = make_optimizers()
    lsch, tsch = lsched.ReduceLROnPlateau(lopt, **kwargs), tsched.ReduceLROnPlateau(topt, **kwargs)
    metrics = [1.0, 0.9, 0.95, 0.95, 0.96, 0.97, 0.89, 0.9, 0.9, 0.9, 0.9, 0.91] * 5
    for metric in metrics:
        lopt.step()
        topt.step()
        lsch.step(metric)
        tsch.step(metric)
        assert lsch.get_last_lr() == tsch.get_last_lr()
    state = lsch.state_dict()
    fresh = lsched.ReduceLROnPlateau(lopt, **kwargs)
    fresh.load_state_dict(state)
    assert fresh.num_bad_epochs == lsch.num_bad_epochs and fresh.best == lsch.best


def test_errors():
    opt, _ = make_optimizers()
    with pytest.raises(TypeError):
        lsched.StepLR(object(), step_size=1)
    with pytest.raises(ValueError, match="lr_lambdas"):
        lsched.LambdaLR(opt, [warmup_lambda])
    with pytest.raises(ValueError, match="milestone"):
        lsched.SequentialLR(opt, [lsched.ConstantLR(opt), lsched.ConstantLR(opt)], milestones=[1, 2])
    with pytest.raises(ValueError, match="start"):
        lsched.LinearLR(opt, start_factor=0.0)
    fresh, _ = make_optimizers()
    with pytest.raises(KeyError, match="initial_lr"):
        lsched.StepLR(fresh, step_size=2, last_epoch=5)
    one_cycle = lsched.OneCycleLR(fresh, max_lr=0.1, total_steps=2)
    one_cycle.step()
    one_cycle.step()
    with pytest.raises(ValueError, match="total steps"):
        one_cycle.step()
