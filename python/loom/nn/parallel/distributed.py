"""DistributedDataParallel: data-parallel training over a process group, like torch.nn.parallel.DDP.

Each rank runs the same model on its own part of the batch. At construction the parameters and buffers are broadcast
from rank 0 so every replica starts equal. During backward, a hook run right after a parameter's .grad has been
accumulated copies it into its bucket (parameters grouped, in reverse registration order, into flat buffers of about
`bucket_cap_mb`); a full bucket's all-reduce (average) starts at once, asynchronously, while backward goes on with
earlier layers. When the last bucket has started, all are waited for and the averaged gradients written back to
.grad, before backward returns. Buckets start in index order on every rank, so the collectives match.
"""
import contextlib

import loom
import loom.distributed as dist
from loom.nn.module import Module


class _Bucket:
    def __init__(self, params, dtype):
        self.params = params
        self.offsets = []
        total = 0
        for p in params:
            self.offsets.append(total)
            total += p.numel()
        self.buffer = loom.zeros(total, dtype=dtype)
        self.pending = len(params)
        self.work = None


class DistributedDataParallel(Module):
    """Wraps `module` for data-parallel training; call it as the module, then backward, then the optimizer.

    - broadcast_buffers: broadcast buffers from rank 0 before every forward (batch-norm statistics stay equal).
    - bucket_cap_mb: the size of a gradient bucket; smaller buckets start communicating earlier.
    - find_unused_parameters: walk the autograd graph after forward to find parameters the output does not depend
      on and count them as ready (their bucket slots hold zeros). Without it, a parameter that gets no gradient
      makes the next forward raise an error naming it.
    - no_sync(): a context in which backward only accumulates local gradients (gradient accumulation); the first
      backward outside it reduces the accumulated sum.
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=25, find_unused_parameters=False, gradient_as_bucket_view=False,
                 static_graph=False):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected an nn.Module, got {type(module).__name__}")
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel: the default process group has not been initialised; "
                               "call loom.distributed.init_process_group() first")
        if bucket_cap_mb is None or bucket_cap_mb <= 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb}")
        self.module = module
        self.process_group = process_group
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.require_backward_grad_sync = True
        group = dist._group(process_group, "DistributedDataParallel")
        object.__setattr__(self, "_pg", group._core)
        names, params, seen = {}, [], set()
        for name, p in module.named_parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                params.append(p)
                names[id(p)] = name
        object.__setattr__(self, "_param_names", names)
        object.__setattr__(self, "_params", params)
        self._broadcast_state()
        object.__setattr__(self, "_buckets", self._make_buckets(params, bucket_cap_mb))
        object.__setattr__(self, "_slot", {})
        for b, bucket in enumerate(self._buckets):
            for i, p in enumerate(bucket.params):
                self._slot[id(p)] = (b, i)
        # Each parameter's AccumulateGrad node, kept alive so the graph walk of find_unused_parameters can compare.
        # (Holding the nodes keeps them, and so their Python handles and ids, the same from one iteration to the next.)
        object.__setattr__(self, "_accumulators", {})
        object.__setattr__(self, "_accumulator_nodes", [])
        if find_unused_parameters:
            for p in params:
                node = _accumulator_of(p)
                self._accumulator_nodes.append(node)
                self._accumulators[id(node)] = p
        # The hook gets a new Python handle of the parameter each time, so each hook is bound to its own parameter.
        object.__setattr__(self, "_hooks", [p.register_post_accumulate_grad_hook(lambda _, p=p: self._on_grad(p))
                                            for p in params])
        object.__setattr__(self, "_started", False)  # a backward of this iteration has reached a hook
        object.__setattr__(self, "_next_bucket", 0)
        object.__setattr__(self, "_unused", [])
        self._reset_reduction()

    # ---- set-up ----

    def _broadcast_state(self):
        with loom.no_grad():
            for t in list(self.module.parameters()) + list(self.module.buffers()):
                self._pg.broadcast(t, 0).wait()

    @staticmethod
    def _make_buckets(params, bucket_cap_mb):
        """Parameters in reverse order (the order backward reaches them), split by dtype and by bucket_cap_mb."""
        cap = int(bucket_cap_mb * 1024 * 1024)
        buckets, current, size, dtype = [], [], 0, None
        for p in reversed(params):
            nbytes = p.numel() * p.element_size()
            if current and (p.dtype != dtype or size + nbytes > cap):
                buckets.append(_Bucket(current, dtype))
                current, size = [], 0
            current.append(p)
            size += nbytes
            dtype = p.dtype
        if current:
            buckets.append(_Bucket(current, dtype))
        return buckets

    # ---- forward ----

    @contextlib.contextmanager
    def no_sync(self):
        """Backward inside this context accumulates local gradients without communicating."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def forward(self, *args, **kwargs):
        if self.require_backward_grad_sync:
            self._check_previous_reduction()
            self._reset_reduction()
        if self.broadcast_buffers:
            with loom.no_grad():
                for b in self.module.buffers():
                    self._pg.broadcast(b, 0).wait()
        output = self.module(*args, **kwargs)
        if self.find_unused_parameters and self.require_backward_grad_sync and loom.is_grad_enabled():
            object.__setattr__(self, "_unused", self._find_unused(output))
        return output

    def _find_unused(self, output):
        """Parameters whose AccumulateGrad node the graph of `output` does not reach."""
        roots = [t.grad_fn for t in _tensors_in(output) if t.grad_fn is not None]
        seen, stack, reached = set(), list(roots), set()
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if id(node) in self._accumulators:
                reached.add(id(self._accumulators[id(node)]))
            for next_node, _ in node.next_functions:
                if next_node is not None:
                    stack.append(next_node)
        # Leaf parameters used directly as outputs have no grad_fn of their own.
        reached.update(id(t) for t in _tensors_in(output) if t.grad_fn is None)
        return [p for p in self._params if id(p) not in reached]

    def _check_previous_reduction(self):
        if not self._started or self._next_bucket == len(self._buckets):
            return
        missing = [self._param_names[id(p)] for bucket in self._buckets if bucket.pending
                   for p in bucket.params if not self._was_ready(p)]
        self._reset_reduction()
        raise RuntimeError(
            "DistributedDataParallel: the previous iteration's gradient reduction did not finish, because these "
            f"parameters received no gradient in backward: {missing}. Pass find_unused_parameters=True when some "
            "parameters are not used in every forward, or make sure every output takes part in the loss.")

    def _was_ready(self, p):
        return id(p) in self._ready_ids

    def _reset_reduction(self):
        for bucket in self._buckets:
            bucket.pending = len(bucket.params)
            bucket.work = None
        object.__setattr__(self, "_started", False)
        object.__setattr__(self, "_next_bucket", 0)
        object.__setattr__(self, "_ready_ids", set())

    # ---- backward ----

    def _on_grad(self, param):
        # Not syncing (no_sync), or a further backward after this iteration's reduction: gradients stay local.
        if not self.require_backward_grad_sync or self._next_bucket == len(self._buckets):
            return
        if not self._started:
            object.__setattr__(self, "_started", True)
            for p in self._unused:
                self._mark_ready(p, None)
        self._mark_ready(param, param.grad)
        for bucket in self._buckets[:self._next_bucket]:
            bucket.work.is_completed()  # drives MPI's progress while backward runs

    def _mark_ready(self, param, grad):
        b, i = self._slot[id(param)]
        bucket = self._buckets[b]
        view = bucket.buffer[bucket.offsets[i]:bucket.offsets[i] + param.numel()]
        with loom.no_grad():
            if grad is None:
                view.zero_()
            else:
                view.copy_(grad.reshape(-1))
        self._ready_ids.add(id(param))
        bucket.pending -= 1
        # Start full buckets in index order, so every rank starts the same all-reduces in the same order.
        while self._next_bucket < len(self._buckets) and self._buckets[self._next_bucket].pending == 0:
            ready = self._buckets[self._next_bucket]
            ready.work = self._pg.all_reduce(ready.buffer, dist.ReduceOp.AVG)
            object.__setattr__(self, "_next_bucket", self._next_bucket + 1)
        if self._next_bucket == len(self._buckets):
            self._finish_reduction()

    def _finish_reduction(self):
        with loom.no_grad():
            for bucket in self._buckets:
                bucket.work.wait()
                for p, offset in zip(bucket.params, bucket.offsets):
                    reduced = bucket.buffer[offset:offset + p.numel()].reshape(p.shape)
                    if p.grad is None:
                        p.grad = reduced.clone()
                    else:
                        p.grad.copy_(reduced)


def _tensors_in(value):
    if isinstance(value, loom.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors_in(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors_in(v)


def _accumulator_of(param):
    """The AccumulateGrad node of a leaf: the next function of a node that uses it (kept alive by the caller)."""
    node = (param * 1).grad_fn
    for next_node, _ in node.next_functions:
        if next_node is not None and next_node.name() == "AccumulateGrad":
            return next_node
    raise RuntimeError("DistributedDataParallel: could not find a parameter's gradient accumulator")
