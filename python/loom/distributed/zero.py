"""ZeRO (DeepSpeed's Zero Redundancy Optimizer): data parallel training with the optimizer state (stage 1), also the
gradients (stage 2) and also the parameters (stage 3) sharded over the ranks of a process group.

Parameters are grouped into units: each element of every nn.ModuleList of the model (the transformer layers of a
typical model) is one unit, and the parameters left over form the root unit. A unit's parameters, flattened and
concatenated, are padded to a multiple of the world size W; rank r owns elements [r*S, (r+1)*S) of it (S = padded
size / W). The wrapped optimizer sees one flat shard tensor per unit; AdamW, SGD and the other elementwise optimizers
then do on a shard exactly what they would do on those elements of the full parameters.

- stage 1: every rank holds all parameters and gradients; at step() the gradients are reduce-scattered (averaged),
  each rank updates its shard, and the shards are all-gathered back into the parameters.
- stage 2: as soon as backward has produced all gradients of a unit, they are reduce-scattered asynchronously and the
  full gradients dropped; each rank keeps the gradient of its shard only (accumulated over micro-batches).
- stage 3: each rank keeps only its shard of the parameters. A unit's parameters are all-gathered just before its
  forward (the next unit's gathering starts meanwhile: prefetch) and freed after it; a hook on the unit's outputs
  gathers them again when backward reaches the unit, and they are freed once its gradients are reduce-scattered.
"""
import contextlib

import loom
import loom.distributed as dist
from loom.nn.module import Module
from loom.nn.modules import ModuleList
from loom.nn.parallel.distributed import _tensors_in

__all__ = ["ZeRO"]


class _Unit:
    """A group of parameters flattened into one buffer of padded length W*S; this rank owns [rank*S, (rank+1)*S)."""

    def __init__(self, index, module, params, names, world, rank):
        self.index, self.module, self.params, self.names = index, module, params, names
        dtypes = {p.dtype for p in params}
        if len(dtypes) != 1 or not params[0].is_floating_point():
            raise TypeError(f"ZeRO: the parameters of a unit must share one floating dtype, got "
                            f"{sorted(map(str, dtypes))} for {names}")
        self.dtype = params[0].dtype
        self.shapes = [tuple(p.shape) for p in params]
        self.offsets, total = [], 0
        for p in params:
            self.offsets.append(total)
            total += p.numel()
        self.numel = total
        self.shard_size = max(1, -(-total // world))
        self.padded = self.shard_size * world
        self.start = rank * self.shard_size
        self.flat = None       # the full flat buffer (stages 1/2: always; stage 3: while gathered)
        self.shard = None      # this rank's elements: a view of flat (stages 1/2) or its own tensor (stage 3)
        self.grad_shard = None  # stages 2/3: this rank's part of the averaged gradient
        self.ready = 0         # parameters whose gradient this backward has produced
        self.prefetch = None   # stage 3: (work, buffer) of an all-gather started ahead of use

    def pieces(self):
        """(name, shape, element range of the flattened parameter, range within this rank's shard) it owns."""
        lo, hi = self.start, self.start + self.shard_size
        for name, shape, offset in zip(self.names, self.shapes, self.offsets):
            a, b = max(lo, offset), min(hi, offset + _numel(shape))
            if a < b:
                yield name, shape, (a - offset, b - offset), (a - lo, b - lo)


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


class ZeRO(Module):
    """Wraps `module` and owns its optimizer: ``ZeRO(model, loom.optim.AdamW, stage=2, lr=1e-3)``.

    Use it as the model, then ``loss.backward()``, optionally ``clip_grad_norm_(max_norm)``, then ``step()`` and
    ``zero_grad()``. Gradient accumulation: several forward/backward passes (each loss divided by their number)
    before one step(). Every rank must run the same forward/backward sequence, on its own part of the global batch;
    the gradients are averaged over ranks as in DistributedDataParallel.

    - stage: 1, 2 or 3 (see the module's docstring).
    - unit_modules: the modules whose parameters form units (default: the elements of every nn.ModuleList).
    - prefetch (stage 3): start all-gathering the next unit while the current one computes.
    - optimizer_defaults: passed to optimizer_class (lr, weight_decay, momentum, ...).
    """

    def __init__(self, module, optimizer_class, stage=1, process_group=None, unit_modules=None, prefetch=True,
                 **optimizer_defaults):
        super().__init__()
        if stage not in (1, 2, 3):
            raise ValueError(f"ZeRO: stage must be 1, 2 or 3, got {stage!r}")
        if not isinstance(module, Module):
            raise TypeError(f"ZeRO: expected an nn.Module, got {type(module).__name__}")
        self.module = module
        object.__setattr__(self, "stage", stage)
        object.__setattr__(self, "prefetch", prefetch)
        group = dist._group(process_group, "ZeRO")
        object.__setattr__(self, "_group", group)
        object.__setattr__(self, "_pg", group._core)
        object.__setattr__(self, "world_size", group.size())
        object.__setattr__(self, "rank", group.rank())
        with loom.no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                self._pg.broadcast(t, 0).wait()
        object.__setattr__(self, "_units", self._make_units(unit_modules))
        object.__setattr__(self, "_pending", [])  # (unit, work, flat gradient, reduced shard) of stages 2/3
        with loom.no_grad():
            for unit in self._units:
                self._shard_unit(unit)
        object.__setattr__(self, "optimizer", optimizer_class([u.shard for u in self._units], **optimizer_defaults))
        object.__setattr__(self, "_hooks", [])
        object.__setattr__(self, "_reduced", False)  # stage 1: the shards' .grad hold the latest gradients
        if stage == 1:
            for unit in self._units:
                for p in unit.params:
                    self._hooks.append(p.register_post_accumulate_grad_hook(
                        lambda _: object.__setattr__(self, "_reduced", False)))
        if stage >= 2:
            for unit in self._units:
                for p in unit.params:
                    self._hooks.append(p.register_post_accumulate_grad_hook(
                        lambda _, unit=unit: self._on_grad(unit)))
        if stage == 3:
            for unit in self._units[1:]:
                self._hooks.append(unit.module.register_forward_pre_hook(
                    lambda m, a, unit=unit: self._pre_forward(unit)))
                self._hooks.append(unit.module.register_forward_hook(
                    lambda m, a, out, unit=unit: self._post_forward(unit, out)))

    # ---- set-up ----

    def _make_units(self, unit_modules):
        if unit_modules is None:
            unit_modules = [child for m in self.module.modules() if isinstance(m, ModuleList) for child in m]
        names = {}
        for name, p in self.module.named_parameters():
            if p.requires_grad:
                names.setdefault(id(p), name)
        assigned, groups = set(), []
        for m in unit_modules:
            params = [p for p in m.parameters() if id(p) in names and id(p) not in assigned]
            assigned.update(id(p) for p in params)
            if params:
                groups.append((m, params))
        root = [p for p in self.module.parameters() if id(p) in names and id(p) not in assigned]
        groups.insert(0, (self.module, root))
        return [_Unit(i, m, ps, [names[id(p)] for p in ps], self.world_size, self.rank)
                for i, (m, ps) in enumerate(groups) if ps]

    def _shard_unit(self, unit):
        flat = loom.zeros(unit.padded, dtype=unit.dtype)
        for p, offset in zip(unit.params, unit.offsets):
            flat[offset:offset + p.numel()].copy_(p.detach().reshape(-1))
        if self.stage < 3:
            # The parameters become views of the flat buffer, the shard a view of it: no copies.
            for p, offset, shape in zip(unit.params, unit.offsets, unit.shapes):
                p.data = flat[offset:offset + _numel(shape)].view(shape)
            unit.flat = flat
            unit.shard = flat[unit.start:unit.start + unit.shard_size]
        else:
            unit.shard = flat[unit.start:unit.start + unit.shard_size].clone()
            self._free(unit)

    # ---- stage 3: gathering and freeing parameters ----

    def _start_gather(self, unit):
        buffer = loom.empty(unit.padded, dtype=unit.dtype)
        return self._pg.all_gather_into_tensor(buffer, unit.shard), buffer

    def _gather(self, unit):
        if unit.flat is not None:
            return
        work, buffer = unit.prefetch or self._start_gather(unit)
        unit.prefetch = None
        work.wait()
        unit.flat = buffer
        for p, offset, shape in zip(unit.params, unit.offsets, unit.shapes):
            p.data = buffer[offset:offset + _numel(shape)].view(shape)

    def _free(self, unit):
        empty = loom.empty(0, dtype=unit.dtype)
        for p in unit.params:
            p.data = empty
        unit.flat = None

    def _prefetch(self, index):
        if not self.prefetch or not 0 <= index < len(self._units):
            return
        unit = self._units[index]
        if unit.flat is None and unit.prefetch is None:
            unit.prefetch = self._start_gather(unit)

    def _pre_forward(self, unit):
        self._gather(unit)
        self._prefetch(unit.index + 1)

    def _post_forward(self, unit, output):
        if loom.is_grad_enabled():
            for t in _tensors_in(output):
                if t.requires_grad:
                    t.register_hook(lambda grad, unit=unit: self._pre_backward(unit))
        self._free(unit)

    def _pre_backward(self, unit):
        if unit.flat is None:
            self._gather(unit)
        self._prefetch(unit.index - 1)

    def forward(self, *args, **kwargs):
        if self.stage < 3:
            return self.module(*args, **kwargs)
        root = self._units[0]
        self._gather(root)
        self._prefetch(1)
        output = self.module(*args, **kwargs)
        self._post_forward(root, output)
        return output

    # ---- gradients ----

    def _on_grad(self, unit):
        unit.ready += 1
        if unit.ready < len(unit.params):
            for _, work, _, _ in self._pending:
                work.is_completed()  # drives MPI's progress while backward runs
            return
        unit.ready = 0
        self._pending.append(self._start_reduce(unit))
        for p in unit.params:
            p.grad = None
        if self.stage == 3:
            self._free(unit)

    def _start_reduce(self, unit):
        """Starts averaging the unit's gradients over ranks into this rank's shard (reduce-scatter)."""
        with loom.no_grad():
            flat = loom.zeros(unit.padded, dtype=unit.dtype)
            for p, offset in zip(unit.params, unit.offsets):
                if p.grad is not None:
                    flat[offset:offset + p.numel()].copy_(p.grad.reshape(-1))
            out = loom.empty(unit.shard_size, dtype=unit.dtype)
            return unit, self._pg.reduce_scatter_tensor(out, flat, dist.ReduceOp.AVG), flat, out

    def _finish_gradients(self):
        """Makes each shard's .grad the averaged gradient of this rank's elements (what step() and clipping use)."""
        if self.stage == 1:
            if self._reduced:
                return  # clip_grad_norm_ reduced (and scaled) them already
            object.__setattr__(self, "_reduced", True)
            reductions = [self._start_reduce(u) for u in self._units]
            for unit, work, _, out in reductions:
                work.wait()
                unit.shard.grad = out
            return
        partial = [n for u in self._units if u.ready for n, p in zip(u.names, u.params) if p.grad is None]
        if partial:
            raise RuntimeError(f"ZeRO: these parameters received no gradient in backward while others of their unit "
                               f"did: {partial}; every parameter must take part in the loss")
        with loom.no_grad():
            for unit, work, _, out in self._pending:
                work.wait()
                if unit.grad_shard is None:
                    unit.grad_shard = out
                else:
                    unit.grad_shard.add_(out)
        self._pending.clear()
        for unit in self._units:
            unit.shard.grad = unit.grad_shard

    def clip_grad_norm_(self, max_norm, norm_type=2.0):
        """Scales the gradients so that their global 2-norm (over all ranks' shards) is at most max_norm, like
        nn.utils.clip_grad_norm_ on the full gradients. Returns the total norm."""
        if float(norm_type) != 2.0:
            raise NotImplementedError(f"ZeRO.clip_grad_norm_: only norm_type=2 is supported, got {norm_type}")
        self._finish_gradients()
        squares = loom.zeros(1, dtype=loom.float32)
        with loom.no_grad():
            for u in self._units:
                if u.shard.grad is not None:
                    squares += u.shard.grad.float().square().sum()
            self._pg.all_reduce(squares, dist.ReduceOp.SUM).wait()
            total = squares.sqrt()[0]
            coefficient = float(max_norm) / (total.item() + 1e-6)
            if coefficient < 1.0:
                for u in self._units:
                    if u.shard.grad is not None:
                        u.shard.grad.mul_(coefficient)
        return total

    # ---- optimizer ----

    def step(self, closure=None):
        if closure is not None:
            raise NotImplementedError("ZeRO.step: a closure is not supported")
        self._finish_gradients()
        self.optimizer.step()
        if self.stage < 3:
            with loom.no_grad():
                works = [(u, self._pg.all_gather_into_tensor(u.flat, u.shard.clone())) for u in self._units]
                for _, work in works:
                    work.wait()
        else:
            self._drop_prefetches()

    def _drop_prefetches(self):
        for unit in self._units:
            if unit.prefetch is not None:
                unit.prefetch[0].wait()  # stale after step: the parameters changed
                unit.prefetch = None

    def zero_grad(self, set_to_none=True):
        self._finish_pending_silently()
        object.__setattr__(self, "_reduced", False)
        for unit in self._units:
            unit.grad_shard = None
            unit.shard.grad = None
            unit.ready = 0
            for p in unit.params:
                p.grad = None

    def _finish_pending_silently(self):
        for _, work, _, _ in self._pending:
            work.wait()
        self._pending.clear()

    # ---- state ----

    @contextlib.contextmanager
    def gathered_parameters(self):
        """Stage 3: every parameter of the module is full inside this context (a no-op for stages 1 and 2)."""
        if self.stage < 3:
            yield
            return
        self._drop_prefetches()
        gathered = [u for u in self._units if u.flat is None]
        for unit in gathered:
            self._gather(unit)
        try:
            yield
        finally:
            for unit in gathered:
                self._free(unit)

    def full_state_dict(self):
        """The module's state_dict with full parameters (copies), on every rank."""
        with self.gathered_parameters():
            return {k: v.clone() for k, v in self.module.state_dict().items()}

    def memory_report(self):
        """Bytes this rank holds now: parameters, gradients and optimizer state (stage 3's gathered parameters count
        while gathered; stage 1's full gradients after backward)."""
        params = grads = 0
        for u in self._units:
            size = loom.empty(0, dtype=u.dtype).element_size()
            params += (u.padded if u.flat is not None else 0) * size
            if self.stage == 3:
                params += u.shard_size * size
            if self.stage == 1:
                grads += sum(p.grad.numel() for p in u.params if p.grad is not None) * size
            else:
                pending = sum(out.numel() for v, _, _, out in self._pending if v is u)
                grads += ((u.grad_shard.numel() if u.grad_shard is not None else 0) + pending) * size
        state = 0
        for s in self.optimizer.state.values():
            for v in s.values():
                if isinstance(v, loom.Tensor) and v.dim() > 0:
                    state += v.numel() * v.element_size()
        return {"parameters": params, "gradients": grads, "optimizer_state": state}

    def save_checkpoint(self, path):
        from loom.distributed.checkpoint import save_zero
        save_zero(path, self)

    def load_checkpoint(self, path):
        from loom.distributed.checkpoint import load_zero
        load_zero(path, self)

