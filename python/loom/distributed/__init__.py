"""Collective communication among processes, with torch.distributed's names (docs/distributed.md).

Launch with ``loomrun -n 2 script.py`` (or ``mpirun -n 2 python script.py``), then in the script::

    import loom.distributed as dist
    dist.init_process_group("mpi", timeout=datetime.timedelta(seconds=60))
    dist.all_reduce(t, op=dist.ReduceOp.SUM)

Ranks in arguments (``src``, ``dst``, ``new_group(ranks)``) are global ranks, as in PyTorch; ``group=`` picks a
sub-group (default: the world). Every blocking op gives up after the group's timeout with an error naming the op,
its sequence number and, where this host can tell, the rank that died.
"""
import datetime
import io
import os
import pickle
import sys

import numpy as np

import loom
from loom._C import _distributed as _core

ReduceOp = _core.ReduceOp
Work = _core.Work

__all__ = ["ReduceOp", "Work", "ProcessGroup", "GroupMember", "init_process_group", "destroy_process_group",
           "is_initialized", "is_available", "is_mpi_available", "get_rank", "get_world_size", "get_backend",
           "new_group", "get_process_group_ranks", "get_global_rank", "all_reduce", "broadcast", "reduce",
           "all_gather", "all_gather_into_tensor", "reduce_scatter", "reduce_scatter_tensor", "all_to_all",
           "all_to_all_single", "gather", "scatter", "send", "recv", "isend", "irecv", "barrier",
           "broadcast_object_list", "all_gather_object"]

# PyTorch programs name the CPU backend "gloo"; loom's CPU backend is MPI.
_BACKEND_ALIASES = {"gloo": "mpi"}
_DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)


class ProcessGroup:
    """A group of processes: its global ranks, in group-rank order, and the C++ group doing the communication."""

    def __init__(self, core, ranks, backend):
        self._core = core
        self._ranks = list(ranks)
        self._backend = backend

    def rank(self):
        return self._core.rank()

    def size(self):
        return self._core.size()

    def __repr__(self):
        return f"ProcessGroup(backend={self._backend!r}, ranks={self._ranks})"


class GroupMember:
    """GroupMember.WORLD is the default group; NON_GROUP_MEMBER is what new_group returns on non-members."""
    WORLD = None
    NON_GROUP_MEMBER = object()


def is_available():
    return True


def is_mpi_available():
    """Whether this build of loom has the MPI backend (CMake found MPI)."""
    return _core.mpi_available()


def is_initialized():
    return GroupMember.WORLD is not None


def _timeout_ms(timeout, op):
    if timeout is None:
        timeout = _DEFAULT_TIMEOUT
    if isinstance(timeout, (int, float)):
        timeout = datetime.timedelta(seconds=timeout)
    if not isinstance(timeout, datetime.timedelta):
        raise TypeError(f"{op}: timeout must be a datetime.timedelta, got {type(timeout).__name__}")
    ms = int(timeout.total_seconds() * 1000)
    if ms <= 0:
        raise ValueError(f"{op}: timeout must be positive, got {timeout}")
    return ms


def _launcher_env(name):
    """An integer from either launcher's environment (torchrun's RANK/WORLD_SIZE, mpirun's OMPI_COMM_WORLD_*)."""
    ompi = {"RANK": "OMPI_COMM_WORLD_RANK", "WORLD_SIZE": "OMPI_COMM_WORLD_SIZE",
            "LOCAL_RANK": "OMPI_COMM_WORLD_LOCAL_RANK"}[name]
    for key in (name, ompi):
        if os.environ.get(key, "") != "":
            return int(os.environ[key]), key
    return None, None


def init_process_group(backend=None, init_method=None, timeout=None, world_size=-1, rank=-1, store=None,
                       group_name="", pg_options=None, device_id=None):
    """Joins this process to the world group of `backend` ("mpi"; "gloo" is taken as "mpi").

    Which rank this process is comes from the launcher (mpirun / loomrun). When RANK or WORLD_SIZE (torchrun's
    variables) or the `rank` / `world_size` arguments are given, they must agree with what MPI reports: MPI cannot
    join processes that torchrun started separately.
    """
    if is_initialized():
        raise RuntimeError("init_process_group: the default process group is already initialised "
                           "(call destroy_process_group first)")
    name = _BACKEND_ALIASES.get(backend or "mpi", backend or "mpi")
    if not isinstance(name, str):
        raise TypeError(f"init_process_group: backend must be a string, got {type(backend).__name__}")
    core = _core.create_process_group(name.lower(), _timeout_ms(timeout, "init_process_group"))
    for what, given, actual in (("world_size", world_size, core.size()), ("rank", rank, core.rank())):
        env_value, env_key = _launcher_env("WORLD_SIZE" if what == "world_size" else "RANK")
        if given is not None and given >= 0 and given != actual:
            raise ValueError(f"init_process_group: {what}={given} was given, but the {name} backend sees "
                             f"{what} {actual} (launch with `loomrun -n N` or `mpirun -n N`)")
        if env_value is not None and env_value != actual:
            raise ValueError(f"init_process_group: {env_key}={env_value} in the environment, but the {name} backend "
                             f"sees {what} {actual}; the MPI backend needs processes started by mpirun "
                             f"(`loomrun -n N script.py`), not by torchrun")
    GroupMember.WORLD = ProcessGroup(core, range(core.size()), name)
    _install_excepthook()


def _install_excepthook():
    """An uncaught exception on one rank ends the whole job once its traceback is printed, so the other ranks stop
    at once instead of waiting for it until their timeout (and this rank does not hang in MPI_Finalize)."""
    previous = sys.excepthook
    if getattr(previous, "_loom_distributed", False):
        return

    def hook(kind, value, traceback):
        previous(kind, value, traceback)
        world = GroupMember.WORLD
        if world is not None and os.environ.get("LOOM_DIST_ABORT_ON_ERROR", "1") != "0":
            sys.stderr.write(f"loom.distributed: rank {world.rank()} raised {kind.__name__}; ending the job\n")
            sys.stderr.flush()
            world._core.abort(1)

    hook._loom_distributed = True
    sys.excepthook = hook


def destroy_process_group(group=None):
    """Forgets `group` (default: the world, and with it every group). MPI itself stays up until the process exits."""
    if group is None or group is GroupMember.WORLD:
        GroupMember.WORLD = None


def _group(group, op):
    if group is GroupMember.NON_GROUP_MEMBER:
        raise ValueError(f"{op}: this rank is not a member of the group (new_group returned NON_GROUP_MEMBER)")
    if group is None:
        if GroupMember.WORLD is None:
            raise RuntimeError(f"{op}: the default process group has not been initialised; "
                               "call loom.distributed.init_process_group() first")
        return GroupMember.WORLD
    if not isinstance(group, ProcessGroup):
        raise TypeError(f"{op}: group must be a ProcessGroup from new_group, got {type(group).__name__}")
    return group


def _group_rank(group, global_rank, op, arg):
    if global_rank not in group._ranks:
        raise ValueError(f"{op}: {arg}={global_rank} is not a rank of the group {group._ranks}")
    return group._ranks.index(global_rank)


def get_rank(group=None):
    """This process's rank in `group` (global rank for the world); -1 when it is not a member."""
    if group is GroupMember.NON_GROUP_MEMBER:
        return -1
    return _group(group, "get_rank").rank()


def get_world_size(group=None):
    if group is GroupMember.NON_GROUP_MEMBER:
        return -1
    return _group(group, "get_world_size").size()


def get_backend(group=None):
    return _group(group, "get_backend")._backend


def get_process_group_ranks(group):
    return list(_group(group, "get_process_group_ranks")._ranks)


def get_global_rank(group, group_rank):
    return _group(group, "get_global_rank")._ranks[group_rank]


def new_group(ranks=None, timeout=None, backend=None, pg_options=None, use_local_synchronization=False):
    """A sub-group of the given global ranks (all of them when None). Every rank of the world must call it, in the
    same order as other collectives; non-members get GroupMember.NON_GROUP_MEMBER."""
    world = _group(None, "new_group")
    if timeout is not None:
        raise NotImplementedError("new_group: a timeout of its own is not supported yet; groups use the world's")
    ranks = sorted(world._ranks if ranks is None else [int(r) for r in ranks])
    core = world._core.new_group(ranks)
    return GroupMember.NON_GROUP_MEMBER if core is None else ProcessGroup(core, ranks, world._backend)


def _finish(work, async_op):
    if async_op:
        return work
    work.wait()
    return None


# ---- tensor collectives (PyTorch's signatures) ----

def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    return _finish(_group(group, "all_reduce")._core.all_reduce(tensor, op), async_op)


def broadcast(tensor, src=None, group=None, async_op=False, group_src=None):
    g = _group(group, "broadcast")
    root = group_src if group_src is not None else _group_rank(g, 0 if src is None else src, "broadcast", "src")
    return _finish(g._core.broadcast(tensor, root), async_op)


def reduce(tensor, dst=None, op=ReduceOp.SUM, group=None, async_op=False, group_dst=None):
    g = _group(group, "reduce")
    root = group_dst if group_dst is not None else _group_rank(g, 0 if dst is None else dst, "reduce", "dst")
    return _finish(g._core.reduce(tensor, root, op), async_op)


def all_gather(tensor_list, tensor, group=None, async_op=False):
    return _finish(_group(group, "all_gather")._core.all_gather(list(tensor_list), tensor), async_op)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
    g = _group(group, "all_gather_into_tensor")
    return _finish(g._core.all_gather_into_tensor(output_tensor, input_tensor), async_op)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    return _finish(_group(group, "reduce_scatter")._core.reduce_scatter(output, list(input_list), op), async_op)


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op=False):
    g = _group(group, "reduce_scatter_tensor")
    return _finish(g._core.reduce_scatter_tensor(output, input, op), async_op)


def all_to_all(output_tensor_list, input_tensor_list, group=None, async_op=False):
    g = _group(group, "all_to_all")
    return _finish(g._core.all_to_all(list(output_tensor_list), list(input_tensor_list)), async_op)


def all_to_all_single(output, input, output_split_sizes=None, input_split_sizes=None, group=None, async_op=False):
    """Splits `input` along dim 0 (equally, or by input_split_sizes), sends part i to rank i and writes what rank i
    sent into part i of `output`."""
    g = _group(group, "all_to_all_single")
    n = g.size()

    def parts(t, sizes, arg):
        if sizes is None:
            if t.shape[0] % n != 0:
                raise ValueError(f"all_to_all_single: {arg}'s first dimension {t.shape[0]} is not divisible by the "
                                 f"group size {n}")
            sizes = [t.shape[0] // n] * n
        if len(sizes) != n or sum(sizes) != t.shape[0]:
            raise ValueError(f"all_to_all_single: {arg} split sizes {list(sizes)} must be {n} sizes summing to "
                             f"{t.shape[0]}")
        return list(t.split(list(sizes), 0))

    outputs = parts(output, output_split_sizes, "output")
    inputs = parts(input, input_split_sizes, "input")
    return _finish(g._core.all_to_all(outputs, inputs), async_op)


def gather(tensor, gather_list=None, dst=None, group=None, async_op=False, group_dst=None):
    g = _group(group, "gather")
    root = group_dst if group_dst is not None else _group_rank(g, 0 if dst is None else dst, "gather", "dst")
    return _finish(g._core.gather(list(gather_list or []), tensor, root), async_op)


def scatter(tensor, scatter_list=None, src=None, group=None, async_op=False, group_src=None):
    g = _group(group, "scatter")
    root = group_src if group_src is not None else _group_rank(g, 0 if src is None else src, "scatter", "src")
    return _finish(g._core.scatter(tensor, list(scatter_list or []), root), async_op)


def isend(tensor, dst=None, group=None, tag=0, group_dst=None):
    g = _group(group, "isend")
    peer = group_dst if group_dst is not None else _group_rank(g, dst, "isend", "dst")
    return g._core.send(tensor, peer, tag)


def irecv(tensor, src=None, group=None, tag=0, group_src=None):
    g = _group(group, "irecv")
    if src is None and group_src is None:
        raise NotImplementedError("irecv: receiving from any source (src=None) is not supported yet; name the sender")
    peer = group_src if group_src is not None else _group_rank(g, src, "irecv", "src")
    return g._core.recv(tensor, peer, tag)


def send(tensor, dst=None, group=None, tag=0, group_dst=None):
    isend(tensor, dst, group, tag, group_dst).wait()


def recv(tensor, src=None, group=None, tag=0, group_src=None):
    """Receives into `tensor`; returns the sender's rank."""
    irecv(tensor, src, group, tag, group_src).wait()
    return src if src is not None else get_global_rank(_group(group, "recv"), group_src)


def barrier(group=None, async_op=False, device_ids=None):
    return _finish(_group(group, "barrier")._core.barrier(), async_op)


# ---- object collectives (pickle, as PyTorch) ----

def _to_bytes_tensor(obj):
    buffer = io.BytesIO()
    pickle.Pickler(buffer).dump(obj)
    return loom.from_numpy(np.frombuffer(buffer.getvalue(), dtype=np.uint8).copy())


def all_gather_object(object_list, obj, group=None):
    """object_list[i] <- rank i's obj (every rank; object_list must have one slot per rank)."""
    g = _group(group, "all_gather_object")
    n = g.size()
    if len(object_list) != n:
        raise ValueError(f"all_gather_object: object_list must have {n} slots (one per rank), got {len(object_list)}")
    payload = _to_bytes_tensor(obj)
    sizes = loom.zeros(n, dtype=loom.int64)
    g._core.all_gather_into_tensor(sizes, loom.tensor([payload.numel()], dtype=loom.int64)).wait()
    sizes = sizes.tolist()
    longest = max(sizes)
    padded = loom.zeros(longest, dtype=loom.uint8)
    padded[:payload.numel()] = payload
    gathered = loom.zeros(n * longest, dtype=loom.uint8)
    g._core.all_gather_into_tensor(gathered, padded).wait()
    for i in range(n):
        object_list[i] = pickle.loads(gathered[i * longest:i * longest + sizes[i]].numpy().tobytes())


def broadcast_object_list(object_list, src=None, group=None, device=None, group_src=None):
    """object_list[:] <- src's object_list (the same length on every rank)."""
    g = _group(group, "broadcast_object_list")
    root = group_src if group_src is not None else _group_rank(g, 0 if src is None else src,
                                                               "broadcast_object_list", "src")
    is_root = g.rank() == root
    payloads = [_to_bytes_tensor(o) for o in object_list] if is_root else []
    sizes = loom.tensor([p.numel() for p in payloads] if is_root else [0] * len(object_list), dtype=loom.int64)
    g._core.broadcast(sizes, root).wait()
    sizes = sizes.tolist()
    data = loom.cat(payloads) if is_root and payloads else loom.zeros(sum(sizes), dtype=loom.uint8)
    g._core.broadcast(data, root).wait()
    if not is_root:
        offset = 0
        for i, size in enumerate(sizes):
            object_list[i] = pickle.loads(data[offset:offset + size].numpy().tobytes())
            offset += size
