"""The tiny GPT, its data and training loop, shared by the ZeRO workers and tests/python/test_zero.py."""
import numpy as np
from loom.models.gpt import GPT, GPTConfig

import loom
import loom.distributed as dist

STEPS, BATCH, MICRO, T = 12, 8, 2, 8
CONFIG = GPTConfig(vocab_size=32, block_size=T, n_layer=2, n_head=2, n_embd=16)
# float32: ranks sum partial gradients in another order than one process. AdamW divides by sqrt(v) + eps, which turns
# the rounding noise of gradients that are zero in exact arithmetic (the key biases of attention) into weight changes
# of up to ~3e-5 over 12 steps; a wrong update would move weights by ~lr = 1e-2.
TOL = {"rtol": 2e-4, "atol": 2e-5}
WEIGHT_TOL = {"rtol": 2e-4, "atol": 1e-4}
ADAMW = (loom.optim.AdamW, {"lr": 1e-2, "weight_decay": 0.1})
SGD = (loom.optim.SGD, {"lr": 0.5, "momentum": 0.9})

rng = np.random.default_rng(0)
# counting sequences (the next token is the current one + 1): learnable within a few steps
DATA = (rng.integers(0, CONFIG.vocab_size, size=(STEPS, BATCH, 1)) + np.arange(T + 1)) % CONFIG.vocab_size


def model():
    loom.manual_seed(0)
    return GPT(CONFIG)


def batch(step, micro, part=None):
    """Micro-batch `micro` of global step `step`; with part=(rank, world) that rank's share of it."""
    rows = DATA[step, micro * BATCH // MICRO:(micro + 1) * BATCH // MICRO]
    if part is not None:
        r, n = part
        rows = rows[r * len(rows) // n:(r + 1) * len(rows) // n]
    return loom.from_numpy(rows[:, :-1].copy()), loom.from_numpy(rows[:, 1:].copy())


def train(net, step_fn, clip_fn, zero_fn, part, steps=STEPS, start=0):
    losses = []
    for s in range(start, steps):
        total = 0.0
        for m in range(MICRO):
            x, y = batch(s, m, part)
            _, loss = net(x, y)
            (loss / MICRO).backward()
            total += loss.item() / MICRO
        clip_fn(0.5)
        step_fn()
        zero_fn()
        value = loom.tensor([total])
        if part is not None:
            dist.all_reduce(value, op=dist.ReduceOp.AVG)
        losses.append(value.item())
    return losses


def reference(opt_spec, steps=STEPS, net=None, opt=None, start=0):
    """One process on the whole batch; returns (losses, state_dict copy)."""
    net = net or model()
    opt = opt or opt_spec[0](net.parameters(), **opt_spec[1])
    losses = train(net, opt.step, lambda n: loom.nn.utils.clip_grad_norm_(net.parameters(), n), opt.zero_grad, None,
                   steps, start)
    return losses, {k: v.clone() for k, v in net.state_dict().items()}


def compare(what, losses, weights, ref_losses, ref_weights):
    np.testing.assert_allclose(losses, ref_losses, err_msg=what + " losses", **TOL)
    for k, v in ref_weights.items():
        np.testing.assert_allclose(weights[k].numpy(), v.numpy(), err_msg=f"{what} {k}", **WEIGHT_TOL)


