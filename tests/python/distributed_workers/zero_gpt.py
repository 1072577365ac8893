"""The tiny GPT trained with DDP and with ZeRO stages 1/2/3 on N ranks (1/N of each global batch per rank, two
accumulated micro-batches, gradient clipping) must match one process training on the whole batch. Also checks the
per-rank memory of each stage. Prints "OK rank r of N" and, on rank 0, a line "MEMORY <json>"."""
import datetime
import json
import sys

import numpy as np

import loom
import loom.distributed as dist
from loom.distributed.zero import ZeRO
from loom.models.gpt import GPT, GPTConfig
from loom.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group("mpi", timeout=datetime.timedelta(seconds=90))
rank, world = dist.get_rank(), dist.get_world_size()
STEPS, BATCH, MICRO, T = int(sys.argv[1]) if len(sys.argv) > 1 else 12, 8, 2, 8
CONFIG = GPTConfig(vocab_size=32, block_size=T, n_layer=2, n_head=2, n_embd=16)
# float32: ranks sum partial gradients in another order than one process. AdamW divides by sqrt(v) + eps, which turns
# the rounding noise of gradients that are zero in exact arithmetic (the key biases of attention) into weight changes
# of up to ~3e-5 over 12 steps; a wrong update would move weights by ~lr = 1e-2.
TOL = dict(rtol=2e-4, atol=2e-5)
WEIGHT_TOL = dict(rtol=2e-4, atol=1e-4)
ADAMW = (loom.optim.AdamW, dict(lr=1e-2, weight_decay=0.1))
SGD = (loom.optim.SGD, dict(lr=0.5, momentum=0.9))

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


def train(net, step_fn, clip_fn, zero_fn, part, steps=STEPS):
    losses = []
    for s in range(steps):
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


def reference(opt_spec, steps=STEPS):
    net = model()
    opt = opt_spec[0](net.parameters(), **opt_spec[1])
    losses = train(net, opt.step, lambda n: loom.nn.utils.clip_grad_norm_(net.parameters(), n), opt.zero_grad, None,
                   steps)
    return losses, {k: v.clone() for k, v in net.state_dict().items()}


def compare(what, losses, weights, ref_losses, ref_weights):
    np.testing.assert_allclose(losses, ref_losses, err_msg=what + " losses", **TOL)
    for k, v in ref_weights.items():
        np.testing.assert_allclose(weights[k].numpy(), v.numpy(), err_msg=f"{what} {k}", **WEIGHT_TOL)


ref_losses, ref_weights = reference(ADAMW)
assert ref_losses[-1] < ref_losses[0] - 0.3, ref_losses  # it learns, so the comparison means something

ddp = DDP(model())
opt = ADAMW[0](ddp.parameters(), **ADAMW[1])
losses = train(ddp, opt.step, lambda n: loom.nn.utils.clip_grad_norm_(ddp.parameters(), n), opt.zero_grad,
               (rank, world))
compare("DDP", losses, ddp.module.state_dict(), ref_losses, ref_weights)

memory = {}
for stage in (1, 2, 3):
    engine = ZeRO(model(), ADAMW[0], stage=stage, **ADAMW[1])
    losses = train(engine, engine.step, engine.clip_grad_norm_, engine.zero_grad, (rank, world))
    compare(f"ZeRO-{stage}", losses, engine.full_state_dict(), ref_losses, ref_weights)
    # memory: gradients right after a backward, parameters and optimizer state between steps
    x, y = batch(0, 0, (rank, world))
    engine(x, y)[1].backward()
    engine._finish_gradients()
    grads = engine.memory_report()["gradients"]
    engine.zero_grad()
    memory[stage] = dict(engine.memory_report(), gradients=grads)

sgd_losses, sgd_weights = reference(SGD, steps=4)
engine = ZeRO(model(), SGD[0], stage=3, **SGD[1])
losses = train(engine, engine.step, engine.clip_grad_norm_, engine.zero_grad, (rank, world), steps=4)
compare("ZeRO-3 SGD", losses, engine.full_state_dict(), sgd_losses, sgd_weights)

numel = sum(p.numel() for p in model().parameters())
full = {"parameters": 4 * numel, "gradients": 4 * numel, "optimizer_state": 8 * numel}
if rank == 0:
    print("MEMORY " + json.dumps({"world": world, "full": full, "stages": memory}), flush=True)
print(f"OK rank {rank} of {world}", flush=True)
