"""The tiny GPT trained with DDP and with ZeRO stages 1/2/3 on N ranks (1/N of each global batch per rank, two
accumulated micro-batches, gradient clipping) must match one process training on the whole batch. Also checks the
per-rank memory of each stage. Prints "OK rank r of N" and, on rank 0, a line "MEMORY <json>"."""
import datetime
import json

from loom.distributed.zero import ZeRO
from loom.nn.parallel import DistributedDataParallel as DDP
from zero_common import ADAMW, SGD, batch, compare, model, reference, train

import loom
import loom.distributed as dist

dist.init_process_group("mpi", timeout=datetime.timedelta(seconds=90))
rank, world = dist.get_rank(), dist.get_world_size()
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
