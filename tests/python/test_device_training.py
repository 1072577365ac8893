"""Training on a device other than the CPU: an MLP and the small GPT (loom.models.GPT) train on the example backend
vdev (examples/backend_plugin) with AdamW and SGD, and every step's loss and the final weights match the same run on
the CPU (same initial weights, same batches).

Tolerance: DEVICE_RTOL/DEVICE_ATOL below (float32), for every step's loss and every final weight. vdev computes with
loom's own CPU kernels on its stream threads, but takes composites where the CPU has fused kernels (layer norm,
cross-entropy, attention, the fused backward ops), so the runs differ by float32 rounding: measured here the MLP runs
are bit-identical and the GPT losses agree to 1e-7 relative. AdamW divides each gradient element by its own running
magnitude, so an element whose gradient is near zero turns that rounding into a visible step: GPT weights trained
with AdamW are compared at ADAMW_WEIGHT_ATOL (1e-5, 0.3% of one lr-sized step; measured 2.7e-6 on 1 of 4096
elements of an MLP weight after 8 steps). One exception: the key projection's bias gets a gradient that is zero in exact arithmetic (softmax ignores
a per-row shift of the scores), i.e. pure rounding noise, which AdamW divides by its own magnitude into lr-sized
steps; that slice is compared at KEY_BIAS_ATOL (measured difference 1.6e-5 after 8 steps at lr 3e-3). A wrong value
(stale data from a missing synchronisation, a gradient left on the host) is far outside these.

vdev implements the minimal kernel set only; every other op of these models (layer norm, cross-entropy, attention,
the fused backward ops) reaches it through its composite. The CPU fallback stays off, so an op that has neither would
fail these tests with NotImplementedError.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import loom
from harness import REPO, load_vdev
from loom.models import GPT, GPTConfig

DEVICE_RTOL, DEVICE_ATOL = 1e-5, 1e-6
ADAMW_WEIGHT_ATOL = 1e-5
KEY_BIAS_ATOL = 1e-4
STEPS = 8
TESTS = os.path.dirname(os.path.abspath(__file__))

@pytest.fixture(scope="module")
def vdev_device():
    name = load_vdev()
    assert not loom._C._cpu_fallback(name), "these tests prove training needs no CPU fallback"
    return name


def move_module(model, device):
    """model.to(device), then moves whatever that left behind (Module.to moved only dtypes before the device layer's
    Python surface); parameters keep their identity (tied weights stay tied)."""
    model.to(device)
    want = loom.device(device).type
    for p in model.parameters():
        if p.device.type != want:
            p.data = p.detach().to(device)
    for m in model.modules():
        for key, b in m._buffers.items():
            if b is not None and b.device.type != want:
                m._buffers[key] = b.to(device)
    return model


def make_mlp():
    nn = loom.nn
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 5))


def mlp_batches(rng):
    centers = rng.normal(size=(5, 20)).astype(np.float32)
    labels = rng.integers(0, 5, size=(STEPS, 16))
    inputs = (centers[labels] + 0.5 * rng.normal(size=(STEPS, 16, 20))).astype(np.float32)
    return [(x, y.astype(np.int64)) for x, y in zip(inputs, labels)]


GPT_CONFIG = dict(vocab_size=32, block_size=16, n_layer=2, n_head=2, n_embd=32)


def gpt_batches(rng):
    starts = rng.integers(0, 32, size=(STEPS, 4, 1))
    rows = (starts + np.arange(17)) % 32  # each token = previous + 1: learnable within a few steps
    return [(r[:, :-1].astype(np.int64), r[:, 1:].astype(np.int64)) for r in rows]


def make_optimizer(name, params):
    if name == "adamw":
        return loom.optim.AdamW(params, lr=3e-3, betas=(0.9, 0.99), weight_decay=0.1)
    return loom.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=1e-4)


def train(model_name, optimizer_name, device):
    """Trains from seed 0 on `device`; returns the losses (host floats) and the final weights (NumPy)."""
    loom.manual_seed(0)
    rng = np.random.default_rng(0)
    if model_name == "mlp":
        model, batches = make_mlp(), mlp_batches(rng)
        loss_of = lambda m, x, y: loom.nn.functional.cross_entropy(m(x), y)  # noqa: E731
    else:
        model, batches = GPT(GPTConfig(**GPT_CONFIG)), gpt_batches(rng)
        loss_of = lambda m, x, y: m(x, y)[1]  # noqa: E731
    if device != "cpu":
        move_module(model, device)
        assert all(p.device.type == "vdev" for p in model.parameters())
    optimizer = make_optimizer(optimizer_name, model.parameters())
    losses = []
    for x, y in batches:
        x, y = loom.from_numpy(x.copy()), loom.from_numpy(y.copy())
        if device != "cpu":
            x, y = x.to(device), y.to(device)
        loss = loss_of(model, x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert loss.device.type == x.device.type
        losses.append(loss.item())
    weights = {name: p.detach().cpu().numpy() for name, p in model.named_parameters()}
    if device != "cpu":
        for p in model.parameters():  # gradients stayed with their parameters
            assert p.device.type == "vdev" and (p.grad is None or p.grad.device.type == "vdev")
    return losses, weights


def assert_same_run(device_run, cpu_run, what):
    (d_losses, d_weights), (c_losses, c_weights) = device_run, cpu_run
    np.testing.assert_allclose(d_losses, c_losses, rtol=DEVICE_RTOL, atol=DEVICE_ATOL, err_msg=f"{what}: losses")
    assert c_losses[-1] < 0.9 * c_losses[0], f"{what}: not training ({c_losses})"
    assert d_weights.keys() == c_weights.keys()
    for name in c_weights:
        d, c = d_weights[name].copy(), c_weights[name].copy()
        if name.endswith("attn.c_attn.bias"):  # q, k, v biases: the k slice is noise-driven (module docstring)
            k = slice(GPT_CONFIG["n_embd"], 2 * GPT_CONFIG["n_embd"])
            np.testing.assert_allclose(d[k], c[k], rtol=0, atol=KEY_BIAS_ATOL, err_msg=f"{what}: key bias {name}")
            d[k] = c[k]
        atol = ADAMW_WEIGHT_ATOL if "adamw" in what and "gpt" in what else DEVICE_ATOL
        np.testing.assert_allclose(d, c, rtol=DEVICE_RTOL, atol=atol, err_msg=f"{what}: weight {name}")


CASES = [("mlp", "sgd"), ("mlp", "adamw"), ("gpt", "adamw"), ("gpt", "sgd")]


@pytest.mark.parametrize("model_name,optimizer_name", CASES)
def test_training_on_vdev_matches_cpu(vdev_device, model_name, optimizer_name):
    device_run = train(model_name, optimizer_name, vdev_device)
    cpu_run = train(model_name, optimizer_name, "cpu")
    assert_same_run(device_run, cpu_run, f"{model_name} {optimizer_name} on {vdev_device}")


def run_in_subprocess(mode, env=None):
    code = f"import sys; sys.path.insert(0, {TESTS!r}); import test_device_training as t; t.subprocess_main({mode!r})"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=REPO,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def subprocess_main(mode):
    """The slowed-down variant (every case against the CPU); prints one JSON line."""
    device = load_vdev()
    for model_name, optimizer_name in CASES:
        assert_same_run(train(model_name, optimizer_name, device), train(model_name, optimizer_name, "cpu"),
                        f"{model_name} {optimizer_name} with LOOM_VDEV_DELAY_US")
    print(json.dumps("ok"))


def test_training_with_a_slow_device_matches_cpu():
    """Every case again with LOOM_VDEV_DELAY_US: each queued task waits first, so the host runs far ahead of the
    device; a read of a result before its kernel ran (a missing synchronisation) gives wrong values here."""
    assert run_in_subprocess("slow", env={"LOOM_VDEV_DELAY_US": "200"}) == "ok"
