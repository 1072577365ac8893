"""Rank 0 waits in an all_reduce that rank 1 never joins (rank 1 sleeps): rank 0 must time out with a clear error."""
import datetime
import time

import loom
import loom.distributed as dist

dist.init_process_group("mpi", timeout=datetime.timedelta(seconds=2))
if dist.get_rank() == 1:
    time.sleep(8)
else:
    dist.all_reduce(loom.ones(4))
