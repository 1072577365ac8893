"""Resumes (or starts) the tiny GPT under ZeRO stage S (0: DDP) on N ranks, trains steps [start, stop), prints the
losses ("LOSSES <json>" on rank 0) and saves a checkpoint.

    zero_ckpt.py STAGE DIR START STOP [crash]
With `crash`, a second save (after one more step) dies on rank 0 between its shard write and the index."""
import datetime
import json
import os
import sys

import loom
import loom.distributed as dist
from loom.distributed import checkpoint
from loom.distributed.zero import ZeRO
from loom.nn.parallel import DistributedDataParallel as DDP
from zero_common import ADAMW, model, train

dist.init_process_group("mpi", timeout=datetime.timedelta(seconds=60))
rank, world = dist.get_rank(), dist.get_world_size()
stage, path, start, stop = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
crash = len(sys.argv) > 5 and sys.argv[5] == "crash"

if stage == 0:
    net = DDP(model())
    opt = ADAMW[0](net.parameters(), **ADAMW[1])
    if start:
        checkpoint.load(path, net, opt)
    fns = (opt.step, lambda n: loom.nn.utils.clip_grad_norm_(net.parameters(), n), opt.zero_grad)
    save = lambda: checkpoint.save(path, net, opt)
else:
    net = ZeRO(model(), ADAMW[0], stage=stage, **ADAMW[1])
    if start:
        net.load_checkpoint(path)
    fns = (net.step, net.clip_grad_norm_, net.zero_grad)
    save = lambda: net.save_checkpoint(path)
losses = train(net, *fns, (rank, world), steps=stop, start=start)
if rank == 0:
    print("LOSSES " + json.dumps(losses), flush=True)
save()
if crash:
    train(net, *fns, (rank, world), steps=stop + 1, start=stop)

    def die(r):
        if r == 0:
            os._exit(3)
    checkpoint._after_shard_written = die
    save()
print(f"OK rank {rank} of {world}", flush=True)
