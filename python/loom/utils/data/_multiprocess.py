"""The DataLoader iterator with worker processes (num_workers > 0), following torch's _MultiProcessingDataLoaderIter.

Each worker has its own index queue; all share one result queue. Up to prefetch_factor * num_workers tasks are
in flight, handed out round-robin; results are returned in task order whatever order they arrive in. Tensors
travel pickled (loom tensors pickle as their bytes). Errors in a worker come back with its traceback and are
raised here; a worker that dies is noticed within STATUS_CHECK_INTERVAL seconds.
"""
import itertools
import multiprocessing
import os
import queue
import weakref

import loom
from loom.utils.data import _worker


def _shutdown_workers(state):
    """Stops the workers and closes the queues (also called by a weakref finalizer: the iterator may be gone)."""
    if state.get("shut"):
        return
    state["shut"] = True
    state["done_event"].set()
    for q in state["index_queues"]:
        try:
            q.put(None)
        except (OSError, ValueError):
            pass
    for w in state["workers"]:
        w.join(timeout=_worker.STATUS_CHECK_INTERVAL)
        if w.is_alive():
            w.terminate()
            w.join(timeout=1.0)
    for q in state["index_queues"] + [state["data_queue"]]:
        q.cancel_join_thread()
        q.close()


class MultiProcessingIter:
    def __init__(self, loader):
        self._loader = loader
        self._num_workers = loader.num_workers
        self._prefetch = loader.prefetch_factor * loader.num_workers
        self._timeout = loader.timeout
        self._iterable = loader._iterable
        ctx = loader.multiprocessing_context
        if ctx is None:
            ctx = multiprocessing.get_context()
        elif isinstance(ctx, str):
            ctx = multiprocessing.get_context(ctx)
        spec = {"iterable": loader._iterable, "auto_collation": loader._auto_collation,
                "collate_fn": loader.collate_fn, "batch_size": loader.batch_size, "drop_last": loader.drop_last,
                "worker_init_fn": loader.worker_init_fn}
        g = loader.generator if loader.generator is not None else loom.default_generator()
        base_seed = int(loom.randint(0, 2**62, (1,), generator=g).item())
        data_queue = ctx.Queue()
        done_event = ctx.Event()
        index_queues, workers = [], []
        for worker_id in range(self._num_workers):
            index_queue = ctx.Queue()
            index_queue.cancel_join_thread()
            w = ctx.Process(target=_worker.worker_loop, daemon=True,
                            args=(loader.dataset, spec, index_queue, data_queue, done_event, base_seed, worker_id,
                                  self._num_workers, os.getpid()))
            w.start()
            index_queues.append(index_queue)
            workers.append(w)
        self._state = {"workers": workers, "index_queues": index_queues, "data_queue": data_queue,
                       "done_event": done_event}
        self._finalizer = weakref.finalize(self, _shutdown_workers, self._state)
        self._epoch = 0
        self._reset(first=True)

    # --- epochs ---
    def _reset(self, first=False):
        loader = self._loader
        skip, loader._resume_skip = loader._resume_skip, 0
        loader._yielded = skip
        if self._iterable:
            self._index_iter = itertools.repeat(None)
        elif loader._auto_collation:
            self._index_iter = iter(loader.batch_sampler)
        else:
            self._index_iter = iter(loader.sampler)
        self._skip = 0
        if not self._iterable:
            for _ in range(skip):
                if next(self._index_iter, None) is None:
                    break
        else:
            self._skip = skip  # an IterableDataset's batches are fetched and dropped
        self._send_idx = self._rcvd_idx = self._outstanding = 0
        self._task_info = {}
        self._active = [True] * self._num_workers
        self._worker_cycle = itertools.cycle(range(self._num_workers))
        self._done = False
        if not first:  # persistent workers: restart their iterators and drop anything left from the last epoch
            self._epoch += 1
            for q in self._state["index_queues"]:
                q.put(_worker.ResumeIteration(self._epoch))
            acks = 0
            while acks < self._num_workers:
                task, _ = self._get()
                if isinstance(task, _worker.ResumeIteration) and task.epoch == self._epoch:
                    acks += 1
        for _ in range(self._prefetch):
            self._put_task()

    def _put_task(self):
        try:
            index = next(self._index_iter)
        except StopIteration:
            return
        for _ in range(self._num_workers):
            worker_id = next(self._worker_cycle)
            if self._active[worker_id]:
                break
        else:
            return
        self._state["index_queues"][worker_id].put((self._send_idx, index))
        self._task_info[self._send_idx] = (worker_id,)
        self._outstanding += 1
        self._send_idx += 1

    # --- receiving ---
    def _get(self):
        """The next (task index, data) from any worker; raises when the timeout passes or a worker died."""
        waited = 0.0
        while True:
            step = _worker.STATUS_CHECK_INTERVAL
            if self._timeout > 0:
                step = min(step, self._timeout - waited)
            try:
                return self._state["data_queue"].get(timeout=step)
            except queue.Empty:
                waited += step
                if self._timeout > 0 and waited >= self._timeout:
                    self._shutdown()
                    raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds") from None
                dead = [str(w.pid) for w in self._state["workers"] if not w.is_alive()]
                if dead:
                    self._shutdown()
                    raise RuntimeError(f"DataLoader worker (pid(s) {', '.join(dead)}) exited unexpectedly "
                                       f"(exit codes {[w.exitcode for w in self._state['workers']]})") from None

    def _next_data(self):
        while True:
            while self._rcvd_idx < self._send_idx:
                info = self._task_info[self._rcvd_idx]
                if len(info) == 2 or self._active[info[0]]:
                    break
                del self._task_info[self._rcvd_idx]  # sent to a worker whose iterable ended: no result comes
                self._rcvd_idx += 1
            else:
                raise StopIteration
            info = self._task_info[self._rcvd_idx]
            if len(info) == 2:
                del self._task_info[self._rcvd_idx]
                self._rcvd_idx += 1
                return self._process(info[1])
            idx, data = self._get()
            if isinstance(idx, _worker.ResumeIteration):
                continue
            self._outstanding -= 1
            if isinstance(data, _worker.IterationEnd):
                self._active[data.worker_id] = False
                self._put_task()
                continue
            if idx != self._rcvd_idx:
                self._task_info[idx] += (data,)
                continue
            del self._task_info[idx]
            self._rcvd_idx += 1
            return self._process(data)

    def _process(self, data):
        self._put_task()
        if isinstance(data, _worker.ExceptionWrapper):
            data.reraise()
        return data

    def __iter__(self):
        return self

    def __next__(self):
        loader = self._loader
        if self._done:
            raise StopIteration
        try:
            while True:
                batch = self._next_data()
                if self._skip > 0:
                    self._skip -= 1
                    continue
                break
        except StopIteration:
            self._done = True
            loader._epoch += 1
            loader._yielded = 0
            if not loader.persistent_workers:
                self._shutdown()
            raise
        except BaseException:  # an error from a worker, a timeout, KeyboardInterrupt: the workers stop
            self._done = True
            self._shutdown()
            raise
        loader._yielded += 1
        if loader._pin_device is not None:
            from loom.utils.data.dataloader import _pin
            batch = _pin(batch, loader._pin_device[0])
        return batch

    def __len__(self):
        return len(self._loader)

    def _shutdown(self):
        self._finalizer()

    def close(self):
        self._done = True
        self._shutdown()

    @property
    def alive(self):
        return not self._state.get("shut")
