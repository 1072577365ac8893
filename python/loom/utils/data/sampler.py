"""Samplers: the order in which a DataLoader visits a dataset's indices (as in torch.utils.data)."""
import loom


class Sampler:
    """Base class: an iterable of dataset indices (or of index lists for a batch sampler)."""

    def __init__(self, data_source=None):
        pass

    def __iter__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random permutation of the indices each epoch (or num_samples draws with replacement).

    Each epoch draws one 63-bit seed from `generator` (default: loom's default generator) and permutes with a
    private generator seeded by it, so a saved epoch seed replays that epoch's order exactly (DataLoader resume).
    The permutation differs from torch's for the same seed: the RNGs differ.
    """

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        self.epoch_seed = None  # the seed of the epoch being iterated
        self._resume_seed = None
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement should be a bool, got {replacement!r}")
        if num_samples is not None and (not isinstance(num_samples, int) or num_samples <= 0):
            raise ValueError(f"RandomSampler: num_samples should be a positive integer, got {num_samples!r}")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def _draw_seed(self):
        g = self.generator if self.generator is not None else loom.default_generator()
        return int(loom.randint(0, 2**62, (1,), generator=g).item())

    def indices(self, seed):
        """The index order of the epoch with this seed."""
        g = loom.Generator()
        g.manual_seed(seed)
        n = len(self.data_source)
        if n == 0:
            return []
        if self.replacement:
            return loom.randint(0, n, (self.num_samples,), generator=g).tolist()
        out = []
        while len(out) < self.num_samples:
            out.extend(loom.randperm(n, generator=g).tolist())
        return out[:self.num_samples]

    def __iter__(self):
        if self._resume_seed is not None:
            seed, self._resume_seed = self._resume_seed, None
        else:
            seed = self._draw_seed()
        self.epoch_seed = seed
        return iter(self.indices(seed))

    def __len__(self):
        return self.num_samples

    def state_dict(self):
        return {"epoch_seed": self.epoch_seed,
                "generator": None if self.generator is None else list(self.generator.get_state())}

    def load_state_dict(self, state, resume_epoch):
        """Restores the generator; with resume_epoch the next __iter__ replays the saved epoch's order."""
        if self.generator is not None and state.get("generator") is not None:
            self.generator.set_state(list(state["generator"]))
        self._resume_seed = state.get("epoch_seed") if resume_epoch else None


class BatchSampler(Sampler):
    """Groups the indices of `sampler` into lists of batch_size (the last one shorter unless drop_last)."""

    def __init__(self, sampler, batch_size, drop_last):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"BatchSampler: batch_size should be a positive integer, got {batch_size!r}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"BatchSampler: drop_last should be a bool, got {drop_last!r}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self):
        batch = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else (n + self.batch_size - 1) // self.batch_size
