"""DDP on an MLP: N ranks with 1/N of the global batch each must match one process training on the whole batch."""
import datetime

import numpy as np

import loom
import loom.distributed as dist
import loom.nn as nn
import loom.nn.functional as F
from loom.nn.parallel import DistributedDataParallel as DDP
from loom.utils.data import DistributedSampler

dist.init_process_group("mpi", timeout=datetime.timedelta(seconds=60))
rank, world = dist.get_rank(), dist.get_world_size()
STEPS, BATCH = 8, 24
TOL = dict(rtol=2e-5, atol=2e-6)  # float32: the reduction sums rank-partial gradients in another order


def mlp(seed):
    loom.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 3))


rng = np.random.default_rng(0)
X = loom.from_numpy(rng.standard_normal((STEPS, BATCH, 10)).astype(np.float32))
Y = loom.from_numpy(rng.standard_normal((STEPS, BATCH, 3)).astype(np.float32))
shard = slice(rank * BATCH // world, (rank + 1) * BATCH // world)

# the reference: one process, the whole batch, rank 0's initial weights
ref = mlp(0)
ref_opt = loom.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
ref_losses = []
for s in range(STEPS):
    ref_opt.zero_grad()
    loss = F.mse_loss(ref(X[s]), Y[s])
    loss.backward()
    ref_opt.step()
    ref_losses.append(loss.item())

# DDP: each rank starts from different weights (seed = rank); the broadcast makes them rank 0's. Small buckets, so
# several all-reduces overlap backward.
model = DDP(mlp(rank), bucket_cap_mb=0.002)
assert len(model._buckets) > 2, len(model._buckets)
opt = loom.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
for s in range(STEPS):
    opt.zero_grad()
    loss = F.mse_loss(model(X[s][shard]), Y[s][shard])
    loss.backward()
    opt.step()
    global_loss = loss.detach().clone()
    dist.all_reduce(global_loss, op=dist.ReduceOp.AVG)
    np.testing.assert_allclose(global_loss.item(), ref_losses[s], **TOL)
for (name, p), q in zip(model.module.named_parameters(), ref.parameters()):
    np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), err_msg=name, **TOL)

# no_sync: two micro-batches accumulated locally, reduced on the second backward == one step on both micro-batches
model = DDP(mlp(0), bucket_cap_mb=0.002)
ref = mlp(0)
half = BATCH // 2
micro = [slice(0, half), slice(half, BATCH)]
mine = slice(rank * half // world, (rank + 1) * half // world)  # this rank's part of a micro-batch
with model.no_sync():
    (F.mse_loss(model(X[0][micro[0]][mine]), Y[0][micro[0]][mine]) / 2).backward()
(F.mse_loss(model(X[0][micro[1]][mine]), Y[0][micro[1]][mine]) / 2).backward()
for m in micro:
    (F.mse_loss(ref(X[0][m]), Y[0][m]) / 2).backward()
for (name, p), q in zip(model.module.named_parameters(), ref.parameters()):
    np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), err_msg="no_sync " + name, **TOL)


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.unused_head = nn.Linear(4, 2)

    def forward(self, x):
        return self.body(x)


# an unused parameter: a clear error naming it at the next forward, unless find_unused_parameters=True
x = loom.ones(2, 4)
model = DDP(TwoHeads())
model(x).sum().backward()
try:
    model(x)
except RuntimeError as e:
    assert "unused_head.weight" in str(e) and "find_unused_parameters" in str(e), str(e)
else:
    raise AssertionError("no error for an unused parameter")
model = DDP(TwoHeads(), find_unused_parameters=True)
for _ in range(2):
    model.zero_grad()
    model(x * (rank + 1)).sum().backward()
expected = x.sum(0) * (world + 1) / 2  # d/dW of sum(W x + b) is the column sums of x, averaged over ranks
np.testing.assert_allclose(model.module.body.weight.grad.numpy()[0], expected.numpy(), **TOL)

# DistributedSampler: the ranks' shards are disjoint and together cover the dataset (padded to equal length)
data = list(range(11))
shards = [list(DistributedSampler(data, num_replicas=world, rank=r, seed=3)) for r in range(world)]
assert all(len(sh) == -(-11 // world) for sh in shards)
assert set(sum(shards, [])) == set(data)
sampler = DistributedSampler(data, shuffle=False, drop_last=True)
assert list(sampler) == data[rank:(11 // world) * world:world]
print(f"OK rank {rank} of {world}", flush=True)
