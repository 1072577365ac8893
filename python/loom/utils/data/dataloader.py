"""DataLoader: batches a dataset, optionally shuffled, in worker processes (num_workers > 0) or in this process with
a C++ prefetch thread for tensor datasets; resumable."""
import collections.abc
import warnings

import loom
from loom import _C
from loom.utils.data._collate import default_collate
from loom.utils.data.dataset import IterableDataset, Subset, TensorDataset
from loom.utils.data.sampler import BatchSampler, RandomSampler, SequentialSampler


_MAX_PREFETCH_BATCHES = 1 << 20


class DataLoader:
    """Iterates over `dataset` in batches, like torch.utils.data.DataLoader.

    Args:
        dataset: a map-style Dataset (or an IterableDataset, batched in arrival order).
        batch_size: samples per batch (None: no batching, samples are yielded one by one, collated by collate_fn).
        shuffle: a new random order each epoch, drawn from `generator` (the same seed gives the same batches;
            the order differs from PyTorch's for that seed because the RNGs differ).
        sampler / batch_sampler: custom index order / custom index batches (exclusive with shuffle etc., as torch).
        drop_last: drop the last incomplete batch.
        collate_fn: merges a list of samples into a batch (default: default_collate).
        generator: a loom.Generator for shuffling and for the workers' base seed (default: loom's default one).
        num_workers: worker processes that load batches (0: load in this process). Each epoch draws a base seed
            from `generator`; worker i seeds loom and `random` with base_seed + i and NumPy (if imported) as torch
            does, and get_worker_info() tells it its id, num_workers, seed and its copy of the dataset (shard an
            IterableDataset with it, or every worker yields the whole dataset). Batches come back in order;
            an exception in a worker is raised here with the worker's traceback in its message.
        worker_init_fn: called in each worker with its id, after seeding and before loading.
        prefetch_factor: batches loaded in advance per worker (default 2; only with num_workers > 0).
        persistent_workers: keep the workers (and their dataset copies) between epochs.
        timeout: seconds to wait for a batch from the workers before raising RuntimeError (0: no limit).
        multiprocessing_context: a multiprocessing context or start method name (default: the platform's).
        prefetch: for a TensorDataset with the default collate, assemble the next batch on a C++ thread (queue
            depth 2) while the caller works. Other datasets are always collated in the calling thread. Batches
            still hold the rows as they are when next() returns them, as in PyTorch's single-process loader: a
            batch prefetched before an in-place update of the dataset tensors is gathered again (see docs/data.md).
        pin_memory: copy each batch's tensors into pinned host memory (Tensor.pin_memory) of a loaded device
            backend, so that ``batch.to(device, non_blocking=True)`` can overlap with work on the device; with no
            backend that has pinned memory it warns and does nothing, as PyTorch does without an accelerator.
        pin_memory_device: the device type whose pinned memory to use (default: the first loaded backend).

    Resume: state_dict() records the epoch, the batches already yielded in it and the shuffle state;
    load_state_dict() makes the next iteration yield exactly the remaining batches of that epoch, and later
    epochs match an uninterrupted run.
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", prefetch=True):
        shuffle = bool(shuffle)
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError("DataLoader: num_workers option should be non-negative; use num_workers=0 to disable "
                             "multiprocessing.")
        if timeout < 0:
            raise ValueError("DataLoader: timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("DataLoader: prefetch_factor option could only be specified in multiprocessing. Let "
                             "num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and (not isinstance(prefetch_factor, int) or prefetch_factor < 1):
            raise ValueError(f"DataLoader: prefetch_factor should be a positive integer, got {prefetch_factor!r}")
        if persistent_workers and num_workers == 0:
            raise ValueError("DataLoader: persistent_workers option needs num_workers > 0")
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self._iterator = None
        self.dataset = dataset
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self._pin_device = _pinning_device(pin_memory_device) if pin_memory else None
        self.generator = generator
        self.prefetch = prefetch
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            if shuffle or sampler is not None or batch_sampler is not None:
                raise ValueError("DataLoader: an IterableDataset does not take shuffle, sampler or batch_sampler")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with batch_size, shuffle, "
                                 "sampler, and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None option disables auto-batching and is mutually exclusive "
                             "with drop_last")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if not self._iterable and sampler is None:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if not self._iterable and batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self._auto_collation = batch_sampler is not None
        self._default_collate = collate_fn is None
        if collate_fn is None:
            batched = self._auto_collation or (self._iterable and batch_size is not None)
            collate_fn = default_collate if batched else _identity
        self.collate_fn = collate_fn
        self._epoch = 0           # epochs completed
        self._yielded = 0         # batches yielded in the current epoch
        self._resume_skip = 0     # batches to skip in the next epoch (set by load_state_dict)

    def __len__(self):
        if self._iterable:
            n = len(self.dataset)  # TypeError when the iterable has no length, as in torch
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)

    def __iter__(self):
        if self.num_workers == 0:
            return _LoaderIter(self)
        from loom.utils.data._multiprocess import MultiProcessingIter
        if self.persistent_workers:
            if self._iterator is not None and self._iterator.alive:
                self._iterator._reset()
            else:
                self._iterator = MultiProcessingIter(self)
            return self._iterator
        return MultiProcessingIter(self)

    # --- resumability ---
    def state_dict(self):
        """{epoch, batches yielded in the current epoch, sampler state (epoch seed + generator state)}."""
        state = {"epoch": self._epoch, "batches_yielded": self._yielded, "sampler": None, "generator": None}
        sampler = getattr(self.batch_sampler, "sampler", self.sampler)
        if hasattr(sampler, "state_dict"):
            state["sampler"] = sampler.state_dict()
        if self.generator is not None:
            state["generator"] = list(self.generator.get_state())
        return state

    def load_state_dict(self, state):
        """Restores a state_dict(): the next iteration yields the remaining batches of the saved epoch."""
        for key in ("epoch", "batches_yielded"):
            if key not in state:
                raise KeyError(f"DataLoader.load_state_dict: missing key '{key}' (got {sorted(state)})")
        self._epoch = int(state["epoch"])
        self._yielded = 0
        self._resume_skip = int(state["batches_yielded"])
        sampler = getattr(self.batch_sampler, "sampler", self.sampler)
        if state.get("sampler") is not None and hasattr(sampler, "load_state_dict"):
            sampler.load_state_dict(state["sampler"], resume_epoch=self._resume_skip > 0)
        elif self.generator is not None and state.get("generator") is not None:
            self.generator.set_state(list(state["generator"]))


def _identity(sample):
    return sample


def _len_at_most(obj, limit):
    try:
        return len(obj) <= limit
    except TypeError:  # a batch sampler without a length
        return False


def _pinning_device(device_type):
    """(device or None,) for Tensor.pin_memory, or None (with a warning) when no loaded backend can pin memory."""
    if device_type:
        device = _C.device(device_type)
        if device.type == "cpu" or not _C._has_pinned_memory(device.type):
            raise ValueError(f"DataLoader: pin_memory_device '{device_type}' has no pinned host memory")
        return (device,)
    if any(_C._is_available(t) and _C._has_pinned_memory(t) for t in _C._device_types()[1:]):
        return (None,)
    warnings.warn("DataLoader: 'pin_memory' is set but no loaded device backend has pinned memory, so it is not "
                  "used", stacklevel=3)
    return None


def _pin(batch, device):
    """The batch with every tensor copied into pinned memory, keeping the containers' types (as PyTorch)."""
    if isinstance(batch, loom.Tensor):
        return batch.pin_memory(device)
    if isinstance(batch, str):
        return batch
    if isinstance(batch, collections.abc.Mapping):
        pinned = {k: _pin(v, device) for k, v in batch.items()}
        try:
            return type(batch)(pinned)
        except TypeError:
            return pinned
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(_pin(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        pinned = [_pin(v, device) for v in batch]
        return pinned if isinstance(batch, list) else type(batch)(pinned)
    if hasattr(batch, "pin_memory"):
        return batch.pin_memory()
    return batch


class _LoaderIter:
    def __init__(self, loader):
        self._loader = loader
        self._prefetcher = None
        self._done = False
        skip, loader._resume_skip = loader._resume_skip, 0
        loader._yielded = skip
        ds = loader.dataset
        if loader._iterable:
            self._gen = self._iterable_batches(skip)
            return
        if loader._auto_collation:
            index_batches = iter(loader.batch_sampler)
        else:
            index_batches = ([i] for i in loader.sampler)
        for _ in range(skip):
            if next(index_batches, None) is None:
                break
        base, remap = ds, None
        if type(ds) is Subset and type(ds.dataset) is TensorDataset:  # e.g. a random_split of a TensorDataset
            base, remap = ds.dataset, ds.indices
        # The C++ prefetcher takes the epoch's index batches as a list: not for samplers that stream huge epochs.
        fast = (loader.prefetch and loader._default_collate and loader._auto_collation
                and type(base) is TensorDataset and _len_at_most(loader.batch_sampler, _MAX_PREFETCH_BATCHES))
        if fast:
            if remap is None:
                batches = [list(b) for b in index_batches]
            else:
                batches = [[remap[i] for i in b] for b in index_batches]
            self._prefetcher = _C._data.BatchPrefetcher(list(base.tensors), batches, 2)
            self._gen = None
        else:
            self._gen = self._map_batches(index_batches)

    def _map_batches(self, index_batches):
        loader, ds = self._loader, self._loader.dataset
        for indices in index_batches:
            if loader._auto_collation:
                yield loader.collate_fn([ds[i] for i in indices])
            else:
                yield loader.collate_fn(ds[indices[0]])

    def _iterable_batches(self, skip):
        loader = self._loader
        it = iter(loader.dataset)
        bs = loader.batch_size
        count = 0
        while True:
            if bs is None:
                try:
                    sample = next(it)
                except StopIteration:
                    return
                batch = loader.collate_fn(sample)
            else:
                samples = []
                for sample in it:
                    samples.append(sample)
                    if len(samples) == bs:
                        break
                if not samples or (len(samples) < bs and loader.drop_last):
                    return
                batch = None if count < skip else loader.collate_fn(samples)
            count += 1
            if count > skip:
                yield batch

    def __iter__(self):
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        try:
            if self._prefetcher is not None:
                batch = self._prefetcher.next()
                if batch is None:
                    raise StopIteration
            else:
                batch = next(self._gen)
        except StopIteration:
            self._finish()
            raise
        except BaseException:
            self.close()
            raise
        self._loader._yielded += 1
        if self._loader._pin_device is not None:
            batch = _pin(batch, self._loader._pin_device[0])
        return batch

    def _finish(self):
        self._done = True
        self._loader._epoch += 1
        self._loader._yielded = 0
        self.close()

    def close(self):
        """Stops the prefetch thread (also done when the iterator is garbage-collected)."""
        self._done = True
        if self._prefetcher is not None:
            self._prefetcher.close()
            self._prefetcher = None

    def __len__(self):
        return len(self._loader)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
