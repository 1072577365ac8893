"""Rank 1 kills itself mid-loop; the others must stop with an error naming rank 1 (never hang)."""
import datetime
import os
import signal
import sys

import loom
import loom.distributed as dist

dist.init_process_group("mpi", timeout=datetime.timedelta(seconds=float(sys.argv[1])))
rank = dist.get_rank()
t = loom.ones(1000)
for step in range(1000):
    if rank == 1 and step == 5:
        os.kill(os.getpid(), signal.SIGKILL)
    dist.all_reduce(t)
    t /= dist.get_world_size()
print("finished", rank)
