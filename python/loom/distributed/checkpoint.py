"""Sharded checkpoints that do not depend on the topology (docs/distributed.md, "Checkpoints").

A checkpoint is a directory: one safetensors file per rank that saved, and ``index.json``. Every tensor is stored
flattened, in pieces: a piece is the element range [start, end) of the flattened tensor that one file holds under the
tensor's key (``model/<parameter>``, ``buffer/<name>``, ``optim/<state key>/<parameter>``). The index lists each
tensor's shape, dtype and pieces, and the optimizer's class, hyperparameters and scalar state (step). A reader
assembles whole tensors from the pieces, so a checkpoint loads into any world size and ZeRO stage, and into plain
single-process training.

Crash safety: file names carry a fresh tag per save; each rank's file is written atomically (temporary file, then
rename); after a barrier rank 0 writes the index atomically, and only then deletes the previous save's files. A crash
before the new index leaves the old index and the files it names intact.
"""
import json
import os
import uuid

import numpy as np

import loom
import loom.distributed as dist

__all__ = ["consolidate", "load", "load_zero", "read_full_state", "save", "save_zero"]

INDEX = "index.json"
FORMAT = "loom-sharded-checkpoint"

# For tests: called on each rank after its shard file is written and before the barrier and the index.
_after_shard_written = None


def _dtype_name(t):
    return str(t.dtype).replace("loom.", "")


def _write(path, tag, rank, world, tensors, group):
    """Writes this rank's pieces; returns the index entries (key -> (shape, dtype, piece)) of the file."""
    name = f"shard-{tag}-{rank:05d}-of-{world:05d}.safetensors"
    os.makedirs(path, exist_ok=True)
    loom.save_file({k: t.contiguous() for k, (t, _, _, _) in tensors.items()}, os.path.join(path, name))
    if _after_shard_written is not None:
        _after_shard_written(rank)
    return {k: (list(shape), _dtype_name(t), {"file": name, "start": a, "end": a + t.numel()})
            for k, (t, shape, a, _) in tensors.items()}


def _finish(path, entries_per_rank, meta):
    """Rank 0: merges the ranks' entries into the index, writes it atomically, deletes files it no longer names."""
    tensors = {}
    for entries in entries_per_rank:
        for key, (shape, dtype, piece) in entries.items():
            slot = tensors.setdefault(key, {"shape": shape, "dtype": dtype, "pieces": []})
            slot["pieces"].append(piece)
    for slot in tensors.values():
        slot["pieces"].sort(key=lambda p: p["start"])
    index = dict(meta, format=FORMAT, version=1, tensors=tensors,
                 files=sorted({p["file"] for s in tensors.values() for p in s["pieces"]}))
    tmp = os.path.join(path, f".{INDEX}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(index, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(path, INDEX))
    for name in os.listdir(path):
        if name.startswith("shard-") and name.endswith(".safetensors") and name not in index["files"]:
            os.remove(os.path.join(path, name))


def _optimizer_meta(optimizer, first_state):
    """The optimizer's class, JSON-able hyperparameters and scalar state (taken from one parameter's state)."""
    group = {k: (list(v) if isinstance(v, tuple) else v) for k, v in optimizer.param_groups[0].items()
             if k != "params" and (v is None or isinstance(v, (int, float, bool, str, tuple, list)))}
    scalars = {}
    for k, v in (first_state or {}).items():
        if isinstance(v, loom.Tensor) and v.dim() == 0:
            scalars[k] = {"value": v.item(), "tensor": True, "dtype": _dtype_name(v)}
        elif isinstance(v, (int, float)):
            scalars[k] = {"value": v, "tensor": False}
    return {"class": type(optimizer).__name__, "param_group": group, "scalars": scalars}


def _elementwise_state(state):
    return {k: v for k, v in state.items() if isinstance(v, loom.Tensor) and v.dim() > 0}


# ---- saving ----

def _new_tag(group):
    tag = [uuid.uuid4().hex[:12]]
    if dist.is_initialized():
        dist.broadcast_object_list(tag, src=dist.get_global_rank(dist._group(group, "checkpoint"), 0), group=group)
    return tag[0]


def save_zero(path, engine):
    """Every rank of the ZeRO engine writes the pieces it owns (collective: all ranks must call it)."""
    engine._finish_pending_silently()
    group, rank, world = engine._group, engine.rank, engine.world_size
    tag = _new_tag(group)
    tensors, first_state = {}, None
    for unit in engine._units:
        state = engine.optimizer.state.get(unit.shard, {})
        first_state = first_state or state
        elementwise = _elementwise_state(state)
        for name, shape, (a, b), (sa, sb) in unit.pieces():
            tensors[f"model/{name}"] = (unit.shard[sa:sb], shape, a, b)
            for key, value in elementwise.items():
                tensors[f"optim/{key}/{name}"] = (value[sa:sb], shape, a, b)
    if rank == 0:
        for name, b in engine.module.named_buffers():
            tensors[f"buffer/{name}"] = (b.reshape(-1), tuple(b.shape), 0, b.numel())
    entries = _write(path, tag, rank, world, tensors, group)
    gathered = [None] * world
    dist.all_gather_object(gathered, entries, group=group)  # also the barrier: every file is written
    if rank == 0:
        _finish(path, gathered, {"world_size": world, "zero_stage": engine.stage,
                                 "optimizer": _optimizer_meta(engine.optimizer, first_state)})
    dist.barrier(group=group)


def save(path, model, optimizer=None, group=None):
    """Plain (single-process or DistributedDataParallel) training: rank 0 writes the whole model and optimizer state
    as a one-file checkpoint of the same format. Under a process group every rank must call it."""
    module = getattr(model, "module", model) if type(model).__name__ == "DistributedDataParallel" else model
    distributed = dist.is_initialized()
    tag = _new_tag(group) if distributed else uuid.uuid4().hex[:12]
    if not distributed or dist.get_rank(group) == 0:
        names = {}
        for name, p in module.named_parameters():
            names.setdefault(id(p), name)
        tensors, first_state = {}, None
        for name, p in module.named_parameters():
            tensors[f"model/{name}"] = (p.detach().reshape(-1), tuple(p.shape), 0, p.numel())
        for name, b in module.named_buffers():
            tensors[f"buffer/{name}"] = (b.reshape(-1), tuple(b.shape), 0, b.numel())
        if optimizer is not None:
            for group_ in optimizer.param_groups:
                for p in group_["params"]:
                    state = optimizer.state.get(p, {})
                    first_state = first_state or state
                    for key, value in _elementwise_state(state).items():
                        tensors[f"optim/{key}/{names[id(p)]}"] = (value.reshape(-1), tuple(p.shape), 0, p.numel())
        entries = _write(path, tag, 0, 1, tensors, group)
        meta = {"world_size": 1, "zero_stage": 0}
        if optimizer is not None:
            meta["optimizer"] = _optimizer_meta(optimizer, first_state)
        _finish(path, [entries], meta)
    if distributed:
        dist.barrier(group=group)


# ---- reading ----

class _Reader:
    """Assembles whole (flattened) tensors from a checkpoint's pieces; files are read once, when first needed."""

    def __init__(self, path):
        self.path = path
        index_path = os.path.join(path, INDEX)
        if not os.path.exists(index_path):
            raise FileNotFoundError(f"loom.distributed.checkpoint: no {INDEX} in {path!r} (not a checkpoint, or its "
                                    "first save did not finish)")
        with open(index_path) as f:
            self.index = json.load(f)
        if self.index.get("format") != FORMAT:
            raise ValueError(f"loom.distributed.checkpoint: {index_path} is not a {FORMAT} index")
        self.files = {}

    def keys(self, prefix):
        return [k[len(prefix):] for k in self.index["tensors"] if k.startswith(prefix)]

    def has(self, key):
        return key in self.index["tensors"]

    def flat(self, key):
        if key not in self.index["tensors"]:
            raise KeyError(f"loom.distributed.checkpoint: {self.path!r} has no tensor {key!r}")
        entry = self.index["tensors"][key]
        numel = int(np.prod(entry["shape"], dtype=np.int64))
        out = loom.zeros(numel, dtype=getattr(loom, entry["dtype"]))
        covered = 0
        for piece in entry["pieces"]:
            if piece["file"] not in self.files:
                self.files[piece["file"]] = loom.load_file(os.path.join(self.path, piece["file"]))
            out[piece["start"]:piece["end"]].copy_(self.files[piece["file"]][key].reshape(-1))
            covered += piece["end"] - piece["start"]
        if covered != numel:
            raise ValueError(f"loom.distributed.checkpoint: the pieces of {key!r} cover {covered} of {numel} elements")
        return out

    def full(self, key):
        return self.flat(key).reshape(self.index["tensors"][key]["shape"])

    def scalar_state(self):
        out = {}
        for k, s in self.index.get("optimizer", {}).get("scalars", {}).items():
            out[k] = loom.tensor(s["value"], dtype=getattr(loom, s["dtype"])) if s["tensor"] else s["value"]
        return out

    def check_optimizer(self, optimizer):
        meta = self.index.get("optimizer")
        if meta is None:
            raise ValueError(f"loom.distributed.checkpoint: {self.path!r} has no optimizer state")
        if meta["class"] != type(optimizer).__name__:
            raise ValueError(f"loom.distributed.checkpoint: {self.path!r} holds {meta['class']} state, the optimizer "
                             f"is a {type(optimizer).__name__}")
        for group in optimizer.param_groups:
            for k, v in meta["param_group"].items():
                if k in group:
                    group[k] = tuple(v) if isinstance(group[k], tuple) else v


def _load_module_tensors(reader, module, skip_params=False):
    with loom.no_grad():
        if not skip_params:
            for name, p in module.named_parameters():
                p.copy_(reader.full(f"model/{name}"))
        for name, b in module.named_buffers():
            if reader.has(f"buffer/{name}"):
                b.copy_(reader.full(f"buffer/{name}"))


def load_zero(path, engine):
    """Loads any checkpoint of this format into a ZeRO engine (each rank assembles the pieces it owns)."""
    reader = _Reader(path)
    engine.zero_grad()
    stage3 = engine.stage == 3
    _load_module_tensors(reader, engine.module, skip_params=stage3)
    state_keys = sorted({k.split("/", 1)[0] for k in reader.keys("optim/")})
    has_optimizer = "optimizer" in reader.index
    if has_optimizer:
        reader.check_optimizer(engine.optimizer)
    scalars = reader.scalar_state()
    engine.optimizer.state.clear()
    with loom.no_grad():
        for unit in engine._units:
            values = {k: loom.zeros(unit.shard_size, dtype=unit.dtype) for k in state_keys}
            for name, _shape, (a, b), (sa, sb) in unit.pieces():
                if stage3:
                    unit.shard[sa:sb].copy_(reader.flat(f"model/{name}")[a:b])
                for key in state_keys:
                    values[key][sa:sb].copy_(reader.flat(f"optim/{key}/{name}")[a:b])
            if has_optimizer and (values or scalars):
                engine.optimizer.state[unit.shard] = dict(
                    {k: (v.clone() if isinstance(v, loom.Tensor) else v) for k, v in scalars.items()}, **values)
    if stage3:
        engine._drop_prefetches()


def load(path, model, optimizer=None):
    """Loads any checkpoint of this format into a plain model (and optimizer) of one process."""
    reader = _Reader(path)
    module = getattr(model, "module", model) if type(model).__name__ == "DistributedDataParallel" else model
    _load_module_tensors(reader, module)
    if optimizer is None:
        return
    reader.check_optimizer(optimizer)
    names = {}
    for name, p in module.named_parameters():
        names.setdefault(id(p), name)
    state_keys = sorted({k.split("/", 1)[0] for k in reader.keys("optim/")})
    scalars = reader.scalar_state()
    optimizer.state.clear()
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = {k: (v.clone() if isinstance(v, loom.Tensor) else v) for k, v in scalars.items()}
            for key in state_keys:
                state[key] = reader.full(f"optim/{key}/{names[id(p)]}").to(p.dtype)
            if state:
                optimizer.state[p] = state


def read_full_state(path):
    """(model tensors by parameter/buffer name, optimizer state tensors by 'key/parameter', index) of a checkpoint,
    assembled whole."""
    reader = _Reader(path)
    model = {k: reader.full("model/" + k) for k in reader.keys("model/")}
    model.update({k: reader.full("buffer/" + k) for k in reader.keys("buffer/")})
    optim = {k: reader.full("optim/" + k) for k in reader.keys("optim/")}
    return model, optim, reader.index


def consolidate(path, out_path):
    """Writes the checkpoint at `path` (any world size) as a one-file checkpoint at `out_path`: the same format with
    whole tensors, so safetensors readers see every parameter under model/<name> in its shape."""
    reader = _Reader(path)
    tensors = {}
    for key in reader.index["tensors"]:
        full = reader.flat(key)
        tensors[key] = (full, tuple(reader.index["tensors"][key]["shape"]), 0, full.numel())
    whole = {k: (t.reshape(shape), shape, a, b) for k, (t, shape, a, b) in tensors.items()}
    entries = _write(out_path, uuid.uuid4().hex[:12], 0, 1, whole, None)
    meta = {k: v for k, v in reader.index.items() if k not in ("tensors", "files", "format", "version")}
    meta["world_size"] = 1
    _finish(out_path, [entries], meta)
