"""What runs inside a DataLoader worker process (torch.utils.data's worker semantics)."""
import os
import queue
import random
import signal
import sys
import traceback

import loom

# How often a waiting worker checks that its parent is alive, and the parent that its workers are.
STATUS_CHECK_INTERVAL = 2.0

_worker_info = None


class WorkerInfo:
    """What get_worker_info() returns in a worker: id, num_workers, seed and this worker's copy of the dataset."""

    def __init__(self, id, num_workers, seed, dataset):
        self.id, self.num_workers, self.seed, self.dataset = id, num_workers, seed, dataset

    def __setattr__(self, key, value):
        if hasattr(self, "dataset"):  # frozen once built, as in torch
            raise RuntimeError(f"Cannot assign attributes to {type(self).__name__} objects")
        super().__setattr__(key, value)

    def __repr__(self):
        return (f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed}, "
                f"dataset={self.dataset!r})")


def get_worker_info():
    """In a DataLoader worker process: its WorkerInfo (use it to shard an IterableDataset); elsewhere None."""
    return _worker_info


class ExceptionWrapper:
    """An exception raised in a worker, carried to the parent with its traceback text."""

    def __init__(self, where):
        exc_type, exc, tb = sys.exc_info()
        self.exc_type = exc_type
        self.exc_msg = "".join(traceback.format_exception(exc_type, exc, tb))
        self.where = where

    def reraise(self):
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:  # KeyError's str() is the repr of its argument: keep the newlines readable
            msg = _KeyErrorMessage(msg)
        try:
            exception = self.exc_type(msg)
        except Exception:  # an exception class whose constructor needs other arguments
            raise RuntimeError(msg) from None
        raise exception


class _KeyErrorMessage(str):
    def __repr__(self):
        return self


class IterationEnd:
    """A worker's IterableDataset copy is exhausted."""

    def __init__(self, worker_id):
        self.worker_id = worker_id


class ResumeIteration:
    """Persistent workers: start the next epoch (restart the IterableDataset's iterator)."""

    def __init__(self, epoch):
        self.epoch = epoch


def numpy_seed(base_seed, worker_id):
    """torch's _generate_state: the NumPy seed (4 x 32 bits) of a worker, from a SeedSequence-style hash, so that
    workers of one loader (and of different base seeds) do not share NumPy streams."""
    mask = 0xFFFFFFFF
    mult_a, mult_b, mix_l, mix_r = 0x931E8875, 0x58F38DED, 0xCA01F9DD, 0x4973F715
    entropy = [worker_id, base_seed & mask, base_seed >> 32, 0]
    const_a = [0x43B0D7E5]

    def hash_(value):
        value = (value ^ const_a[0]) & mask
        const_a[0] = (const_a[0] * mult_a) & mask
        value = (value * const_a[0]) & mask
        return (value ^ (value >> 16)) & mask

    def mix(x, y):
        result = ((mix_l * x) & mask) - ((mix_r * y) & mask) & mask
        result &= mask
        return (result ^ (result >> 16)) & mask

    pool = [hash_(e) for e in entropy]
    for src in range(4):
        for dst in range(4):
            if src != dst:
                pool[dst] = mix(pool[dst], hash_(pool[src]))
    const_b, state = 0x8B51F9DD, []
    for value in pool:
        value = (value ^ const_b) & mask
        const_b = (const_b * mult_b) & mask
        value = (value * const_b) & mask
        state.append((value ^ (value >> 16)) & mask)
    return state


def seed_worker(base_seed, worker_id):
    """Seeds Python's random, loom and (if imported) NumPy in a worker, as torch does."""
    seed = base_seed + worker_id
    random.seed(seed)
    loom.manual_seed(seed)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(numpy_seed(base_seed, worker_id))
    return seed


class _Fetcher:
    """Turns one task (a list of indices, an index, or None for an IterableDataset) into a batch."""

    def __init__(self, dataset, spec):
        self.dataset, self.spec = dataset, spec
        self.iterator = iter(dataset) if spec["iterable"] else None

    def fetch(self, index):
        spec, ds = self.spec, self.dataset
        if not spec["iterable"]:
            if spec["auto_collation"]:
                return spec["collate_fn"]([ds[i] for i in index])
            return spec["collate_fn"](ds[index])
        if spec["batch_size"] is None:
            return spec["collate_fn"](next(self.iterator))
        samples = []
        for sample in self.iterator:
            samples.append(sample)
            if len(samples) == spec["batch_size"]:
                break
        if not samples or (len(samples) < spec["batch_size"] and spec["drop_last"]):
            raise StopIteration
        return spec["collate_fn"](samples)


def worker_loop(dataset, spec, index_queue, data_queue, done_event, base_seed, worker_id, num_workers, parent_pid):
    """Fetches the tasks of index_queue into data_queue until told to stop (None) or the parent is gone."""
    global _worker_info
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it then shuts us down
    try:
        loom.set_num_threads(1)  # as torch: N workers x all cores would oversubscribe the machine
        seed = seed_worker(base_seed, worker_id)
        _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed, dataset=dataset)
        init_error, fetcher = None, None
        try:
            if spec["worker_init_fn"] is not None:
                spec["worker_init_fn"](worker_id)
            fetcher = _Fetcher(dataset, spec)
        except Exception:
            init_error = ExceptionWrapper(f"in DataLoader worker process {worker_id}")
        exhausted = False
        while True:
            try:
                task = index_queue.get(timeout=STATUS_CHECK_INTERVAL)
            except queue.Empty:
                if os.getppid() != parent_pid:
                    break
                continue
            if task is None:  # shutdown
                break
            if isinstance(task, ResumeIteration):
                exhausted = False
                if init_error is None:
                    try:
                        fetcher = _Fetcher(dataset, spec)
                    except Exception:
                        init_error = ExceptionWrapper(f"in DataLoader worker process {worker_id}")
                data_queue.put((task, None))
                continue
            if done_event.is_set() or exhausted:
                continue
            idx, index = task
            if init_error is not None:
                data, init_error = init_error, None
            else:
                try:
                    data = fetcher.fetch(index)
                except StopIteration:
                    if not spec["iterable"]:
                        data = ExceptionWrapper(f"in DataLoader worker process {worker_id}")
                    else:
                        data, exhausted = IterationEnd(worker_id), True
                except Exception:
                    data = ExceptionWrapper(f"in DataLoader worker process {worker_id}")
            data_queue.put((idx, data))
            del data
    except KeyboardInterrupt:
        pass
    if done_event.is_set():
        data_queue.cancel_join_thread()
        data_queue.close()
