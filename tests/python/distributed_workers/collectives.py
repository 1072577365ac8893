"""Every collective on every rank, checked against NumPy: each rank rebuilds every rank's input from (seed, rank)."""
import datetime

import numpy as np

import loom
import loom.distributed as dist

dist.init_process_group("mpi", timeout=datetime.timedelta(seconds=60))
rank, world = dist.get_rank(), dist.get_world_size()
R = dist.ReduceOp
DTYPES = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "uint8", "bool"]
SIZES = [(0,), (1,), (7,), (3, 5), (1001,)]


def values(r, shape, dtype, salt=0):
    """Rank r's input: exactly representable in every dtype (small integers, halves for floats)."""
    rng = np.random.default_rng(1000 * r + 17 * salt + len(shape) * 7 + int(np.prod(shape)))
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype == "uint8":
        return rng.integers(0, 4, shape).astype(np.float64)
    if dtype in ("int64", "int32"):
        return rng.integers(-5, 6, shape).astype(np.float64)
    return rng.integers(-8, 9, shape) / 2.0


def make(array, dtype, noncontiguous=False):
    """A loom tensor of `dtype` holding `array`; optionally a non-contiguous view (every other column)."""
    a = np.asarray(array)
    src = a.astype(np.float32) if dtype != "bool" else a
    if noncontiguous and a.ndim >= 1:
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=src.dtype)
        wide[..., ::2] = src
        t = loom.from_numpy(wide).to(getattr(loom, dtype))[..., ::2]
        assert not t.is_contiguous() or a.shape[-1] <= 1
        return t
    return loom.from_numpy(np.array(src, copy=True)).to(getattr(loom, dtype))  # a copy: from_numpy shares memory


def as_np(t):
    return t.to(loom.float64).numpy() if t.dtype != loom.bool else t.numpy()


def reference(op, arrays, dtype):
    stack = np.stack(arrays)
    if dtype == "bool":
        return {R.SUM: stack.any(0), R.MAX: stack.any(0), R.MIN: stack.all(0), R.PRODUCT: stack.all(0)}[op]
    out = {R.SUM: stack.sum(0), R.MAX: stack.max(0), R.MIN: stack.min(0), R.PRODUCT: stack.prod(0),
           R.AVG: stack.mean(0) if stack.size else stack.sum(0)}[op]
    if dtype == "uint8":
        out = np.mod(out, 256)
    if dtype in ("float16", "bfloat16"):  # reduced in float32, rounded once to the dtype
        out = make(out.astype(np.float32), dtype).to(loom.float64).numpy()
    return out


def check(got, want, what):
    got = as_np(got)
    if not np.array_equal(got, np.asarray(want, dtype=got.dtype)):
        raise AssertionError(f"rank {rank}: {what}: got {got.ravel()[:8]} want {np.asarray(want).ravel()[:8]}")


ops = [R.SUM, R.MAX, R.MIN, R.PRODUCT, R.AVG]
for dtype in DTYPES:
    for shape in SIZES:
        for nc in (False, True):
            inputs = [values(r, shape, dtype) for r in range(world)]
            for op in ops:
                if op == R.AVG and dtype in ("int64", "int32", "uint8", "bool"):
                    continue
                if op == R.PRODUCT and dtype in ("float16", "bfloat16", "uint8"):
                    inputs_p = [np.sign(a) if dtype != "uint8" else a for a in inputs]
                else:
                    inputs_p = inputs
                t = make(inputs_p[rank], dtype, nc)
                dist.all_reduce(t, op=op)
                check(t, reference(op, inputs_p, dtype), f"all_reduce {op} {dtype} {shape} nc={nc}")
            # reduce to the last rank
            t = make(inputs[rank], dtype, nc)
            dist.reduce(t, dst=world - 1, op=R.MAX)
            check(t, reference(R.MAX, inputs, dtype) if rank == world - 1 else inputs[rank], f"reduce {dtype}")
            # broadcast from rank 1
            t = make(inputs[rank], dtype, nc)
            dist.broadcast(t, src=1)
            check(t, inputs[1], f"broadcast {dtype} {shape} nc={nc}")
            # all_gather (list and into one tensor)
            outs = [make(np.zeros(shape), dtype, nc) for _ in range(world)]
            dist.all_gather(outs, make(inputs[rank], dtype, nc))
            for r in range(world):
                check(outs[r], inputs[r], f"all_gather {dtype} {shape}")
            flat = make(np.zeros((world,) + shape), dtype)
            dist.all_gather_into_tensor(flat, make(inputs[rank], dtype, nc))
            check(flat, np.stack(inputs), f"all_gather_into_tensor {dtype}")
            # reduce_scatter: rank r's chunk i is values(r, shape, dtype, salt=i)
            chunks = [[values(r, shape, dtype, salt=i + 1) for i in range(world)] for r in range(world)]
            out = make(np.zeros(shape), dtype, nc)
            dist.reduce_scatter(out, [make(c, dtype, nc) for c in chunks[rank]], op=R.SUM)
            check(out, reference(R.SUM, [chunks[r][rank] for r in range(world)], dtype), f"reduce_scatter {dtype}")
            out = make(np.zeros(shape), dtype)
            dist.reduce_scatter_tensor(out, make(np.stack(chunks[rank]), dtype), op=R.MIN)
            check(out, reference(R.MIN, [chunks[r][rank] for r in range(world)], dtype), "reduce_scatter_tensor")
            # all_to_all: rank r sends chunks[r][i] to rank i
            outs = [make(np.zeros(shape), dtype, nc) for _ in range(world)]
            dist.all_to_all(outs, [make(c, dtype, nc) for c in chunks[rank]])
            for r in range(world):
                check(outs[r], chunks[r][rank], f"all_to_all {dtype}")
            # gather to rank 0, scatter from rank 1
            gl = [make(np.zeros(shape), dtype) for _ in range(world)] if rank == 0 else None
            dist.gather(make(inputs[rank], dtype, nc), gather_list=gl, dst=0)
            if rank == 0:
                for r in range(world):
                    check(gl[r], inputs[r], f"gather {dtype}")
            out = make(np.zeros(shape), dtype, nc)
            dist.scatter(out, [make(chunks[1][i], dtype) for i in range(world)] if rank == 1 else None, src=1)
            check(out, chunks[1][rank], f"scatter {dtype}")

# point to point around a ring, sync and async
for dtype in ("float32", "bfloat16", "int64", "bool"):
    x = values(rank, (5, 3), dtype)
    buf = make(np.zeros((5, 3)), dtype, True)
    send = dist.isend(make(x, dtype), dst=(rank + 1) % world, tag=3)
    recv = dist.irecv(buf, src=(rank - 1) % world, tag=3)
    recv.wait()
    send.wait()
    assert send.is_completed() and recv.is_completed()
    check(buf, values((rank - 1) % world, (5, 3), dtype), f"isend/irecv {dtype}")

# async collectives: several in flight at once, waited in reverse order
ts = [make(values(rank, (64,), "float32", salt=i), "float32") for i in range(4)]
works = [dist.all_reduce(t, async_op=True) for t in ts]
for w in reversed(works):
    w.wait()
for i, t in enumerate(ts):
    check(t, reference(R.SUM, [values(r, (64,), "float32", salt=i) for r in range(world)], "float32"), "async")

# a sub-group of the odd ranks (and its complement on the others)
odd = [r for r in range(world) if r % 2 == 1]
g_odd = dist.new_group(odd)
g_even = dist.new_group([r for r in range(world) if r % 2 == 0])
mine = g_odd if rank % 2 else g_even
members = odd if rank % 2 else [r for r in range(world) if r % 2 == 0]
assert dist.get_world_size(mine) == len(members) and dist.get_rank(mine) == members.index(rank)
assert dist.get_rank(g_even if rank % 2 else g_odd) == -1
t = make(values(rank, (9,), "float64"), "float64")
dist.all_reduce(t, op=R.SUM, group=mine)
check(t, reference(R.SUM, [values(r, (9,), "float64") for r in members], "float64"), "sub-group all_reduce")
t = make(values(rank, (9,), "int64"), "int64")
dist.broadcast(t, src=members[-1], group=mine)
check(t, values(members[-1], (9,), "int64"), "sub-group broadcast")

# object collectives
objs = [None] * world
dist.all_gather_object(objs, {"rank": rank, "payload": "x" * (rank * 37)})
assert objs == [{"rank": r, "payload": "x" * (r * 37)} for r in range(world)], objs
lst = [("from", 1), {"k": [1, 2, 3]}, None] if rank == 1 else [None, None, None]
dist.broadcast_object_list(lst, src=1)
assert lst == [("from", 1), {"k": [1, 2, 3]}, None], lst

# errors are clear, and leave the group usable
for bad, expect in [(lambda: dist.all_reduce(loom.ones(3, dtype=loom.int64), op=R.AVG), "AVG needs a floating"),
                    (lambda: dist.broadcast(loom.ones(3), src=world), "is not a rank of the group"),
                    (lambda: dist.all_gather([loom.ones(3)], loom.ones(3)), "one tensor per rank")]:
    try:
        bad()
    except (TypeError, ValueError) as e:
        assert expect in str(e), str(e)
    else:
        raise AssertionError(f"no error for {expect}")
dist.barrier()
print(f"OK rank {rank} of {world}", flush=True)
